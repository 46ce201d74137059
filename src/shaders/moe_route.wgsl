// Mixture-of-experts routing, one invocation per token, on the router logits [tokens][n_expert]:
// probabilities by softmax over all experts (gating 0) or sigmoid (gating 1); the `used` largest
// chosen, in descending order, ties to the lower index. Chosen by logit, not by probability: both
// gatings are monotonic, so the order is the exact order of the logits. Their weights are divided by
// their sum (clamped below at 2^-14, as llama.cpp) when `normalize`, then times `scale`.
// Writes ids[t * used + j] and weights[t * used + j]; no readback: the expert matmuls read ids.

struct Params {
  tokens: u32,
  n_expert: u32,
  used: u32,
  logits_stride: u32,
  gating: u32,
  normalize: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> weights: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

const MIN_WEIGHT_SUM: f32 = 6.103515625e-5;

fn probability(l: f32, max_logit: f32, denom: f32) -> f32 {
  if (params.gating == 0u) {
    return exp(l - max_logit) / denom;
  }
  return 1.0 / (1.0 + exp(min(-l, 80.0)));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let t = gid.x;
  if (t >= params.tokens) {
    return;
  }
  let row = t * params.logits_stride;
  let n = params.n_expert;
  var max_logit = logits[row];
  for (var e = 1u; e < n; e++) {
    max_logit = max(max_logit, logits[row + e]);
  }
  var denom = 0.0;
  if (params.gating == 0u) {
    for (var e = 0u; e < n; e++) {
      denom += exp(logits[row + e] - max_logit);
    }
  }
  // Selection: the j-th pick is the largest (logit, -index) below the previous pick.
  var prev_l = 0.0;
  var prev_e = 0u;
  var sum = 0.0;
  let out = t * params.used;
  for (var j = 0u; j < params.used; j++) {
    var best_e = n;
    var best_l = 0.0;
    for (var e = 0u; e < n; e++) {
      let l = logits[row + e];
      let below = j == 0u || l < prev_l || (l == prev_l && e > prev_e);
      if (below && (best_e == n || l > best_l)) {
        best_e = e;
        best_l = l;
      }
    }
    prev_l = best_l;
    prev_e = best_e;
    let p = probability(best_l, max_logit, denom);
    ids[out + j] = best_e;
    weights[out + j] = p;
    sum += p;
  }
  var divisor = 1.0;
  if (params.normalize != 0u) {
    divisor = max(sum, MIN_WEIGHT_SUM);
  }
  for (var j = 0u; j < params.used; j++) {
    weights[out + j] = weights[out + j] / divisor * params.scale;
  }
}
