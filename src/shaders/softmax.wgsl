// Softmax over rows: dst[r, :] = softmax(src[r, :] * scale). One workgroup per row: a max pass, a
// sum-of-exponentials pass, then the normalized write, each invocation on its own strided
// elements, so it may run in place (`io` slot = io_in_place.wgsl).

struct Params {
  n: u32,
  rows: u32,
  src_stride: u32,
  src_offset: u32,
  dst_stride: u32,
  dst_offset: u32,
  scale: f32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256; // power of two

@group(0) @binding(0) var<uniform> params: Params;

//#include io

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * params.groups_x;
  if (row >= params.rows) {
    return;
  }
  let sb = params.src_offset + row * params.src_stride;
  let db = params.dst_offset + row * params.dst_stride;

  var m = -3.0e38;
  for (var i = lid; i < params.n; i += WORKGROUP_SIZE) {
    m = max(m, load_src(sb + i) * params.scale);
  }
  partial[lid] = m;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      partial[lid] = max(partial[lid], partial[lid + stride]);
    }
    workgroupBarrier();
  }
  let row_max = partial[0];
  workgroupBarrier();

  var s = 0.0;
  for (var i = lid; i < params.n; i += WORKGROUP_SIZE) {
    s += exp(load_src(sb + i) * params.scale - row_max);
  }
  partial[lid] = s;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  let inv_sum = 1.0 / partial[0];

  for (var i = lid; i < params.n; i += WORKGROUP_SIZE) {
    store_dst(db + i, exp(load_src(sb + i) * params.scale - row_max) * inv_sum);
  }
}
