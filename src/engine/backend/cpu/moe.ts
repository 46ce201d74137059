/**
 * The mixture-of-experts FFN on the CPU backend (`moeFfn` of ../ops.ts). The router is one matmul
 * of every token; the choice of experts (softmax or sigmoid, top-k, weights) runs on the host, a
 * few dozen floats per token, read straight from the memory the kernels wrote. Then, expert by
 * expert, the rows of the tokens that chose it are gathered into one batch and its gate, up and
 * down run as ordinary matmuls over that expert's rows of the stacked tensors (a weight view at an
 * offset: no copies), on every thread: an expert's weights are read once per step however many
 * tokens chose it, and an expert no token chose is never read. Decode therefore reads `used` of
 * `nExpert` experts' bytes per layer.
 */
import type { Activation, Backend, MoeFfnOp, Rows, Vector, Weight } from '../ops.ts';

/** What the MoE steps need of the CPU backend beside its ops. */
export interface MoeHost {
  backend: Backend;
  /**
   * The floats of an activation, in place: valid until the next allocation, and a matmul may grow its
   * activation-quantizing scratch once, so take a view after the kernels that precede its use.
   */
  view(t: Activation | Vector): Float32Array;
  /** Rows first ..< first + count of a weight, as a weight of its own (a view, not a copy). */
  rowsOf(w: Weight, first: number, count: number): Weight;
}

/** llama.cpp clamps the sum of the chosen weights below at the smallest normal f16 before dividing. */
const MIN_WEIGHT_SUM = 6.103515625e-5;

/**
 * The chosen experts of each token and their weights, [tokens][used] each, from router logits
 * [tokens][nExpert] (row stride `stride`): probabilities over all experts, the `used` largest in
 * descending order (ties: the lower index first), renormalized and scaled as the op says.
 */
export function routeTokens(
  logits: Float32Array,
  offset: number,
  stride: number,
  tokens: number,
  op: Pick<MoeFfnOp, 'nExpert' | 'used' | 'gating' | 'normalize' | 'weightsScale'>,
): { experts: Int32Array; weights: Float32Array } {
  const { nExpert, used } = op;
  const experts = new Int32Array(tokens * used);
  const weights = new Float32Array(tokens * used);
  const probs = new Float64Array(nExpert);
  const order = Array.from({ length: nExpert }, (_, i) => i);
  for (let t = 0; t < tokens; t++) {
    const row = offset + t * stride;
    if (op.gating === 'softmax') {
      let max = -Infinity;
      for (let e = 0; e < nExpert; e++) max = Math.max(max, logits[row + e]!);
      let sum = 0;
      for (let e = 0; e < nExpert; e++) sum += probs[e] = Math.exp(logits[row + e]! - max);
      for (let e = 0; e < nExpert; e++) probs[e] = probs[e]! / sum;
    } else {
      for (let e = 0; e < nExpert; e++) probs[e] = 1 / (1 + Math.exp(-logits[row + e]!));
    }
    order.sort((a, b) => probs[b]! - probs[a]! || a - b);
    let sum = 0;
    for (let j = 0; j < used; j++) sum += probs[order[j]!]!;
    const divisor = op.normalize ? Math.max(sum, MIN_WEIGHT_SUM) : 1;
    const scale = op.weightsScale !== 0 ? op.weightsScale : 1;
    for (let j = 0; j < used; j++) {
      experts[t * used + j] = order[j]!;
      weights[t * used + j] = (probs[order[j]!]! / divisor) * scale;
    }
  }
  return { experts, weights };
}

/** Runs the MoE FFN of `tokens` rows of x into out (x and out are different activations). */
export function moeFfnOnHost(host: MoeHost, x: Rows, out: Rows, tokens: number, op: MoeFfnOp): void {
  const b = host.backend;
  const E = op.router.k;
  const s = op.scratch;
  if (x.t === out.t) throw new RangeError('moeFfn: out must be another activation than x');
  const at = (r: Rows, t: number) => (r.offset ?? 0) + t * r.stride;

  // Router logits of every token, then the choice of experts on the host.
  b.matmul(op.router, x, { t: s.logits, stride: op.nExpert }, tokens);
  const { experts, weights } = routeTokens(host.view(s.logits), 0, op.nExpert, tokens, op);

  // The shared expert (every token) first: out = its output (times its sigmoid gate), else zeros.
  if (op.shared) {
    const sh = op.shared;
    const F = sh.nFf;
    b.matmul(sh.gate, x, { t: s.gate, stride: F }, tokens);
    b.matmul(sh.up, x, { t: s.up, stride: F }, tokens);
    b.glu(op.activation, { t: s.gate, stride: F }, { t: s.up, stride: F }, { t: s.h, stride: F }, F, tokens);
    b.matmul(sh.down, { t: s.h, stride: F }, { t: s.y, stride: E }, tokens);
    const [xm, om, y] = [host.view(x.t), host.view(out.t), host.view(s.y)];
    const g = sh.gateInp ? host.view(sh.gateInp) : undefined;
    for (let t = 0; t < tokens; t++) {
      let scale = 1;
      if (g) {
        let dot = 0;
        for (let i = 0; i < E; i++) dot += xm[at(x, t) + i]! * g[i]!;
        scale = 1 / (1 + Math.exp(-dot));
      }
      for (let i = 0; i < E; i++) om[at(out, t) + i] = y[t * E + i]! * scale;
    }
  } else {
    const om = host.view(out.t);
    for (let t = 0; t < tokens; t++) om.fill(0, at(out, t), at(out, t) + E);
  }

  // Expert by expert: gather the tokens that chose it, run its FFN once on all of them, add back weighted.
  const F = op.nFf;
  const chosenBy: number[][] = Array.from({ length: op.nExpert }, () => []);
  for (let i = 0; i < experts.length; i++) chosenBy[experts[i]!]!.push(i);
  for (let e = 0; e < op.nExpert; e++) {
    const picks = chosenBy[e]!;
    const m = picks.length;
    if (m === 0) continue;
    const [xm, gathered] = [host.view(x.t), host.view(s.x)];
    for (let j = 0; j < m; j++) {
      const t = Math.floor(picks[j]! / op.used);
      gathered.set(xm.subarray(at(x, t), at(x, t) + E), j * E);
    }
    const gx: Rows = { t: s.x, stride: E };
    b.matmul(host.rowsOf(op.gate, e * F, F), gx, { t: s.gate, stride: F }, m);
    b.matmul(host.rowsOf(op.up, e * F, F), gx, { t: s.up, stride: F }, m);
    b.glu(op.activation, { t: s.gate, stride: F }, { t: s.up, stride: F }, { t: s.h, stride: F }, F, m);
    b.matmul(host.rowsOf(op.down, e * E, E), { t: s.h, stride: F }, { t: s.y, stride: E }, m);
    const [om, y] = [host.view(out.t), host.view(s.y)];
    for (let j = 0; j < m; j++) {
      const t = Math.floor(picks[j]! / op.used);
      const w = weights[picks[j]!]!;
      const o = at(out, t);
      for (let i = 0; i < E; i++) om[o + i] = om[o + i]! + w * y[j * E + i]!;
    }
  }
}
