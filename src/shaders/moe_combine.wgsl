// The end of a mixture-of-experts FFN, for one chunk of (token, chosen expert) pairs: pairs
// pair_base ..< pair_base + pairs (pair p is token p / used, slot p % used), their expert outputs
// y[(p - pair_base) * n + i]. Per token t the chunk touches and dimension i,
//   out[t, i] = base + sum over t's pairs p in the chunk of weights[p] * y[p - pair_base, i]
// where base, taken in the chunk that holds t's first pair, is 0 (no shared expert), out[t, i] (the
// shared expert's output, already there) or out[t, i] * sigmoid(gate[t * gate_stride]) (qwen2moe's
// gated shared expert); later chunks add to out. A chunk may split one token's experts (a scratch
// smaller than `used` rows).

struct Params {
  n: u32,
  pair_base: u32,
  pairs: u32,
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
  let first_token = params.pair_base / params.used;
  let end = params.pair_base + params.pairs;
  let tokens = (end + params.used - 1u) / params.used - first_token;
  let i = (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
  if (i >= params.n * tokens) {
    return;
  }
  let t = first_token + i / params.n;
  let d = i % params.n;
  let o = params.out_offset + t * params.out_stride + d;
  let p0 = max(t * params.used, params.pair_base);
  let p1 = min((t + 1u) * params.used, end);
  var acc = 0.0;
  if (p0 != t * params.used) {
    acc = out[o];
  } else if (params.shared_mode == 1u) {
    acc = out[o];
  } else if (params.shared_mode == 2u) {
    acc = out[o] / (1.0 + exp(min(-gate[t * params.gate_stride], 80.0)));
  }
  for (var p = p0; p < p1; p++) {
    acc += weights[p] * y[(p - params.pair_base) * params.n + d];
  }
  out[o] = acc;
}
