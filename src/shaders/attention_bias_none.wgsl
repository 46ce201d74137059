// The `bias` slot of attention_decode.wgsl and attention_prefill.wgsl without a relative position
// bias (every decoder-only model): the score as it is, no binding, nothing per score.

fn add_bias(score: f32, h: u32, qp: u32, key: u32) -> f32 {
  return score;
}
