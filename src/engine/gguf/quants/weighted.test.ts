/**
 * Quantization with importance weights against ggml_quantize_chunk given the same quant_weights
 * (llama-ref quantize-chunk --imatrix): byte for byte, for the types llama-quantize's mixes use.
 */
import { describe, expect, it } from 'vitest';
import { GgmlType, ggmlTypeName } from '../ggml-types.ts';
import { llamaRefQuantize } from '../../../testing/llama-ref.ts';
import { quantizeWeighted } from './weighted.ts';

/** Deterministic values with a spread of magnitudes, outliers and an all-zero block. */
function testRows(nPerRow: number, nRows: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const x = new Float32Array(nPerRow * nRows);
  for (let i = 0; i < x.length; i++) {
    const g = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    x[i] = g * (i % 97 === 0 ? 8 : 1) * (1 + (i % 7));
  }
  x.fill(0, nPerRow, nPerRow + 32);
  return x;
}

function testWeights(n: number): Float32Array {
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = Math.fround(0.01 + ((i * 37) % 101) / 7 + (i % 13 === 0 ? 40 : 0));
  return w;
}

const TYPES = [GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K];

describe('quantizeWeighted against ggml_quantize_chunk with an imatrix', () => {
  it.each(TYPES.map((t) => [ggmlTypeName(t), t] as const))('%s', (name, type) => {
    const nPerRow = 512;
    const nRows = 6;
    const x = testRows(nPerRow, nRows, 7 + type);
    const w = testWeights(nPerRow);
    const ours = quantizeWeighted(type, x, nPerRow, nRows, w);
    const theirs = llamaRefQuantize(name, x, nPerRow, { chunk: true, imatrix: w });
    expect(ours.length).toBe(theirs.length);
    const at = ours.findIndex((v, i) => v !== theirs[i]);
    expect(at, `first differing byte ${at}`).toBe(-1);
  });
});
