// Repetition, frequency and presence penalties applied in place to one row of logits, for the
// tokens seen recently (llama.cpp's penalties sampler): for a token seen `count` times,
//   logit = logit <= 0 ? logit * repeat : logit / repeat
//   logit -= count * frequency + presence
// Only the listed tokens change, so the host sends (id, count) pairs, not a vocabulary-sized mask.

struct Params {
  n: u32,              // pairs in `seen`
  logits_offset: u32,  // float offset of the row in `logits`
  vocab: u32,
  repeat: f32,
  frequency: f32,
  presence: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> seen: array<vec2u>; // (token id, count)
@group(0) @binding(2) var<storage, read_write> logits: array<f32>;

//#include "penalty_common.wgsl"

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= params.n) {
    return;
  }
  let id = seen[i].x;
  let count = seen[i].y;
  if (id >= params.vocab || count == 0u) {
    return;
  }
  let at = params.logits_offset + id;
  logits[at] = penalized(logits[at], count);
}
