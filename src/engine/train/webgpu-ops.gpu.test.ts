/**
 * The WebGPU training ops (backend/webgpu/train-ops.ts) against the CPU ops in float64, op by op
 * on random data (frozen F32, Q8_0 and Q4_K bases, matrices split across dequantization chunks),
 * then a whole training step's loss and every adapter gradient on generated models, and a few
 * trainer steps side by side. Relative errors are printed as "[train gpu]" lines.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgmlType } from '../gguf/ggml-types.ts';
import { bytesSource } from '../gguf/source.ts';
import { WebGpuTrainOps, type GpuTensor } from '../backend/webgpu/train-ops.ts';
import { acquireTestGpu, type TestGpu } from '../../testing/gpu.ts';
import { makeRandomLora } from '../../testing/make-lora.ts';
import { makeTestModel, type TestModelOptions } from '../../testing/make-model.ts';
import { relativeRmsError } from '../../testing/compare.ts';
import { mulberry32, tokensFor, uniformValues } from '../../testing/random.ts';
import { randomFrozenMatrix } from '../../testing/random-weights.ts';
import { loadTrainingBase } from './base.ts';
import { CpuTrainOps } from './cpu-ops.ts';
import { packTokens } from './data.ts';
import type { AttentionShape, RopeTable, Vec } from './ops.ts';
import { trainingStep, zeroGrads } from './step.ts';
import { LoraTrainer, newAdapter } from './trainer.ts';

const f64 = new CpuTrainOps('f64');
let gpu: TestGpu;
let ops: WebGpuTrainOps;
beforeAll(async () => {
  gpu = await acquireTestGpu();
  // A small scratch: the larger test matrices are dequantized in several chunks.
  ops = new WebGpuTrainOps(gpu.device, { scratchFloats: 600 });
});
afterAll(() => {
  ops?.destroy();
  gpu?.destroy();
});

const up = (v: Float64Array) => ops.upload(Float32Array.from(v));
async function read(...ts: GpuTensor[]): Promise<Vec[]> {
  return ops.read(ts);
}

/** Fails on any validation error the ops raised while `run` ran. */
async function checked<T>(run: () => Promise<T>): Promise<T> {
  gpu.device.pushErrorScope('validation');
  let out: T;
  try {
    out = await run();
  } finally {
    const error = await gpu.device.popErrorScope();
    expect(error?.message ?? '').toBe('');
  }
  return out;
}

function record(op: string, err: number, bound = 2e-5) {
  console.log(`[train gpu] ${op}: webgpu vs cpu f64 ${err.toExponential(2)}`);
  expect(err).toBeLessThan(bound);
}

describe('WebGPU training ops vs the CPU ops (float64)', () => {
  it.each([
    { type: GgmlType.F32, n: 5, nIn: 24, nOut: 13, bias: true },
    { type: GgmlType.Q8_0, n: 7, nIn: 64, nOut: 40, bias: false },
    { type: GgmlType.Q4_K, n: 3, nIn: 256, nOut: 9, bias: true },
    { type: GgmlType.F32, n: 70, nIn: 21, nOut: 130, bias: true },
  ])('matmul and its backward on a $type base, $n x $nIn -> $nOut', async (c) => {
    await checked(async () => {
      const next = mulberry32(c.nIn + c.nOut);
      const w = randomFrozenMatrix(c.type, c.nIn, c.nOut, c.nOut);
      const bias = c.bias ? Float32Array.from(uniformValues(next, c.nOut)) : undefined;
      const x = uniformValues(next, c.n * c.nIn);
      const dy = uniformValues(next, c.n * c.nOut);
      const dx0 = uniformValues(next, c.n * c.nIn);
      const dxCpu = Float64Array.from(dx0);
      f64.matmulBackward(w, dy, c.n, dxCpu);
      const dx = up(dx0);
      const y = ops.matmul(w, up(x), c.n, bias);
      ops.matmulBackward(w, up(dy), c.n, dx);
      const [yg, dxg] = await read(y, dx);
      record(`matmul ${c.type} ${c.n}x${c.nIn}->${c.nOut}`, relativeRmsError(yg!, f64.matmul(w, x, c.n, bias)));
      record(`matmul backward ${c.type}`, relativeRmsError(dxg!, dxCpu));
    });
  });

  it('LoRA forward and backward (dA, dB, dx accumulate)', async () => {
    await checked(async () => {
      const next = mulberry32(7);
      const [n, nIn, nOut, rank, s] = [6, 21, 17, 3, 0.75];
      const a = uniformValues(next, rank * nIn);
      const b = uniformValues(next, nOut * rank);
      const x = uniformValues(next, n * nIn);
      const dy = uniformValues(next, n * nOut);
      const y0 = uniformValues(next, n * nOut);
      const ga0 = uniformValues(next, rank * nIn);
      const gb0 = uniformValues(next, nOut * rank);
      const dx0 = uniformValues(next, n * nIn);
      const yC = Float64Array.from(y0);
      const gC = { a: Float64Array.from(ga0), b: Float64Array.from(gb0) };
      const dxC = Float64Array.from(dx0);
      const uC = f64.loraForward({ rank, a, b, s }, nIn, nOut, x, n, yC);
      f64.loraBackward({ rank, a, b, s }, nIn, nOut, x, uC, dy, n, gC, dxC);
      const p = { rank, a: up(a), b: up(b), s };
      const y = up(y0);
      const g = { a: up(ga0), b: up(gb0) };
      const dx = up(dx0);
      const xg = up(x);
      const u = ops.loraForward(p, nIn, nOut, xg, n, y);
      ops.loraBackward(p, nIn, nOut, xg, u, up(dy), n, g, dx);
      const [yg, ug, gag, gbg, dxg] = await read(y, u, g.a, g.b, dx);
      record('lora forward y, u', Math.max(relativeRmsError(yg!, yC), relativeRmsError(ug!, uC)));
      record('lora backward dA, dB, dx', Math.max(relativeRmsError(gag!, gC.a), relativeRmsError(gbg!, gC.b), relativeRmsError(dxg!, dxC)));
    });
  });

  it('RMS norm and its backward, rows longer than a workgroup', async () => {
    await checked(async () => {
      const next = mulberry32(8);
      const [rows, len] = [5, 150];
      const x = uniformValues(next, rows * len);
      const w = Float32Array.from(uniformValues(next, len));
      const dy = uniformValues(next, rows * len);
      const c = f64.rmsNorm(x, rows, len, 1e-5, w);
      const dxC = f64.rmsNormBackward(x, c.r, len, w, dy);
      const xg = up(x);
      const g = ops.rmsNorm(xg, rows, len, 1e-5, w);
      const dx = ops.rmsNormBackward(xg, g.r, len, w, up(dy));
      const [yg, rg, dxg] = await read(g.y, g.r, dx);
      record('rms norm y, r', Math.max(relativeRmsError(yg!, c.y), relativeRmsError(rg!, c.r)));
      record('rms norm backward', relativeRmsError(dxg!, dxC));
    });
  });

  it.each([false, true])('rope forward and inverse (neox %s)', async (neox) => {
    await checked(async () => {
      const next = mulberry32(neox ? 9 : 10);
      const [n, nHeads, headDim, nRot] = [5, 3, 8, 6];
      const half = nRot / 2;
      const table: RopeTable = { nRot, neox, cos: new Float64Array(n * half), sin: new Float64Array(n * half) };
      for (let i = 0; i < n * half; i++) {
        const th = next() * 6;
        table.cos[i] = Math.cos(th) * 1.1;
        table.sin[i] = Math.sin(th) * 1.1;
      }
      const x = uniformValues(next, n * nHeads * headDim);
      const fwd = Float64Array.from(x);
      f64.rope(fwd, n, nHeads, headDim, table, false);
      const inv = Float64Array.from(x);
      f64.rope(inv, n, nHeads, headDim, table, true);
      const a = up(x);
      const b = up(x);
      ops.rope(a, n, nHeads, headDim, table, false);
      ops.rope(b, n, nHeads, headDim, table, true);
      const [ag, bg] = await read(a, b);
      record(`rope${neox ? ' neox' : ''}`, Math.max(relativeRmsError(ag!, fwd), relativeRmsError(bg!, inv)));
    });
  });

  it.each([
    { n: 7, nHead: 4, nHeadKv: 2, headDimK: 8, headDimV: 8 },
    { n: 70, nHead: 3, nHeadKv: 1, headDimK: 12, headDimV: 6 },
  ])('causal GQA attention and its backward, n $n, $nHead/$nHeadKv heads', async (c) => {
    await checked(async () => {
      const next = mulberry32(c.n);
      const s: AttentionShape = { ...c, scale: 1 / Math.sqrt(c.headDimK) };
      const q = uniformValues(next, c.n * c.nHead * c.headDimK, 2);
      const k = uniformValues(next, c.n * c.nHeadKv * c.headDimK, 2);
      const v = uniformValues(next, c.n * c.nHeadKv * c.headDimV);
      const dOut = uniformValues(next, c.n * c.nHead * c.headDimV);
      const f = f64.attention(q, k, v, s);
      const b = f64.attentionBackward(q, k, v, f.probs, dOut, s);
      const [qg, kg, vg] = [up(q), up(k), up(v)];
      const g = ops.attention(qg, kg, vg, s);
      const gb = ops.attentionBackward(qg, kg, vg, g.probs, up(dOut), s);
      const [out, probs, dq, dk, dv] = await read(g.out, g.probs, gb.dq, gb.dk, gb.dv);
      record(`attention n ${c.n} out, probs`, Math.max(relativeRmsError(out!, f.out), relativeRmsError(probs!, f.probs)));
      record(`attention n ${c.n} backward dq, dk, dv`, Math.max(relativeRmsError(dq!, b.dq), relativeRmsError(dk!, b.dk), relativeRmsError(dv!, b.dv)));
    });
  });

  it('SwiGLU and its backward', async () => {
    await checked(async () => {
      const next = mulberry32(11);
      const gate = uniformValues(next, 1000, 4);
      const upv = uniformValues(next, 1000);
      const dy = uniformValues(next, 1000);
      const y = ops.swiglu(up(gate), up(upv));
      const d = ops.swigluBackward(up(gate), up(upv), up(dy));
      const c = f64.swigluBackward(gate, upv, dy);
      const [yg, dg, du] = await read(y, d.dGate, d.dUp);
      record('swiglu', relativeRmsError(yg!, f64.swiglu(gate, upv)));
      record('swiglu backward', Math.max(relativeRmsError(dg!, c.dGate), relativeRmsError(du!, c.dUp)));
    });
  });

  it('cross-entropy with per-token weights (0 masks a row) and a gradient scale', async () => {
    await checked(async () => {
      const next = mulberry32(12);
      const [n, V] = [6, 1000];
      const logits = uniformValues(next, n * V, 5);
      const targets = Array.from({ length: n }, () => Math.floor(next() * V));
      const weight = [1, 0, 0.5, 2, 1, 0];
      const c = f64.crossEntropy(logits, n, V, targets, weight, 0.25);
      const g = ops.crossEntropy(up(logits), n, V, targets, weight, 0.25);
      const [loss, dl] = await read(g.loss, g.dLogits);
      record('cross-entropy loss rows', relativeRmsError(loss!, c.loss));
      record('cross-entropy d logits', relativeRmsError(dl!, c.dLogits));
      expect(loss![1]).toBe(0);
    });
  });

  it('alloc zeroes, copy, addInPlace and free reuse memory', async () => {
    await checked(async () => {
      const a = ops.upload(Float32Array.from([1, 2, 3]));
      const b = ops.copy(a);
      ops.addInPlace(b, a);
      const z = ops.alloc(3);
      const [bg, zg] = await read(b, z);
      expect(Array.from(bg!)).toEqual([2, 4, 6]);
      expect(Array.from(zg!)).toEqual([0, 0, 0]);
      const before = ops.tensorBytes;
      ops.free(a, b, z);
      ops.free(ops.alloc(3), ops.alloc(3));
      expect(ops.tensorBytes).toBe(before);
    });
  });
});

const DIMS = { embd: 32, layers: 2, heads: 4, kvHeads: 2, ff: 48, seed: 3 } as const;
const ALL = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down', 'output'] as const;

describe('a WebGPU training step vs the CPU step', () => {
  it.each<{ label: string; model: TestModelOptions; recompute: boolean }>([
    { label: 'llama, GQA, llama3 rope factors, F32', model: { arch: 'llama', ...DIMS, ropeFreqs: true }, recompute: false },
    { label: 'qwen2, q/k/v biases, Q8_0 base', model: { arch: 'qwen2', ...DIMS, ff: 64, quant: 'q8_0' }, recompute: true },
    { label: 'qwen3, per-head q/k norms, head dim 12', model: { arch: 'qwen3', ...DIMS, headDim: 12, kvHeads: 1 }, recompute: true },
  ])('$label: loss and every A and B gradient', async (c) => {
    await checked(async () => {
      const base = await loadTrainingBase(bytesSource(makeTestModel(c.model)));
      const data = makeRandomLora(base.config, { rank: 3, alpha: 6, targets: [...ALL], seed: 11 });
      const tokens = tokensFor(14, base.config.nVocab, 5);
      const weights = Array.from({ length: tokens.length - 1 }, (_, i) => (i % 5 === 2 ? 0 : 1));
      const cpuGrads = zeroGrads(f64, data);
      const cpu = await trainingStep(f64, base, data, tokens, cpuGrads, { recompute: c.recompute, gradScale: 0.1, weights });
      const grads = zeroGrads(ops, data);
      const dispatches = ops.counters.dispatches;
      const submits = ops.counters.submits;
      const r = await trainingStep(ops, base, data, tokens, grads, { recompute: c.recompute, gradScale: 0.1, weights });
      const host = await ops.read(grads.flatMap((g) => [g.a, g.b]));
      ops.free(...grads.flatMap((g) => [g.a, g.b]));
      let worst = 0;
      for (const [k] of data.targets.entries()) worst = Math.max(worst, relativeRmsError(host[2 * k]!, cpuGrads[k]!.a), relativeRmsError(host[2 * k + 1]!, cpuGrads[k]!.b));
      const lossErr = Math.abs(r.lossSum - cpu.lossSum) / cpu.lossSum;
      console.log(`[train gpu] step ${c.label}${c.recompute ? ' recompute' : ''}: loss rel ${lossErr.toExponential(1)}, worst grad rel ${worst.toExponential(2)}; ${ops.counters.dispatches - dispatches} dispatches, ${ops.counters.submits - submits} submits`);
      expect(r.weight).toBe(cpu.weight);
      // Batched: a window's hundreds of dispatches go in a handful of submits (uploads, the loss read).
      expect(ops.counters.submits - submits).toBeLessThanOrEqual(6);
      expect(lossErr).toBeLessThan(1e-5);
      expect(worst).toBeLessThan(1e-4);
      for (const g of cpuGrads) expect(Math.max(...Array.from(g.b, Math.abs))).toBeGreaterThan(0);
    });
  });

  it('three trainer steps (batch of 2) match the CPU trainer', async () => {
    await checked(async () => {
      const base = await loadTrainingBase(bytesSource(makeTestModel({ arch: 'qwen2', ...DIMS, quant: 'q8_0' })));
      const windows = packTokens(tokensFor(60, base.config.nVocab, 9), undefined, 10);
      const opts = { lr: 1e-2, totalSteps: 3, warmupSteps: 1 };
      const cpu = new LoraTrainer(new CpuTrainOps('f32'), base, newAdapter(base, { rank: 2, targets: ['attn_q', 'attn_v', 'ffn_down', 'output'], seed: 5 }), opts);
      const gpuTrainer = new LoraTrainer(ops, base, newAdapter(base, { rank: 2, targets: ['attn_q', 'attn_v', 'ffn_down', 'output'], seed: 5 }), opts);
      for (let s = 0; s < 3; s++) {
        const batch = [windows[2 * s]!, windows[2 * s + 1]!];
        const a = await cpu.trainStep(batch);
        const b = await gpuTrainer.trainStep(batch);
        console.log(`[train gpu] trainer step ${a.step}: loss cpu ${a.loss.toFixed(6)} gpu ${b.loss.toFixed(6)}, grad norm cpu ${a.gradNorm.toFixed(5)} gpu ${b.gradNorm.toFixed(5)}`);
        expect(Math.abs(b.loss - a.loss) / a.loss).toBeLessThan(1e-5);
        expect(Math.abs(b.gradNorm - a.gradNorm) / a.gradNorm).toBeLessThan(1e-3);
      }
      let worst = 0;
      for (const [k, t] of cpu.adapter.targets.entries()) worst = Math.max(worst, relativeRmsError(gpuTrainer.adapter.targets[k]!.b, t.b), relativeRmsError(gpuTrainer.adapter.targets[k]!.a, t.a));
      console.log(`[train gpu] adapter after 3 steps: worst rel diff ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-3);
      const ev = await gpuTrainer.evaluate([windows[windows.length - 1]!]);
      const evCpu = await cpu.evaluate([windows[windows.length - 1]!]);
      expect(Math.abs(ev.loss - evCpu.loss) / evCpu.loss).toBeLessThan(1e-4);
    });
  });
});
