// chunk_dot for Q4_K (after weights_q4_k.wgsl): 64 weights, the two sub-blocks 2p and 2p + 1 of a
// super-block that share 32 bytes of qs (low nibbles: sub-block 2p, high: 2p + 1). Scales and mins
// are decoded once per 32 weights (k4_pair_dot).
const CHUNK: u32 = 64u;

fn chunk_dot(row: u32, c: u32, xb: u32) -> f32 {
  let b = (row * (params.k / 256u) + c / 4u) * Q4_K_BLOCK_BYTES;
  let p = c & 3u;
  let qs = (b + 16u + p * 32u) >> 2u;
  let xk = xb + c * 64u;
  var dots = vec2f(0.0);
  var sums = vec2f(0.0);
  for (var i = 0u; i < 8u; i++) {
    let q = weights[qs + i];
    let x_lo = x4(xk + i * 4u);
    let x_hi = x4(xk + 32u + i * 4u);
    dots += vec2f(dot(vec4f(unpack_u8x4(q & 0x0f0f0f0fu)), x_lo), dot(vec4f(unpack_u8x4((q >> 4u) & 0x0f0f0f0fu)), x_hi));
    sums += vec2f(dot(x_lo, vec4f(1.0)), dot(x_hi, vec4f(1.0)));
  }
  return k4_pair_dot(b, p, dots, sums);
}
