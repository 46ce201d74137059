import { describe, expect, it } from 'vitest';
import { freshSeed, randomFloats } from '../../../../testing/gpu.ts';
import { applyPenalties, historyRing, recentTokenCounts } from '../../../sampling/penalties.ts';
import { encodeHistoryPenalties, encodePenalties, encodeTokenMask } from './penalty.ts';
import { applyTokenMask } from '../../../sampling/mask.ts';
import { useOpHarness } from '../../../../testing/op-harness.ts';

const h = useOpHarness();

describe('logit penalties on the GPU', () => {
  it.each([
    { repetition: 1.3, frequency: 0, presence: 0 },
    { repetition: 1, frequency: 0.25, presence: 0.5 },
    { repetition: 0.8, frequency: 0.1, presence: 1.5 },
  ])('equal the CPU rule for %o', async (penalty) => {
    const seed = freshSeed(`penalties ${JSON.stringify(penalty)}`);
    const vocab = 1000;
    const logits = randomFloats(vocab * 2, seed).map((x) => x * 8);
    // Tokens seen in a recent window, with repeats; one id out of range must be ignored.
    const history = Array.from(randomFloats(90, seed + 1), (x) => Math.floor((x + 1) * 40));
    const counts = recentTokenCounts([...history, vocab + 5], 64);
    const params = { ...penalty, lastN: 64 };
    const buffer = h.upload(new Float32Array(logits));
    const pairs = new Uint32Array(counts.flatMap(([id, n]) => [id, n]));
    encodePenalties(h.recorder, h.kernels, { logits: buffer, logitsOffset: vocab, vocab, seen: h.uploadU32(pairs), count: counts.length, params });
    await h.submit();
    const actual = await h.readF32(buffer, vocab * 2);
    const expected = new Float32Array(logits);
    applyPenalties(expected.subarray(vocab), counts, params);
    // WGSL division is accurate to 2.5 ULP, not correctly rounded: compare to a few ULP.
    for (let i = 0; i < actual.length; i++) {
      expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThanOrEqual(4e-7 * Math.abs(expected[i]!) + 1e-7);
    }
    expect(Array.from(actual).filter((x, i) => x !== logits[i]).length).toBeGreaterThan(10);
    expect(Array.from(actual.subarray(0, vocab))).toEqual(Array.from(logits.subarray(0, vocab)));
  });

  it.each([
    { repetition: 1.3, frequency: 0.2, presence: 0.4, lastN: 64, start: 0, length: 90 },
    { repetition: 0.7, frequency: 0, presence: 1, lastN: 64, start: 17, length: 30 },
    { repetition: 1.1, frequency: 0.5, presence: 0, lastN: 5, start: 3, length: 41 },
  ])('from a history ring on the GPU equal the CPU rule on the last N tokens: %o', async (c) => {
    const { start, length, ...params } = c;
    const seed = freshSeed(`history penalties ${JSON.stringify(c)}`);
    const vocab = 700;
    const logits = randomFloats(vocab * 2, seed).map((x) => x * 8);
    // Tokens at positions start ..< start + length, with repeats and one id past the vocabulary;
    // the ring holds all but the last, which the step's input appends.
    const tokens = Array.from(randomFloats(length, seed + 1), (x) => Math.floor((x + 1) * 30));
    tokens[Math.floor(length / 2)] = vocab + 5;
    const ring = historyRing(tokens.slice(0, -1), start, params.lastN);
    const history = h.uploadU32(ring);
    const stepTokens = h.uploadU32(Uint32Array.from([9, tokens.at(-1)!]));
    const positions = h.uploadU32(Uint32Array.from([0, start + length - 1]));
    const buffer = h.upload(new Float32Array(logits));
    encodeHistoryPenalties(h.recorder, h.kernels, { logits: buffer, logitsOffset: vocab, vocab, history, tokens: stepTokens, positions, last: 1, params });
    await h.submit();
    const actual = await h.readF32(buffer, vocab * 2);
    const expected = new Float32Array(logits);
    applyPenalties(expected.subarray(vocab), recentTokenCounts(tokens, params.lastN), params);
    for (let i = 0; i < actual.length; i++) {
      // Relative to the larger of the logit before and after: subtracting penalties from a logit near 1
      // leaves a small value with the rounding of the operands (one ulp at 1 is 1.19e-7).
      expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThanOrEqual(4e-7 * Math.max(Math.abs(expected[i]!), Math.abs(logits[i]!)) + 1e-7);
    }
    expect(Array.from(actual).filter((x, i) => x !== logits[i]).length).toBeGreaterThan(2);
    expect(Array.from(actual.subarray(0, vocab))).toEqual(Array.from(logits.subarray(0, vocab)));
    // The ring now holds the appended token, at its position modulo N.
    expect(Array.from(await h.readU32(history, params.lastN))).toEqual(Array.from(historyRing(tokens, start, params.lastN)));
  });

  it('counts only the last N tokens', () => {
    expect(recentTokenCounts([1, 2, 2, 3, 2], 3)).toEqual([
      [2, 2],
      [3, 1],
    ]);
  });

  it.each([1000, 70_001])('a token mask over %i tokens equals the CPU rule, and leaves other rows alone', async (vocab) => {
    const seed = freshSeed(`token mask ${vocab}`);
    const logits = randomFloats(vocab * 2, seed).map((x) => x * 8);
    const bits = randomFloats(Math.ceil(vocab / 32), seed + 1);
    const allowed = Uint32Array.from(bits, (x) => Math.floor((x + 1) * 0x7fffffff) ^ 0x5555);
    const buffer = h.upload(new Float32Array(logits));
    encodeTokenMask(h.recorder, h.kernels, { logits: buffer, logitsOffset: vocab, vocab, allowed: h.uploadU32(allowed) });
    await h.submit();
    const actual = await h.readF32(buffer, vocab * 2);
    const expected = new Float32Array(logits);
    applyTokenMask(expected.subarray(vocab), allowed);
    expect(Array.from(actual)).toEqual(Array.from(expected));
    expect(Array.from(expected.subarray(vocab)).filter((x) => x < -1e38).length).toBeGreaterThan(vocab / 4);
  });
});
