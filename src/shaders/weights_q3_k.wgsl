// Q3_K: super-blocks of 256 weights, 110 bytes (so only 2-byte aligned): 32 bytes hmask, 64 bytes
// qs, 12 bytes of packed 6-bit scales (one per 16 weights), f16 d. The low 2 bits of weight j are
// laid out as in Q2_K; its high bit is bit 4 * (j / 128) + (j % 128) / 32 of hmask[j % 32], and a
// clear high bit means q - 4. w = (d * (scale - 32)) * q.
//#include "quant_common.wgsl"
//#include "quant_half.wgsl"

const Q3_K_BLOCK_BYTES: u32 = 110u;

// Scale i: low 4 bits from nibble i / 8 of byte i % 8, high 2 bits from field i / 4 of byte 8 + i % 4.
fn q3_k_scale(s: u32, i: u32) -> i32 {
  let lo = (read_u8(s + (i & 7u)) >> ((i >> 3u) * 4u)) & 0xfu;
  let hi = (read_u8(s + 8u + (i & 3u)) >> ((i >> 2u) * 2u)) & 3u;
  return i32(lo | (hi << 4u)) - 32;
}

fn w4(row: u32, k: u32) -> vec4f {
  let b = (row * (params.k / 256u) + k / 256u) * Q3_K_BLOCK_BYTES;
  let d = half_to_f32(read_u16(b + 108u));
  let j = k & 255u;
  let hb = j >> 7u;
  let field = (j & 127u) >> 5u;
  let l = j & 31u;
  let q = (read_u32_at_even(b + 32u + hb * 32u + l) >> (field * 2u)) & 0x03030303u;
  let missing_high = (~read_u32_at_even(b + l) >> (hb * 4u + field)) & 0x01010101u;
  let dl = d * f32(q3_k_scale(b + 96u, j >> 4u));
  return dl * (vec4f(unpack_u8x4(q)) - 4.0 * vec4f(unpack_u8x4(missing_high)));
}

fn w1(row: u32, k: u32) -> f32 {
  return w4(row, k & ~3u)[k & 3u];
}
