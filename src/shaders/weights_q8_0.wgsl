// Q8_0: blocks of 32 weights, 34 bytes: f16 scale d, then 32 signed bytes q. w = d * q.
//#include "quant_common.wgsl"
//#include "quant_half.wgsl"

const Q8_0_BLOCK_BYTES: u32 = 34u;

fn w4(row: u32, k: u32) -> vec4f {
  let block = row * (params.k / 32u) + k / 32u;
  let b = block * Q8_0_BLOCK_BYTES;
  let d = half_to_f32(read_u16(b)); // exact, subnormal scales included
  return d * unpack_i8x4(read_u32_at_even(b + 2u + (k & 31u)));
}

fn w1(row: u32, k: u32) -> f32 {
  return w4(row, k & ~3u)[k & 3u];
}
