// The packed 6-bit scales and mins of Q4_K and Q5_K (llama.cpp's get_scale_min_k4): 12 bytes at
// byte offset `s` hold 8 (scale, min) pairs. Pairs 0-3 are the low 6 bits of bytes 0-3 (scales)
// and 4-7 (mins); pairs 4-7 take their low 4 bits from the nibbles of bytes 8-11 and their high 2
// bits from the top bits of bytes 0-3 (scales) and 4-7 (mins). Returns (scale, min) for sub-block j.
fn k4_scale_min(s: u32, j: u32) -> vec2u {
  if (j < 4u) {
    return vec2u(read_u8(s + j) & 63u, read_u8(s + j + 4u) & 63u);
  }
  let packed = read_u8(s + j + 4u);
  return vec2u((packed & 0xfu) | ((read_u8(s + j - 4u) >> 6u) << 4u), (packed >> 4u) | ((read_u8(s + j) >> 6u) << 4u));
}

// A Q4_K or Q5_K super-block at byte b, sub-blocks 2p and 2p + 1 (sharing their qs bytes): the dot
// product with x given dot(q, x) and sum(x) of each sub-block, (d * sc) * dot - (dmin * m) * sum.
fn k4_pair_dot(b: u32, p: u32, dots: vec2f, sums: vec2f) -> f32 {
  let dm = half2_to_f32(weights[b >> 2u]); // blocks are 4-byte aligned
  let first = vec2f(k4_scale_min(b + 4u, 2u * p));
  let second = vec2f(k4_scale_min(b + 4u, 2u * p + 1u));
  return dm.x * dot(vec2f(first.x, second.x), dots) - dm.y * dot(vec2f(first.y, second.y), sums);
}
