// BF16 weights: row-major bfloat16 (the high half of an f32), two per u32 (element 2i low).
fn bf16_element(e: u32) -> f32 {
  let word = weights[e >> 1u];
  return bitcast<f32>(select(word << 16u, word & 0xffff0000u, (e & 1u) == 1u));
}

fn w1(row: u32, k: u32) -> f32 {
  return bf16_element(row * params.k + k);
}

fn w4(row: u32, k: u32) -> vec4f {
  let e = row * params.k + k;
  return vec4f(bf16_element(e), bf16_element(e + 1u), bf16_element(e + 2u), bf16_element(e + 3u));
}
