import { describe, expect, it } from 'vitest';
import { freshSeed, randomFloats } from '../../../../testing/gpu.ts';
import { sampleReference, type SamplingParams } from '../../../sampling/index.ts';
import { encodeArgmax, encodeSample, sampleScratchElements } from './sample.ts';
import { seededInts, useOpHarness } from '../../../../testing/op-harness.ts';

const h = useOpHarness();

function scratch(vocab: number, rows: number) {
  const n = sampleScratchElements(vocab, rows);
  return { values: h.poisoned(n), ids: h.poisoned(n) };
}

/** Seeded uniform numbers in [0, 1). */
function uniforms(seed: number): () => number {
  const next = seededInts(seed);
  return () => next(0, 2 ** 30 - 1) / 2 ** 30;
}

/**
 * Logits whose likely tokens are well separated: 200 "head" tokens at random ids with values
 * 8 - 0.05 j (+ up to 0.01 noise), the rest uniform in [-6, 2). f32 rounding cannot reorder them.
 */
function spacedLogits(vocab: number, seed: number): Float32Array<ArrayBuffer> {
  const rand = seededInts(seed);
  const noise = randomFloats(vocab, seed + 1);
  const logits = new Float32Array(vocab);
  for (let i = 0; i < vocab; i++) logits[i] = -2 + 4 * noise[i]!;
  const ids = Array.from({ length: vocab }, (_, i) => i);
  for (let j = 0; j < Math.min(200, vocab); j++) {
    const pick = rand(j, vocab - 1);
    [ids[j], ids[pick]] = [ids[pick]!, ids[j]!];
    logits[ids[j]!] = 8 - 0.05 * j + 0.005 * noise[(j * 7919) % vocab]!;
  }
  return logits;
}

/** A u at least `margin` away from every cumulative-probability boundary of the kept tokens. */
function safeU(probs: number[], next: () => number, margin = 1e-4): number {
  for (;;) {
    const u = next();
    let acc = 0;
    let ok = true;
    for (const p of probs) {
      acc += p;
      if (Math.abs(acc - u) < margin) ok = false;
    }
    if (ok) return u;
  }
}

/** Whether the top-p and min-p cuts of these logits are far from their thresholds. */
function cutsAreClear(logits: ArrayLike<number>, params: SamplingParams): boolean {
  const { kept } = sampleReference(logits, { ...params, temperature: 1 }, 0.5);
  const all = sampleReference(logits, { ...params, topP: 1, minP: 0, temperature: 1 }, 0.5).kept;
  const m = logits[all[0]!]!;
  const w = all.map((i) => Math.exp(logits[i]! - m));
  const total = w.reduce((a, b) => a + b, 0);
  if (params.topP < 1) {
    let cum = 0;
    for (const x of w) {
      cum += x / total;
      if (Math.abs(cum - params.topP) < 1e-4) return false;
    }
  }
  if (params.minP > 0) {
    const minLogit = m + Math.log(params.minP);
    for (const i of all) if (Math.abs(logits[i]! - minLogit) < 1e-3) return false;
  }
  return kept.length > 0;
}

async function runSample(logits: Float32Array<ArrayBuffer>, vocab: number, rows: number, params: SamplingParams, u: number[], stride = vocab): Promise<Uint32Array> {
  const tokens = h.uploadU32(new Uint32Array(rows).fill(0xdeadbeef));
  encodeSample(h.recorder, h.kernels, {
    logits: { buffer: h.upload(logits), stride },
    vocab,
    rows,
    params,
    random: h.upload(Float32Array.from(u)),
    tokens,
    scratch: scratch(vocab, rows),
  });
  await h.submit();
  return h.readU32(tokens, rows);
}

describe('argmax on the GPU', () => {
  it.each([1, 5, 4095, 4096, 4097, 32_000, 151_936, 262_144])('vocab %i', async (vocab) => {
    const seed = freshSeed(`argmax ${vocab}`);
    const rows = 3;
    const logits = randomFloats(vocab * rows, seed).map((x) => x * 20);
    const tokens = h.uploadU32(new Uint32Array(rows).fill(0xdeadbeef));
    encodeArgmax(h.recorder, h.kernels, { logits: { buffer: h.upload(logits) }, vocab, rows, random: h.dummy, tokens, scratch: scratch(vocab, rows) });
    await h.submit();
    const actual = await h.readU32(tokens, rows);
    for (let r = 0; r < rows; r++) {
      const row = logits.subarray(r * vocab, (r + 1) * vocab);
      expect(actual[r]).toBe(sampleReference(row, { temperature: 0, topK: 1, topP: 1, minP: 0 }, 0).token);
    }
  });

  it('breaks ties toward the lower token id, across workgroups', async () => {
    const vocab = 20_000;
    const logits = new Float32Array(vocab).fill(-1);
    for (const id of [19_999, 12_345, 4096, 5000]) logits[id] = 3.5;
    const tokens = h.uploadU32(new Uint32Array(1));
    encodeArgmax(h.recorder, h.kernels, { logits: { buffer: h.upload(logits) }, vocab, rows: 1, random: h.dummy, tokens, scratch: scratch(vocab, 1) });
    await h.submit();
    expect((await h.readU32(tokens, 1))[0]).toBe(4096);
  });
});

const samplingCases: Array<{ vocab: number; params: SamplingParams }> = [
  { vocab: 1000, params: { temperature: 1, topK: 40, topP: 1, minP: 0 } },
  { vocab: 32_000, params: { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 } },
  { vocab: 151_936, params: { temperature: 0.7, topK: 20, topP: 0.8, minP: 0 } },
  { vocab: 256_000, params: { temperature: 1.5, topK: 0, topP: 0.9, minP: 0 } },
  { vocab: 128_256, params: { temperature: 1, topK: 128, topP: 1, minP: 0.1 } },
  { vocab: 4097, params: { temperature: 2, topK: 64, topP: 0.5, minP: 0.01 } },
  { vocab: 50, params: { temperature: 1, topK: 100, topP: 1, minP: 0 } },
];

describe('temperature / top-k / top-p / min-p sampling on the GPU', () => {
  it.each(samplingCases)('vocab $vocab $params', async ({ vocab, params }) => {
    const seed = freshSeed(`sample ${vocab} ${JSON.stringify(params)}`);
    const next = uniforms(seed);
    const rows = 4;
    const logits = new Float32Array(vocab * rows);
    const u: number[] = [];
    const expected: number[] = [];
    for (let r = 0; r < rows; r++) {
      let row: Float32Array<ArrayBuffer>;
      let s = seed + 100 * r;
      do row = spacedLogits(vocab, s++);
      while (!cutsAreClear(row, params));
      logits.set(row, r * vocab);
      const { probs } = sampleReference(row, params, 0);
      u.push(safeU(probs, next));
      expected.push(sampleReference(row, params, u[r]!).token);
    }
    const actual = await runSample(logits, vocab, rows, params, u);
    expect(Array.from(actual)).toEqual(expected);
  });

  it('ties at the top-k cut go to the lower ids, and masked logits are never drawn', async () => {
    const seed = freshSeed('sample ties');
    const next = uniforms(seed);
    const vocab = 20_000;
    const params: SamplingParams = { temperature: 1, topK: 50, topP: 1, minP: 0 };
    // Row 0: values on a coarse grid, so runs of equal logits straddle every cut.
    // Row 1: a grammar-style mask: all but 7 tokens at -1e30, so the cut falls inside the mask.
    const coarse = randomFloats(vocab, seed).map((x) => Math.round(x * 6) / 2);
    const masked = new Float32Array(vocab).fill(-1e30);
    [19_000, 3, 8191, 8192, 16_385, 500, 12_000].forEach((id, j) => (masked[id] = 1 - 0.3 * j));
    const logits = new Float32Array(2 * vocab);
    logits.set(coarse, 0);
    logits.set(masked, vocab);
    const u = [safeU(sampleReference(coarse, params, 0).probs, next), safeU(sampleReference(masked, params, 0).probs, next)];
    const expected = [sampleReference(coarse, params, u[0]!).token, sampleReference(masked, params, u[1]!).token];
    expect(sampleReference(coarse, params, 0).kept.length).toBe(50);
    expect(masked[expected[1]!]).toBeGreaterThan(-1);
    expect(Array.from(await runSample(logits, vocab, 2, params, u))).toEqual(expected);
    // Greedy over the coarse row: the lowest id among the maxima.
    expect(Array.from(await runSample(coarse.slice(), vocab, 1, { ...params, temperature: 0 }, [0]))).toEqual([coarse.indexOf(Math.max(...coarse))]);
  });

  it('draw frequencies follow the reference distribution', async () => {
    const seed = 20_240_611; // fixed: a statistical check should not depend on the run
    const vocab = 3000;
    const params: SamplingParams = { temperature: 0.9, topK: 12, topP: 0.97, minP: 0 };
    const logits = new Float32Array(vocab);
    const base = randomFloats(vocab, seed);
    for (let i = 0; i < vocab; i++) logits[i] = base[i]! * 2;
    [5, 2999, 1234, 77, 4096 % vocab, 600, 1500, 2500].forEach((id, j) => (logits[id] = 6 - 0.4 * j));
    const draws = 800;
    const next = uniforms(seed + 1);
    const u = Array.from({ length: draws }, next);
    const actual = await runSample(logits, vocab, draws, params, u, 0); // stride 0: every row reads the same logits
    const { kept, probs } = sampleReference(logits, params, 0);
    const counts = new Map<number, number>();
    let mismatches = 0;
    actual.forEach((token, r) => {
      counts.set(token, (counts.get(token) ?? 0) + 1);
      if (token !== sampleReference(logits, params, u[r]!).token) mismatches++;
    });
    // f32 against float64 may only differ for a u within rounding of a boundary.
    expect(mismatches).toBeLessThanOrEqual(2);
    for (const token of counts.keys()) expect(kept).toContain(token);
    kept.forEach((token, i) => {
      const p = probs[i]!;
      const freq = (counts.get(token) ?? 0) / draws;
      expect(Math.abs(freq - p)).toBeLessThanOrEqual(4 * Math.sqrt((p * (1 - p)) / draws) + 1e-3);
    });
    expect(kept.length).toBeGreaterThan(3);
  });
});
