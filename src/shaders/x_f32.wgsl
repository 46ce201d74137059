// The `x` slot of matvec and matmul_rows: activations read as scalars (any row stride).
@group(0) @binding(2) var<storage, read> x: array<f32>;

fn x1(i: u32) -> f32 {
  return x[i];
}

fn x4(i: u32) -> vec4f {
  return vec4f(x[i], x[i + 1u], x[i + 2u], x[i + 3u]);
}
