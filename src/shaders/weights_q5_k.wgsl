// Q5_K: super-blocks of 256 weights, 176 bytes: f16 d, f16 dmin, 12 bytes of packed 6-bit scales
// and mins, 32 bytes qh, 128 bytes qs. The low 4 bits are laid out as in Q4_K; the 5th bit of
// weight l of sub-block s is bit s of qh[l]. w = (d * sc) * q - dmin * m.
//#include "quant_common.wgsl"
//#include "quant_half.wgsl"
//#include "quant_k_common.wgsl"

const Q5_K_BLOCK_BYTES: u32 = 176u;

fn w4(row: u32, k: u32) -> vec4f {
  let b = (row * (params.k / 256u) + k / 256u) * Q5_K_BLOCK_BYTES;
  let dm = half2_to_f32(weights[b >> 2u]); // blocks are 4-byte aligned
  let j = k & 255u;
  let s = j >> 5u;
  let l = j & 31u;
  let sm = k4_scale_min(b + 4u, s);
  let lo = (weights[(b + 48u + (s >> 1u) * 32u + l) >> 2u] >> ((s & 1u) * 4u)) & 0x0f0f0f0fu;
  let hi = (weights[(b + 16u + l) >> 2u] >> s) & 0x01010101u;
  let q = lo | (hi << 4u);
  return (dm.x * f32(sm.x)) * vec4f(unpack_u8x4(q)) - dm.y * f32(sm.y);
}

fn w1(row: u32, k: u32) -> f32 {
  return w4(row, k & ~3u)[k & 3u];
}
