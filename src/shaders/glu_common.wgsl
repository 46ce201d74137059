// The GLU activations, shared by glu.wgsl and the matvec that applies them as it stores
// (matvec_common.wgsl):
//   SiLU, silu(x) = x / (1 + exp(-x))                      (SwiGLU: Llama, Qwen, Mistral, Phi-3)
//   GELU, tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) x (1 + 0.044715 x^2))), and, as
//   ggml's CPU GELU, exactly 0 for x <= -10 and x for x >= 10   (GeGLU: Gemma)

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
