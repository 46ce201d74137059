// matvec.wgsl with one row per workgroup (THREADS_PER_ROW invocations) reduced by subgroup
// operations (needs the `subgroups` feature): subgroupAdd sums each subgroup, then one barrier and
// a second subgroupAdd combine the subgroup sums, instead of log2(THREADS_PER_ROW) + 1 barriers.
//
// The subgroup size is not known when the shader is compiled (4 on SwiftShader, 32 on NVIDIA, 64 on
// some AMD, up to 128 elsewhere), and WebGPU does not say which invocations form a subgroup. So
// the second step assumes neither: each subgroup's first lane leaves its sum in its own slot
// (others leave 0), then every subgroup adds up all slots, lane j taking slots j, j + size, ...,
// and one more subgroupAdd gives every subgroup the workgroup total.
enable subgroups;
//#include "matvec_common.wgsl"

// One slot per invocation: the subgroup sum in the slot of a subgroup's first lane, 0 elsewhere.
var<workgroup> subgroup_sums: array<f32, THREADS_PER_ROW>;
var<workgroup> subgroup_sums_up: array<f32, THREADS_PER_ROW>;

@compute @workgroup_size(THREADS_PER_ROW)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_index) lid: u32,
  @builtin(subgroup_size) sg_size: u32,
  @builtin(subgroup_invocation_id) sg_lane: u32,
) {
  let row = wid.x + wid.y * params.groups_x;
  let t = wid.z;
  var acc = 0.0;
  var acc_up = 0.0;
  if (row < params.rows) {
    acc = row_dot(row, lid, t * params.x_stride);
    acc_up = up_dot(row, lid, t * params.x_stride);
  }
  let sum = subgroupAdd(acc);
  subgroup_sums[lid] = select(0.0, sum, sg_lane == 0u);
  if (GLU != 0u) {
    let sum_up = subgroupAdd(acc_up);
    subgroup_sums_up[lid] = select(0.0, sum_up, sg_lane == 0u);
  }
  workgroupBarrier();
  var gathered = 0.0;
  var gathered_up = 0.0;
  for (var i = sg_lane; i < THREADS_PER_ROW; i += sg_size) {
    gathered += subgroup_sums[i];
    if (GLU != 0u) {
      gathered_up += subgroup_sums_up[i];
    }
  }
  let total = subgroupAdd(gathered);
  var total_up = 0.0;
  if (GLU != 0u) {
    total_up = subgroupAdd(gathered_up);
  }
  if (lid == 0u && row < params.rows) {
    store_row(row, t, total, total_up);
  }
}
