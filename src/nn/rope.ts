// RoPE inverse frequencies with Hugging Face's scalings (transformers' modeling_rope_utils.py), in float64.
import type { RopeScaling } from './config.js';

/** The unscaled inverse frequency of pair j: theta^(−2j/headDim). */
export function baseInverseFrequency(j: number, headDim: number, theta: number): number {
  return Math.pow(theta, (-2 * j) / headDim);
}

/**
 * The inverse frequencies of the headDim/2 rotated pairs, scaled as `scaling` says (null: unscaled).
 * linear: f_j / factor. llama3 (_compute_llama3_parameters): with wavelength λ_j = 2π / f_j and the
 * original context L, λ_j > L/lowFreqFactor → f_j / factor; λ_j < L/highFreqFactor → f_j; between,
 * (1 − s)·f_j/factor + s·f_j with s = (L/λ_j − lowFreqFactor) / (highFreqFactor − lowFreqFactor).
 */
export function ropeInverseFrequencies(headDim: number, theta: number, scaling: RopeScaling | null): Float64Array {
  const half = headDim / 2;
  const frequencies = new Float64Array(half);
  for (let j = 0; j < half; j++) frequencies[j] = baseInverseFrequency(j, headDim, theta);
  if (scaling === null) return frequencies;
  if (scaling.type === 'linear') return frequencies.map((f) => f / scaling.factor);
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: context } = scaling;
  const lowFreqWavelength = context / lowFreqFactor;
  const highFreqWavelength = context / highFreqFactor;
  return frequencies.map((f) => {
    const wavelength = (2 * Math.PI) / f;
    if (wavelength > lowFreqWavelength) return f / factor;
    if (wavelength < highFreqWavelength) return f;
    const smooth = (context / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}
