// The residual add fused with the RMSNorm that follows it (one pass instead of two):
//   x = x + cur * scale                            (the block output joins the residual stream)
//   cur = x / sqrt(mean(x^2) + eps) * weight       (the next block's input)
// x and cur are two different buffers, both written. One workgroup per row; each invocation only
// ever touches its own elements (the same strided set in every loop), so reading back the x it
// wrote and overwriting the cur it read need no barrier.

struct Params {
  n: u32,          // row length
  rows: u32,
  x_stride: u32,
  x_offset: u32,
  cur_stride: u32,
  cur_offset: u32,
  eps: f32,
  scale: f32,      // of the block output (granite's residual scale; 1 elsewhere)
  has_weight: u32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256; // power of two

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> cur: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;

//#include "workgroup_sum.wgsl"

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * params.groups_x;
  // The row index is uniform across the workgroup, so this early return keeps barriers uniform.
  if (row >= params.rows) {
    return;
  }
  let xb = params.x_offset + row * params.x_stride;
  let cb = params.cur_offset + row * params.cur_stride;

  var sq = 0.0;
  for (var i = lid; i < params.n; i += WORKGROUP_SIZE) {
    let v = x[xb + i] + cur[cb + i] * params.scale;
    x[xb + i] = v;
    sq += v * v;
  }
  let inv = inverseSqrt(workgroup_sum(sq, lid) / f32(params.n) + params.eps);

  for (var i = lid; i < params.n; i += WORKGROUP_SIZE) {
    var y = x[xb + i] * inv;
    if (params.has_weight != 0u) {
      y *= weight[i];
    }
    cur[cb + i] = y;
  }
}
