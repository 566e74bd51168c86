// A bfloat16 / float16 pattern (the low 16 bits of h) → f32, exactly, in integer ops: kind 1 bfloat16 (a shift),
// kind 2 float16 (normals rebias the exponent, Inf/NaN keep their payload, subnormals are m·2^-24). Integer ops
// rather than unpack2x16float so every adapter gives the same bits (subnormal and NaN handling of the builtin
// are left to the implementation). Must equal src/backend/half.ts and engine/half.ts.
fn widenHalf(kind: u32, h: u32) -> f32 {
  if (kind == 1u) { return bitcast<f32>(h << 16u); }
  let sign = (h & 0x8000u) << 16u;
  let em = h & 0x7fffu;
  if (em >= 0x7c00u) { return bitcast<f32>(sign | 0x7f800000u | ((em & 0x3ffu) << 13u)); }
  if (em >= 0x0400u) { return bitcast<f32>(sign | ((em << 13u) + 0x38000000u)); }
  return bitcast<f32>(sign | bitcast<u32>(f32(em) * 5.9604644775390625e-8));
}

// Element i of a 16-bit array packed two per u32 word (element 2j in the low half of word j).
fn halfBits(words: u32, i: u32) -> u32 {
  return (words >> ((i & 1u) * 16u)) & 0xffffu;
}
