// The `x` slot of matvec and matmul_rows: activations read four floats per load. Only for rows whose
// stride and length are multiples of 4, so that every x4 index is too.
@group(0) @binding(2) var<storage, read> x: array<vec4f>;

fn x1(i: u32) -> f32 {
  return x[i >> 2u][i & 3u];
}

fn x4(i: u32) -> vec4f {
  return x[i >> 2u];
}
