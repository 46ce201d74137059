// Parallel sum reduction, one pass: each workgroup adds up a contiguous slice of `input` and
// writes one partial sum. The host runs passes until one value is left. No engine op uses it: it is
// the end-to-end check of the WebGPU path (kernels/reduce.gpu.test.ts holds its encoder).

struct Params {
  n: u32,
  items_per_group: u32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256; // must be a power of two for the tree below

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

var<workgroup> scratch: array<f32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  // Dispatches wider than maxComputeWorkgroupsPerDimension fold into a second dimension.
  let group = wid.x + wid.y * params.groups_x;
  let start = group * params.items_per_group;
  let end = min(start + params.items_per_group, params.n);

  var acc = 0.0;
  for (var i = start + lid; i < end; i += WORKGROUP_SIZE) {
    acc += input[i];
  }
  scratch[lid] = acc;
  workgroupBarrier();

  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      scratch[lid] += scratch[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u && start < params.n) {
    partials[group] = scratch[0];
  }
}
