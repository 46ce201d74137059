// llama.cpp's penalties sampler on one logit of a token seen `count` times in the last lastN
// positions (count > 0). Included by logit_penalty.wgsl and logit_penalty_history.wgsl, whose
// Params both carry repeat, frequency and presence.
fn penalized(logit_in: f32, count: u32) -> f32 {
  var logit = select(logit_in / params.repeat, logit_in * params.repeat, logit_in <= 0.0);
  logit -= f32(count) * params.frequency + params.presence;
  return logit;
}
