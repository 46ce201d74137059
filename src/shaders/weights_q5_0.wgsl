// Q5_0: blocks of 32 weights, 22 bytes: f16 scale d, 4 bytes qh, 16 bytes qs. The low 4 bits of
// weight j are laid out as in Q4_0; its 5th bit is bit j of qh (little-endian u32). w = d * (q - 16).
//#include "quant_common.wgsl"
//#include "quant_half.wgsl"

const Q5_0_BLOCK_BYTES: u32 = 22u;

// Bits 0..3 of h moved to bit 4 of bytes 0..3 (the high bit of four 5-bit quants).
fn spread_high_bits(h: u32) -> u32 {
  return ((h * 0x00204081u) & 0x01010101u) << 4u;
}

fn w4(row: u32, k: u32) -> vec4f {
  let b = (row * (params.k / 32u) + k / 32u) * Q5_0_BLOCK_BYTES;
  let d = half_to_f32(read_u16(b));
  let j = k & 31u;
  let qh = read_u32_at_even(b + 2u);
  let lo = (read_u32_at_even(b + 6u + (j & 15u)) >> ((j >> 4u) * 4u)) & 0x0f0f0f0fu;
  let q = lo | spread_high_bits((qh >> j) & 0xfu);
  return (vec4f(unpack_u8x4(q)) - 16.0) * d;
}

fn w1(row: u32, k: u32) -> f32 {
  return w4(row, k & ~3u)[k & 3u];
}
