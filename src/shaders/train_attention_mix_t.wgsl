// Training: the transposed attention product, summed over the query heads of each kv head:
// out[j][kvh][d] = sum_{h of kvh} sum_t>=j p[t][h][j] * y[t][h][d]. In the backward pass this is
// dk (p = d scores, y = q) and dv (p = probs, y = d out). One invocation per output value.

struct Params {
  n: u32,
  n_head: u32,
  group: u32,
  dim: u32,        // head dim of y and out
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> p: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n_kv = params.n_head / params.group;
  let e = (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
  if (e >= params.n * n_kv * params.dim) {
    return;
  }
  let d = e % params.dim;
  let jk = e / params.dim; // j * n_kv + kvh
  let j = jk / n_kv;
  let kvh = jk % n_kv;
  let y_width = params.n_head * params.dim;
  var acc = 0.0;
  for (var g = 0u; g < params.group; g++) {
    let h = kvh * params.group + g;
    for (var t = j; t < params.n; t++) {
      acc += p[(t * params.n_head + h) * params.n + j] * y[t * y_width + h * params.dim + d];
    }
  }
  out[e] = acc;
}
