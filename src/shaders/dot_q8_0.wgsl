// chunk_dot for Q8_0 (after weights_q8_0.wgsl): one 34-byte block of 32 weights, scale read once.
// The 32 quants start 2 bytes into the block, so they are word-aligned in every other block; in
// the others each word of quants is the top half of one stored word and the bottom half of the
// next. Nine loads either way, instead of two per word.
const CHUNK: u32 = 32u;

fn chunk_dot(row: u32, c: u32, xb: u32) -> f32 {
  let b = (row * (params.k / 32u) + c) * Q8_0_BLOCK_BYTES;
  let first = (b + 2u) >> 2u;
  let aligned = ((b + 2u) & 2u) == 0u;
  let xk = xb + c * 32u;
  var lo = weights[first];
  var acc = 0.0;
  for (var i = 0u; i < 8u; i++) {
    // Only unaligned blocks use a ninth word, and they always have one; the clamp keeps an aligned
    // block at the very end of the buffer from reading past it.
    let hi = weights[min(first + i + 1u, arrayLength(&weights) - 1u)];
    acc += dot(unpack_i8x4(select((lo >> 16u) | (hi << 16u), lo, aligned)), x4(xk + i * 4u));
    lo = hi;
  }
  return half_to_f32(read_u16(b)) * acc;
}
