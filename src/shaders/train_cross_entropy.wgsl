// Training: weighted next-token cross-entropy per row and its gradient. Row t with weight w > 0:
// loss[t] = w * (logsumexp(logits[t]) - logits[t][target[t]]),
// d_logits[t][i] = grad_scale * w * (softmax(logits[t])[i] - [i == target[t]]); rows with w = 0
// get 0 and zeros. One workgroup per row.

struct Params {
  n_vocab: u32,
  rows: u32,
  grad_scale: f32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> d_logits: array<f32>;

//#include "workgroup_sum.wgsl"

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * params.groups_x;
  if (row >= params.rows) {
    return;
  }
  let off = row * params.n_vocab;
  let w = weight[row];
  if (!(w > 0.0)) {
    for (var i = lid; i < params.n_vocab; i += WORKGROUP_SIZE) {
      d_logits[off + i] = 0.0;
    }
    if (lid == 0u) {
      loss[row] = 0.0;
    }
    return;
  }
  var m = -3.4e38;
  for (var i = lid; i < params.n_vocab; i += WORKGROUP_SIZE) {
    m = max(m, logits[off + i]);
  }
  m = workgroup_max(m, lid);
  var sum = 0.0;
  for (var i = lid; i < params.n_vocab; i += WORKGROUP_SIZE) {
    sum += exp(logits[off + i] - m);
  }
  let lse = m + log(workgroup_sum(sum, lid));
  let want = targets[row];
  let g = params.grad_scale * w;
  for (var i = lid; i < params.n_vocab; i += WORKGROUP_SIZE) {
    var d = g * exp(logits[off + i] - lse);
    if (i == want) {
      d -= g;
    }
    d_logits[off + i] = d;
  }
  if (lid == 0u) {
    loss[row] = w * (lse - logits[off + want]);
  }
}
