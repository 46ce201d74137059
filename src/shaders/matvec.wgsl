// Matrix-vector product for decode: out[t, out_offset + r] = sum_k x[t, k] * W[r, k] (+ bias),
// with W dequantized on the fly by the `weights` include (w4/w1). One workgroup per output row
// and token; its invocations stride over k and reduce in workgroup memory.

struct Params {
  k: u32,          // row length of W (GGUF ne0)
  rows: u32,       // rows of W in this buffer (a part of a split tensor)
  out_stride: u32, // floats per token in `out` (all rows of W)
  out_offset: u32, // first output row this part writes
  x_stride: u32,   // floats per token in `x`
  has_bias: u32,
  groups_x: u32,   // workgroups in x (rows fold into x and y past the per-dimension limit)
}

override WORKGROUP_SIZE: u32 = 64; // power of two

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

//#include weights

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * params.groups_x;
  let t = wid.z;
  let xb = t * params.x_stride;
  var acc = 0.0;
  if (row < params.rows) {
    let k4 = params.k / 4u;
    for (var i = lid; i < k4; i += WORKGROUP_SIZE) {
      let k = i * 4u;
      acc += dot(w4(row, k), vec4f(x[xb + k], x[xb + k + 1u], x[xb + k + 2u], x[xb + k + 3u]));
    }
    for (var k = k4 * 4u + lid; k < params.k; k += WORKGROUP_SIZE) {
      acc += w1(row, k) * x[xb + k];
    }
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u && row < params.rows) {
    var value = partial[0];
    if (params.has_bias != 0u) {
      value += bias[params.out_offset + row];
    }
    out[t * params.out_stride + params.out_offset + row] = value;
  }
}
