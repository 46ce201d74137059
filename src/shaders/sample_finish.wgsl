// Sampling, pass 2 of 2: one workgroup per row takes the groups' candidates (pass 1,
// sample_candidates.wgsl), selects the row's k best (topk_select.wgsl), sorts them best first
// (higher logit, then lower id) and then one invocation applies llama.cpp's default sampler order
// and draws the token with the host's uniform number u:
//   top-k (the k best) -> top-p -> min-p (both on temperature-1 probabilities) -> temperature ->
//   draw: the first token whose cumulative probability exceeds u.
// temperature <= 0 is greedy (argmax).

struct Params {
  n_cand: u32,        // candidate slots per row (groups * k)
  k: u32,             // <= K_MAX
  temperature: f32,
  top_p: f32,         // 1: off
  min_p: f32,         // 0: off
}

override WORKGROUP_SIZE: u32 = 256; // >= K_MAX
const K_MAX: u32 = 128u;
const INVALID: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> cand_val: array<f32>;
@group(0) @binding(2) var<storage, read> cand_idx: array<u32>;
@group(0) @binding(3) var<storage, read> random: array<f32>;  // u in [0, 1) per row
@group(0) @binding(4) var<storage, read_write> tokens: array<u32>;

var<private> first: u32;
var<workgroup> present: atomic<u32>;
var<workgroup> n_top: atomic<u32>;
var<workgroup> top_val: array<f32, K_MAX>;
var<workgroup> top_idx: array<u32, K_MAX>;
var<workgroup> sorted_val: array<f32, K_MAX>;
var<workgroup> sorted_idx: array<u32, K_MAX>;

fn item_count() -> u32 {
  return params.n_cand;
}
fn item_value(i: u32) -> f32 {
  return cand_val[first + i];
}
fn item_id(i: u32) -> u32 {
  return cand_idx[first + i];
}

//#include "topk_select.wgsl"

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x;
  first = row * params.n_cand;
  if (lid == 0u) {
    atomicStore(&present, 0u);
    atomicStore(&n_top, 0u);
  }
  workgroupBarrier();
  for (var i = lid; i < params.n_cand; i += WORKGROUP_SIZE) {
    if (item_id(i) != INVALID) {
      atomicAdd(&present, 1u);
    }
  }
  let n = workgroupUniformLoad(&present);
  let k = min(params.k, n);
  var cut = vec2u(0u, INVALID);
  if (k < n) {
    cut = top_k_cut(lid, k);
  }
  workgroupBarrier();
  for (var i = lid; i < params.n_cand; i += WORKGROUP_SIZE) {
    let v = item_value(i);
    let id = item_id(i);
    if (in_top_k(v, id, cut)) {
      let slot = atomicAdd(&n_top, 1u);
      top_val[slot] = v;
      top_idx[slot] = id;
    }
  }
  workgroupBarrier();
  // Sort by rank: entry e goes where the number of entries ranking before it says.
  if (lid < k) {
    let v = top_val[lid];
    let id = top_idx[lid];
    var rank = 0u;
    for (var j = 0u; j < k; j++) {
      let w = top_val[j];
      if (w > v || (w == v && top_idx[j] < id)) {
        rank++;
      }
    }
    sorted_val[rank] = v;
    sorted_idx[rank] = id;
  }
  workgroupBarrier();
  if (lid != 0u) {
    return;
  }
  if (k == 0u) {
    tokens[row] = INVALID;
    return;
  }
  if (params.temperature <= 0.0 || k == 1u) {
    tokens[row] = sorted_idx[0];
    return;
  }
  let m = sorted_val[0];
  var keep = k;
  if (params.top_p < 1.0) {
    var total = 0.0;
    for (var i = 0u; i < k; i++) {
      total += exp(sorted_val[i] - m);
    }
    var cum = 0.0;
    for (var i = 0u; i < k; i++) {
      cum += exp(sorted_val[i] - m) / total;
      if (cum >= params.top_p) {
        keep = i + 1u;
        break;
      }
    }
  }
  if (params.min_p > 0.0) {
    let min_logit = m + log(params.min_p);
    for (var i = 1u; i < keep; i++) {
      if (sorted_val[i] < min_logit) {
        keep = i;
        break;
      }
    }
  }
  var sum = 0.0;
  for (var i = 0u; i < keep; i++) {
    sum += exp((sorted_val[i] - m) / params.temperature);
  }
  let threshold = random[row] * sum;
  var acc = 0.0;
  var token = sorted_idx[keep - 1u];
  for (var i = 0u; i < keep; i++) {
    acc += exp((sorted_val[i] - m) / params.temperature);
    if (acc > threshold) {
      token = sorted_idx[i];
      break;
    }
  }
  tokens[row] = token;
}
