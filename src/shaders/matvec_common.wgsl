// Shared by matvec.wgsl and matvec_subgroup.wgsl: the parameters and bindings, and one
// invocation's share of a row's dot product. THREADS_PER_ROW invocations share a row; each takes
// every THREADS_PER_ROW-th chunk of CHUNK weights through `chunk_dot` (the `dot` slot, written for
// its weight format: one whole quantization block per call, so its scales are decoded once).

struct Params {
  k: u32,          // row length of W (GGUF ne0)
  rows: u32,       // rows of W in this buffer (a part of a split tensor)
  out_stride: u32, // floats per token in `out` (all rows of W)
  out_offset: u32, // first output row this part writes
  x_stride: u32,   // floats per token in `x`
  has_bias: u32,
  groups_x: u32,   // workgroups in x (they fold into x and y past the per-dimension limit)
}

override THREADS_PER_ROW: u32 = 16u; // power of two

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<u32>;
//#include x
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

//#include weights
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

fn store_row(row: u32, t: u32, sum: f32) {
  var value = sum;
  if (params.has_bias != 0u) {
    value += bias[params.out_offset + row];
  }
  out[t * params.out_stride + params.out_offset + row] = value;
}
