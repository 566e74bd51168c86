// What this JS engine's WebAssembly supports, probed by validating tiny modules (no instantiation).

// (module (func (result v128) (v128.const i32x4 0 0 0 0)))
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11,
]);

// (module (func (param v128 v128 v128) (result v128) (f32x4.relaxed_madd (local.get 0) (local.get 1) (local.get 2))))
const RELAXED_SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 3, 123, 123, 123, 1, 123, 3, 2, 1, 0, 10, 13, 1, 11, 0, 32, 0, 32, 1, 32, 2, 253, 133, 2, 11,
]);

/**
 * Whether this runtime validates a module using relaxed SIMD (Chromium ≥ 114, Node ≥ 22; Node 20 only with
 * --experimental-wasm-relaxed-simd). Only detected: the Node adapter does not turn the V8 flag on itself
 * (v8.setFlagsFromString would work, workers included, but it changes a process-wide V8 setting of the host
 * application after start-up, for a feature V8 11.3 still calls experimental, and the relaxed build measured no
 * faster than the plain one on the CPUs tried: see scripts/bench-relaxed-simd.mjs).
 */
export function hasRelaxedSimd(): boolean {
  try {
    return WebAssembly.validate(RELAXED_SIMD_PROBE);
  } catch {
    return false;
  }
}

export interface WasmFeatures {
  simd: boolean;
  /** Relaxed SIMD (f32x4.relaxed_madd): the backend then runs the engine build that uses it. */
  relaxedSimd: boolean;
  /** SharedArrayBuffer + shared WebAssembly.Memory (browsers: only when cross-origin isolated). */
  threads: boolean;
}

export async function wasmFeatures(): Promise<WasmFeatures> {
  let simd = false;
  try {
    simd = WebAssembly.validate(SIMD_PROBE);
  } catch {
    simd = false;
  }
  let threads = false;
  try {
    threads = typeof SharedArrayBuffer !== 'undefined' && new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer instanceof SharedArrayBuffer;
  } catch {
    threads = false;
  }
  return { simd, relaxedSimd: simd && hasRelaxedSimd(), threads };
}
