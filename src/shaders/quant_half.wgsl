// f16 scale fields decoded with integer operations. WGSL lets unpack2x16float flush subnormal
// halves to zero, but GGUF files hold subnormal scales and mins (tiny blocks), and llama.cpp
// converts them exactly; this conversion is exact on every device. Infinities and NaNs map as IEEE.
fn half_to_f32(bits: u32) -> f32 {
  let sign = (bits & 0x8000u) << 16u;
  let em = bits & 0x7fffu; // exponent and mantissa
  if (em >= 0x7c00u) {
    return bitcast<f32>(sign | 0x7f800000u | ((em & 0x3ffu) << 13u));
  }
  if (em >= 0x0400u) {
    return bitcast<f32>(sign | ((em << 13u) + 0x38000000u)); // rebias the exponent: 127 - 15
  }
  // Subnormal (or zero): mantissa * 2^-24, a normal f32 (or zero), computed exactly.
  return bitcast<f32>(sign | bitcast<u32>(f32(em) * 5.9604644775390625e-8));
}

// The two halves of a word, low half first.
fn half2_to_f32(word: u32) -> vec2f {
  return vec2f(half_to_f32(word & 0xffffu), half_to_f32(word >> 16u));
}
