// Rotary position embedding, in place on q or k laid out [tokens][heads][head_dim] (strided), with
// ggml's semantics (ggml_rope_ext):
//   for each pair p < n_rot/2 (i0 = 2p):
//     theta_extrap = pos * freq_base^(-i0/n_rot) / freq_factor[p]      (factor 1 without a buffer)
//     theta_interp = freq_scale * theta_extrap
//     YaRN (ext_factor != 0): ramp = 1 - clamp((p - corr_low) / max(0.001, corr_high - corr_low), 0, 1)
//       theta = mix(theta_interp, theta_extrap, ramp * ext_factor)
//       mscale = attn_factor * (1 + 0.1 * ln(1 / freq_scale))
//     else theta = theta_interp, mscale = attn_factor
//     rotate (x0, x1) by theta and scale by mscale, where (x0, x1) are
//       mode normal (rope type 0): dims (2p, 2p + 1)
//       mode NeoX   (rope type 2): dims (p, p + n_rot/2)
//   dims >= n_rot are left as they are.
// One invocation per (token, head, pair).

struct Params {
  n_tokens: u32,
  n_heads: u32,
  n_rot: u32,          // rotated dims per head (even, <= head_dim)
  token_stride: u32,   // floats between tokens
  head_stride: u32,    // floats between heads
  offset: u32,         // first float of token 0, head 0
  neox: u32,
  has_freq_factors: u32,
  freq_base: f32,
  freq_scale: f32,
  ext_factor: f32,
  attn_factor: f32,
  corr_low: f32,       // YaRN correction dims, from ggml_rope_yarn_corr_dims on the host
  corr_high: f32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> positions: array<u32>;
@group(0) @binding(2) var<storage, read> freq_factors: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

// 2*pi split so that k * TAU_HI is exact for the k a position can reach (Cody-Waite): WGSL only
// promises sin/cos accuracy on [-pi, pi], and angles here reach tens of thousands of radians.
const TAU_HI: f32 = 6.28125;
const TAU_LO: f32 = 0.0019353071795864769;
const INV_TAU: f32 = 0.15915494309189535;

fn reduce_angle(t: f32) -> f32 {
  let k = round(t * INV_TAU);
  return (t - k * TAU_HI) - k * TAU_LO;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let half = params.n_rot / 2u;
  let index = (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
  if (index >= params.n_tokens * params.n_heads * half) {
    return;
  }
  let p = index % half;
  let head = (index / half) % params.n_heads;
  let t = index / (half * params.n_heads);

  var theta_extrap = f32(positions[t]) * pow(params.freq_base, -f32(2u * p) / f32(params.n_rot));
  if (params.has_freq_factors != 0u) {
    theta_extrap /= freq_factors[p];
  }
  let theta_interp = params.freq_scale * theta_extrap;
  var theta = theta_interp;
  var mscale = params.attn_factor;
  if (params.ext_factor != 0.0) {
    let y = (f32(p) - params.corr_low) / max(0.001, params.corr_high - params.corr_low);
    let ramp_mix = (1.0 - clamp(y, 0.0, 1.0)) * params.ext_factor;
    theta = theta_interp * (1.0 - ramp_mix) + theta_extrap * ramp_mix;
    mscale *= 1.0 + 0.1 * log(1.0 / params.freq_scale);
  }
  let angle = reduce_angle(theta);
  let c = cos(angle) * mscale;
  let s = sin(angle) * mscale;

  let base = params.offset + t * params.token_stride + head * params.head_stride;
  var i0 = base + 2u * p;
  var i1 = i0 + 1u;
  if (params.neox != 0u) {
    i0 = base + p;
    i1 = i0 + half;
  }
  let x0 = x[i0];
  let x1 = x[i1];
  x[i0] = x0 * c - x1 * s;
  x[i1] = x0 * s + x1 * c;
}
