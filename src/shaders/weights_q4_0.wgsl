// Q4_0: blocks of 32 weights, 18 bytes: f16 scale d, then 16 bytes qs. Weight j < 16 is the low
// nibble of qs[j], weight j >= 16 the high nibble of qs[j - 16]; w = d * (q - 8).
//#include "quant_common.wgsl"
//#include "quant_half.wgsl"

const Q4_0_BLOCK_BYTES: u32 = 18u;

fn w4(row: u32, k: u32) -> vec4f {
  let b = (row * (params.k / 32u) + k / 32u) * Q4_0_BLOCK_BYTES;
  let d = half_to_f32(read_u16(b));
  let j = k & 31u;
  // The 4 weights are nibbles of 4 consecutive bytes: one (2-byte aligned) word read.
  let q = (read_u32_at_even(b + 2u + (j & 15u)) >> ((j >> 4u) * 4u)) & 0x0f0f0f0fu;
  return (vec4f(unpack_u8x4(q)) - 8.0) * d;
}

fn w1(row: u32, k: u32) -> f32 {
  return w4(row, k & ~3u)[k & 3u];
}
