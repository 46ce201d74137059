// Elementwise ops on rows: dst[r, i] = op(src[r, i], b[r, i]) * scale, where op is
//   OP 0: a + b (residual add, bias add), OP 1: a * b (gating, weight multiply), OP 2: a (scale only),
//   OP 3: max(a, 0) (ReLU: original T5's FFN).
// b may broadcast one row over all rows (b_stride = 0). One invocation per element; in place when
// the `io` slot is io_in_place.wgsl (src and dst are the same buffer). b comes through the `b`
// slot: its own binding (b_separate.wgsl), or dst's when a, b and out share one buffer (b_in_dst.wgsl).

struct Params {
  n: u32,          // elements per row
  rows: u32,
  src_stride: u32,
  src_offset: u32,
  b_stride: u32,   // 0 broadcasts b's first row
  b_offset: u32,
  dst_stride: u32,
  dst_offset: u32,
  scale: f32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256;
override OP: u32 = 0u;

@group(0) @binding(0) var<uniform> params: Params;
//#include io

//#include b

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let index = (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
  if (index >= params.n * params.rows) {
    return;
  }
  let r = index / params.n;
  let i = index % params.n;
  let a = load_src(params.src_offset + r * params.src_stride + i);
  var value = a;
  if (OP == 0u) {
    value = a + load_b(params.b_offset + r * params.b_stride + i);
  } else if (OP == 1u) {
    value = a * load_b(params.b_offset + r * params.b_stride + i);
  } else if (OP == 3u) {
    value = max(a, 0.0);
  }
  store_dst(params.dst_offset + r * params.dst_stride + i, value * params.scale);
}
