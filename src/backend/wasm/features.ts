// What this JS engine's WebAssembly supports, probed by validating tiny modules (no instantiation).

// (module (func (result v128) (v128.const i32x4 0 0 0 0)))
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11,
]);

export interface WasmFeatures {
  simd: boolean;
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
  return { simd, threads };
}
