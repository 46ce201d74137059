// chunk_dot for Q4_0 (after weights_q4_0.wgsl): one 18-byte block of 32 weights, scale read once.
// Byte j of qs holds weight j (low nibble) and weight j + 16 (high nibble).
const CHUNK: u32 = 32u;

fn chunk_dot(row: u32, c: u32, xb: u32) -> f32 {
  let b = (row * (params.k / 32u) + c) * Q4_0_BLOCK_BYTES;
  let xk = xb + c * 32u;
  var acc = 0.0;
  for (var i = 0u; i < 16u; i += 4u) {
    let q = read_u32_at_even(b + 2u + i);
    acc += dot(vec4f(unpack_u8x4(q & 0x0f0f0f0fu)) - 8.0, x4(xk + i));
    acc += dot(vec4f(unpack_u8x4((q >> 4u) & 0x0f0f0f0fu)) - 8.0, x4(xk + 16u + i));
  }
  return half_to_f32(read_u16(b)) * acc;
}
