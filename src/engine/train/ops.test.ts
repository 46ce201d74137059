/**
 * Every backward op of the CPU training ops checked on random shapes: its float64 run against
 * central finite differences of the op's own float64 forward (a scalar loss sum(dy * f(x)) probed
 * at random entries), and its float32 run against its float64 run. Relative errors are printed as
 * "[train ops]" lines (the closing note's gradient-check errors per op).
 */
import { describe, expect, it } from 'vitest';
import { GgmlType } from '../gguf/ggml-types.ts';
import { relativeRmsError } from '../../testing/compare.ts';
import { mulberry32, uniformValues } from '../../testing/random.ts';
import { CpuTrainOps } from './cpu-ops.ts';
import type { AttentionShape, FrozenMatrix, RopeTable, Vec } from './ops.ts';

const f64 = new CpuTrainOps('f64');
const f32 = new CpuTrainOps('f32');

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Largest |analytic - numeric| over probed entries, over the largest |numeric|. */
function fdCheck(x: Float64Array, analytic: ArrayLike<number>, loss: () => number, next: () => number, probes = 24): number {
  const h = 1e-5;
  let err = 0;
  let scale = 1e-12;
  for (let p = 0; p < probes; p++) {
    const i = Math.floor(next() * x.length);
    const keep = x[i]!;
    x[i] = keep + h;
    const up = loss();
    x[i] = keep - h;
    const down = loss();
    x[i] = keep;
    const numeric = (up - down) / (2 * h);
    err = Math.max(err, Math.abs(numeric - analytic[i]!));
    scale = Math.max(scale, Math.abs(numeric));
  }
  return err / scale;
}

const to32 = (v: Float64Array) => Float32Array.from(v);
function record(op: string, fd: number, vs32: number) {
  console.log(`[train ops] ${op}: f64 vs finite differences ${fd.toExponential(2)}, f32 vs f64 ${vs32.toExponential(2)}`);
  expect(fd).toBeLessThan(1e-6);
  expect(vs32).toBeLessThan(1e-5);
}

describe('training ops: backward vs finite differences', () => {
  it.each([1, 2, 3])('matmul (F32 base), random shape %i', (seed) => {
    const next = mulberry32(seed);
    const n = 1 + Math.floor(next() * 5);
    const nIn = 4 + Math.floor(next() * 20);
    const nOut = 3 + Math.floor(next() * 20);
    const w = Float32Array.from(uniformValues(next, nIn * nOut));
    const m: FrozenMatrix = { name: 'w', nIn, nOut, type: GgmlType.F32, bytes: new Uint8Array(w.buffer) };
    const x = uniformValues(next, n * nIn);
    const dy = uniformValues(next, n * nOut);
    const dx = new Float64Array(n * nIn);
    f64.matmulBackward(m, dy, n, dx);
    const fd = fdCheck(x, dx, () => dot(f64.matmul(m, x, n), dy), next);
    const dx32 = new Float32Array(n * nIn);
    f32.matmulBackward(m, to32(dy), n, dx32);
    record(`matmul ${n}x${nIn}->${nOut}`, fd, relativeRmsError(dx32, dx));
  });

  it.each([1, 2])('LoRA delta (A, B and x), random shape %i', (seed) => {
    const next = mulberry32(10 + seed);
    const n = 1 + Math.floor(next() * 4);
    const nIn = 5 + Math.floor(next() * 12);
    const nOut = 4 + Math.floor(next() * 12);
    const rank = 1 + Math.floor(next() * 4);
    const pair = { rank, a: uniformValues(next, rank * nIn), b: uniformValues(next, nOut * rank), s: 0.5 + next() };
    const x = uniformValues(next, n * nIn);
    const dy = uniformValues(next, n * nOut);
    const loss = () => dot(loraDelta(pair, nIn, nOut, x, n), dy);
    const grad = { a: new Float64Array(pair.a.length), b: new Float64Array(pair.b.length) };
    const dx = new Float64Array(x.length);
    const u = f64.loraForward(pair, nIn, nOut, x, n, new Float64Array(n * nOut));
    f64.loraBackward(pair, nIn, nOut, x, u, dy, n, grad, dx);
    const fd = Math.max(fdCheck(pair.a, grad.a, loss, next), fdCheck(pair.b, grad.b, loss, next), fdCheck(x, dx, loss, next));
    const p32 = { rank, a: to32(pair.a), b: to32(pair.b), s: pair.s };
    const g32 = { a: new Float32Array(pair.a.length), b: new Float32Array(pair.b.length) };
    const dx32 = new Float32Array(x.length);
    const u32 = f32.loraForward(p32, nIn, nOut, to32(x), n, new Float32Array(n * nOut));
    f32.loraBackward(p32, nIn, nOut, to32(x), u32, to32(dy), n, g32, dx32);
    record(`lora ${n}x${nIn}->${nOut} rank ${rank}`, fd, Math.max(relativeRmsError(g32.a, grad.a), relativeRmsError(g32.b, grad.b), relativeRmsError(dx32, dx)));
  });

  it.each([1, 2])('RMSNorm, random shape %i', (seed) => {
    const next = mulberry32(20 + seed);
    const rows = 1 + Math.floor(next() * 6);
    const len = 3 + Math.floor(next() * 30);
    const w = Float32Array.from(uniformValues(next, len));
    const x = uniformValues(next, rows * len);
    const dy = uniformValues(next, rows * len);
    const f = f64.rmsNorm(x, rows, len, 1e-5, w);
    const dx = f64.rmsNormBackward(x, f.r, len, w, dy);
    const fd = fdCheck(x, dx, () => dot(f64.rmsNorm(x, rows, len, 1e-5, w).y, dy), next);
    const f3 = f32.rmsNorm(to32(x), rows, len, 1e-5, w);
    record(`rmsnorm ${rows}x${len}`, fd, relativeRmsError(f32.rmsNormBackward(to32(x), f3.r, len, w, to32(dy)), dx));
  });

  it.each([false, true])('RoPE (neox %s)', (neox) => {
    const next = mulberry32(neox ? 31 : 30);
    const n = 5;
    const heads = 3;
    const headDim = 8;
    const nRot = 8;
    const table: RopeTable = { nRot, neox, cos: new Float64Array(n * nRot / 2), sin: new Float64Array(n * nRot / 2) };
    for (let t = 0; t < n; t++) for (let i = 0; i < nRot / 2; i++) {
      const th = t * Math.pow(10000, (-2 * i) / nRot);
      table.cos[t * nRot / 2 + i] = Math.cos(th);
      table.sin[t * nRot / 2 + i] = Math.sin(th);
    }
    const x = uniformValues(next, n * heads * headDim);
    const dy = uniformValues(next, x.length);
    const dx = Float64Array.from(dy);
    f64.rope(dx, n, heads, headDim, table, true);
    const fd = fdCheck(x, dx, () => {
      const y = Float64Array.from(x);
      f64.rope(y, n, heads, headDim, table, false);
      return dot(y, dy);
    }, next);
    const dx32 = to32(dy);
    f32.rope(dx32, n, heads, headDim, table, true);
    record(`rope ${neox ? 'neox' : 'normal'} ${n}x${heads}x${headDim}`, fd, relativeRmsError(dx32, dx));
  });

  it.each([1, 2, 3])('causal attention with GQA, random shape %i', (seed) => {
    const next = mulberry32(40 + seed);
    const nHeadKv = 1 + Math.floor(next() * 2);
    const shape: AttentionShape = { n: 2 + Math.floor(next() * 6), nHead: nHeadKv * (1 + Math.floor(next() * 3)), nHeadKv, headDimK: 2 + Math.floor(next() * 6), headDimV: 2 + Math.floor(next() * 6), scale: 0.4 };
    const { n, nHead, headDimK, headDimV } = shape;
    const q = uniformValues(next, n * nHead * headDimK);
    const k = uniformValues(next, n * nHeadKv * headDimK);
    const v = uniformValues(next, n * nHeadKv * headDimV);
    const dOut = uniformValues(next, n * nHead * headDimV);
    const f = f64.attention(q, k, v, shape);
    const g = f64.attentionBackward(q, k, v, f.probs, dOut, shape);
    const loss = () => dot(f64.attention(q, k, v, shape).out, dOut);
    const fd = Math.max(fdCheck(q, g.dq, loss, next), fdCheck(k, g.dk, loss, next), fdCheck(v, g.dv, loss, next));
    const f3 = f32.attention(to32(q), to32(k), to32(v), shape);
    const g3 = f32.attentionBackward(to32(q), to32(k), to32(v), f3.probs, to32(dOut), shape);
    record(`attention n ${n}, ${nHead}/${nHeadKv} heads, dims ${headDimK}/${headDimV}`, fd, Math.max(relativeRmsError(g3.dq, g.dq), relativeRmsError(g3.dk, g.dk), relativeRmsError(g3.dv, g.dv)));
  });

  it('SwiGLU', () => {
    const next = mulberry32(50);
    const gate = uniformValues(next, 40, 3);
    const up = uniformValues(next, 40);
    const dy = uniformValues(next, 40);
    const g = f64.swigluBackward(gate, up, dy);
    const loss = () => dot(f64.swiglu(gate, up), dy);
    const fd = Math.max(fdCheck(gate, g.dGate, loss, next), fdCheck(up, g.dUp, loss, next));
    const g3 = f32.swigluBackward(to32(gate), to32(up), to32(dy));
    record('swiglu 40', fd, Math.max(relativeRmsError(g3.dGate, g.dGate), relativeRmsError(g3.dUp, g.dUp)));
  });

  it('weighted cross-entropy', () => {
    const next = mulberry32(60);
    const n = 5;
    const V = 17;
    const logits = uniformValues(next, n * V, 4);
    const targets = [3, 0, 16, 8, 1];
    const weight = [1, 0, 0.5, 1, 2];
    const ce = f64.crossEntropy(logits, n, V, targets, weight);
    const fd = fdCheck(logits, ce.dLogits, () => dot(f64.crossEntropy(logits, n, V, targets, weight).loss, new Float64Array(n).fill(1)), next, 40);
    // A masked row has no gradient.
    for (let i = 0; i < V; i++) expect(ce.dLogits[V + i]).toBe(0);
    record('cross-entropy 5x17', fd, relativeRmsError(f32.crossEntropy(to32(logits), n, V, targets, weight).dLogits, ce.dLogits));
  });
});

/** The LoRA delta alone, s B (A x). */
function loraDelta(p: { rank: number; a: Vec; b: Vec; s: number }, nIn: number, nOut: number, x: Vec, n: number): Vec {
  const y = f64.alloc(n * nOut);
  f64.loraForward(p, nIn, nOut, x, n, y);
  return y;
}
