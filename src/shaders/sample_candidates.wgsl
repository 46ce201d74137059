// Sampling, pass 1 of 2: workgroup (group, row) takes ITEMS_PER_GROUP logits of one row and
// writes its k best (value, token id) in no particular order (topk_select.wgsl: radix select,
// ties to the lower id); slots past the group's item count get id INVALID. Pass 2
// (sample_finish.wgsl) merges the groups and draws the token.

struct Params {
  vocab: u32,
  logits_stride: u32,  // floats between rows (0: every row reads the same logits)
  logits_offset: u32,
  k: u32,
  n_groups: u32,
}

override WORKGROUP_SIZE: u32 = 256;
override ITEMS_PER_GROUP: u32 = 8192;
const INVALID: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> cand_val: array<f32>; // [row][group][k]
@group(0) @binding(3) var<storage, read_write> cand_idx: array<u32>;

var<private> base: u32;
var<private> row_start: u32;
var<workgroup> emitted: atomic<u32>;

fn item_count() -> u32 {
  return min(ITEMS_PER_GROUP, params.vocab - base);
}
fn item_value(i: u32) -> f32 {
  return logits[row_start + base + i];
}
fn item_id(i: u32) -> u32 {
  return base + i;
}

//#include "topk_select.wgsl"

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let group = wid.x;
  let row = wid.y;
  base = group * ITEMS_PER_GROUP;
  row_start = params.logits_offset + row * params.logits_stride;
  let out = (row * params.n_groups + group) * params.k;
  let n = min(ITEMS_PER_GROUP, params.vocab - group * ITEMS_PER_GROUP); // = item_count(), uniformly
  let k = min(params.k, n);
  if (lid == 0u) {
    atomicStore(&emitted, 0u);
  }
  var cut = vec2u(0u, INVALID); // k == n: everything (order_key(x) >= 0 always)
  if (k < n) {
    cut = top_k_cut(lid, k);
  }
  workgroupBarrier();
  for (var i = lid; i < n; i += WORKGROUP_SIZE) {
    let v = item_value(i);
    if (in_top_k(v, base + i, cut)) {
      let slot = atomicAdd(&emitted, 1u);
      cand_val[out + slot] = v;
      cand_idx[out + slot] = base + i;
    }
  }
  for (var s = k + lid; s < params.k; s += WORKGROUP_SIZE) {
    cand_val[out + s] = 0.0;
    cand_idx[out + s] = INVALID;
  }
}
