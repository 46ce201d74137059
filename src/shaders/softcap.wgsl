// Logit softcapping in place (Gemma 2's final logits): x = cap * tanh(x / cap), one invocation per
// element of `rows` rows of `n`. tanh is computed from exp(-2|x|), which stays finite for any x
// (a tanh written as sinh / cosh overflows to NaN past |x| ~ 88).

struct Params {
  n: u32,
  rows: u32,
  stride: u32,
  offset: u32,
  cap: f32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let index = (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
  if (index >= params.n * params.rows) {
    return;
  }
  let i = params.offset + (index / params.n) * params.stride + index % params.n;
  let s = x[i] / params.cap;
  let e = exp(-2.0 * abs(s));
  x[i] = params.cap * sign(s) * (1.0 - e) / (1.0 + e);
}
