// Training: y = silu(gate) * up, elementwise (the FFN's GLU, kept apart from glu.wgsl because the
// backward pass needs gate and up unfused).

struct Params {
  count: u32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
  if (e >= params.count) {
    return;
  }
  let g = gate[e];
  y[e] = g / (1.0 + exp(-g)) * up[e];
}
