/**
 * What the T5 parity tests on both backends share (t5-cpu.test.ts, t5.gpu.test.ts): the sizes,
 * the F32 cases, one case's inputs and its references (llama.cpp's encdec and the float64
 * reference), our logits through T5Model with the decoder fed in pieces, and the KL figures.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Backend } from '../../src/engine/backend/ops.ts';
import { T5Model } from '../../src/engine/model/t5-forward.ts';
import { nodeFileSource } from '../../src/node/file-source.ts';
import { argmax, klDivergencePerRow, topOneAgreement } from '../../src/testing/compare.ts';
import { llamaRefEncDecLogits } from '../../src/testing/llama-ref.ts';
import { makeTestModel, type TestModelOptions } from '../../src/testing/make-model.ts';
import { tokensFor } from '../../src/testing/random.ts';
import { T5ReferenceSession, loadT5Reference, type T5ReferenceModel } from '../../src/testing/reference-t5.ts';

export const N_INPUT = 48;
export const N_DECODER = 40;
/** KL per decoder position. */
export const BAR = 1e-5;

/** The two F32 files every backend is held to: gated-GELU Flan-T5 and ReLU T5 (tied, fewer buckets, uneven depths). */
export const F32_CASES: Array<{ label: string; options: TestModelOptions }> = [
  { label: 'Flan-T5 (gated GELU) F32, embd 64, 2+2 layers, 4 heads x 16, 32 buckets', options: { arch: 't5', embd: 64, layers: 2, heads: 4, ff: 128, seed: 41 } },
  { label: 'T5 (ReLU) F32, embd 48, 3 enc + 2 dec layers, 6 heads x 12, 16 buckets, tied', options: { arch: 't5', embd: 48, layers: 3, decoderLayers: 2, heads: 6, headDim: 12, ff: 96, relBuckets: 16, t5Ffn: 'relu', tiedEmbeddings: true, seed: 42 } },
];

export interface T5Case {
  reference: T5ReferenceModel;
  input: number[];
  decoder: number[];
  /** llama.cpp's logits (f32 KV cache) and the float64 reference's, [decoder][nVocab]. */
  llama: Float32Array;
  exact: ArrayLike<number>;
}

/** Case `i`'s input and decoder tokens (drawn from its index) and both references' logits for them. */
export async function t5Case(path: string, i: number): Promise<T5Case> {
  const reference = await loadT5Reference(path);
  const V = reference.config.nVocab;
  const input = tokensFor(N_INPUT, V, 500 + i);
  const decoder = [reference.config.decoderStart ?? 0, ...tokensFor(N_DECODER - 1, V, 600 + i)];
  const llama = llamaRefEncDecLogits(path, input, decoder, { kvType: 'f32', threads: 2 }).logits;
  const exact = new T5ReferenceSession(reference, input).eval(decoder);
  return { reference, input, decoder, llama, exact };
}

/** Our logits for `decoder` after encoding `input`, the decoder in one batch or fed in `pieces`. */
export async function t5Logits(backend: Backend, path: string, input: number[], decoder: number[], pieces?: number[]): Promise<Float32Array> {
  const source = await nodeFileSource(path);
  try {
    const model = await T5Model.load(backend, source, { inputCapacity: 64, outputCapacity: 64 });
    await model.encode(input);
    if (!pieces) return await model.decode(decoder);
    const V = model.config.nVocab;
    const out = new Float32Array(decoder.length * V);
    let at = 0;
    for (const n of pieces) {
      out.set(await model.decode(decoder.slice(at, at + n)), at * V);
      at += n;
    }
    expect(at).toBe(decoder.length);
    return out;
  } finally {
    await source.close();
  }
}

export interface Figures {
  maxKl: number;
  meanKl: number;
  top1: number;
}

export function compare(reference: ArrayLike<number>, actual: ArrayLike<number>, nVocab: number): Figures {
  const kl = klDivergencePerRow(reference, actual, nVocab);
  return { maxKl: Math.max(...kl), meanKl: kl.reduce((a, b) => a + b, 0) / kl.length, top1: topOneAgreement(reference, actual, nVocab) };
}

export const show = (f: Figures) => `KL max ${f.maxKl.toExponential(2)} (mean ${f.meanKl.toExponential(2)}), top-1 ${(f.top1 * 100).toFixed(1)}%`;

/** A generated T5 file written as `dir`/`name`.gguf; its path. */
export function writeT5Model(dir: string, name: string, options: TestModelOptions): string {
  const path = join(dir, `${name}.gguf`);
  writeFileSync(path, makeTestModel(options));
  return path;
}

/**
 * The bars every backend meets with f32 activations: the float64 reference within BAR per decoder
 * position, and on an unquantized file llama.cpp too (gated GELU by the mean: llama.cpp's GELU is an
 * f16 table).
 */
export function expectF32Parity(vsExact: Figures, vsLlama: Figures, quantized: boolean, gatedGelu: boolean): void {
  expect(vsExact.maxKl).toBeLessThanOrEqual(BAR);
  expect(vsExact.top1).toBeGreaterThanOrEqual(0.99);
  if (quantized) return;
  expect(vsLlama.top1).toBeGreaterThanOrEqual(0.99);
  if (gatedGelu) expect(vsLlama.meanKl).toBeLessThanOrEqual(BAR);
  else expect(vsLlama.maxKl).toBeLessThanOrEqual(BAR);
}

/**
 * Greedy `tokens` after encoding `input` must each be the argmax of the float64 reference's logits at
 * their position (the decoder fed the start token and the tokens before). Returns those logits.
 */
export function expectGreedyArgmax(reference: T5ReferenceModel, input: number[], tokens: number[]): ArrayLike<number> {
  const V = reference.config.nVocab;
  const exact = new T5ReferenceSession(reference, input).eval([reference.config.decoderStart ?? 0, ...tokens.slice(0, -1)]);
  expect(tokens.map((_, i) => argmax(exact, i * V, V))).toEqual(tokens);
  return exact;
}
