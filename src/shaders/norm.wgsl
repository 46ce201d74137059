// RMSNorm or LayerNorm over rows, with the weight (and bias) multiply fused:
//   rms:   out = x / sqrt(mean(x^2) + eps) * weight
//   layer: out = (x - mean(x)) / sqrt(mean((x - mean)^2) + eps) * weight + bias
// One workgroup per row. Each invocation only ever touches its own elements (the same strided set
// in every loop), so it can run in place: the `io` slot is io_separate.wgsl (x -> src, out -> dst)
// or io_in_place.wgsl (both in dst).

struct Params {
  n: u32,          // row length
  rows: u32,
  x_stride: u32,   // floats between rows of x
  x_offset: u32,   // first float of row 0 in x
  out_stride: u32,
  out_offset: u32,
  eps: f32,
  has_weight: u32,
  has_bias: u32,
  groups_x: u32,   // workgroups in x (rows fold into y past the per-dimension limit)
}

override WORKGROUP_SIZE: u32 = 256; // power of two
override LAYER_NORM: u32 = 0u;      // 0: RMSNorm, 1: LayerNorm

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;

//#include io

//#include "workgroup_sum.wgsl"

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * params.groups_x;
  // The row index is uniform across the workgroup, so this early return keeps barriers uniform.
  if (row >= params.rows) {
    return;
  }
  let xb = params.x_offset + row * params.x_stride;
  let ob = params.out_offset + row * params.out_stride;
  let n = f32(params.n);

  var mean = 0.0;
  if (LAYER_NORM != 0u) {
    var s = 0.0;
    for (var i = lid; i < params.n; i += WORKGROUP_SIZE) {
      s += load_src(xb + i);
    }
    mean = workgroup_sum(s, lid) / n;
  }
  var sq = 0.0;
  for (var i = lid; i < params.n; i += WORKGROUP_SIZE) {
    let d = load_src(xb + i) - mean;
    sq += d * d;
  }
  let scale = inverseSqrt(workgroup_sum(sq, lid) / n + params.eps);

  for (var i = lid; i < params.n; i += WORKGROUP_SIZE) {
    var y = (load_src(xb + i) - mean) * scale;
    if (params.has_weight != 0u) {
      y *= weight[i];
    }
    if (params.has_bias != 0u) {
      y += bias[i];
    }
    store_dst(ob + i, y);
  }
}
