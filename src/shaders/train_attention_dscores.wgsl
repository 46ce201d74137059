// Training: the gradient of the attention scores from the kept probabilities and d out:
// dp[j] = d_out[t, h] . v[j, h / group], dz[t][h][j] = p * (dp[j] - sum_j p * dp) * scale (the
// softmax's backward, times the score scale), 0 for j > t. One workgroup per (t, h) row.

struct Params {
  n: u32,
  n_head: u32,
  group: u32,
  dv: u32,         // head dim of v
  scale: f32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 64;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> probs: array<f32>;
@group(0) @binding(2) var<storage, read> d_out: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> dz: array<f32>;

//#include "workgroup_sum.wgsl"

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * params.groups_x; // t * n_head + h
  if (row >= params.n * params.n_head) {
    return;
  }
  let t = row / params.n_head;
  let kvh = (row % params.n_head) / params.group;
  let v_width = (params.n_head / params.group) * params.dv;
  let o_off = row * params.dv;
  let out = row * params.n;
  var pdp = 0.0;
  // Each invocation keeps dp of its own j in dz until the sum is known.
  for (var j = lid; j <= t; j += WORKGROUP_SIZE) {
    let v_off = j * v_width + kvh * params.dv;
    var dot = 0.0;
    for (var d = 0u; d < params.dv; d++) {
      dot += d_out[o_off + d] * v[v_off + d];
    }
    dz[out + j] = dot;
    pdp += probs[out + j] * dot;
  }
  pdp = workgroup_sum(pdp, lid);
  for (var j = lid; j < params.n; j += WORKGROUP_SIZE) {
    if (j <= t) {
      dz[out + j] = probs[out + j] * (dz[out + j] - pdp) * params.scale;
    } else {
      dz[out + j] = 0.0;
    }
  }
}
