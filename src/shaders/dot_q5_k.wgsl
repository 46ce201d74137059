// chunk_dot for Q5_K (after weights_q5_k.wgsl): like dot_q4_k.wgsl, 64 weights of sub-blocks 2p and
// 2p + 1, with the 5th bits from qh (bit s of qh[l] for weight l of sub-block s).
const CHUNK: u32 = 64u;

fn chunk_dot(row: u32, c: u32, xb: u32) -> f32 {
  let b = (row * (params.k / 256u) + c / 4u) * Q5_K_BLOCK_BYTES;
  let p = c & 3u;
  let qs = (b + 48u + p * 32u) >> 2u;
  let qh = (b + 16u) >> 2u;
  let xk = xb + c * 64u;
  var dots = vec2f(0.0);
  var sums = vec2f(0.0);
  for (var i = 0u; i < 8u; i++) {
    let q = weights[qs + i];
    let h = weights[qh + i] >> (2u * p);
    let x_lo = x4(xk + i * 4u);
    let x_hi = x4(xk + 32u + i * 4u);
    let q_lo = (q & 0x0f0f0f0fu) | ((h & 0x01010101u) << 4u);
    let q_hi = ((q >> 4u) & 0x0f0f0f0fu) | (((h >> 1u) & 0x01010101u) << 4u);
    dots += vec2f(dot(vec4f(unpack_u8x4(q_lo)), x_lo), dot(vec4f(unpack_u8x4(q_hi)), x_hi));
    sums += vec2f(dot(x_lo, vec4f(1.0)), dot(x_hi, vec4f(1.0)));
  }
  return k4_pair_dot(b, p, dots, sums);
}
