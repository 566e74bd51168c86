// The memory plan of a run, before anything runs: bytes of the weights, gradients, AdamW moments, the activations
// the autograd tape keeps per micro-batch, the [rows, vocabulary] logits, the KV cache of generation, checked against
// the backend's limits (the 4 GiB a WebAssembly instance can address; WebGPU's maxBufferSize and
// maxStorageBufferBindingSize per buffer). `dapo train --dry-run` prints it; the trainer's batch sizes, when not set,
// are the largest that fit (pickBatchSizes). Browser-safe: no Node imports.
import type { Backend } from '../backend/backend.js';
import { type ModelConfig, headDim, parameterCount } from '../nn/config.js';
import { defaultChunkRows } from '../tensor/linear_logprob_ops.js';
import type { TrainConfig } from './config.js';

export const GIB = 1024 ** 3;
/** A WebAssembly instance's linear memory: 65 536 pages of 64 KiB. */
export const WASM_ADDRESS_SPACE = 4 * GIB;
/**
 * Share of the limit the plan may fill (WebGPU with a known total); the estimate itself is within ±15 % of the
 * measured peak (see tests/rl/memory_plan.test.ts).
 */
export const PLAN_HEADROOM = 0.8;
/**
 * WASM's arena merges freed neighbours and splits free blocks for smaller requests (src/backend/wasm/arena.ts), so
 * generation's and the update's transients reuse the same addresses: the address space follows the larger of the two
 * peaks, plus the holes that blocks of different lifetimes leave. Measured on the DAPO steps of
 * tests/rl/memory_plan.test.ts: highest address = 1.06–1.07 × the live peak + the matmul scratch. (The old size-class
 * arena kept both transients side by side: the 163 M step at micro-batch 4 ran out at 4.03 GiB with 2.87 GiB live.)
 */
export const ARENA_FRAGMENTATION = 1.1;
/** The WASM matmul's packing scratch, one per thread, allocated once (engine/matmul.ts matmul_scratch_bytes). */
export const WASM_MATMUL_SCRATCH_BYTES = (256 * 2048 + 128 * 256 + 4 * 8 + 64) * 4;

/** WASM address space a run whose live bytes peak at `peakBytes` needs on `threads` threads. */
export function wasmAddressSpace(peakBytes: number, threads = 1): number {
  return peakBytes * ARENA_FRAGMENTATION + WASM_MATMUL_SCRATCH_BYTES * threads;
}
/** Share of the 4 GiB the WASM address-space estimate may fill. */
export const WASM_ADDRESS_HEADROOM = 0.95;

export type WeightDtype = 'float32' | 'float16' | 'bfloat16';

/**
 * The frozen storage a run will use, for the plan (before any weight is read): lora.frozenDtype when set to a 16-bit
 * type; for 'auto', the checkpoint's dtype as config.json's torch_dtype states it (what 'auto' keeps for a checkpoint
 * saved in that dtype); float32 without LoRA.
 */
export function plannedWeightDType(lora: boolean, frozenDtype: 'auto' | WeightDtype, torchDtype: unknown): WeightDtype {
  if (!lora) return 'float32';
  if (frozenDtype !== 'auto') return frozenDtype;
  return torchDtype === 'bfloat16' || torchDtype === 'float16' ? torchDtype : 'float32';
}

/** What the backend can hold: a total (WASM's address space) and a largest single buffer (WebGPU). */
export interface MemoryLimits {
  backend: 'wasm' | 'webgpu' | 'reference';
  /** Bytes all live tensors together may take; null = not known (a GPU does not say how much memory it has). */
  totalBytes: number | null;
  /** Bytes of the largest single tensor; null = no limit. */
  bufferBytes: number | null;
  /** Bytes one kernel binding may cover (WebGPU's maxStorageBufferBindingSize), when below bufferBytes: only frozen
   *  weight tables (bound in windows by matmul and gather) may be larger; null/unset = bufferBytes. */
  bindingBytes?: number | null;
  /** WASM worker threads (each holds a matmul scratch); unset = 1. */
  threads?: number;
}

export const WASM_LIMITS: MemoryLimits = { backend: 'wasm', totalBytes: WASM_ADDRESS_SPACE, bufferBytes: WASM_ADDRESS_SPACE };
export const REFERENCE_LIMITS: MemoryLimits = { backend: 'reference', totalBytes: null, bufferBytes: null };

/**
 * A WebGPU device's limits: no total; one buffer at most maxBufferSize, and at most maxStorageBufferBindingSize for
 * every tensor but a frozen weight table (the backend binds those in windows: windows_webgpu.ts).
 */
export function webgpuLimits(limits: { maxBufferSize: number; maxStorageBufferBindingSize: number }): MemoryLimits {
  const binding = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
  return { backend: 'webgpu', totalBytes: null, bufferBytes: limits.maxBufferSize, bindingBytes: binding < limits.maxBufferSize ? binding : null };
}

/** The limits of a live backend: WASM's address space, a WebGPU device's buffer limits, none for the reference. */
export function backendMemoryLimits(backend: Backend): MemoryLimits {
  if (backend.name === 'wasm') return { ...WASM_LIMITS, threads: (backend as { threads?: number }).threads ?? 1 };
  const limits = (backend as unknown as { limits?: { maxBufferSize: number; maxStorageBufferBindingSize: number } }).limits;
  return backend.name === 'webgpu' && limits ? webgpuLimits(limits) : REFERENCE_LIMITS;
}

/** The work of one RL step that sizes memory. */
export interface StepShape {
  /** Sequences per forward/backward of the update (and of the old log-prob pass). */
  microBatchSize: number;
  /** Tokens of a packed training row: longest prompt + maxNewTokens − 1. */
  trainLength: number;
  /** Response tokens per sequence (maxNewTokens): only they go through the output head (default trainLength). */
  responseLength?: number;
  /** Sequences per generate() call. */
  generationBatch: number;
  /** Distinct prompts among them (default generationBatch): generate() prefills each once and copies its KV cache to
   *  the sequences that share it (a group's G responses). */
  generationPrompts?: number;
  /** Longest prompt (the prefill). */
  promptLength: number;
  /** Positions of the KV cache: longest prompt + maxNewTokens. */
  generationLength: number;
  /** A frozen reference copy of the policy (rl.klBeta > 0). */
  reference: boolean;
  /** Micro-batches per optimizer step (default 1): with more, every gradient is live while the next one runs. */
  microBatchesPerStep?: number;
  /** Activation checkpointing per decoder block (gradientCheckpointing): the tape keeps each block's input only, and
   *  backward recomputes one block's tape at a time. */
  checkpointing?: boolean;
}

export interface LoraShape {
  r: number;
  /** Which projections carry adapters (q_proj, …, down_proj). */
  targets: readonly string[];
  /** Adapter-input dropout while training: each adapter keeps a mask and the dropped input on the tape. */
  dropout: number;
}

export interface MemoryOptions {
  lora?: LoraShape | null;
  /** Storage of the frozen weights (LoRA's base): 16-bit halves them; trainable weights stay float32. */
  weightDtype?: WeightDtype;
  /**
   * Rows of the [rows, vocabulary] logits that exist at once (default: the fused head's chunk of the micro-batch's
   * response tokens, linearLogSoftmaxGather's defaultChunkRows).
   */
  logitsRows?: number | null;
  limits?: MemoryLimits;
}

export interface MemoryLine {
  what: string;
  bytes: number;
  note: string;
}

export interface MemoryEstimate {
  parameters: number;
  trainableParameters: number;
  weights: number;
  /** The frozen reference policy (klBeta > 0). */
  reference: number;
  gradients: number;
  optimizer: number;
  /** What the tape keeps for one micro-batch, decoder layers and final norm. */
  activations: number;
  /** The [rows, vocab] logits of one micro-batch and their gradient. */
  logits: number;
  /** Beyond the tape and the logits: the logits' gradient, or the forward's unsaved intermediates (plus the gradients
   *  when a step has one micro-batch). */
  backwardScratch: number;
  kvCache: number;
  /** One prefill's layer working set and last-position logits. */
  generationScratch: number;
  /** Peak of the update: weights, reference, gradients (when accumulated), moments, tape, logits, scratch. */
  trainPeak: number;
  /** Peak of generation: weights, reference, moments (gradients are freed after each step), KV cache, scratch. */
  generationPeak: number;
  peak: number;
  /** WASM's address space in use: the larger of the update and generation peaks, with the arena's holes and scratch. */
  addressSpace: number;
  /** The largest single tensor and what it is (WebGPU's per-buffer limit). */
  largestTensor: { what: string; bytes: number };
  /** The largest tensor a kernel must bind whole (all but frozen weight tables: WebGPU's per-binding limit). */
  largestBound: { what: string; bytes: number };
  lines: MemoryLine[];
}

const FLOAT = 4;
const ATTENTION_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj'] as const;
const MLP_MODULES = ['gate_proj', 'up_proj', 'down_proj'] as const;

/** [in, out] of each adaptable projection of one decoder layer. */
function projections(m: ModelConfig): Record<(typeof ATTENTION_MODULES)[number] | (typeof MLP_MODULES)[number], [number, number]> {
  const hd = headDim(m);
  return {
    q_proj: [m.dModel, m.nHeads * hd], k_proj: [m.dModel, m.nKvHeads * hd], v_proj: [m.dModel, m.nKvHeads * hd],
    o_proj: [m.nHeads * hd, m.dModel], gate_proj: [m.dModel, m.ffnDim], up_proj: [m.dModel, m.ffnDim], down_proj: [m.ffnDim, m.dModel],
  };
}

/** LoRA parameters: r·(in + out) per adapted projection per layer. */
export function loraParameterCount(m: ModelConfig, lora: LoraShape): number {
  const proj = projections(m);
  let perLayer = 0;
  for (const [name, [i, o]] of Object.entries(proj)) if (lora.targets.includes(name)) perLayer += lora.r * (i + o);
  return perLayer * m.nLayers;
}

/**
 * Floats per token the tape keeps for one decoder layer, counted from the ops' saved tensors (src/nn/layers.ts and
 * src/tensor): the block input and rstd (rmsNorm), the normed input (q/k/v matmuls), the permuted q, k, v, the
 * attention output and its log-sum-exp per head, the permuted-back output (o_proj), o_proj's output and the residual
 * (add saves inputs and output), rstd and the normed residual (gate/up), gate, up, the SwiGLU output (down_proj) and
 * down_proj's output. With LoRA, each adapter adds its rank-r product u and, with dropout, its mask and dropped input.
 */
export function layerActivationFloats(m: ModelConfig, lora: LoraShape | null = null): number {
  const hd = headDim(m);
  const H = m.nHeads;
  const K = m.nKvHeads;
  let floats = 6 * m.dModel + 3 * H * hd + 2 * K * hd + H + 2 + 3 * m.ffnDim;
  if (lora) {
    for (const [name, [i]] of Object.entries(projections(m))) {
      if (!lora.targets.includes(name)) continue;
      floats += lora.r + (lora.dropout > 0 ? 2 * i : 0);
    }
  }
  return floats;
}

/** Floats per token of one layer's outputs no op saves: the q/k/v projections and the RoPE outputs of q and k. */
function unsavedLayerFloats(m: ModelConfig): number {
  return (2 * m.nHeads + 3 * m.nKvHeads) * headDim(m);
}

function bytesPerWeight(dtype: WeightDtype): number {
  return dtype === 'float32' ? 4 : 2;
}

/** The memory of one RL step of `model` at `shape`. */
export function estimateMemory(model: ModelConfig, shape: StepShape, opts: MemoryOptions = {}): MemoryEstimate {
  const lora = opts.lora && opts.lora.r > 0 ? opts.lora : null;
  const weightDtype = opts.weightDtype ?? 'float32';
  const params = parameterCount(model);
  const adapters = lora ? loraParameterCount(model, lora) : 0;
  const trainable = lora ? adapters : params;
  // Only frozen weights may be stored in 16 bits (LoRA's base); what AdamW updates stays float32.
  const weights = lora ? params * bytesPerWeight(weightDtype) + adapters * FLOAT : params * FLOAT;
  const reference = shape.reference ? params * (lora ? bytesPerWeight(weightDtype) : FLOAT) : 0;
  const gradients = trainable * FLOAT;
  const optimizer = 2 * trainable * FLOAT;

  const V = model.vocabSize;
  const d = model.dModel;
  const hd = headDim(model);
  const tokens = shape.microBatchSize * shape.trainLength;
  const checkpointing = shape.checkpointing === true;
  // Final norm: its input, rstd and output stay on the tape for the head's matmul. Checkpointed, a layer keeps only
  // its input (and the blocks share the positions).
  const layerFloats = checkpointing ? d : layerActivationFloats(model, lora);
  const activations = tokens * (model.nLayers * layerFloats + 2 * d + 1 + (checkpointing ? 1 : 0)) * FLOAT;
  // Projection outputs before RoPE/permute and the RoPE outputs are not saved, but the forward's tidy frees them only
  // when the whole forward returns. Checkpointed, a block's forward frees its intermediates when it returns; backward
  // recomputes one block's tape at a time, with the gradients flowing into and out of it (measured:
  // tests/rl/memory_plan.test.ts).
  const forwardScratch = checkpointing
    ? tokens * (layerActivationFloats(model, lora) + unsavedLayerFloats(model) + 2 * d) * FLOAT
    : tokens * model.nLayers * unsavedLayerFloats(model) * FLOAT;
  const headRows = shape.microBatchSize * Math.min(shape.responseLength ?? shape.trainLength, shape.trainLength);
  const logitsRows = Math.min(headRows, opts.logitsRows ?? defaultChunkRows(headRows, V));
  const logitsBytes = logitsRows * V * FLOAT;
  // The logits (saved by the log-softmax-gather) meet either the forward's scratch or, first thing in backward,
  // their own gradient; lse, entropy and log-probs take a few floats per row, and the head's input is the response
  // rows' hidden states, gathered [headRows, d].
  const logits = logitsBytes + (4 * tokens + headRows * d) * FLOAT;
  // Gradients accumulate over the micro-batches of an optimizer step, so with several they are all live at the peak.
  // With one they appear as backward consumes the tape; measured peaks then sit either at the start of backward
  // (logits and their gradient) or with the forward's scratch and every gradient live: the larger of the two.
  const accumulating = (shape.microBatchesPerStep ?? 1) > 1;
  const liveGradients = accumulating ? gradients : 0;
  // Accumulating a gradient adds the new one into a fresh sum (backward.ts addAndFree): the new gradient and the sum
  // beside the running one, two tensors more, at most the largest trainable one each.
  const largestTrainable = lora ? lora.r * Math.max(d, model.ffnDim, model.nHeads * hd) : Math.max(V * d, d * model.ffnDim, d * model.nHeads * hd);
  // Checkpointed, the peak is either the start of backward (logits, their gradient and the head's) or a block's
  // recomputation, by which time the logits are freed: that branch is counted net of them.
  const backwardScratch = checkpointing
    ? Math.max(logitsBytes + largestTrainable * FLOAT, forwardScratch + (accumulating ? 2 * largestTrainable * FLOAT : gradients) - logits)
    : accumulating
      ? Math.max(forwardScratch, logitsBytes) + 2 * largestTrainable * FLOAT
      : Math.max(logitsBytes, forwardScratch + gradients);
  const trainPeak = weights + reference + liveGradients + optimizer + activations + logits + backwardScratch;

  const cacheOf = (sequences: number) => model.nLayers * 2 * sequences * model.nKvHeads * shape.generationLength * hd * FLOAT;
  const kvCache = cacheOf(shape.generationBatch);
  const prompts = Math.min(shape.generationPrompts ?? shape.generationBatch, shape.generationBatch);
  const prefillTokens = prompts * shape.promptLength;
  // Without a tape the same intermediates exist, and the forward's tidy frees them only when the prefill returns.
  const prefillFloats = model.nLayers * (layerActivationFloats(model) + unsavedLayerFloats(model)) + 2 * d;
  const prefillScratch = (prefillTokens * prefillFloats + prompts * V * 2) * FLOAT;
  // Shared prompts: the prefill runs on the prompts' own cache, then (both caches live) every sequence gets its copy
  // and its prompt's logits; decode then holds the whole batch's cache and logits.
  const generationScratch = prompts < shape.generationBatch
    ? Math.max(cacheOf(prompts) + prefillScratch, cacheOf(prompts) + kvCache + (prompts + shape.generationBatch) * V * FLOAT, kvCache + shape.generationBatch * V * 2 * FLOAT) - kvCache
    : (prefillTokens * prefillFloats + shape.generationBatch * V * 2) * FLOAT;
  const generationPeak = weights + reference + optimizer + kvCache + generationScratch;

  const addressSpace = wasmAddressSpace(Math.max(trainPeak, generationPeak), opts.limits?.threads ?? 1);

  // windowed: a frozen table that WebGPU binds piecewise (the embedding's gather and the tied head's matmul)
  const candidates: { what: string; bytes: number; windowed?: boolean }[] = [
    { what: `logits [${logitsRows}, ${V}] (a chunk of micro-batch ${shape.microBatchSize} × ${headRows / shape.microBatchSize} response tokens)`, bytes: logitsRows * V * FLOAT },
    { what: `embedding [${V}, ${d}]`, bytes: V * d * (lora ? bytesPerWeight(weightDtype) : FLOAT), windowed: lora !== null },
    { what: `KV cache layer [${shape.generationBatch}, ${model.nKvHeads}, ${shape.generationLength}, ${hd}]`, bytes: shape.generationBatch * model.nKvHeads * shape.generationLength * hd * FLOAT },
    { what: `MLP activation [${tokens}, ${model.ffnDim}]`, bytes: tokens * model.ffnDim * FLOAT },
    { what: `MLP weight [${model.ffnDim}, ${d}]`, bytes: model.ffnDim * d * (lora ? bytesPerWeight(weightDtype) : FLOAT) },
  ];
  const largest = (list: typeof candidates) => {
    const { what, bytes } = list.reduce((a, b) => (b.bytes > a.bytes ? b : a));
    return { what, bytes };
  };
  const largestTensor = largest(candidates);
  const largestBound = largest(candidates.filter((c) => !c.windowed));

  const lines: MemoryLine[] = [
    { what: 'weights', bytes: weights, note: `${params.toLocaleString('en-US')} parameters${lora ? `, frozen ${weightDtype} + ${adapters.toLocaleString('en-US')} LoRA float32` : ', float32'}` },
    ...(reference ? [{ what: 'reference policy', bytes: reference, note: 'rl.klBeta > 0: a frozen copy' }] : []),
    { what: 'gradients', bytes: liveGradients, note: `${trainable.toLocaleString('en-US')} trainable${accumulating ? ', accumulated over micro-batches' : ' (one micro-batch: counted in the scratch)'}` },
    { what: 'optimizer', bytes: optimizer, note: 'AdamW: 2 moments per trainable parameter' },
    { what: 'activations', bytes: activations, note: checkpointing
      ? `checkpointed: ${model.nLayers} block inputs of micro-batch ${shape.microBatchSize} × ${shape.trainLength} tokens`
      : `tape of micro-batch ${shape.microBatchSize} × ${shape.trainLength} tokens, ${model.nLayers} layers` },
    { what: 'logits', bytes: logits, note: `[${logitsRows}, ${V}]` },
    { what: 'update scratch', bytes: backwardScratch, note: checkpointing
      ? (accumulating ? 'one block recomputed in backward, or the logits gradient' : 'logits gradient, or one recomputed block + gradients')
      : accumulating ? 'forward intermediates, or the logits gradient' : 'logits gradient, or forward intermediates + gradients' },
    { what: 'KV cache', bytes: kvCache, note: `${model.nLayers} layers × 2 × ${shape.generationBatch} seq × ${model.nKvHeads} kv heads × ${shape.generationLength} × ${hd}` },
    { what: 'generation scratch', bytes: generationScratch, note: `prefill of ${prompts} × ${shape.promptLength} tokens${prompts < shape.generationBatch ? ` (${prompts} distinct prompts, cache copied to ${shape.generationBatch} sequences)` : ''}` },
  ];
  return {
    parameters: params, trainableParameters: trainable, weights, reference, gradients, optimizer, activations, logits, backwardScratch,
    kvCache, generationScratch, trainPeak, generationPeak, peak: Math.max(trainPeak, generationPeak), addressSpace, largestTensor, largestBound, lines,
  };
}

/** What does not fit under `limits`, each naming the figure and the limit; empty when everything fits. */
export function memoryProblems(estimate: MemoryEstimate, limits: MemoryLimits): string[] {
  const problems: string[] = [];
  if (limits.totalBytes !== null && limits.backend === 'wasm') {
    const budget = limits.totalBytes * WASM_ADDRESS_HEADROOM;
    const where = limits.totalBytes === WASM_ADDRESS_SPACE ? 'the 4 GiB a WebAssembly instance can address' : `the ${gib(limits.totalBytes)} limit`;
    if (estimate.addressSpace > budget) {
      problems.push(`the run needs about ${gib(estimate.addressSpace)} of WASM address space (update peak ${gib(estimate.trainPeak)}, generation peak ${gib(estimate.generationPeak)}, `
        + `with the arena's holes and scratch), over ${gib(budget)} (${Math.round(WASM_ADDRESS_HEADROOM * 100)} % of ${where})`);
    }
  } else if (limits.totalBytes !== null) {
    const budget = limits.totalBytes * PLAN_HEADROOM;
    const where = `the ${gib(limits.totalBytes)} limit`;
    if (estimate.trainPeak > budget) problems.push(`the update needs about ${gib(estimate.trainPeak)}, over ${gib(budget)} (${Math.round(PLAN_HEADROOM * 100)} % of ${where})`);
    if (estimate.generationPeak > budget) problems.push(`generation needs about ${gib(estimate.generationPeak)}, over ${gib(budget)} (${Math.round(PLAN_HEADROOM * 100)} % of ${where})`);
  }
  if (limits.bufferBytes !== null && estimate.largestTensor.bytes > limits.bufferBytes) {
    problems.push(`the largest tensor, ${estimate.largestTensor.what}, takes ${gib(estimate.largestTensor.bytes)}, over the ${gib(limits.bufferBytes)} one buffer may hold on ${limits.backend}`);
  }
  const binding = limits.bindingBytes ?? null;
  if (binding !== null && estimate.largestBound.bytes > binding) {
    problems.push(`the largest tensor a kernel binds whole, ${estimate.largestBound.what}, takes ${gib(estimate.largestBound.bytes)}, over the ${gib(binding)} one binding `
      + `may cover on ${limits.backend} (maxStorageBufferBindingSize; only frozen weight tables are bound in windows)`);
  }
  return problems;
}

export function gib(bytes: number): string {
  return bytes >= GIB ? `${(bytes / GIB).toFixed(2)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

// ------------------------------------------------------------------------------------------ batch sizes of a run

/** Which batch-size keys the run's config layers set (a set key is kept as given, and fails when it does not fit). */
export interface ExplicitBatchKeys {
  microBatchSize: boolean;
  generationChunk: boolean;
}

/** Whether any layer sets rl.microBatchSize / rl.generationChunk (the layers of resolveTrainConfig). */
export function explicitBatchKeys(layers: readonly unknown[]): ExplicitBatchKeys {
  const sets = (key: string) => layers.some((layer) => {
    const rl = (layer as { rl?: unknown } | null)?.rl;
    return typeof rl === 'object' && rl !== null && (rl as Record<string, unknown>)[key] !== undefined;
  });
  return { microBatchSize: sets('microBatchSize'), generationChunk: sets('generationChunk') };
}

export interface BatchPlan {
  microBatchSize: number;
  /** Activation checkpointing in the training passes: gradientCheckpointing true, or 'auto' when nothing fits without. */
  checkpointing: boolean;
  /** Sequences per generate() call: the whole generation batch, or a smaller chunk when that does not fit. */
  generationChunk: number;
  /** Sequences the trainer would generate at once with rl.generationChunk 0. */
  generationSequences: number;
  estimate: MemoryEstimate;
  /** Why each size is what it is ('set', 'kept', 'lowered to fit'). */
  reasons: { microBatchSize: string; generationChunk: string; checkpointing: string };
  problems: string[];
}

export interface PlanInput {
  config: TrainConfig;
  model: ModelConfig;
  /** Longest prompt in tokens (the task's or the dataset's; maxSeqLen − maxNewTokens at most). */
  promptLength: number;
  explicit: ExplicitBatchKeys;
  limits: MemoryLimits;
  weightDtype?: WeightDtype;
  logitsRows?: number | null;
}

/** Divisors of n, largest first. */
const divisorsDown = (n: number) => Array.from({ length: n }, (_, i) => n - i).filter((k) => n % k === 0);

function loraShapeOf(config: TrainConfig): LoraShape | null {
  const { r, targetModules, dropout } = config.lora;
  if (!(r > 0)) return null;
  const all = [...ATTENTION_MODULES, ...MLP_MODULES];
  const targets = targetModules === 'all-linear' ? all
    : Array.isArray(targetModules) ? all.filter((name) => targetModules.some((t) => t === name || name.endsWith(`.${t}`) || t.endsWith(`.${name}`) || t === name))
      : all.filter((name) => new RegExp(targetModules).test(`model.layers.0.self_attn.${name}`) || new RegExp(targetModules).test(`model.layers.0.mlp.${name}`));
  return { r, targets, dropout };
}

/** Distinct prompts at most in a generate() call of `chunk` sequences cut from groups of `groupSize` in order. */
export function promptsPerChunk(chunk: number, groupSize: number): number {
  return chunk % groupSize === 0 ? chunk / groupSize : Math.min(chunk, Math.ceil(chunk / groupSize) + 1);
}

/**
 * The micro-batch and generation chunk of a run: a key the config sets is kept (and reported when it does not fit);
 * an unset one keeps today's value when it fits, else the largest that fits (micro-batches divide the mini-batch, so
 * splitting changes nothing but the summation order). `problems` name what does not fit and what to change.
 */
export function pickBatchSizes(input: PlanInput): BatchPlan {
  const { config, model, explicit, limits } = input;
  const rl = config.rl;
  const promptLength = Math.max(1, Math.min(input.promptLength, model.maxSeqLen - rl.maxNewTokens));
  const generationSequences = Math.max(rl.promptsPerStep, rl.generationBatchPrompts) * rl.groupSize;
  const perMini = (rl.promptsPerStep * rl.groupSize) / rl.miniBatches;
  const lora = loraShapeOf(config);
  const asked = config.gradientCheckpointing;
  // 'auto' may turn checkpointing on only where the model can recompute a block (no LoRA dropout).
  const autoAllowed = asked === 'auto' && !(lora && lora.dropout > 0);
  let checkpointing = asked === true;
  const estimateAt = (microBatchSize: number, generationChunk: number) => estimateMemory(model, {
    microBatchSize: Math.min(microBatchSize, perMini), trainLength: promptLength + rl.maxNewTokens - 1, responseLength: rl.maxNewTokens,
    microBatchesPerStep: Math.ceil(perMini / microBatchSize),
    generationBatch: generationChunk, generationPrompts: promptsPerChunk(generationChunk, rl.groupSize), promptLength, generationLength: promptLength + rl.maxNewTokens, reference: rl.klBeta > 0, checkpointing,
  }, { lora, weightDtype: input.weightDtype, logitsRows: input.logitsRows, limits });
  const fits = (e: MemoryEstimate) => memoryProblems(e, limits).length === 0;
  const need = (e: MemoryEstimate) => (limits.backend === 'wasm' ? e.addressSpace : Math.max(e.trainPeak, e.generationPeak));

  // Candidates, largest first: a set key only its value; an unset one today's value, then smaller divisors. The first
  // pair that fits wins, the micro-batch kept as large as possible (splitting it changes only the summation order;
  // a smaller generation chunk draws other samples).
  const startMicro = rl.microBatchSize;
  const startChunk = rl.generationChunk > 0 ? rl.generationChunk : generationSequences;
  const microCandidates = explicit.microBatchSize ? [startMicro] : [startMicro, ...divisorsDown(perMini).filter((k) => k < Math.min(startMicro, perMini))];
  // Whole groups per call keep a group's responses in one sampler call where the divisor allows.
  const chunkCandidates = explicit.generationChunk ? [startChunk] : [startChunk, ...divisorsDown(generationSequences).filter((k) => k < startChunk)];
  let micro = microCandidates[microCandidates.length - 1];
  let chunk = chunkCandidates[chunkCandidates.length - 1];
  const search = (): boolean => {
    for (const m of microCandidates) {
      for (const c of chunkCandidates) {
        if (fits(estimateAt(m, c))) {
          micro = m;
          chunk = c;
          return true;
        }
      }
    }
    return false;
  };
  // 'auto': the largest micro-batch without checkpointing first (no extra forward); with checkpointing only when not
  // even the smallest candidate (or the micro-batch the config sets) fits without it.
  if (!search() && autoAllowed) {
    checkpointing = true;
    if (!search()) checkpointing = false;
  }
  const reasons = {
    checkpointing: asked === 'auto'
      ? checkpointing ? "auto: on, the micro-batch does not fit without it"
        : autoAllowed ? 'auto: off' : 'auto: off (LoRA dropout > 0 cannot be recomputed)'
      : `gradientCheckpointing ${String(asked)}`,
    microBatchSize: explicit.microBatchSize ? 'set' : micro === startMicro ? 'kept' : 'lowered to fit',
    generationChunk: explicit.generationChunk ? 'set' : chunk !== startChunk ? 'lowered to fit' : rl.generationChunk > 0 ? 'kept' : 'all at once',
  };
  const estimate = estimateAt(micro, chunk);
  const problems = memoryProblems(estimate, limits);
  if (problems.length) {
    const advice: string[] = [];
    if (explicit.microBatchSize && micro > 1) advice.push(`lower rl.microBatchSize (now ${micro}; 1 needs about ${gib(need(estimateAt(1, chunk)))})`);
    if (explicit.generationChunk && chunk > 1) advice.push(`lower rl.generationChunk (now ${chunk})`);
    if (!checkpointing && asked !== 'auto' && !(lora && lora.dropout > 0)) {
      const on = estimateMemory(model, {
        microBatchSize: Math.min(micro, perMini), trainLength: promptLength + rl.maxNewTokens - 1, responseLength: rl.maxNewTokens, microBatchesPerStep: Math.ceil(perMini / micro),
        generationBatch: chunk, generationPrompts: promptsPerChunk(chunk, rl.groupSize), promptLength, generationLength: promptLength + rl.maxNewTokens, reference: rl.klBeta > 0, checkpointing: true,
      }, { lora, weightDtype: input.weightDtype, logitsRows: input.logitsRows, limits });
      advice.push(`turn activation checkpointing on (gradientCheckpointing true or 'auto': about ${gib(need(on))})`);
    }
    if (config.lora.r === 0 && typeof config.model.path === 'string') advice.push('train LoRA adapters (--lora) instead of every weight');
    if (rl.klBeta > 0) advice.push('turn the reference KL off (rl.klBeta 0) to drop the reference copy');
    // When the weights, gradients and optimizer alone do not fit, shorter sequences cannot help.
    const persistentBytes = estimate.weights + estimate.gradients + estimate.optimizer;
    if (limits.totalBytes !== null && persistentBytes > limits.totalBytes) {
      advice.push(`use a smaller model: its weights, gradients and optimizer state alone take ${gib(persistentBytes)}`);
    } else {
      advice.push('shorten rl.maxNewTokens or the prompts');
    }
    problems.push(`to fit: ${advice.join('; ')}`);
  }
  return { microBatchSize: micro, checkpointing, generationChunk: chunk, generationSequences, estimate, reasons, problems };
}

/** The plan as the table `dapo train --dry-run` prints. */
export function formatPlan(plan: BatchPlan, model: ModelConfig, limits: MemoryLimits): string[] {
  const e = plan.estimate;
  const rows = e.lines.map((line) => `  ${line.what.padEnd(20)} ${gib(line.bytes).padStart(11)}   ${line.note}`);
  const limit = limits.totalBytes === null ? 'no total known'
    : limits.backend === 'wasm' ? `${gib(limits.totalBytes)} address space (plan ≤ ${Math.round(WASM_ADDRESS_HEADROOM * 100)} %)`
      : `${gib(limits.totalBytes)} (plan ≤ ${Math.round(PLAN_HEADROOM * 100)} %)`;
  const buffer = (limits.bufferBytes !== null ? `, ≤ ${gib(limits.bufferBytes)} per buffer` : '')
    + (limits.bindingBytes ? `, ≤ ${gib(limits.bindingBytes)} per binding but for frozen tables` : '');
  return [
    `memory plan (${limits.backend}: ${limit}${buffer}); model dModel ${model.dModel}, ${model.nLayers} layers, vocabulary ${model.vocabSize}`,
    ...rows,
    `  ${'update peak'.padEnd(20)} ${gib(e.trainPeak).padStart(11)}`,
    `  ${'generation peak'.padEnd(20)} ${gib(e.generationPeak).padStart(11)}`,
    ...(limits.backend === 'wasm' ? [`  ${'WASM address space'.padEnd(20)} ${gib(e.addressSpace).padStart(11)}   larger peak × ${ARENA_FRAGMENTATION} (arena holes) + matmul scratch`] : []),
    `  ${'largest tensor'.padEnd(20)} ${gib(e.largestTensor.bytes).padStart(11)}   ${e.largestTensor.what}`,
    `micro-batch size: ${plan.microBatchSize} (${plan.reasons.microBatchSize}); generation: ${plan.generationChunk} of ${plan.generationSequences} sequences per call (${plan.reasons.generationChunk})`,
    `gradient checkpointing: ${plan.checkpointing ? 'on' : 'off'} (${plan.reasons.checkpointing})${plan.checkpointing ? '; one more forward per block in backward' : ''}`,
    plan.problems.length ? `does not fit: ${plan.problems.join('; ')}` : 'fits',
  ];
}
