// F32 weights: row-major, `params.k` floats per row, stored as u32 bits.
fn w1(row: u32, k: u32) -> f32 {
  return bitcast<f32>(weights[row * params.k + k]);
}

// Four consecutive weights of `row` starting at column k (k + 3 < params.k).
fn w4(row: u32, k: u32) -> vec4f {
  let e = row * params.k + k;
  return bitcast<vec4f>(vec4u(weights[e], weights[e + 1u], weights[e + 2u], weights[e + 3u]));
}
