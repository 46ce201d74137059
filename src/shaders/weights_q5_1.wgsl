// Q5_1: blocks of 32 weights, 24 bytes: f16 scale d, f16 min m, 4 bytes qh, 16 bytes qs (bits laid
// out as in Q5_0). w = d * q + m.
//#include "quant_common.wgsl"
//#include "quant_half.wgsl"

const Q5_1_BLOCK_BYTES: u32 = 24u;

// Bits 0..3 of h moved to bit 4 of bytes 0..3 (the high bit of four 5-bit quants).
fn spread_high_bits(h: u32) -> u32 {
  return ((h * 0x00204081u) & 0x01010101u) << 4u;
}

fn w4(row: u32, k: u32) -> vec4f {
  let b = (row * (params.k / 32u) + k / 32u) * Q5_1_BLOCK_BYTES;
  let word = b >> 2u; // blocks are 4-byte aligned
  let dm = half2_to_f32(weights[word]);
  let qh = weights[word + 1u];
  let j = k & 31u;
  let lo = (weights[(b + 8u + (j & 15u)) >> 2u] >> ((j >> 4u) * 4u)) & 0x0f0f0f0fu;
  let q = lo | spread_high_bits((qh >> j) & 0xfu);
  // d * q is exact (5-bit by 11-bit), so a fused multiply-add rounds like llama.cpp's x*d + m.
  return vec4f(unpack_u8x4(q)) * dm.x + dm.y;
}

fn w1(row: u32, k: u32) -> f32 {
  return w4(row, k & ~3u)[k & 3u];
}
