// Training: the backward of y = silu(gate) * up: d up = dy * silu(gate),
// d gate = dy * up * sigmoid(gate) * (1 + gate * (1 - sigmoid(gate))).

struct Params {
  count: u32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> d_gate: array<f32>;
@group(0) @binding(5) var<storage, read_write> d_up: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
  if (e >= params.count) {
    return;
  }
  let g = gate[e];
  let sg = 1.0 / (1.0 + exp(-g));
  d_up[e] = dy[e] * g * sg;
  d_gate[e] = dy[e] * up[e] * sg * (1.0 + g * (1.0 - sg));
}
