// Gated linear units for the feed-forward block: out[r, i] = act(gate[r, i]) * up[r, i] with
//   ACT 0: SiLU, silu(x) = x / (1 + exp(-x))                      (SwiGLU: Llama, Qwen, Mistral, Phi-3)
//   ACT 1: GELU, tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) x (1 + 0.044715 x^2))), and, as
//          ggml's CPU GELU, exactly 0 for x <= -10 and x for x >= 10   (GeGLU: Gemma)
// gate and up may be two slices of one fused gate_up output (both bindings are read-only, so
// they may be the same buffer). One invocation per output element.

struct Params {
  n: u32,          // elements per row (the feed-forward width)
  rows: u32,
  gate_stride: u32,
  gate_offset: u32,
  up_stride: u32,
  up_offset: u32,
  out_stride: u32,
  out_offset: u32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256;
override ACT: u32 = 0u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const GELU_COEF_A: f32 = 0.044715;

fn silu(x: f32) -> f32 {
  // The clamp keeps exp finite (WGSL does not promise infinities); the result is ~0 there anyway.
  return x / (1.0 + exp(min(-x, 80.0)));
}

fn gelu(x: f32) -> f32 {
  if (x <= -10.0) {
    return 0.0;
  }
  if (x >= 10.0) {
    return x;
  }
  return 0.5 * x * (1.0 + tanh(SQRT_2_OVER_PI * x * (1.0 + GELU_COEF_A * x * x)));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let index = (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
  if (index >= params.n * params.rows) {
    return;
  }
  let r = index / params.n;
  let i = index % params.n;
  let g = gate[params.gate_offset + r * params.gate_stride + i];
  var a: f32;
  if (ACT == 0u) {
    a = silu(g);
  } else {
    a = gelu(g);
  }
  out[params.out_offset + r * params.out_stride + i] = a * up[params.up_offset + r * params.up_stride + i];
}
