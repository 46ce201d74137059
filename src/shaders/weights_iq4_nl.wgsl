// IQ4_NL: blocks of 32 weights, 18 bytes: f16 scale d, then 16 bytes of nibbles laid out as in
// Q4_0, each an index into 16 non-linear levels. w = d * level[q].
//#include "quant_common.wgsl"
//#include "quant_half.wgsl"
//#include "quant_iq4_common.wgsl"

const IQ4_NL_BLOCK_BYTES: u32 = 18u;

fn w4(row: u32, k: u32) -> vec4f {
  let b = (row * (params.k / 32u) + k / 32u) * IQ4_NL_BLOCK_BYTES;
  let d = half_to_f32(read_u16(b));
  let j = k & 31u;
  let q = (read_u32_at_even(b + 2u + (j & 15u)) >> ((j >> 4u) * 4u)) & 0x0f0f0f0fu;
  return d * iq4_levels4(q);
}

fn w1(row: u32, k: u32) -> f32 {
  return w4(row, k & ~3u)[k & 3u];
}
