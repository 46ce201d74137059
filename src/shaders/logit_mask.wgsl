// A grammar's token mask applied in place to one row of logits before sampling: tokens whose bit
// is clear in `allowed` (bit id & 31 of word id >> 5) get MASKED_LOGIT, so the sampler never picks
// them. Reference: applyTokenMask in src/engine/sampling/mask.ts.

struct Params {
  vocab: u32,
  logits_offset: u32,  // float offset of the row in `logits`
  groups_x: u32,       // workgroups along x (the grid is folded for large vocabularies)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> allowed: array<u32>;
@group(0) @binding(2) var<storage, read_write> logits: array<f32>;

const MASKED_LOGIT: f32 = -3.0e38;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let id = (wid.y * params.groups_x + wid.x) * 256u + lid;
  if (id >= params.vocab) {
    return;
  }
  if (((allowed[id >> 5u] >> (id & 31u)) & 1u) == 0u) {
    logits[params.logits_offset + id] = MASKED_LOGIT;
  }
}
