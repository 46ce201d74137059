// The causal depthwise convolution of a state-space block (ggml_ssm_conv: Mamba2's conv1d, LFM2's
// short convolution) over `tokens` rows of `channels`, with a rolling state of the last
// kernel - 1 input columns ([kernel - 1][channels], oldest first) standing before the step's rows:
//   out[t][ch] = sum_{j < kernel} weight[ch * kernel + j] * column(t - (kernel - 1) + j)[ch] (+ bias[ch])
// then silu(out) when SILU; afterwards the state holds the last kernel - 1 columns seen.
//
// `main` writes the outputs; with FUSED_STATE (a decode step's few tokens) one invocation per
// channel writes every token of its channel and then shifts that channel's state itself. Without
// it (prefill), one invocation per (token, channel) writes outputs only, and `shift_state` (a
// second dispatch, after every output has read the old state) shifts the state per channel.
// Everything that changes per token is in buffers, so a decode step replays.

struct Params {
  channels: u32,
  tokens: u32,
  kernel: u32,
  x_stride: u32,
  x_offset: u32,
  out_stride: u32,
  out_offset: u32,
  state_offset: u32, // float offset of the state region in `state`
  has_bias: u32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256;
override SILU: u32 = 0u;
override FUSED_STATE: u32 = 0u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

//#include "glu_common.wgsl"

// Input column i of channel ch: i < 0 reads the state (column kernel - 1 + i), else row i of x.
fn column(i: i32, ch: u32) -> f32 {
  if (i < 0) {
    return state[params.state_offset + u32(i32(params.kernel) - 1 + i) * params.channels + ch];
  }
  return x[params.x_offset + u32(i) * params.x_stride + ch];
}

fn output(t: u32, ch: u32) {
  let k = params.kernel;
  var sum = 0.0;
  for (var j = 0u; j < k; j++) {
    sum += weight[ch * k + j] * column(i32(t + j) - i32(k - 1u), ch);
  }
  if (params.has_bias != 0u) {
    sum += bias[ch];
  }
  if (SILU != 0u) {
    sum = silu(sum);
  }
  out[params.out_offset + t * params.out_stride + ch] = sum;
}

// State column j becomes input column tokens - (kernel - 1) + j. In ascending j, a column still in
// the old state is read from index tokens + j > j, which this loop has not overwritten yet.
fn shift(ch: u32) {
  let keep = params.kernel - 1u;
  for (var j = 0u; j < keep; j++) {
    let value = column(i32(params.tokens + j) - i32(keep), ch);
    state[params.state_offset + j * params.channels + ch] = value;
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let index = (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
  if (FUSED_STATE != 0u) {
    if (index >= params.channels) {
      return;
    }
    for (var t = 0u; t < params.tokens; t++) {
      output(t, index);
    }
    shift(index);
    return;
  }
  if (index >= params.channels * params.tokens) {
    return;
  }
  output(index / params.channels, index % params.channels);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn shift_state(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let ch = (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
  if (ch >= params.channels) {
    return;
  }
  shift(ch);
}
