// F16 weights: row-major IEEE half floats, two per u32 (element 2i in the low half).
fn f16_element(e: u32) -> f32 {
  return unpack2x16float(weights[e >> 1u])[e & 1u];
}

fn w1(row: u32, k: u32) -> f32 {
  return f16_element(row * params.k + k);
}

fn w4(row: u32, k: u32) -> vec4f {
  let e = row * params.k + k;
  if ((e & 1u) == 0u) {
    return vec4f(unpack2x16float(weights[e >> 1u]), unpack2x16float(weights[(e >> 1u) + 1u]));
  }
  return vec4f(f16_element(e), f16_element(e + 1u), f16_element(e + 2u), f16_element(e + 3u));
}
