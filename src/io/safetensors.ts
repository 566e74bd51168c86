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

export interface EncodeOptions {
  /** How float tensors are stored (default F32); F16 and BF16 round to nearest even. Int32 tensors stay I32. */
  floatDType?: 'F32' | 'F16' | 'BF16';
}

/** Serialises tensors in the order given, 8-byte aligned like the reference implementation. */
export function encodeSafetensors(tensors: ReadonlyMap<string, NamedArray>, metadata: Record<string, string> = {}, opts: EncodeOptions = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  const floatDType = opts.floatDType ?? 'F32';
  const payloads: Uint8Array[] = [];
  let offset = 0;
  for (const [name, array] of tensors) {
    const count = array.shape.reduce((product, size) => product * size, 1);
    if (count !== array.data.length) throw new SafetensorsError(`tensor '${name}': shape [${array.shape.join(', ')}] holds ${count} values, data has ${array.data.length}`);
    const dtype = array.data instanceof Int32Array ? 'I32' : floatDType;
    const payload = dtype === 'F16' || dtype === 'BF16' ? encodeHalf(array.data as Float32Array, dtype) : new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength);
    payloads.push(payload);
    const bytes = payload.byteLength;
    header[name] = { dtype, shape: [...array.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const payload of payloads) {
    out.set(payload, pos);
    pos += payload.byteLength;
  }
  return out;
}

/** float32 values as little-endian F16 or BF16 bytes, rounded to nearest even. */
function encodeHalf(values: Float32Array, dtype: 'F16' | 'BF16'): Uint8Array {
  const bits = new Uint32Array(Float32Array.from(values).buffer);
  const half = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) half[i] = dtype === 'BF16' ? f32BitsToBf16(bits[i]) : f32BitsToF16(bits[i]);
  return new Uint8Array(half.buffer);
}

function f32BitsToBf16(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff; // NaN stays a (quiet) NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → ±Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → ±0
    mant |= 0x800000; // subnormal half: shift the implicit bit in, round to nearest even
    const shift = 14 - e;
    const rounded = (mant >>> shift) + (((mant >>> (shift - 1)) & 1) && ((mant & ((1 << (shift - 1)) - 1)) || ((mant >>> shift) & 1)) ? 1 : 0);
    return sign | rounded;
  }
  const rest = mant & 0x1fff;
  let out = (e << 10) | (mant >>> 13);
  if (rest > 0x1000 || (rest === 0x1000 && (out & 1))) out++; // may carry into the exponent, which is right
  return sign | out;
}

export interface DecodedSafetensors {
  tensors: Map<string, NamedArray>;
  metadata: Record<string, string>;
}

/** One tensor's header entry: data_offsets made absolute (bytes from the start of the file). */
export interface TensorEntry {
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
  /** Bytes the whole file must have (8 + header + data). */
  fileSize: number;
}

/**
 * The header length stored in the first 8 bytes (so a reader can fetch just 8 + that many bytes), checked
 * against the whole file's size.
 */
export function safetensorsHeaderLength(prefix: Uint8Array, fileSize = prefix.length): number {
  if (fileSize < 8 || prefix.length < 8) throw new SafetensorsError(`file of ${fileSize} bytes is too short for a header (truncated?)`);
  const stored = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (stored > BigInt(fileSize - 8)) throw new SafetensorsError(`header length ${stored} exceeds the file size ${fileSize} (truncated or not a safetensors file)`);
  return Number(stored);
}

/**
 * Parses and validates the header from the file's first bytes (at least 8 + header length of them); `fileSize`
 * is the whole file's size. Every problem names the tensor it concerns.
 */
export function readSafetensorsHeader(prefix: Uint8Array, fileSize = prefix.length): SafetensorsHeader {
  const headerLen = safetensorsHeaderLength(prefix, fileSize);
  if (prefix.length < 8 + headerLen) throw new SafetensorsError(`need the first ${8 + headerLen} bytes to read the header, got ${prefix.length}`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(prefix.subarray(8, 8 + headerLen)));
  } catch (err) {
    throw new SafetensorsError(`header is not valid JSON (${(err as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw new SafetensorsError('header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = fileSize - dataStart;
  const tensors = new Map<string, TensorEntry>();
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
    tensors.set(name, { dtype, shape: info.shape, begin: dataStart + begin, end: dataStart + end });
  }
  spans.sort((left, right) => left[0] - right[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i][0] < spans[i - 1][1]) throw new SafetensorsError(`tensors '${spans[i - 1][2]}' and '${spans[i][2]}' overlap`);
  }
  return { tensors, metadata, fileSize };
}

/** One tensor's values from the whole file's bytes (F16 / BF16 widened to float32 exactly). */
export function decodeTensor(bytes: Uint8Array, entry: TensorEntry): NamedArray {
  const count = entry.shape.reduce((product, size) => product * size, 1);
  return { shape: entry.shape, data: decodeData(bytes, entry.begin, count, entry.dtype) };
}

/** Parses and validates a safetensors file; every problem names the tensor it concerns. */
export function decodeSafetensors(bytes: Uint8Array): DecodedSafetensors {
  const header = readSafetensorsHeader(bytes);
  const tensors = new Map<string, NamedArray>();
  for (const [name, entry] of header.tensors) tensors.set(name, decodeTensor(bytes, entry));
  return { tensors, metadata: header.metadata };
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
