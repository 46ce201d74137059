// matvec.wgsl with the reduction done by subgroup operations (needs the `subgroups` feature):
// out[t, out_offset + r] = sum_k x[t, k] * W[r, k] (+ bias). One workgroup per output row and
// token; invocations stride over k, then subgroupAdd sums each subgroup, and one barrier and a
// second subgroupAdd combine the subgroup sums: one barrier instead of log2(WORKGROUP_SIZE) + 1.
//
// The subgroup size is not known when the shader is compiled (4 on SwiftShader, 32 on NVIDIA, 64 on
// some AMD, up to 128 elsewhere), and WebGPU does not say which invocations form a subgroup. So
// the second step assumes neither: each subgroup's first lane leaves its sum in its own slot
// (others leave 0), then every subgroup adds up all slots, lane j taking slots j, j + size, ...,
// and one more subgroupAdd gives every subgroup the workgroup total.
enable subgroups;

struct Params {
  k: u32,          // row length of W (GGUF ne0)
  rows: u32,       // rows of W in this buffer (a part of a split tensor)
  out_stride: u32, // floats per token in `out` (all rows of W)
  out_offset: u32, // first output row this part writes
  x_stride: u32,   // floats per token in `x`
  has_bias: u32,
  groups_x: u32,   // workgroups in x (rows fold into x and y past the per-dimension limit)
}

override WORKGROUP_SIZE: u32 = 64; // power of two

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

//#include weights

// One slot per invocation: the subgroup sum in the slot of a subgroup's first lane, 0 elsewhere.
var<workgroup> subgroup_sums: array<f32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_index) lid: u32,
  @builtin(subgroup_size) sg_size: u32,
  @builtin(subgroup_invocation_id) sg_lane: u32,
) {
  let row = wid.x + wid.y * params.groups_x;
  let t = wid.z;
  let xb = t * params.x_stride;
  var acc = 0.0;
  if (row < params.rows) {
    let k4 = params.k / 4u;
    for (var i = lid; i < k4; i += WORKGROUP_SIZE) {
      let k = i * 4u;
      acc += dot(w4(row, k), vec4f(x[xb + k], x[xb + k + 1u], x[xb + k + 2u], x[xb + k + 3u]));
    }
    for (var k = k4 * 4u + lid; k < params.k; k += WORKGROUP_SIZE) {
      acc += w1(row, k) * x[xb + k];
    }
  }
  let sum = subgroupAdd(acc);
  subgroup_sums[lid] = select(0.0, sum, sg_lane == 0u);
  workgroupBarrier();
  var gathered = 0.0;
  for (var i = sg_lane; i < WORKGROUP_SIZE; i += sg_size) {
    gathered += subgroup_sums[i];
  }
  let total = subgroupAdd(gathered);
  if (lid == 0u && row < params.rows) {
    var value = total;
    if (params.has_bias != 0u) {
      value += bias[params.out_offset + row];
    }
    out[t * params.out_stride + params.out_offset + row] = value;
  }
}
