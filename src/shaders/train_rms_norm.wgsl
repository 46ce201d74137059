// Training: RMS norm over rows that also keeps each row's 1 / rms for the backward pass:
// y = x * r * w, r = 1 / sqrt(mean(x^2) + eps). One workgroup per row.

struct Params {
  len: u32,
  rows: u32,
  eps: f32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 64;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> r: array<f32>;

//#include "workgroup_sum.wgsl"

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * params.groups_x;
  if (row >= params.rows) {
    return;
  }
  let off = row * params.len;
  var ss = 0.0;
  for (var i = lid; i < params.len; i += WORKGROUP_SIZE) {
    ss += x[off + i] * x[off + i];
  }
  let scale = 1.0 / sqrt(workgroup_sum(ss, lid) / f32(params.len) + params.eps);
  if (lid == 0u) {
    r[row] = scale;
  }
  for (var i = lid; i < params.len; i += WORKGROUP_SIZE) {
    y[off + i] = x[off + i] * scale * w[i];
  }
}
