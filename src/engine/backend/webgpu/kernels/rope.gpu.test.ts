import { describe, expect, it } from 'vitest';
import { freshSeed, randomFloats } from '../../../../testing/gpu.ts';
import { normalizedMse } from '../../../../testing/compare.ts';
import { yarnCorrDims } from '../../rope-scaling.ts';
import { encodeRope, llama3FreqFactors, ropeReference, type RopeParams } from './rope.ts';
import { seededInts, useOpHarness } from '../../../../testing/op-harness.ts';

const h = useOpHarness();

interface Case extends RopeParams {
  name: string;
  tokens: number;
  heads: number;
  headDim: number;
  maxPos: number;
  /** Rotate the k slice of a fused [tokens][q | k | v] buffer instead of a plain one. */
  fused?: boolean;
  factors?: 'llama3' | 'random';
}

const cases: Case[] = [
  { name: 'normal', mode: 'normal', nRot: 64, freqBase: 10000, tokens: 5, heads: 3, headDim: 64, maxPos: 3000 },
  { name: 'neox', mode: 'neox', nRot: 128, freqBase: 1_000_000, tokens: 7, heads: 2, headDim: 128, maxPos: 3000 },
  { name: 'neox partial', mode: 'neox', nRot: 32, freqBase: 10000, tokens: 3, heads: 5, headDim: 80, maxPos: 2000 },
  { name: 'normal partial fused', mode: 'normal', nRot: 24, freqBase: 10000, tokens: 9, heads: 3, headDim: 96, maxPos: 500, fused: true },
  { name: 'neox fused', mode: 'neox', nRot: 64, freqBase: 1_000_000, tokens: 33, heads: 2, headDim: 64, maxPos: 2000, fused: true },
  { name: 'linear', mode: 'normal', nRot: 64, freqBase: 10000, tokens: 4, heads: 3, headDim: 64, maxPos: 2000, scaling: { freqScale: 0.25 } },
  {
    name: 'yarn',
    mode: 'neox',
    nRot: 128,
    freqBase: 1_000_000,
    tokens: 6,
    heads: 3,
    headDim: 128,
    maxPos: 3000,
    scaling: { freqScale: 0.25, extFactor: 1, attnFactor: 1, betaFast: 32, betaSlow: 1, origCtx: 32768 },
  },
  {
    name: 'yarn partial mix',
    mode: 'normal',
    nRot: 48,
    freqBase: 10000,
    tokens: 3,
    heads: 2,
    headDim: 64,
    maxPos: 1000,
    scaling: { freqScale: 0.5, extFactor: 0.7, attnFactor: 0.9, betaFast: 32, betaSlow: 1, origCtx: 2048 },
  },
  { name: 'llama3 factors', mode: 'normal', nRot: 128, freqBase: 500000, tokens: 5, heads: 4, headDim: 128, maxPos: 3000, factors: 'llama3' },
  // Far positions: theta = pos * inv_freq carries f32 rounding of ~pos * 6e-8 rad (as ggml's f32
  // path does); at 32k that still stays ~10x under the bound (seen: nmse ~1e-7).
  { name: 'neox far positions', mode: 'neox', nRot: 128, freqBase: 1_000_000, tokens: 8, heads: 2, headDim: 128, maxPos: 32_000 },
  { name: 'phi3-style factors', mode: 'neox', nRot: 96, freqBase: 10000, tokens: 4, heads: 3, headDim: 96, maxPos: 3000, factors: 'random' },
];

describe('rope.wgsl against ggml semantics', () => {
  it.each(cases)('$name', async (c) => {
    const seed = freshSeed(`rope ${c.name}`);
    const rand = seededInts(seed);
    const positions = Uint32Array.from({ length: c.tokens }, () => rand(0, c.maxPos));
    const dim = c.heads * c.headDim;
    const x = randomFloats(c.tokens * dim, seed);
    // Fused: the rotated heads sit between a q block of 2 heads and a v block of 1 head.
    const qDim = c.fused ? 2 * c.headDim : 0;
    const tokenStride = c.fused ? qDim + dim + c.headDim : dim;
    const buffer = randomFloats(c.tokens * tokenStride, seed + 7);
    const before = buffer.slice();
    for (let t = 0; t < c.tokens; t++) buffer.set(x.subarray(t * dim, (t + 1) * dim), t * tokenStride + qDim);
    const factors = c.factors === 'llama3'
      ? llama3FreqFactors(c.nRot, c.freqBase, 8, 1, 4, 8192)
      : c.factors === 'random'
        ? randomFloats(c.nRot / 2, seed + 3).map((v) => 1 + 20 * Math.abs(v))
        : undefined;
    const xBuf = h.upload(buffer);
    encodeRope(h.recorder, h.kernels, {
      mode: c.mode,
      nRot: c.nRot,
      freqBase: c.freqBase,
      ...(c.scaling ? { scaling: c.scaling } : {}),
      x: xBuf,
      tokenStride,
      offset: qDim,
      tokens: c.tokens,
      heads: c.heads,
      headDim: c.headDim,
      positions: h.uploadU32(positions),
      ...(factors ? { freqFactors: h.upload(factors) } : {}),
      dummy: h.dummy,
    });
    await h.submit();
    const all = await h.readF32(xBuf, buffer.length);
    const actual = new Float32Array(c.tokens * dim);
    for (let t = 0; t < c.tokens; t++) actual.set(all.subarray(t * tokenStride + qDim, t * tokenStride + qDim + dim), t * dim);
    const expected = ropeReference(x, c.tokens, c.heads, c.headDim, positions, c, factors);
    expect(normalizedMse(actual, expected)).toBeLessThanOrEqual(1e-6);
    // Unrotated dims are bit-identical, and the q/v parts of a fused buffer are untouched.
    for (let t = 0; t < c.tokens; t++) {
      for (let hd = 0; hd < c.heads; hd++) {
        for (let d = c.nRot; d < c.headDim; d++) {
          const i = (t * c.heads + hd) * c.headDim + d;
          expect(actual[i]).toBe(x[i]);
        }
      }
      for (let i = 0; i < qDim; i++) expect(all[t * tokenStride + i]).toBe(before[t * tokenStride + i]);
      for (let i = qDim + dim; i < tokenStride; i++) expect(all[t * tokenStride + i]).toBe(before[t * tokenStride + i]);
    }
  });
});

describe('rope reference semantics', () => {
  it('normal pairs adjacent dims, NeoX pairs the halves; pair p turns by pos * base^(-2p/n_rot)', () => {
    const x = [1, 0, 1, 0];
    const normal = ropeReference(x, 1, 1, 4, [1], { mode: 'normal', nRot: 4, freqBase: 100 });
    expect(normal[0]).toBeCloseTo(Math.cos(1), 12);
    expect(normal[1]).toBeCloseTo(Math.sin(1), 12);
    expect(normal[2]).toBeCloseTo(Math.cos(0.1), 12);
    expect(normal[3]).toBeCloseTo(Math.sin(0.1), 12);
    const neox = ropeReference([1, 1, 0, 0], 1, 1, 4, [1], { mode: 'neox', nRot: 4, freqBase: 100 });
    expect(neox[0]).toBeCloseTo(Math.cos(1), 12);
    expect(neox[2]).toBeCloseTo(Math.sin(1), 12);
    expect(neox[1]).toBeCloseTo(Math.cos(0.1), 12);
    expect(neox[3]).toBeCloseTo(Math.sin(0.1), 12);
  });

  it('YaRN correction dims and mscale follow ggml', () => {
    // ggml_rope_yarn_corr_dims(128, 32768, 1e6, 32, 1): floor(19.94...) and ceil(41.6...)
    const [lo, hi] = yarnCorrDims(128, 32768, 1_000_000, 32, 1);
    expect(lo).toBe(Math.floor((128 * Math.log(32768 / (32 * 2 * Math.PI))) / (2 * Math.log(1e6))));
    expect(hi).toBe(Math.ceil((128 * Math.log(32768 / (1 * 2 * Math.PI))) / (2 * Math.log(1e6))));
    // At position 0 only the magnitude changes: mscale = attn_factor * (1 + 0.1 ln(1/freq_scale)).
    const out = ropeReference([1, 0], 1, 1, 2, [0], { mode: 'normal', nRot: 2, freqBase: 1e4, scaling: { freqScale: 0.25, extFactor: 1, origCtx: 4096 } });
    expect(out[0]).toBeCloseTo(1 + 0.1 * Math.log(4), 12);
  });

  it('llama3 factors: 1 for high frequencies, factor for low, smooth between', () => {
    const f = llama3FreqFactors(128, 500000, 8, 1, 4, 8192);
    expect(f[0]).toBe(1);
    expect(f[63]).toBe(8);
    const mid = Array.from(f).filter((v) => v > 1 && v < 8);
    expect(mid.length).toBeGreaterThan(0);
    for (let i = 1; i < 64; i++) expect(f[i]!).toBeGreaterThanOrEqual(f[i - 1]!);
  });
});
