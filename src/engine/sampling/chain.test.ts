import { describe, expect, it } from 'vitest';
import { sampleReference, topCandidates } from './chain.ts';
import { effectiveTopK, SAMPLE_K_MAX } from './params.ts';
import { mulberry32, freshSeed } from '../../testing/random.ts';

// Logits whose temperature-1 probabilities are exactly 0.5, 0.25, 0.125, 0.0625, 0.0625.
const LN2 = Math.log(2);
const logits = [0, -LN2, -2 * LN2, -3 * LN2, -3 * LN2].map((x) => x + 1.5);

describe('sampling reference: llama.cpp default chain', () => {
  it('greedy and k = 1 take the best token, ties to the lower id', () => {
    expect(sampleReference([1, 3, 3, 2], { temperature: 0, topK: 40, topP: 1, minP: 0 }, 0.99).token).toBe(1);
    expect(sampleReference([1, 3, 3, 2], { temperature: 1, topK: 1, topP: 1, minP: 0 }, 0.99).token).toBe(1);
  });

  it('top-p keeps the smallest prefix whose mass reaches p, including the token that crosses it', () => {
    expect(sampleReference(logits, { temperature: 1, topK: 0, topP: 0.7, minP: 0 }, 0).kept).toEqual([0, 1]);
    expect(sampleReference(logits, { temperature: 1, topK: 0, topP: 0.45, minP: 0 }, 0).kept).toEqual([0]);
    expect(sampleReference(logits, { temperature: 1, topK: 0, topP: 0.8, minP: 0 }, 0).kept).toEqual([0, 1, 2]);
  });

  it('min-p keeps tokens with p >= min_p * p_max', () => {
    expect(sampleReference(logits, { temperature: 1, topK: 0, topP: 1, minP: 0.24 }, 0).kept).toEqual([0, 1, 2]);
    expect(sampleReference(logits, { temperature: 1, topK: 0, topP: 1, minP: 0.3 }, 0).kept).toEqual([0, 1]);
    expect(sampleReference(logits, { temperature: 1, topK: 0, topP: 1, minP: 0.6 }, 0).kept).toEqual([0]);
  });

  it('temperature applies after the cuts, which use temperature-1 probabilities', () => {
    // At T = 1 top-p 0.7 keeps two tokens; a high temperature flattens them but keeps the set.
    const { kept, probs } = sampleReference(logits, { temperature: 1000, topK: 0, topP: 0.7, minP: 0 }, 0);
    expect(kept).toEqual([0, 1]);
    expect(probs[0]).toBeCloseTo(0.5, 3);
  });

  it('draws the first token whose cumulative probability exceeds u', () => {
    const p = { temperature: 1, topK: 0, topP: 1, minP: 0 };
    expect(sampleReference(logits, p, 0).token).toBe(0);
    expect(sampleReference(logits, p, 0.4999).token).toBe(0);
    expect(sampleReference(logits, p, 0.5001).token).toBe(1);
    expect(sampleReference(logits, p, 0.8).token).toBe(2);
    expect(sampleReference(logits, p, 0.99).token).toBe(4);
  });

  it('top-k is bounded by SAMPLE_K_MAX, and 0 means that bound', () => {
    expect(effectiveTopK({ temperature: 1, topK: 0, topP: 1, minP: 0 })).toBe(SAMPLE_K_MAX);
    expect(effectiveTopK({ temperature: 1, topK: 1000, topP: 1, minP: 0 })).toBe(SAMPLE_K_MAX);
    expect(effectiveTopK({ temperature: 1, topK: 40, topP: 1, minP: 0 })).toBe(40);
    expect(effectiveTopK({ temperature: 0, topK: 40, topP: 1, minP: 0 })).toBe(1);
  });

  it('one-pass top-k selects what a full sort does, ties to the lower id', () => {
    const next = mulberry32(freshSeed('top candidates'));
    for (let trial = 0; trial < 40; trial++) {
      const vocab = 1 + Math.floor(next() * 3000);
      // Coarse values, so ties are common.
      const logits = Float32Array.from({ length: vocab }, () => Math.round((next() * 2 - 1) * 40) / 4);
      const k = [1, 5, 40, 128, 4000][trial % 5]!;
      const order = Array.from({ length: vocab }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b).slice(0, k);
      const got = topCandidates(logits, k);
      expect(got.ids).toEqual(order);
      expect(got.logits).toEqual(order.map((i) => logits[i]));
    }
  });
});
