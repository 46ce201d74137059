// IQ4_XS: super-blocks of 256 weights, 136 bytes: f16 d, u16 scales_h, 4 bytes scales_l, 128 bytes
// qs. Eight sub-blocks of 32 have a 6-bit scale ls (low 4 bits a nibble of scales_l, high 2 bits
// from scales_h); their nibbles are laid out as in IQ4_NL. w = (d * (ls - 32)) * level[q].
//#include "quant_common.wgsl"
//#include "quant_half.wgsl"
//#include "quant_iq4_common.wgsl"

const IQ4_XS_BLOCK_BYTES: u32 = 136u;

fn w4(row: u32, k: u32) -> vec4f {
  let b = (row * (params.k / 256u) + k / 256u) * IQ4_XS_BLOCK_BYTES;
  let word = b >> 2u; // blocks are 4-byte aligned
  let head = weights[word]; // d | scales_h << 16
  let d = half_to_f32(head);
  let j = k & 255u;
  let ib = j >> 5u;
  let lo = (weights[word + 1u] >> (ib * 4u)) & 0xfu; // scales_l nibble ib
  let hi = (head >> (16u + 2u * ib)) & 3u;
  let dl = d * f32(i32(lo | (hi << 4u)) - 32);
  let l = j & 31u;
  let q = (weights[word + 2u + ib * 4u + ((l & 15u) >> 2u)] >> ((l >> 4u) * 4u)) & 0x0f0f0f0fu;
  return dl * iq4_levels4(q);
}

fn w1(row: u32, k: u32) -> f32 {
  return w4(row, k & ~3u)[k & 3u];
}
