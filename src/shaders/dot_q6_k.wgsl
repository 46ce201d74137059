// chunk_dot for Q6_K (after weights_q6_k.wgsl): 64 weights, positions l = 16g .. 16g + 15 of the
// four quarters of 128-weight half h, where c = 4 * super-block + 2h + g. Those 16 positions share
// one scale per quarter, so the four scales are read once.
const CHUNK: u32 = 64u;

fn chunk_dot(row: u32, c: u32, xb: u32) -> f32 {
  let b = (row * (params.k / 256u) + c / 4u) * Q6_K_BLOCK_BYTES; // 2-byte aligned
  let h = (c >> 1u) & 1u;
  let g = c & 1u;
  let ql = b + h * 64u + g * 16u;
  let qh = b + 128u + h * 32u + g * 16u;
  let xk = xb + (c / 4u) * 256u + h * 128u + g * 16u;
  var dots = vec4f(0.0);
  for (var i = 0u; i < 16u; i += 4u) {
    let lo_a = read_u32_at_even(ql + i);       // quarters 0 (low nibbles) and 2 (high)
    let lo_b = read_u32_at_even(ql + 32u + i); // quarters 1 and 3
    let hi = read_u32_at_even(qh + i);          // 2 bits per quarter
    let q0 = (lo_a & 0x0f0f0f0fu) | ((hi & 0x03030303u) << 4u);
    let q1 = (lo_b & 0x0f0f0f0fu) | (((hi >> 2u) & 0x03030303u) << 4u);
    let q2 = ((lo_a >> 4u) & 0x0f0f0f0fu) | (((hi >> 4u) & 0x03030303u) << 4u);
    let q3 = ((lo_b >> 4u) & 0x0f0f0f0fu) | (((hi >> 6u) & 0x03030303u) << 4u);
    dots += vec4f(
      dot(vec4f(unpack_u8x4(q0)) - 32.0, x4(xk + i)),
      dot(vec4f(unpack_u8x4(q1)) - 32.0, x4(xk + 32u + i)),
      dot(vec4f(unpack_u8x4(q2)) - 32.0, x4(xk + 64u + i)),
      dot(vec4f(unpack_u8x4(q3)) - 32.0, x4(xk + 96u + i)),
    );
  }
  let s = b + 192u + h * 8u + g; // scale of quarter j at s + 2j
  let scales = vec4f(vec4i(
    bitcast<i32>(read_u8(s) << 24u) >> 24u,
    bitcast<i32>(read_u8(s + 2u) << 24u) >> 24u,
    bitcast<i32>(read_u8(s + 4u) << 24u) >> 24u,
    bitcast<i32>(read_u8(s + 6u) << 24u) >> 24u,
  ));
  return half_to_f32(read_u16(b + 208u)) * dot(scales, dots);
}
