// Training: out[t][h][d] = sum_j<=t p[t][h][j] * x[j][h / group][d], the product of a causal
// per-head weight matrix with the kv rows: the attention output (p = probs, x = v) and in the
// backward pass dq (p = d scores, x = k). One invocation per output value.

struct Params {
  n: u32,
  n_head: u32,
  group: u32,
  dim: u32,        // head dim of x and out
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> p: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
  if (e >= params.n * params.n_head * params.dim) {
    return;
  }
  let d = e % params.dim;
  let row = e / params.dim; // t * n_head + h
  let t = row / params.n_head;
  let kvh = (row % params.n_head) / params.group;
  let x_width = (params.n_head / params.group) * params.dim;
  var acc = 0.0;
  for (var j = 0u; j <= t; j++) {
    acc += p[row * params.n + j] * x[j * x_width + kvh * params.dim + d];
  }
  out[e] = acc;
}
