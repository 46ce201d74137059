// Mamba2's gated group RMSNorm, in place on y: y = y * silu(z), then each group of group_size
// values normalized, y = y / sqrt(mean(y^2) + eps) * weight[g * group_size + i]. One workgroup per
// (row, group); each invocation reads and writes only its own strided elements, so the gated
// values are stored in y on the first pass and read back on the second. z comes through the `z`
// slot: its own binding, or y's buffer (z a slice of the same activation).

struct Params {
  rows: u32,
  groups: u32,
  group_size: u32,
  y_stride: u32,
  y_offset: u32,
  z_stride: u32,
  z_offset: u32,
  eps: f32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256; // power of two

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;

//#include z

//#include "glu_common.wgsl"

//#include "workgroup_sum.wgsl"

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let index = wid.x + wid.y * params.groups_x;
  // Uniform across the workgroup, so the barriers below stay uniform.
  if (index >= params.rows * params.groups) {
    return;
  }
  let row = index / params.groups;
  let g = index % params.groups;
  let yb = params.y_offset + row * params.y_stride + g * params.group_size;
  let zb = params.z_offset + row * params.z_stride + g * params.group_size;
  let wb = g * params.group_size;

  var sq = 0.0;
  for (var i = lid; i < params.group_size; i += WORKGROUP_SIZE) {
    let v = y[yb + i] * silu(load_z(zb + i));
    y[yb + i] = v;
    sq += v * v;
  }
  let scale = inverseSqrt(workgroup_sum(sq, lid) / f32(params.group_size) + params.eps);
  for (var i = lid; i < params.group_size; i += WORKGROUP_SIZE) {
    y[yb + i] = y[yb + i] * scale * weight[wb + i];
  }
}
