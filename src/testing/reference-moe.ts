/**
 * The mixture-of-experts FFN of the float64 reference forward (reference-forward.ts), as llama.cpp's
 * `build_moe_ffn` (src/llama-graph.cpp) computes it for the architectures of
 * src/engine/model/moe-config.ts: router logits, softmax (or sigmoid) over all experts, the top
 * `nExpertUsed`, their probabilities as weights (renormalized, scaled), the weighted sum of those
 * experts' GLU FFNs, plus the shared expert (times sigmoid(x · ffn_gate_inp_shexp) when gated).
 * Every product in float64 over the dequantized weights; plain loops.
 */
import type { MoeConfig } from '../engine/model/moe-config.ts';

/** llama.cpp clamps the chosen weights' sum below at the smallest normal f16. */
const MIN_WEIGHT_SUM = 6.103515625e-5;

/** out[o] = sum_i W[base + o * nIn + i] * h[i]: rows of one expert's slice of a stacked tensor. */
function rowsTimes(w: Float32Array, base: number, nIn: number, nOut: number, h: Float64Array): Float64Array {
  const out = new Float64Array(nOut);
  for (let o = 0; o < nOut; o++) {
    let sum = 0;
    const row = base + o * nIn;
    for (let i = 0; i < nIn; i++) sum += w[row + i]! * h[i]!;
    out[o] = sum;
  }
  return out;
}

/** The GLU FFN of `h` through rows of gate/up ([nFf][nEmbd] at `upBase`) and down ([nEmbd][nFf] at `downBase`). */
function gluFfn(gate: Float32Array, up: Float32Array, down: Float32Array, upBase: number, downBase: number, nEmbd: number, nFf: number, h: Float64Array, act: (x: number) => number): Float64Array {
  const g = rowsTimes(gate, upBase, nEmbd, nFf, h);
  const u = rowsTimes(up, upBase, nEmbd, nFf, h);
  for (let i = 0; i < nFf; i++) g[i] = act(g[i]!) * u[i]!;
  return rowsTimes(down, downBase, nFf, nEmbd, g);
}

/** The experts a token chooses and their weights, from its router logits (ties: lower index first). */
export function referenceRoute(logits: Float64Array, moe: MoeConfig): { experts: number[]; weights: number[] } {
  const n = moe.nExpert;
  const probs = new Float64Array(n);
  if (moe.gating === 'softmax') {
    const max = Math.max(...logits);
    let sum = 0;
    for (let e = 0; e < n; e++) sum += probs[e] = Math.exp(logits[e]! - max);
    for (let e = 0; e < n; e++) probs[e] = probs[e]! / sum;
  } else {
    for (let e = 0; e < n; e++) probs[e] = 1 / (1 + Math.exp(-logits[e]!));
  }
  const experts = Array.from({ length: n }, (_, e) => e)
    .sort((a, b) => probs[b]! - probs[a]! || a - b)
    .slice(0, moe.nExpertUsed);
  let weights = experts.map((e) => probs[e]!);
  if (moe.normalize) {
    const sum = Math.max(weights.reduce((a, b) => a + b, 0), MIN_WEIGHT_SUM);
    weights = weights.map((w) => w / sum);
  }
  if (moe.weightsScale !== 0 && moe.weightsScale !== 1) weights = weights.map((w) => w * moe.weightsScale);
  return { experts, weights };
}

/** The block's MoE FFN output for one normalized token `h` [nEmbd], and its router logits [nExpert]. */
export function referenceMoeFfn(
  moe: MoeConfig,
  nEmbd: number,
  w: (name: string) => Float32Array,
  wOpt: (name: string) => Float32Array | undefined,
  il: number,
  h: Float64Array,
  act: (x: number) => number,
): { out: Float64Array; logits: Float64Array } {
  const L = (base: string) => `blk.${il}.${base}.weight`;
  const logits = rowsTimes(w(L('ffn_gate_inp')), 0, nEmbd, moe.nExpert, h);
  const { experts, weights } = referenceRoute(logits, moe);
  const out = new Float64Array(nEmbd);
  const F = moe.nFfExp;
  const gate = w(L('ffn_gate_exps'));
  const up = w(L('ffn_up_exps'));
  const down = w(L('ffn_down_exps'));
  experts.forEach((e, j) => {
    const y = gluFfn(gate, up, down, e * F * nEmbd, e * nEmbd * F, nEmbd, F, h, act);
    for (let i = 0; i < nEmbd; i++) out[i] = out[i]! + weights[j]! * y[i]!;
  });
  if (moe.nFfShexp > 0) {
    const y = gluFfn(w(L('ffn_gate_shexp')), w(L('ffn_up_shexp')), w(L('ffn_down_shexp')), 0, 0, nEmbd, moe.nFfShexp, h, act);
    let scale = 1;
    const g = moe.sharedGate ? wOpt(L('ffn_gate_inp_shexp')) : undefined;
    if (g) {
      let dot = 0;
      for (let i = 0; i < nEmbd; i++) dot += g[i]! * h[i]!;
      scale = 1 / (1 + Math.exp(-dot));
    }
    for (let i = 0; i < nEmbd; i++) out[i] = out[i]! + scale * y[i]!;
  }
  return { out, logits };
}
