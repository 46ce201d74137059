// Training: causal softmax attention probabilities with GQA, kept for the backward pass:
// probs[t][h][j] = softmax_j<=t(scale * q[t, h] . k[j, h / group]), 0 for j > t.
// One workgroup per (t, h) row.

struct Params {
  n: u32,
  n_head: u32,
  group: u32,     // query heads per kv head
  dk: u32,        // head dim of q and k
  scale: f32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 64;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read_write> probs: array<f32>;

//#include "workgroup_sum.wgsl"

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * params.groups_x; // t * n_head + h
  if (row >= params.n * params.n_head) {
    return;
  }
  let t = row / params.n_head;
  let h = row % params.n_head;
  let kvh = h / params.group;
  let q_off = row * params.dk;
  let k_width = (params.n_head / params.group) * params.dk;
  let out = row * params.n;
  var m = -3.4e38;
  for (var j = lid; j <= t; j += WORKGROUP_SIZE) {
    let k_off = j * k_width + kvh * params.dk;
    var dot = 0.0;
    for (var d = 0u; d < params.dk; d++) {
      dot += q[q_off + d] * k[k_off + d];
    }
    let s = dot * params.scale;
    probs[out + j] = s;
    m = max(m, s);
  }
  m = workgroup_max(m, lid);
  var sum = 0.0;
  for (var j = lid; j <= t; j += WORKGROUP_SIZE) {
    let e = exp(probs[out + j] - m);
    probs[out + j] = e;
    sum += e;
  }
  sum = workgroup_sum(sum, lid);
  for (var j = lid; j < params.n; j += WORKGROUP_SIZE) {
    if (j <= t) {
      probs[out + j] = probs[out + j] / sum;
    } else {
      probs[out + j] = 0.0;
    }
  }
}
