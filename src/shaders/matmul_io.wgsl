// The parameters and bindings of every weight product (matvec, matvec_subgroup, matmul,
// matmul_rows): W as the GGUF file stores it (read through the `weights` slot), activations x
// (through the `x` slot), an optional bias, and the output.

struct Params {
  k: u32,          // row length of W (GGUF ne0)
  rows: u32,       // rows of W in this buffer (a part of a split tensor)
  tokens: u32,
  out_stride: u32, // floats per token in `out` (all rows of W)
  out_offset: u32, // first output row this part writes (and its first bias)
  out_base: u32,   // first float of token 0's row in `out` (a slice of a wider row: v of a [q | k | v] buffer)
  x_stride: u32,   // floats per token in `x`
  has_bias: u32,
  groups_x: u32,   // workgroups in x (they fold into x and y past the per-dimension limit)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

//#include x
//#include weights

// Writes row `row`'s sum for token t, plus the row's bias when there is one.
fn store_output(row: u32, t: u32, sum: f32) {
  var value = sum;
  if (params.has_bias != 0u) {
    value += bias[params.out_offset + row];
  }
  out[params.out_base + t * params.out_stride + params.out_offset + row] = value;
}
