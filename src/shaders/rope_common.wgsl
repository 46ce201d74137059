// ggml's rope angle for one (position, pair), shared by rope.wgsl and rope_kv_write.wgsl. The
// includer declares `params` with n_rot, has_freq_factors, freq_base, freq_scale, ext_factor,
// attn_factor, corr_low and corr_high, and the `freq_factors` binding.

// 2*pi split so that k * TAU_HI is exact for the k a position can reach (Cody-Waite): WGSL only
// promises sin/cos accuracy on [-pi, pi], and angles here reach tens of thousands of radians.
const TAU_HI: f32 = 6.28125;
const TAU_LO: f32 = 0.0019353071795864769;
const INV_TAU: f32 = 0.15915494309189535;

fn reduce_angle(t: f32) -> f32 {
  let k = round(t * INV_TAU);
  return (t - k * TAU_HI) - k * TAU_LO;
}

// (cos, sin) of pair p's angle at position pos, times YaRN's mscale.
fn rope_cos_sin(pos: u32, p: u32) -> vec2f {
  var theta_extrap = f32(pos) * pow(params.freq_base, -f32(2u * p) / f32(params.n_rot));
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
  return vec2f(cos(angle), sin(angle)) * mscale;
}

// Indices (within a head) of the two dims pair p rotates: (2p, 2p + 1), or NeoX's (p, p + n_rot/2).
fn rope_pair(p: u32, neox: bool) -> vec2u {
  if (neox) {
    return vec2u(p, p + params.n_rot / 2u);
  }
  return vec2u(2u * p, 2u * p + 1u);
}
