// Training: d x of the RMS norm y = x * r * w given dy and the kept r (1 / rms):
// dx = r * w * dy - x * r^3 * sum(w * dy * x) / len. One workgroup per row.

struct Params {
  len: u32,
  rows: u32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 64;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> r: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

//#include "workgroup_sum.wgsl"

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * params.groups_x;
  if (row >= params.rows) {
    return;
  }
  let off = row * params.len;
  var dot = 0.0;
  for (var i = lid; i < params.len; i += WORKGROUP_SIZE) {
    dot += w[i] * dy[off + i] * x[off + i];
  }
  let s = r[row];
  let c = s * s * s * workgroup_sum(dot, lid) / f32(params.len);
  for (var i = lid; i < params.len; i += WORKGROUP_SIZE) {
    dx[off + i] = s * w[i] * dy[off + i] - x[off + i] * c;
  }
}
