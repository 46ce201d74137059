// Q2_K: super-blocks of 256 weights, 84 bytes: 16 bytes scales (low nibble scale, high nibble
// min, one per 16 weights), 64 bytes qs, f16 d, f16 dmin. Weight j of a 128-weight half h is the
// 2-bit field (j % 128) / 32 of byte qs[32 * h + j % 32]. w = (d * sc) * q - dmin * m.
//#include "quant_common.wgsl"
//#include "quant_half.wgsl"

const Q2_K_BLOCK_BYTES: u32 = 84u;

fn w4(row: u32, k: u32) -> vec4f {
  let b = (row * (params.k / 256u) + k / 256u) * Q2_K_BLOCK_BYTES;
  let word = b >> 2u; // blocks are 4-byte aligned
  let dm = half2_to_f32(weights[word + 20u]); // d, dmin at byte 80
  let j = k & 255u;
  let sc = read_u8(b + (j >> 4u));
  let q = (weights[word + 4u + (j >> 7u) * 8u + ((j & 31u) >> 2u)] >> (((j & 127u) >> 5u) * 2u)) & 0x03030303u;
  // (d * sc) * q is exact, so fusing the subtraction cannot change the rounding.
  return (dm.x * f32(sc & 0xfu)) * vec4f(unpack_u8x4(q)) - dm.y * f32(sc >> 4u);
}

fn w1(row: u32, k: u32) -> f32 {
  return w4(row, k & ~3u)[k & 3u];
}
