// One invocation's share of a weight row's dot product, shared by matvec_common.wgsl and
// matvec_indexed.wgsl: needs THREADS_PER_ROW, the `dot` slot's chunk_dot and CHUNK, w1, x1 and params.k.

// This invocation's part of sum_k W[row, k] * x[xb + k]: lane is its index among the row's invocations.
fn row_dot(row: u32, lane: u32, xb: u32) -> f32 {
  var acc = 0.0;
  let chunks = params.k / CHUNK;
  for (var c = lane; c < chunks; c += THREADS_PER_ROW) {
    acc += chunk_dot(row, c, xb);
  }
  // Float formats may have rows that are not a whole number of chunks.
  for (var k = chunks * CHUNK + lane; k < params.k; k += THREADS_PER_ROW) {
    acc += w1(row, k) * x1(xb + k);
  }
  return acc;
}
