/**
 * The CPU training ops with the base products on the wasm kernels (train-ops.ts) against the
 * training layer's CPU ops: matmul and its backward on random F32, Q8_0, Q4_K, Q3_K and IQ4_XS bases (backward
 * chunks crossed), against float64 and against the float32 scalar ops, on 2 threads; then a whole
 * training step's loss and every adapter gradient on generated models. Relative errors are printed
 * as "[train wasm]" lines.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgmlType } from '../../gguf/ggml-types.ts';
import { bytesSource } from '../../gguf/source.ts';
import { makeRandomLora } from '../../../testing/make-lora.ts';
import { makeTestModel, type TestModelOptions } from '../../../testing/make-model.ts';
import { relativeRmsError } from '../../../testing/compare.ts';
import { mulberry32, tokensFor, uniformValues } from '../../../testing/random.ts';
import { randomFrozenMatrix } from '../../../testing/random-weights.ts';
import { loadTrainingBase } from '../../train/base.ts';
import { CpuTrainOps } from '../../train/cpu-ops.ts';
import { trainingStep, zeroGrads } from '../../train/step.ts';
import { CpuKernels } from './kernels.ts';
import { WasmTrainOps } from './train-ops.ts';

const f64 = new CpuTrainOps('f64');
const f32 = new CpuTrainOps('f32');
let ops: WasmTrainOps;
beforeAll(async () => {
  // Two threads (the pool takes part) and a small backward chunk: large matrices cross several.
  ops = new WasmTrainOps(await CpuKernels.create({ threads: 2 }), new CpuTrainOps('f32'), 600);
});
afterAll(() => ops?.destroy());

function record(what: string, err: number, bound: number) {
  console.log(`[train wasm] ${what}: ${err.toExponential(2)}`);
  expect(err).toBeLessThan(bound);
}

describe('wasm training ops: the base products', () => {
  it.each([
    { type: GgmlType.F32, n: 5, nIn: 24, nOut: 13, bias: true },
    { type: GgmlType.Q8_0, n: 7, nIn: 64, nOut: 40, bias: false },
    { type: GgmlType.Q4_K, n: 3, nIn: 256, nOut: 9, bias: true },
    { type: GgmlType.Q8_0, n: 70, nIn: 96, nOut: 130, bias: true },
    { type: GgmlType.Q4_K, n: 17, nIn: 512, nOut: 33, bias: false },
    { type: GgmlType.F32, n: 70, nIn: 21, nOut: 130, bias: true },
    { type: GgmlType.Q3_K, n: 4, nIn: 256, nOut: 6, bias: false },
    { type: GgmlType.IQ4_XS, n: 5, nIn: 512, nOut: 11, bias: true },
  ].map((c) => ({ ...c, name: GgmlType[c.type] })))('matmul and its backward on a $name base, $n x $nIn -> $nOut', (c) => {
    const next = mulberry32(c.nIn + c.nOut);
    const w = randomFrozenMatrix(c.type, c.nIn, c.nOut, c.nOut);
    const bias = c.bias ? Float32Array.from(uniformValues(next, c.nOut)) : undefined;
    const x = uniformValues(next, c.n * c.nIn);
    const dy = uniformValues(next, c.n * c.nOut);
    const dx0 = uniformValues(next, c.n * c.nIn);
    const dx64 = Float64Array.from(dx0);
    f64.matmulBackward(w, dy, c.n, dx64);
    const dx32 = Float32Array.from(dx0);
    f32.matmulBackward(w, Float32Array.from(dy), c.n, dx32);
    const dx = Float32Array.from(dx0);
    const y = ops.matmul(w, Float32Array.from(x), c.n, bias);
    ops.matmulBackward(w, Float32Array.from(dy), c.n, dx);
    expect(y).toBeInstanceOf(Float32Array);
    const label = `${GgmlType[c.type]} ${c.n}x${c.nIn}->${c.nOut}`;
    record(`matmul ${label} vs f64`, relativeRmsError(y, f64.matmul(w, x, c.n, bias)), 1e-6);
    record(`matmul ${label} vs f32 scalar`, relativeRmsError(y, f32.matmul(w, Float32Array.from(x), c.n, bias)), 1e-6);
    record(`matmul backward ${label} vs f64`, relativeRmsError(dx, dx64), 1e-6);
    record(`matmul backward ${label} vs f32 scalar`, relativeRmsError(dx, dx32), 1e-6);
  });

  it('float64 tensors go to the scalar ops, unchanged', () => {
    const next = mulberry32(5);
    const q = randomFrozenMatrix(GgmlType.Q8_0, 64, 5, 7);
    const x64 = uniformValues(next, 3 * 64);
    expect(ops.matmul(q, x64, 3)).toEqual(f32.matmul(q, x64, 3));
  });

  it('the pool ran part of the products', () => {
    expect(ops.kernels.workerChunks).toBeGreaterThan(0);
  });
});

const DIMS = { embd: 32, layers: 2, heads: 4, kvHeads: 2, ff: 48, seed: 3 } as const;
const ALL = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down', 'output'] as const;

describe('a wasm training step vs the CPU steps', () => {
  it.each<{ label: string; model: TestModelOptions; recompute: boolean }>([
    { label: 'llama, GQA, F32', model: { arch: 'llama', ...DIMS }, recompute: false },
    { label: 'qwen2, q/k/v biases, Q8_0 base', model: { arch: 'qwen2', ...DIMS, ff: 64, quant: 'q8_0' }, recompute: true },
  ])('$label: loss and every A and B gradient', async (c) => {
    const base = await loadTrainingBase(bytesSource(makeTestModel(c.model)));
    const data = makeRandomLora(base.config, { rank: 3, alpha: 6, targets: [...ALL], seed: 11 });
    const tokens = tokensFor(14, base.config.nVocab, 5);
    const weights = Array.from({ length: tokens.length - 1 }, (_, i) => (i % 5 === 2 ? 0 : 1));
    const run = async (o: CpuTrainOps | WasmTrainOps) => {
      const grads = zeroGrads(o, data);
      const r = await trainingStep(o, base, data, tokens, grads, { recompute: c.recompute, gradScale: 0.1, weights });
      return { r, grads };
    };
    const exact = await run(f64);
    const scalar = await run(f32);
    const wasm = await run(ops);
    let worst64 = 0;
    let worst32 = 0;
    for (let k = 0; k < data.targets.length; k++) {
      for (const part of ['a', 'b'] as const) {
        worst64 = Math.max(worst64, relativeRmsError(wasm.grads[k]![part], exact.grads[k]![part]));
        worst32 = Math.max(worst32, relativeRmsError(wasm.grads[k]![part], scalar.grads[k]![part]));
      }
    }
    const lossErr = Math.abs(wasm.r.lossSum - exact.r.lossSum) / exact.r.lossSum;
    console.log(`[train wasm] step ${c.label}: loss rel ${lossErr.toExponential(1)}; worst grad rel vs f64 ${worst64.toExponential(2)}, vs f32 scalar ${worst32.toExponential(2)}`);
    expect(wasm.r.weight).toBe(exact.r.weight);
    expect(lossErr).toBeLessThan(1e-6);
    expect(worst64).toBeLessThan(1e-5);
    expect(worst32).toBeLessThan(1e-5);
    for (const g of exact.grads) expect(Math.max(...Array.from(g.b, Math.abs))).toBeGreaterThan(0);
  });
});
