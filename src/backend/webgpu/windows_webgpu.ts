// Storages larger than one binding. A device binds at most maxStorageBufferBindingSize bytes of a buffer per
// binding (128 MiB on lavapipe and many mobile GPUs; 2–4 GiB on desktop GPUs) while one buffer may hold up to
// maxBufferSize (4 GiB on lavapipe). A 151 936 × 896 embedding table (Qwen2.5-0.5B) is 544 MiB in float32 and
// 272 MiB in bfloat16, so such a storage lives in one buffer and is bound in windows — a binding with an offset —
// by the kernels it meets when it is a frozen weight: matmul as the B operand (the tied head), gather as the table
// (the embedding), random (init), fill and cast. Every other kernel refuses it with an error naming the limit
// (WebGPUBackend.own): a trainable weight that large would need its gradient and optimizer kernels windowed too.
// The exported fill / zeroFill / random / cast / gather / matmul are those of core_kernels_webgpu.ts for storages
// of any size: WebGPUBackend calls them.
import { mix32 } from '../rng.js';
import { KernelError, type MatmulArgs, type RandomArgs, type Storage, isHalfDType, storageBytes } from '../types.js';
import * as core from './core_kernels_webgpu.js';
import { HALF_KIND, binary, copy, fillBits, matmulRefs } from './core_kernels_webgpu.js';
import { type GPUStorageRef, type KernelHost, bindingOf } from './kernel_host.js';
import { UNIFORM_LAYOUTS, setParams } from './uniform_params.js';

export function fill(host: KernelHost, out: Storage, value: number): void {
  const target = host.gpuStorageAnySize(out, 'fill');
  if (!target.oversized) return core.fill(host, out, value);
  fillWordsWindowed(host, host.kernel('fill'), target, target.size, fillBits(target.dtype, value));
}

export function zeroFill(host: KernelHost, out: Storage): void {
  const target = host.gpuStorageAnySize(out, 'alloc.zero', true);
  if (!target.oversized) return core.zeroFill(host, out);
  fillWordsWindowed(host, host.kernel('alloc.zero'), target, storageBytes(target.dtype, target.size) / 4, 0);
}

export function random(host: KernelHost, out: Storage, args: RandomArgs): void {
  const target = host.gpuStorageAnySize(out, 'random');
  if (!target.oversized) return core.random(host, out, args);
  randomWindowed(host, host.kernel(`random.${args.kind}`), target, args, mix32(args.seed));
}

export function cast(host: KernelHost, x: Storage, out: Storage): void {
  const source = host.gpuStorageAnySize(x, 'cast', true);
  const target = host.gpuStorageAnySize(out, 'cast');
  if (!source.oversized && !target.oversized) return core.cast(host, x, out);
  const kernel = host.kernel('cast');
  if (source.size < target.size) throw new KernelError(kernel, `input has ${source.size} elements, output ${target.size}`);
  if (isHalfDType(source.dtype) && target.dtype !== 'float32') throw new KernelError(kernel, `${source.dtype} casts to float32 only, not ${target.dtype}`);
  const mode = source.dtype === target.dtype ? 2 : source.dtype === 'float32' ? 0 : 1;
  castWindowed(host, kernel, source, target, mode, isHalfDType(source.dtype) ? HALF_KIND[source.dtype] : 0);
}

export function gather(host: KernelHost, table: Storage, ids: Storage, out: Storage, nIds: number, rowLen: number): void {
  const rows = host.gpuStorageAnySize(table, 'gather', true);
  if (!rows.oversized) return core.gather(host, table, ids, out, nIds, rowLen);
  const kernel = host.kernel('gather');
  const idList = host.gpuStorage(ids, kernel);
  const target = host.gpuStorage(out, kernel);
  if (idList.dtype !== 'int32') throw new KernelError(kernel, 'ids must be int32');
  if (rows.dtype === 'int32') throw new KernelError(kernel, 'expects a float32 or 16-bit table, got int32');
  if (nIds * rowLen === 0) return;
  gatherWindowed(host, kernel, rows, idList, target, nIds, rowLen, isHalfDType(rows.dtype) ? HALF_KIND[rows.dtype] : 0);
}

export function matmul(host: KernelHost, a: Storage, b: Storage, out: Storage, args: MatmulArgs): void {
  const right = host.gpuStorageAnySize(b, 'matmul', true);
  if (!right.oversized) {
    core.matmul(host, a, b, out, args);
    return;
  }
  const kernel = host.kernel('matmul');
  if (right.dtype === 'int32') throw new KernelError(kernel, 'expects a float32 or 16-bit B, got int32');
  matmulWindowedB(host, kernel, a, right, out, args);
}

/** Units [first, first + count) of a storage one binding covers. */
interface Window {
  first: number;
  count: number;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * Splits `units` (rows or elements) into windows each operand can bind: a window of an operand whose unit takes
 * `unitBytes[i]` bytes starts at an offset aligned to the device's minStorageBufferOffsetAlignment and covers at most
 * maxBindingBytes. Windows are as large as those allow; a single unit too large for a binding is an error.
 */
function planWindows(host: KernelHost, kernel: string, units: number, unitBytes: readonly number[], what: string): Window[] {
  const align = host.bindingAlignment;
  let multiple = 1;
  let most = Infinity;
  for (const bytes of unitBytes) {
    const step = align / gcd(bytes, align);
    multiple = (multiple * step) / gcd(multiple, step);
    most = Math.min(most, Math.floor(host.maxBindingBytes / bytes));
  }
  const size = Math.floor(most / multiple) * multiple;
  if (size < 1) {
    throw new KernelError(kernel, `one ${what} (${Math.max(...unitBytes)} bytes, in steps of ${multiple} for the ${align}-byte offset alignment) `
      + `exceeds the ${host.maxBindingBytes}-byte binding limit`);
  }
  const windows: Window[] = [];
  for (let first = 0; first < units; first += size) windows.push({ first, count: Math.min(size, units - first) });
  return windows;
}

/** Elements [first, first + count) of `ref` as a window (16-bit storages: `first` even, two elements a word). */
function windowOf(ref: GPUStorageRef, first: number, count: number): GPUStorageRef {
  const half = isHalfDType(ref.dtype);
  if (half && first % 2 !== 0) throw new KernelError('window', `a 16-bit window must start at an even element, got ${first}`);
  if (first < 0 || count < 0 || first + count > ref.size) throw new KernelError('window', `elements [${first}, ${first + count}) outside a storage of ${ref.size}`);
  return { dtype: ref.dtype, size: count, buffer: ref.buffer, byteOffset: (ref.byteOffset ?? 0) + first * (half ? 2 : 4) };
}

const ELEMENTWISE = UNIFORM_LAYOUTS.elementwise;

/** The fill kernel over `words` 32-bit words of `target` with `bits` (zeroFill: any dtype; fill: by element). */
function fillWordsWindowed(host: KernelHost, kernel: string, target: GPUStorageRef, words: number, bits: number): void {
  const pipeline = host.pipeline('elementwise', 'fill', { WG: host.wg, OP: 0 }, kernel);
  const wordRef: GPUStorageRef = { dtype: 'float32', size: words, buffer: target.buffer, byteOffset: target.byteOffset };
  for (const w of planWindows(host, kernel, words, [4], 'word')) {
    host.launch(kernel, pipeline, (slot) => setParams(slot, ELEMENTWISE, { n: w.count, flag: bits }),
      [bindingOf(windowOf(wordRef, w.first, w.count))], host.groups1d(w.count, kernel));
  }
}

/** random() into a float32 storage larger than one binding: each window numbers its elements from its offset. */
function randomWindowed(host: KernelHost, kernel: string, target: GPUStorageRef, args: RandomArgs, key: number): void {
  const pipeline = host.pipeline('random', 'random', { WG: host.wg }, kernel);
  for (const w of planWindows(host, kernel, target.size, [4], 'element')) {
    host.launch(kernel, pipeline, (slot) => {
      setParams(slot, UNIFORM_LAYOUTS.random, { n: w.count, key, kind: args.kind === 'uniform' ? 0 : 1, offset: w.first, a: args.a, b: args.b });
    }, [bindingOf(windowOf(target, w.first, w.count))], host.groups1d(w.count, kernel));
  }
}

/**
 * cast() where either side is larger than one binding: the same element windows of both (a 16-bit source widens
 * with widen_half, other casts run cast_dtype with `mode`).
 */
function castWindowed(host: KernelHost, kernel: string, source: GPUStorageRef, target: GPUStorageRef, mode: number, halfKind: number): void {
  const half = isHalfDType(source.dtype);
  if (source.buffer === target.buffer) throw new KernelError(kernel, 'out must not alias x when a storage exceeds one binding');
  const pipeline = half
    ? host.pipeline('embedding', 'widen_half', { WG: host.wg, KIND: halfKind }, kernel)
    : host.pipeline('elementwise', 'cast_dtype', { WG: host.wg, OP: 0 }, kernel);
  for (const w of planWindows(host, kernel, target.size, [half ? 2 : 4, 4], 'element')) {
    host.launch(kernel, pipeline, (slot) => (half
      ? setParams(slot, UNIFORM_LAYOUTS.embedding, { nIds: 0, rowLen: 1, rows: 0, total: w.count })
      : setParams(slot, ELEMENTWISE, { n: w.count, flag: mode })),
    [bindingOf(windowOf(target, w.first, w.count)), bindingOf(windowOf(source, w.first, w.count))], host.groups1d(w.count, kernel));
  }
}

/**
 * gather() from a table larger than one binding: the output starts as NaN (what an out-of-range id gives), then
 * each window of table rows writes the output rows whose ids fall in it.
 */
function gatherWindowed(host: KernelHost, kernel: string, table: GPUStorageRef, ids: GPUStorageRef, target: GPUStorageRef,
  nIds: number, rowLen: number, halfKind: number): void {
  const total = nIds * rowLen;
  fillWordsWindowed(host, kernel, target, total, 0x7fc00000);
  const half = isHalfDType(table.dtype);
  const pipeline = half
    ? host.pipeline('embedding', 'gather_half', { WG: host.wg, KIND: halfKind }, kernel)
    : host.pipeline('embedding', 'gather', { WG: host.wg }, kernel);
  const rows = Math.floor(table.size / rowLen);
  for (const w of planWindows(host, kernel, rows, [rowLen * (half ? 2 : 4)], 'table row')) {
    host.launch(kernel, pipeline, (slot) => setParams(slot, UNIFORM_LAYOUTS.embedding, { nIds, rowLen, rows: w.count, total, base: w.first, windowed: 1 }),
      [target.buffer, bindingOf(windowOf(table, w.first * rowLen, w.count * rowLen)), ids.buffer], host.groups1d(total, kernel));
  }
}

/**
 * matmul with a B operand larger than one binding (a single matrix: strideB 0; a batch of contiguous untransposed A
 * rows folds into m). Each window is a block of B's rows:
 *   transB (B [n, k]: the tied head's logits): the window gives output columns [n0, n0 + nw), computed into
 *     [m, nw] and placed transposed into outᵀ [n, m] (where they are contiguous), which one copy turns into out;
 *   B [k, n] (the head's input gradient): the window covers k-slice [k0, k0 + kw); the matching columns of opA(a)
 *     are copied contiguous and the slices' products summed into out.
 * The extra copies move m·n or m·k floats against the product's m·n·k multiply-adds.
 */
function matmulWindowedB(host: KernelHost, kernel: string, a: Storage, b: GPUStorageRef, out: Storage, args: MatmulArgs): void {
  const { n, k, transA, transB } = args;
  let m = args.m;
  if (args.batch > 1) {
    if (args.strideB !== 0) throw new KernelError(kernel, 'a B operand larger than one binding must be one matrix shared by the batch (strideB 0)');
    if (transA || args.strideA !== m * k) throw new KernelError(kernel, 'a batched product with a B operand larger than one binding needs A as contiguous, untransposed rows');
    m *= args.batch;
  }
  if (m * n === 0) return;
  if (k === 0) throw new KernelError(kernel, 'k = 0 with a B operand larger than one binding');
  const left = host.gpuStorage(a, kernel);
  const target = host.gpuStorage(out, kernel);
  if (target.size < m * n) throw new KernelError(kernel, `output has ${target.size} elements, needs ${m * n}`);
  const elementBytes = isHalfDType(b.dtype) ? 2 : 4;
  const temps: Storage[] = [];
  const temp = (size: number) => {
    const t = host.alloc('float32', size);
    temps.push(t);
    return t;
  };
  const whole = { strides: [1], offset: 0 };
  if (transB) {
    const windows = planWindows(host, kernel, n, [k * elementBytes], 'row of B');
    const part = temp(m * windows[0].count);
    const outT = m === 1 ? out : temp(n * m);
    for (const w of windows) {
      matmulRefs(host, kernel, left, windowOf(b, w.first * k, w.count * k), host.gpuStorage(part, kernel),
        { batch: 1, m, n: w.count, k, transA, transB: true, strideA: 0, strideB: 0 });
      copy(host, part, { strides: [1, w.count], offset: 0 }, outT, w.first * m, [w.count, m]);
    }
    if (outT !== out) copy(host, outT, { strides: [1, m], offset: 0 }, out, 0, [m, n]);
  } else {
    const windows = planWindows(host, kernel, k, [n * elementBytes], 'row of B');
    const aPart = temp(m * windows[0].count);
    const part = windows.length > 1 ? temp(m * n) : null;
    for (const [i, w] of windows.entries()) {
      if (transA) copy(host, a, { strides: [1], offset: w.first * m }, aPart, 0, [w.count * m]);
      else copy(host, a, { strides: [k, 1], offset: w.first }, aPart, 0, [m, w.count]);
      const dest = i === 0 ? out : part!;
      matmulRefs(host, kernel, host.gpuStorage(aPart, kernel), windowOf(b, w.first * n, w.count * n), host.gpuStorage(dest, kernel),
        { batch: 1, m, n, k: w.count, transA, transB: false, strideA: 0, strideB: 0 });
      if (i > 0) binary(host, 'add', out, whole, part!, whole, out, [m * n]);
    }
  }
  for (const t of temps) host.free(t);
}
