// Counter-based random numbers, bit-identical on every backend (WGSL, AssemblyScript and TypeScript
// implement exactly these integer steps), so a seeded init gives the same weights on WebGPU and WASM.
//
//   mix(x)      = lowbias32 integer hash (bijective on u32)
//   key         = mix(seed)
//   bits(c)     = mix(mix(c) ^ key)
//   uniform(i)  = (bits(i) >>> 8) * 2^-24                        in [0, 1)
//   normal(i)   = sqrt(-2 ln u1) * cos(2π u2),  u1 = ((bits(2i) >>> 8) + 1) * 2^-24,  u2 = (bits(2i+1) >>> 8) * 2^-24

export function mix32(x: number): number {
  x >>>= 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

export function randomBits(key: number, counter: number): number {
  return mix32(mix32(counter >>> 0) ^ key) >>> 0;
}

export function uniformAt(key: number, i: number): number {
  return (randomBits(key, i) >>> 8) * 5.9604644775390625e-8;
}

export function normalAt(key: number, i: number): number {
  const u1 = ((randomBits(key, 2 * i) >>> 8) + 1) * 5.9604644775390625e-8;
  const u2 = (randomBits(key, 2 * i + 1) >>> 8) * 5.9604644775390625e-8;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}
