// Gated linear units for the feed-forward block: out[r, i] = act(gate[r, i]) * up[r, i] with
// act SiLU (ACT 0) or GELU (ACT 1), as glu_common.wgsl defines them.
// gate and up may be two slices of one fused gate_up output (both bindings are read-only, so
// they may be the same buffer). One invocation per output element.

struct Params {
  n: u32,          // elements per row (the feed-forward width)
  rows: u32,
  gate_stride: u32,
  gate_offset: u32,
  up_stride: u32,
  up_offset: u32,
  out_stride: u32,
  out_offset: u32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256;
override ACT: u32 = 0u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

//#include "glu_common.wgsl"

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let index = (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
  if (index >= params.n * params.rows) {
    return;
  }
  let r = index / params.n;
  let i = index % params.n;
  let g = gate[params.gate_offset + r * params.gate_stride + i];
  var a: f32;
  if (ACT == 0u) {
    a = silu(g);
  } else {
    a = gelu(g);
  }
  out[params.out_offset + r * params.out_stride + i] = a * up[params.up_offset + r * params.up_stride + i];
}
