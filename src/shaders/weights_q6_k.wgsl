// Q6_K: super-blocks of 256 weights, 210 bytes (so only 2-byte aligned): 128 bytes ql (low 4 bits),
// 64 bytes qh (high 2 bits), 16 signed 8-bit scales (one per 16 weights), f16 d. In 128-weight half
// h, quarter g, position l < 32: low bits are nibble g / 2 of ql[64 h + 32 (g % 2) + l], high bits
// field g of qh[32 h + l]. w = (d * scale) * (q - 32).
//#include "quant_common.wgsl"
//#include "quant_half.wgsl"

const Q6_K_BLOCK_BYTES: u32 = 210u;

fn w4(row: u32, k: u32) -> vec4f {
  let b = (row * (params.k / 256u) + k / 256u) * Q6_K_BLOCK_BYTES;
  let d = half_to_f32(read_u16(b + 208u));
  let j = k & 255u;
  let hb = j >> 7u;
  let g = (j & 127u) >> 5u;
  let l = j & 31u;
  let lo = (read_u32_at_even(b + hb * 64u + (g & 1u) * 32u + l) >> ((g >> 1u) * 4u)) & 0x0f0f0f0fu;
  let hi = (read_u32_at_even(b + 128u + hb * 32u + l) >> (g * 2u)) & 0x03030303u;
  let scale = bitcast<i32>(read_u8(b + 192u + (j >> 4u)) << 24u) >> 24u;
  return (d * f32(scale)) * (vec4f(unpack_u8x4(lo | (hi << 4u))) - 32.0);
}

fn w1(row: u32, k: u32) -> f32 {
  return w4(row, k & ~3u)[k & 3u];
}
