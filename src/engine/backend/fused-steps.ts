/**
 * The fused ops of the Backend interface (ops.ts) as the ops they fuse, called in turn: what a
 * backend that runs each op at once does (the CPU), and what the WebGPU backend falls back to
 * where its fused kernel does not take the operands (a prefill step, a split weight).
 */
import type { Backend, IdBuffer, KvStorage, RopeOp, Rows, Vector, Weight } from './ops.ts';

/** `Backend.addNorm`: x += cur * scale, then cur = RMSNorm(x) * weight. */
export function addNormInSteps(b: Backend, x: Rows, cur: Rows, n: number, rows: number, eps: number, weight?: Vector, scale = 1): void {
  if (scale !== 1) b.scale(cur, cur, n, rows, scale);
  b.add(x, cur, x, n, rows);
  b.norm('rms', x, cur, n, rows, eps, weight);
}

/** `Backend.ropeKvWrite`: rope of q and k, then the KV write. */
export function ropeKvWriteInSteps(b: Backend, cache: KvStorage, layer: number, q: Rows, k: Rows, v: Rows, heads: number, positions: IdBuffer, tokens: number, op: RopeOp): void {
  b.rope(q, tokens, heads, cache.headDim, positions, op);
  b.rope(k, tokens, cache.kvHeads, cache.headDim, positions, op);
  b.kvWrite(cache, layer, k, v, positions, tokens);
}

/** `Backend.gluMatmul`: the [gate; up] projection into gateUp, then the GLU of its halves. */
export function gluMatmulInSteps(b: Backend, activation: 'silu' | 'gelu', w: Weight, x: Rows, gateUp: Rows, out: Rows, tokens: number, bias?: Vector): void {
  const n = w.rows / 2;
  b.matmul(w, x, gateUp, tokens, bias);
  const at = gateUp.offset ?? 0;
  b.glu(activation, { t: gateUp.t, stride: gateUp.stride, offset: at }, { t: gateUp.t, stride: gateUp.stride, offset: at + n }, out, n, tokens);
}
