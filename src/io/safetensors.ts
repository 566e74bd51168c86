// The safetensors format (Hugging Face): 8-byte little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}, then the raw
// little-endian tensor bytes. Pure byte-level code (no fs), shared by Node and browsers.

export type SafetensorsDType = 'F32' | 'F16' | 'BF16' | 'I32';

export interface NamedArray {
  shape: readonly number[];
  /** Float32Array for float tensors (F16/BF16 are widened on load), Int32Array for I32. */
  data: Float32Array | Int32Array;
}

export class SafetensorsError extends Error {
  constructor(message: string) {
    super(`safetensors: ${message}`);
    this.name = 'SafetensorsError';
  }
}

const BYTES: Record<SafetensorsDType, number> = { F32: 4, F16: 2, BF16: 2, I32: 4 };

/** Serialises tensors (F32 / I32) in the order given, 8-byte aligned like the reference implementation. */
export function encodeSafetensors(tensors: ReadonlyMap<string, NamedArray>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, array] of tensors) {
    const count = array.shape.reduce((product, size) => product * size, 1);
    if (count !== array.data.length) throw new SafetensorsError(`tensor '${name}': shape [${array.shape.join(', ')}] holds ${count} values, data has ${array.data.length}`);
    const bytes = array.data.byteLength;
    header[name] = { dtype: array.data instanceof Int32Array ? 'I32' : 'F32', shape: [...array.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const array of tensors.values()) {
    out.set(new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength), pos);
    pos += array.data.byteLength;
  }
  return out;
}

export interface DecodedSafetensors {
  tensors: Map<string, NamedArray>;
  metadata: Record<string, string>;
}

/** Parses and validates a safetensors file; every problem names the tensor it concerns. */
export function decodeSafetensors(bytes: Uint8Array): DecodedSafetensors {
  if (bytes.length < 8) throw new SafetensorsError(`file of ${bytes.length} bytes is too short for a header (truncated?)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const storedHeaderLen = view.getBigUint64(0, true);
  if (storedHeaderLen > BigInt(bytes.length - 8)) throw new SafetensorsError(`header length ${storedHeaderLen} exceeds the file size ${bytes.length} (truncated or not a safetensors file)`);
  const headerLen = Number(storedHeaderLen);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen)));
  } catch (err) {
    throw new SafetensorsError(`header is not valid JSON (${(err as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw new SafetensorsError('header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const tensors = new Map<string, NamedArray>();
  let metadata: Record<string, string> = {};
  const spans: [number, number, string][] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const info = entry as { dtype?: string; shape?: number[]; data_offsets?: number[] };
    const dtype = info?.dtype as SafetensorsDType;
    if (!(dtype in BYTES)) throw new SafetensorsError(`tensor '${name}': unsupported dtype ${JSON.stringify(info?.dtype)} (F32, F16, BF16, I32)`);
    if (!Array.isArray(info.shape) || info.shape.some((size) => !Number.isInteger(size) || size < 0)) throw new SafetensorsError(`tensor '${name}': bad shape ${JSON.stringify(info.shape)}`);
    const [begin, end] = info.data_offsets ?? [];
    if (!Number.isInteger(begin) || !Number.isInteger(end) || begin < 0 || end < begin) throw new SafetensorsError(`tensor '${name}': bad data_offsets ${JSON.stringify(info.data_offsets)}`);
    if (end > dataLen) throw new SafetensorsError(`tensor '${name}': data ends at byte ${end} but the file holds ${dataLen} data bytes (truncated?)`);
    const count = info.shape.reduce((product, size) => product * size, 1);
    if (end - begin !== count * BYTES[dtype]) throw new SafetensorsError(`tensor '${name}': ${end - begin} bytes for shape [${info.shape.join(', ')}] of ${dtype}`);
    spans.push([begin, end, name]);
    tensors.set(name, { shape: info.shape, data: decodeData(bytes, dataStart + begin, count, dtype) });
  }
  spans.sort((left, right) => left[0] - right[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i][0] < spans[i - 1][1]) throw new SafetensorsError(`tensors '${spans[i - 1][2]}' and '${spans[i][2]}' overlap`);
  }
  return { tensors, metadata };
}

function decodeData(bytes: Uint8Array, at: number, count: number, dtype: SafetensorsDType): Float32Array | Int32Array {
  const copy = bytes.slice(at, at + count * BYTES[dtype]); // aligned, owned
  if (dtype === 'F32') return new Float32Array(copy.buffer);
  if (dtype === 'I32') return new Int32Array(copy.buffer);
  const half = new Uint16Array(copy.buffer);
  const out = new Float32Array(count);
  const u32 = new Uint32Array(out.buffer);
  for (let i = 0; i < count; i++) u32[i] = dtype === 'BF16' ? half[i] << 16 : f16ToF32Bits(half[i]);
  return out;
}

function f16ToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return sign | 0x7f800000 | (mant << 13);
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // Subnormal half: normalise.
  let e = -1;
  let m = mant;
  do { m <<= 1; e++; } while ((m & 0x400) === 0);
  return (sign | ((112 - e) << 23) | ((m & 0x3ff) << 13)) >>> 0;
}
