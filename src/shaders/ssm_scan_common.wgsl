// What ssm_scan.wgsl and ssm_scan_chunked.wgsl share: the per-token inputs besides x, B and C, the
// per-head vectors, the state and the output, and ggml's softplus.

@group(0) @binding(2) var<storage, read> dt: array<f32>;
@group(0) @binding(3) var<storage, read> A: array<f32>;
@group(0) @binding(4) var<storage, read> D: array<f32>;
@group(0) @binding(5) var<storage, read> dt_bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> state: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<f32>;

// log(1 + e^v), the identity above 20 (ggml's); for small e^v the series, since log(1 + e) in f32
// loses e's digits.
fn softplus(v: f32) -> f32 {
  if (v > 20.0) {
    return v;
  }
  let e = exp(v);
  if (e < 1e-3) {
    return e * (1.0 - e * (0.5 - e / 3.0));
  }
  return log(1.0 + e);
}
