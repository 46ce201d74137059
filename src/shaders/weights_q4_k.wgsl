// Q4_K: super-blocks of 256 weights, 144 bytes: f16 d, f16 dmin, 12 bytes of packed 6-bit scales
// and mins (8 sub-blocks of 32), 128 bytes qs. Sub-block s uses bytes qs[32 * (s / 2) ..] and their
// low nibbles for even s, high nibbles for odd s. w = (d * sc) * q - dmin * m.
//#include "quant_common.wgsl"
//#include "quant_half.wgsl"
//#include "quant_k_common.wgsl"

const Q4_K_BLOCK_BYTES: u32 = 144u;

fn w4(row: u32, k: u32) -> vec4f {
  let b = (row * (params.k / 256u) + k / 256u) * Q4_K_BLOCK_BYTES;
  let dm = half2_to_f32(weights[b >> 2u]); // blocks are 4-byte aligned
  let j = k & 255u;
  let s = j >> 5u;
  let sm = k4_scale_min(b + 4u, s);
  let q = (weights[(b + 16u + (s >> 1u) * 32u + (j & 31u)) >> 2u] >> ((s & 1u) * 4u)) & 0x0f0f0f0fu;
  // (d * sc) * q is exact, so fusing the subtraction cannot change the rounding.
  return (dm.x * f32(sm.x)) * vec4f(unpack_u8x4(q)) - dm.y * f32(sm.y);
}

fn w1(row: u32, k: u32) -> f32 {
  return w4(row, k & ~3u)[k & 3u];
}
