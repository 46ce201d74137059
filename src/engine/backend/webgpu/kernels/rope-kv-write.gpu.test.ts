import { describe, expect, it } from 'vitest';
import { freshSeed, randomFloats } from '../../../../testing/gpu.ts';
import { normalizedMse } from '../../../../testing/compare.ts';
import { gatherRows, seededInts, useOpHarness } from '../../../../testing/op-harness.ts';
import { SHADERS } from '../../../../shaders/index.ts';
import { preprocessWgsl } from '../preprocess.ts';
import type { KvCacheLayout } from './attention.ts';
import type { RopeParams } from './rope.ts';
import { encodeRopeKvWrite, ropeKvWriteReference } from './rope-kv-write.ts';

const h = useOpHarness();

interface Case extends RopeParams {
  name: string;
  tokens: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  capacity: number;
  /** q, k and v as slices of one [tokens][q | k | v | pad] buffer (a fused qkv projection). */
  shared?: boolean;
  /** Extra floats per row of each separate buffer, and a random first-row offset. */
  pad?: number;
  factors?: boolean;
}

const cases: Case[] = [
  { name: 'normal, one token', mode: 'normal', nRot: 64, freqBase: 10000, tokens: 1, heads: 4, kvHeads: 2, headDim: 64, capacity: 50 },
  { name: 'neox partial, padded rows', mode: 'neox', nRot: 32, freqBase: 1_000_000, tokens: 3, heads: 5, kvHeads: 1, headDim: 80, capacity: 40, pad: 7 },
  {
    name: 'yarn, fused qkv',
    mode: 'neox',
    nRot: 64,
    freqBase: 1_000_000,
    tokens: 5,
    heads: 6,
    kvHeads: 2,
    headDim: 96,
    capacity: 30,
    shared: true,
    scaling: { freqScale: 0.25, extFactor: 1, attnFactor: 1, betaFast: 32, betaSlow: 1, origCtx: 32768 },
  },
  { name: 'normal partial, odd pair count, factors', mode: 'normal', nRot: 24, freqBase: 10000, tokens: 4, heads: 3, kvHeads: 3, headDim: 34, capacity: 20, factors: true, pad: 3 },
  { name: 'many tokens, fused, MQA', mode: 'normal', nRot: 18, freqBase: 500000, tokens: 37, heads: 7, kvHeads: 1, headDim: 18, capacity: 45, shared: true },
];

describe('rope_kv_write.wgsl: RoPE of q and k with the KV-cache write', () => {
  it.each(cases)('$name', async (c) => {
    const seed = freshSeed(`rope_kv_write ${c.name}`);
    const rand = seededInts(seed);
    const layout: KvCacheLayout = { capacity: c.capacity, kvHeads: c.kvHeads, headDim: c.headDim, dtype: 'f32' };
    const qDim = c.heads * c.headDim;
    const kvDim = c.kvHeads * c.headDim;
    // Distinct positions; one past the capacity, which must be rotated but not stored.
    const slots = Array.from({ length: c.capacity }, (_, i) => i).sort(() => rand(0, 1) - 0.5);
    const positions = Uint32Array.from(slots.slice(0, c.tokens));
    positions[rand(0, c.tokens - 1)] = c.capacity + rand(0, 5);
    const q = randomFloats(c.tokens * qDim, seed);
    const k = randomFloats(c.tokens * kvDim, seed + 1);
    const v = randomFloats(c.tokens * kvDim, seed + 2);
    const factors = c.factors ? randomFloats(c.nRot / 2, seed + 3).map((f) => 1 + 20 * Math.abs(f)) : undefined;

    // Where each of q, k, v lives: one fused buffer (with a trailing pad) or three padded ones.
    const pad = c.pad ?? 0;
    const place = (rows: Float32Array, width: number, buffer: Float32Array, stride: number, offset: number) => {
      for (let t = 0; t < c.tokens; t++) buffer.set(rows.subarray(t * width, (t + 1) * width), offset + t * stride);
    };
    let views: Array<{ data: Float32Array<ArrayBuffer>; stride: number; offset: number }>;
    if (c.shared) {
      const stride = qDim + 2 * kvDim + 3;
      const data = randomFloats(c.tokens * stride, seed + 4);
      views = [0, qDim, qDim + kvDim].map((offset) => ({ data, stride, offset }));
    } else {
      views = [qDim, kvDim, kvDim].map((width) => {
        const offset = pad ? rand(0, pad) : 0;
        return { data: new Float32Array(offset + c.tokens * (width + pad)).fill(NaN), stride: width + pad, offset };
      });
    }
    [q, k, v].forEach((rows, i) => place(rows, [qDim, kvDim, kvDim][i]!, views[i]!.data, views[i]!.stride, views[i]!.offset));
    const before = views.map((view) => view.data.slice());
    const buffers = c.shared ? [h.upload(views[0]!.data)] : views.map((view) => h.upload(view.data));
    const bufferOf = (i: number) => buffers[c.shared ? 0 : i]!;
    const kCache = h.poisoned(c.capacity * kvDim);
    const vCache = h.poisoned(c.capacity * kvDim);

    encodeRopeKvWrite(h.recorder, h.kernels, {
      mode: c.mode,
      nRot: c.nRot,
      freqBase: c.freqBase,
      ...(c.scaling ? { scaling: c.scaling } : {}),
      cache: layout,
      kCache,
      vCache,
      q: { buffer: bufferOf(0), stride: views[0]!.stride, offset: views[0]!.offset },
      k: { buffer: bufferOf(1), stride: views[1]!.stride, offset: views[1]!.offset },
      v: { buffer: bufferOf(2), stride: views[2]!.stride, offset: views[2]!.offset },
      heads: c.heads,
      tokens: c.tokens,
      positions: h.uploadU32(positions),
      ...(factors ? { freqFactors: h.upload(factors) } : {}),
      dummy: h.dummy,
    });
    await h.submit();

    const after = await Promise.all((c.shared ? [0] : [0, 1, 2]).map((i) => h.readF32(buffers[i]!, views[i]!.data.length)));
    const afterOf = (i: number) => after[c.shared ? 0 : i]!;
    const kOut = await h.readF32(kCache, c.capacity * kvDim);
    const vOut = await h.readF32(vCache, c.capacity * kvDim);
    const nanCache = new Float64Array(c.capacity * kvDim).fill(NaN);
    const expected = ropeKvWriteReference(q, k, v, c.tokens, c.heads, c.kvHeads, c.headDim, c.capacity, positions, c, nanCache, nanCache, factors);

    const qActual = gatherRows(afterOf(0), qDim, c.tokens, views[0]!.stride, views[0]!.offset);
    const kActual = gatherRows(afterOf(1), kvDim, c.tokens, views[1]!.stride, views[1]!.offset);
    expect(normalizedMse(qActual, expected.q)).toBeLessThanOrEqual(1e-6);
    expect(normalizedMse(kActual, expected.k)).toBeLessThanOrEqual(1e-6);
    // Dims past n_rot are bit-identical; v and everything outside q and k is untouched.
    for (let t = 0; t < c.tokens; t++) {
      for (let hd = 0; hd < c.heads; hd++) for (let d = c.nRot; d < c.headDim; d++) expect(qActual[t * qDim + hd * c.headDim + d]).toBe(q[t * qDim + hd * c.headDim + d]);
      for (let hd = 0; hd < c.kvHeads; hd++) for (let d = c.nRot; d < c.headDim; d++) expect(kActual[t * kvDim + hd * c.headDim + d]).toBe(k[t * kvDim + hd * c.headDim + d]);
    }
    const vAfter = afterOf(2);
    const vBefore = before[c.shared ? 0 : 2]!;
    expect(Array.from(gatherRows(vAfter, kvDim, c.tokens, views[2]!.stride, views[2]!.offset))).toEqual(Array.from(v));
    if (c.shared) {
      const stride = views[0]!.stride;
      for (let t = 0; t < c.tokens; t++) for (let i = qDim + 2 * kvDim; i < stride; i++) expect(vAfter[t * stride + i]).toBe(vBefore[t * stride + i]);
    }

    // The cache: the rotated k and the v rows at their positions, NaN (never written) elsewhere.
    const written = new Set(Array.from(positions).filter((p) => p < c.capacity));
    expect(written.size).toBe(c.tokens - 1);
    const kRows: number[] = [];
    const kWant: number[] = [];
    for (let p = 0; p < c.capacity; p++) {
      const kRow = kOut.subarray(p * kvDim, (p + 1) * kvDim);
      const vRow = vOut.subarray(p * kvDim, (p + 1) * kvDim);
      if (!written.has(p)) {
        expect(kRow.every(Number.isNaN)).toBe(true);
        expect(vRow.every(Number.isNaN)).toBe(true);
        continue;
      }
      expect(Array.from(vRow)).toEqual(Array.from(expected.vCache.subarray(p * kvDim, (p + 1) * kvDim)));
      kRows.push(...kRow);
      kWant.push(...expected.kCache.subarray(p * kvDim, (p + 1) * kvDim));
    }
    expect(kRows.every(Number.isFinite)).toBe(true);
    expect(normalizedMse(Float32Array.from(kRows), Float64Array.from(kWant))).toBeLessThanOrEqual(1e-6);
    // The cached k is the k the kernel left in place, bit for bit.
    positions.forEach((p, t) => {
      if (p < c.capacity) expect(Array.from(kOut.subarray(p * kvDim, (p + 1) * kvDim))).toEqual(Array.from(kActual.subarray(t * kvDim, (t + 1) * kvDim)));
    });
  });
});

describe('rope_kv_write.wgsl variants', () => {
  it('the f16 cache variant starts with `enable f16` (compiled only where shader-f16 exists)', () => {
    for (const qkv of ['rope_qkv_separate.wgsl', 'rope_qkv_shared.wgsl']) {
      const code = preprocessWgsl('rope_kv_write.wgsl', SHADERS, { kv: 'kv_f16.wgsl', qkv });
      const firstStatement = code.split('\n').map((l) => l.replace(/\/\/.*/, '').trim()).find((l) => l.length > 0);
      expect(firstStatement).toBe('enable f16;');
      expect(code).toContain('alias kv_t = f16;');
    }
  });
});
