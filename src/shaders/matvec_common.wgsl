// Shared by matvec.wgsl and matvec_subgroup.wgsl: the bindings (matmul_io.wgsl) and one
// invocation's share of a row's dot product. THREADS_PER_ROW invocations share a row; each takes
// every THREADS_PER_ROW-th chunk of CHUNK weights through `chunk_dot` (the `dot` slot, written for
// its weight format: one whole quantization block per call, so its scales are decoded once).

//#include "matmul_io.wgsl"

override THREADS_PER_ROW: u32 = 16u; // power of two

//#include dot

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
