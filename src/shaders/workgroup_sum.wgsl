// The sum (or max) of one value per invocation over the workgroup (a tree in workgroup memory),
// for the one-workgroup-per-row kernels (norm.wgsl, add_norm.wgsl, the training softmaxes). The
// includer declares the override WORKGROUP_SIZE (a power of two); every invocation must call it (it has barriers).

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

fn workgroup_sum(value: f32, lid: u32) -> f32 {
  partial[lid] = value;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier(); // partial is reused by the next call
  return total;
}

fn workgroup_max(value: f32, lid: u32) -> f32 {
  partial[lid] = value;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      partial[lid] = max(partial[lid], partial[lid + stride]);
    }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier();
  return total;
}
