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

//#include "rope_common.wgsl"

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

  let cs = rope_cos_sin(positions[t], p);
  let c = cs.x;
  let s = cs.y;

  let base = params.offset + t * params.token_stride + head * params.head_stride;
  let pair = rope_pair(p, params.neox != 0u);
  let i0 = base + pair.x;
  let i1 = base + pair.y;
  let x0 = x[i0];
  let x1 = x[i1];
  x[i0] = x0 * c - x1 * s;
  x[i1] = x0 * s + x1 * c;
}
