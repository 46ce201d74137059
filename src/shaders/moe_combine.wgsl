// The end of a mixture-of-experts FFN, for the tokens of one chunk: per token t (chunk token c,
// t = token_base + c) and dimension i,
//   out[t, i] = base + sum_j weights[t * used + j] * y[(c * used + j) * n + i]
// where base is 0 (no shared expert), out[t, i] (the shared expert's output, already there), or
// out[t, i] * sigmoid(gate[t * gate_stride]) (qwen2moe's gated shared expert).

struct Params {
  n: u32,
  tokens: u32,      // tokens in this chunk
  token_base: u32,
  used: u32,
  out_stride: u32,
  out_offset: u32,
  shared_mode: u32, // 0 none, 1 plain, 2 sigmoid-gated
  gate_stride: u32,
  groups_x: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read> gate: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

override WORKGROUP_SIZE: u32 = 256u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
  if (i >= params.n * params.tokens) {
    return;
  }
  let c = i / params.n;
  let d = i % params.n;
  let t = params.token_base + c;
  let o = params.out_offset + t * params.out_stride + d;
  var acc = 0.0;
  if (params.shared_mode == 1u) {
    acc = out[o];
  } else if (params.shared_mode == 2u) {
    acc = out[o] / (1.0 + exp(min(-gate[t * params.gate_stride], 80.0)));
  }
  for (var j = 0u; j < params.used; j++) {
    acc += weights[t * params.used + j] * y[(c * params.used + j) * params.n + d];
  }
  out[o] = acc;
}
