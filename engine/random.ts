// Counter-based random numbers, bit-identical to src/backend/rng.ts (lowbias32 hash, u32 math).

@inline export function mix32(x: u32): u32 {
  x ^= x >>> 16;
  x *= 0x7feb352d;
  x ^= x >>> 15;
  x *= 0x846ca68b;
  x ^= x >>> 16;
  return x;
}

@inline function bits(key: u32, c: u32): u32 { return mix32(mix32(c) ^ key); }

export function rng_key(seed: u32): u32 { return mix32(seed); }

/** Raw 32-bit words bits(i) for i in [start, end) (for testing bit-exactness). */
export function random_bits(out: usize, key: u32, start: i32, end: i32): void {
  for (let i = start; i < end; i++) store<u32>(out + (<usize>i << 2), bits(key, <u32>i));
}

/** out[i] = a + (b - a) * u(i), u in [0, 1); computed in float64 exactly like rng.ts. */
export function random_uniform(out: usize, key: u32, a: f64, b: f64, start: i32, end: i32): void {
  const w = b - a;
  for (let i = start; i < end; i++) {
    const u = <f64>(bits(key, <u32>i) >>> 8) * 5.9604644775390625e-8;
    store<f32>(out + (<usize>i << 2), <f32>(a + w * u));
  }
}

/** out[i] = mean + std * Box-Muller(bits(2i), bits(2i+1)). */
export function random_normal(out: usize, key: u32, mean: f64, std: f64, start: i32, end: i32): void {
  for (let i = start; i < end; i++) {
    const c = <u32>i << 1;
    const u1 = <f64>((bits(key, c) >>> 8) + 1) * 5.9604644775390625e-8;
    const u2 = <f64>(bits(key, c + 1) >>> 8) * 5.9604644775390625e-8;
    const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    store<f32>(out + (<usize>i << 2), <f32>(mean + std * z));
  }
}
