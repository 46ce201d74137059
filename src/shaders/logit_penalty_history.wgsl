// Repetition, frequency and presence penalties (llama.cpp's penalties sampler) from a history of
// recent tokens kept on the GPU, so a decode loop that feeds each sampled id straight into the
// next step never reads logits or counts back. `history` is a ring of n ids: the token at
// position p sits at p % n (0xffffffff: empty). The step first appends its last input token
// (tokens[last] at positions[last]), then counts each id of the ring once, at its first slot, and
// penalizes it: the same as `applyPenalties(logits, recentTokenCounts(last n tokens, n))`, since
// every id is adjusted once whatever the order.
//
// One workgroup; n is small (64 by default), so n * n comparisons are nothing next to a step.

struct Params {
  n: u32,              // ring length (lastN)
  last: u32,           // index of the step's last input token in tokens / positions
  logits_offset: u32,  // float offset of the row in `logits`
  vocab: u32,
  repeat: f32,
  frequency: f32,
  presence: f32,
}

const EMPTY: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read_write> history: array<u32>;
@group(0) @binding(4) var<storage, read_write> logits: array<f32>;

//#include "penalty_common.wgsl"

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32) {
  if (lid == 0u) {
    history[positions[params.last] % params.n] = tokens[params.last];
  }
  storageBarrier();
  for (var i = lid; i < params.n; i += 64u) {
    let id = history[i];
    if (id == EMPTY || id >= params.vocab) {
      continue;
    }
    var first = true;
    var count = 0u;
    for (var j = 0u; j < params.n; j++) {
      if (history[j] == id) {
        if (j < i) {
          first = false;
        }
        count++;
      }
    }
    if (first) {
      let at = params.logits_offset + id;
      logits[at] = penalized(logits[at], count);
    }
  }
}
