// Q4_1: blocks of 32 weights, 20 bytes: f16 scale d, f16 min m, then 16 bytes qs (nibbles laid out
// as in Q4_0). w = d * q + m.
//#include "quant_common.wgsl"
//#include "quant_half.wgsl"

const Q4_1_BLOCK_BYTES: u32 = 20u;

fn w4(row: u32, k: u32) -> vec4f {
  let b = (row * (params.k / 32u) + k / 32u) * Q4_1_BLOCK_BYTES;
  let dm = half2_to_f32(weights[b >> 2u]); // d, m: blocks are 4-byte aligned
  let j = k & 31u;
  let q = (weights[(b + 4u + (j & 15u)) >> 2u] >> ((j >> 4u) * 4u)) & 0x0f0f0f0fu;
  // d * q is exact (4-bit by 11-bit), so a fused multiply-add rounds like llama.cpp's x*d + m.
  return vec4f(unpack_u8x4(q)) * dm.x + dm.y;
}

fn w1(row: u32, k: u32) -> f32 {
  return w4(row, k & ~3u)[k & 3u];
}
