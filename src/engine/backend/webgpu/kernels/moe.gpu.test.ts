/**
 * Mixture-of-experts on WebGPU: the routing kernel against its float64 reference (ids exactly,
 * weights to f32 rounding), the indexed expert matvec (decode) and the bucketing by expert plus the
 * expert-grouped product (prefill: exact buckets, then the products) on F32, Q8_0 and K-quant weights
 * split into parts at rows that are not expert boundaries, with an expert every token chose and one
 * none did, and the backend's whole moeFfn op (router, routing, expert products, GLU, weighted sum,
 * gated shared expert) against a float64 computation over the dequantized weights, for one token,
 * for batches that take several scratch chunks and for batches in one chunk.
 */
import { describe, expect, it } from 'vitest';
import { GgmlType, ggmlTypeName } from '../../../gguf/ggml-types.ts';
import { requireQuantFormat } from '../../../gguf/quants/index.ts';
import type { Activation, MoeFfnOp, Vector, Weight } from '../../ops.ts';
import { freshSeed, randomFloats } from '../../../../testing/gpu.ts';
import { normalizedMse } from '../../../../testing/compare.ts';
import { useOpHarness } from '../../../../testing/op-harness.ts';
import { uploadWeight } from '../weights.ts';
import { WebGpuBackend } from '../backend.ts';
import { encodeGroupedMatmul, encodeIndexedMatvec, GROUPED_TILE_PAIRS, groupedTiles, indexedMatvecReference } from './matmul.ts';
import { encodeMoeRoute, encodeMoeSort, moeSortReference } from './moe.ts';
import { routeTokens } from '../../cpu/moe.ts';

/** The CPU backend's routing (float64, llama.cpp's rule) is the reference moe_route.wgsl must equal. */
function moeRouteReference(logits: Float32Array, stride: number, tokens: number, op: Parameters<typeof routeTokens>[4]): { ids: number[]; weights: Float32Array } {
  const { experts, weights } = routeTokens(logits, 0, stride, tokens, op);
  return { ids: Array.from(experts), weights };
}

const h = useOpHarness();

function encoded(type: GgmlType, values: Float32Array): { bytes: Uint8Array; dequantized: Float32Array } {
  const bytes = type === GgmlType.F32 ? new Uint8Array(values.buffer.slice(0)) : requireQuantFormat(type).quantize!(values, values.length);
  const dequantized = new Float32Array(values.length);
  requireQuantFormat(type).dequantize(bytes, dequantized, values.length);
  return { bytes, dequantized };
}

/** Random stacked expert matrices [experts][rows][k] in `type`, split into parts of `maxRowsPerPart` rows when given. */
async function expertWeights(c: { type: GgmlType; k: number; rows: number; experts: number; maxRowsPerPart?: number }, seed: number) {
  const { bytes, dequantized } = encoded(c.type, randomFloats(c.k * c.rows * c.experts, seed));
  const weight = await uploadWeight(h.device, { name: 'exps', type: c.type, shape: [c.k, c.rows, c.experts] }, async (o, n) => bytes.subarray(o, o + n), c.maxRowsPerPart ? { maxRowsPerPart: c.maxRowsPerPart } : {});
  if (c.maxRowsPerPart) expect(weight.parts.length).toBeGreaterThan(1);
  return { weight, dequantized };
}

describe('moe_route.wgsl', () => {
  const cases = [
    { gating: 'softmax', normalize: true, weightsScale: 1, nExpert: 8, used: 2, tokens: 5 },
    { gating: 'softmax', normalize: false, weightsScale: 0, nExpert: 60, used: 4, tokens: 70 },
    { gating: 'sigmoid', normalize: true, weightsScale: 2.5, nExpert: 128, used: 8, tokens: 3 },
    { gating: 'sigmoid', normalize: false, weightsScale: 1, nExpert: 3, used: 3, tokens: 2 },
  ] as const;
  it.each(cases)('$gating normalize=$normalize scale=$weightsScale experts=$nExpert used=$used tokens=$tokens', async (c) => {
    const seed = freshSeed(`moe route ${JSON.stringify(c)}`);
    const stride = c.nExpert + 3;
    const logits = randomFloats(stride * c.tokens, seed).map((v) => v * 4);
    // A tie: the lower index must come first.
    logits[1] = logits[0]!;
    const ids = h.uploadU32(new Uint32Array(c.tokens * c.used).fill(0xffffffff));
    const weights = h.poisoned(c.tokens * c.used);
    encodeMoeRoute(h.recorder, h.kernels, { ...c, logits: h.upload(logits), logitsStride: stride, ids, weights });
    await h.submit();
    const want = moeRouteReference(logits, stride, c.tokens, c);
    const gotIds = new Uint32Array((await h.readF32(ids, c.tokens * c.used)).buffer);
    expect(Array.from(gotIds)).toEqual(want.ids);
    const gotWeights = await h.readF32(weights, c.tokens * c.used);
    gotWeights.forEach((w, i) => expect(Math.abs(w - want.weights[i]!)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(want.weights[i]!))));
  });
});

describe('matvec_indexed.wgsl', () => {
  const cases = [
    { type: GgmlType.F32, k: 70, rows: 9, experts: 5, used: 2, tokens: 3, maxRowsPerPart: 13 },
    { type: GgmlType.Q8_0, k: 96, rows: 17, experts: 6, used: 3, tokens: 2, maxRowsPerPart: 40 },
    { type: GgmlType.Q8_0, k: 64, rows: 33, experts: 4, used: 1, tokens: 5 },
    { type: GgmlType.Q4_K, k: 256, rows: 6, experts: 3, used: 2, tokens: 3, maxRowsPerPart: 4 },
  ].map((c) => ({ ...c, name: ggmlTypeName(c.type) }));
  it.each(cases)('$name k=$k rows=$rows experts=$experts used=$used tokens=$tokens parts of $maxRowsPerPart', async (c) => {
    const seed = freshSeed(`matvec indexed ${JSON.stringify(c)}`);
    const { weight, dequantized } = await expertWeights(c, seed);
    const xStride = c.k + 2;
    const x = randomFloats(xStride * c.tokens, seed + 1);
    const pairs = c.tokens * c.used;
    const ids = Uint32Array.from({ length: pairs }, (_, p) => (p * 7 + 3) % c.experts);
    const out = h.poisoned(pairs * c.rows);
    // Two chunks: pairs before and after `split`, as the backend records a batch.
    const split = c.used * Math.floor(c.tokens / 2);
    const common = { weight, rows: c.rows, ids: h.uploadU32(ids), used: c.used, x: { buffer: h.upload(x) }, xStride, out: { buffer: out }, outStride: c.rows };
    encodeIndexedMatvec(h.recorder, h.kernels, 65535, { ...common, pairBase: 0, pairs: split });
    encodeIndexedMatvec(h.recorder, h.kernels, 65535, { ...common, pairBase: split, pairs: pairs - split, outOffset: split * c.rows });
    await h.submit();
    const got = await h.readF32(out, pairs * c.rows);
    expect(got.every(Number.isFinite)).toBe(true);
    expect(normalizedMse(got, indexedMatvecReference(dequantized, c.k, c.rows, ids, c.used, x, xStride))).toBeLessThanOrEqual(1e-6);
  });
});

/**
 * Ids where every token's first slot is expert 0 (an expert chosen by every token, so it takes
 * several tiles), the others spread over 1 ..< experts - 1 (expert experts - 1 chosen by none).
 */
function skewedIds(tokens: number, used: number, experts: number): Uint32Array<ArrayBuffer> {
  return Uint32Array.from({ length: tokens * used }, (_, p) => {
    const t = Math.floor(p / used);
    const j = p % used;
    return j === 0 ? 0 : 1 + ((t * 3 + j) % (experts - 2));
  });
}

describe('moe_sort.wgsl + matmul_grouped.wgsl', () => {
  const cases = [
    { type: GgmlType.F32, k: 70, rows: 9, experts: 5, used: 2, tokens: 37, maxRowsPerPart: 13 },
    { type: GgmlType.F32, k: 33, rows: 300, experts: 7, used: 3, tokens: 11 },
    { type: GgmlType.Q8_0, k: 96, rows: 17, experts: 9, used: 4, tokens: 29, maxRowsPerPart: 40 },
    { type: GgmlType.Q4_K, k: 256, rows: 6, experts: 4, used: 3, tokens: 20, maxRowsPerPart: 4 },
    { type: GgmlType.Q6_K, k: 256, rows: 5, experts: 3, used: 1, tokens: 40 },
  ].map((c) => ({ ...c, name: ggmlTypeName(c.type) }));
  it.each(cases)('$name k=$k rows=$rows experts=$experts used=$used tokens=$tokens parts of $maxRowsPerPart', async (c) => {
    const seed = freshSeed(`matmul grouped ${JSON.stringify(c)}`);
    const { weight, dequantized } = await expertWeights(c, seed);
    const xStride = c.k + 3;
    const x = randomFloats(xStride * c.tokens, seed + 1);
    const pairs = c.tokens * c.used;
    const ids = c.used === 1 ? Uint32Array.from({ length: pairs }, (_, p) => (p % 2) * (c.experts - 2)) : skewedIds(c.tokens, c.used, c.experts);
    const idsBuffer = h.uploadU32(ids);
    const out = h.poisoned(pairs * c.rows);
    // Two chunks, the first splitting a token's experts when used > 1, as the backend records a batch.
    const split = Math.max(1, c.used * Math.floor(c.tokens / 2) - 1);
    const chunks = [[0, split], [split, pairs - split]] as const;
    const maxTiles = groupedTiles(Math.max(split, pairs - split), c.experts);
    const sorted: Array<{ order: Uint32Array; tiles: Uint32Array }> = [];
    for (const [pairBase, n] of chunks) {
      const order = h.uploadU32(new Uint32Array(n).fill(0xffffffff));
      const tiles = h.uploadU32(new Uint32Array(maxTiles * 4).fill(0xffffffff));
      const starts = h.uploadU32(new Uint32Array(c.experts));
      const chunkTiles = groupedTiles(n, c.experts);
      encodeMoeSort(h.recorder, h.kernels, { ids: idsBuffer, pairBase, pairs: n, nExpert: c.experts, starts, order, tiles, tile: GROUPED_TILE_PAIRS, maxTiles: chunkTiles });
      encodeGroupedMatmul(h.recorder, h.kernels, 65535, {
        weight, rows: c.rows, used: c.used, pairBase, pairs: n, x: { buffer: h.upload(x) }, xStride, out: { buffer: out }, outStride: c.rows, outOffset: pairBase * c.rows,
        order, tiles, maxTiles: chunkTiles,
      });
      await h.submit();
      sorted.push({ order: new Uint32Array((await h.readF32(order, n)).buffer), tiles: new Uint32Array((await h.readF32(tiles, chunkTiles * 4)).buffer) });
    }
    // The buckets exactly (stable order, tiles of 8, the rest empty).
    chunks.forEach(([pairBase, n], i) => {
      const want = moeSortReference(ids, pairBase, n, c.experts, GROUPED_TILE_PAIRS);
      expect(Array.from(sorted[i]!.order)).toEqual(want.order);
      const tiles = Array.from({ length: sorted[i]!.tiles.length / 4 }, (_, j) => Array.from(sorted[i]!.tiles.subarray(j * 4, j * 4 + 3)));
      expect(tiles.slice(0, want.tiles.length)).toEqual(want.tiles);
      tiles.slice(want.tiles.length).forEach((t) => expect(t[1]).toBe(t[2]));
    });
    if (c.used > 1) expect(ids.includes(c.experts - 1)).toBe(false);
    const got = await h.readF32(out, pairs * c.rows);
    expect(got.every(Number.isFinite)).toBe(true);
    expect(normalizedMse(got, indexedMatvecReference(dequantized, c.k, c.rows, ids, c.used, x, xStride))).toBeLessThanOrEqual(1e-6);
  });
});

describe('WebGPU moeFfn', () => {
  const FS = 64;
  const silu = (v: number) => v / (1 + Math.exp(-v));
  const rows = (w: Float32Array, base: number, k: number, n: number, x: ArrayLike<number>) =>
    Float64Array.from({ length: n }, (_, o) => {
      let s = 0;
      for (let i = 0; i < k; i++) s += w[base + o * k + i]! * x[i]!;
      return s;
    });
  // Expert e's GLU FFN (f wide) on one token row x of width E.
  const glu = (g: Float32Array, u: Float32Array, d: Float32Array, e: number, f: number, x: ArrayLike<number>, E: number) => {
    const a = rows(g, e * f * E, E, f, x);
    const b = rows(u, e * f * E, E, f, x);
    return rows(d, e * E * f, f, E, a.map((v, i) => silu(v) * b[i]!));
  };
  // batch: the scratch's expert rows (3: chunks that split tokens' experts; larger: the whole
  // prefill in one chunk, so the grouped products take several tiles of one expert).
  const cases = [
    { type: GgmlType.F32, gating: 'softmax', normalize: true, weightsScale: 1, tokens: 1, shared: true, experts: 6, used: 2, batch: 3 },
    { type: GgmlType.F32, gating: 'sigmoid', normalize: false, weightsScale: 2.5, tokens: 7, shared: false, experts: 6, used: 2, batch: 3 },
    { type: GgmlType.Q8_0, gating: 'softmax', normalize: false, weightsScale: 1, tokens: 9, shared: true, experts: 6, used: 2, batch: 3 },
    { type: GgmlType.F32, gating: 'softmax', normalize: true, weightsScale: 1, tokens: 40, shared: false, experts: 11, used: 3, batch: 120, F: 37 },
    { type: GgmlType.F32, gating: 'softmax', normalize: true, weightsScale: 1, tokens: 4, shared: false, experts: 16, used: 5, batch: 8, E: 128, F: 64, earlier: 9 },
    { type: GgmlType.Q8_0, gating: 'sigmoid', normalize: true, weightsScale: 1, tokens: 33, shared: true, experts: 4, used: 3, batch: 50 },
    { type: GgmlType.Q4_K, gating: 'softmax', normalize: true, weightsScale: 1, tokens: 24, shared: false, experts: 5, used: 2, batch: 48, E: 256, F: 256 },
  ].map((c) => ({ E: 64, F: 32, earlier: 0, ...c, name: ggmlTypeName(c.type) })) as ReadonlyArray<{
    earlier: number; E: number; F: number; type: GgmlType; name: string; gating: 'softmax' | 'sigmoid'; normalize: boolean; weightsScale: number; tokens: number; shared: boolean; experts: number; used: number; batch: number;
  }>;
  it.each(cases)('$name $gating normalize=$normalize scale=$weightsScale tokens=$tokens shared=$shared experts=$experts used=$used batch=$batch earlier=$earlier', async (c) => {
    const { E, F } = c;
    const X = c.experts;
    const backend = new WebGpuBackend(h.device, { kernels: h.kernels });
    try {
      const seed = freshSeed(`moeFfn ${JSON.stringify(c)}`);
      let n = 0;
      const weight = async (type: GgmlType, shape: number[], scale: number): Promise<[Weight, Float32Array]> => {
        const values = randomFloats(shape.reduce((a, b) => a * b, 1), seed + ++n).map((v) => v * scale);
        const { bytes, dequantized } = encoded(type, values);
        return [await backend.weight({ name: `w${n}`, type, shape }, async (o, len) => bytes.subarray(o, o + len)), dequantized];
      };
      const [router, wr] = await weight(GgmlType.F32, [E, X], 0.5);
      const [gate, wg] = await weight(c.type, [E, F, X], 0.3);
      const [up, wu] = await weight(c.type, [E, F, X], 0.3);
      const [down, wd] = await weight(c.type, [F, E, X], 0.3);
      // The shared expert in the case's type when there is one (else unused, F32 for any width).
      const sharedType = c.shared ? c.type : GgmlType.F32;
      const [sg, wsg] = await weight(sharedType, [E, FS], 0.3);
      const [su, wsu] = await weight(sharedType, [E, FS], 0.3);
      const [sd, wsd] = await weight(sharedType, [FS, E], 0.3);
      const gateInpValues = randomFloats(E, seed + 100).map((v) => v * 0.3);
      const xs = randomFloats(c.tokens * E, seed + 101);
      // The backend's vectors are activations too (one buffer type): a way to fill them from the host.
      const x = backend.vector('x', xs) as Vector & Activation;
      const out = backend.vector('out', new Float32Array(c.tokens * E).fill(NaN)) as Vector & Activation;
      const batch = c.batch;
      const act = (name: string, width: number) => backend.activation(name, Math.max(batch, c.tokens) * width);
      const scratchRows = (name: string, width: number) => backend.activation(name, batch * width);
      const op: MoeFfnOp = {
        router, gate, up, down, nExpert: X, used: c.used, nFf: F, gating: c.gating, normalize: c.normalize, weightsScale: c.weightsScale, activation: 'silu',
        shared: c.shared ? { gate: sg, up: su, down: sd, nFf: FS, gateInp: backend.vector('gi', gateInpValues) } : undefined,
        scratch: { logits: act('l', X), x: act('gx', E), gate: act('g', FS), up: act('u', FS), h: act('h', FS), y: scratchRows('y', E) },
      };
      if (c.earlier) {
        // A longer batch first: the routing buffers then hold more pairs than this batch's.
        const other = backend.activation('earlier out', c.earlier * E);
        backend.moeFfn({ t: backend.vector('earlier x', randomFloats(c.earlier * E, seed + 102)) as Vector & Activation, stride: E }, { t: other, stride: E }, c.earlier, op);
      }
      backend.moeFfn({ t: x, stride: E }, { t: out, stride: E }, c.tokens, op);
      backend.submit();
      const got = await backend.read(out, c.tokens * E);
      const chosen = new Set<number>();
      const want = new Float64Array(c.tokens * E);
      const route = moeRouteReference(Float32Array.from({ length: c.tokens * X }, (_, i) => rows(wr, 0, E, X, xs.subarray(Math.floor(i / X) * E))[i % X]!), X, c.tokens, { nExpert: X, ...c });
      for (let t = 0; t < c.tokens; t++) {
        const xt = xs.subarray(t * E, (t + 1) * E);
        for (let j = 0; j < c.used; j++) {
          const e = route.ids[t * c.used + j]!;
          chosen.add(e);
          glu(wg, wu, wd, e, F, xt, E).forEach((v, i) => (want[t * E + i]! += route.weights[t * c.used + j]! * v));
        }
        if (c.shared) {
          let dot = 0;
          for (let i = 0; i < E; i++) dot += gateInpValues[i]! * xt[i]!;
          glu(wsg, wsu, wsd, 0, FS, xt, E).forEach((v, i) => (want[t * E + i]! += v / (1 + Math.exp(-dot))));
        }
      }
      expect(got.every(Number.isFinite)).toBe(true);
      expect(normalizedMse(got, want)).toBeLessThanOrEqual(1e-6);
      if (c.tokens > 2) expect(chosen.size).toBeGreaterThan(2);
    } finally {
      backend.destroy();
    }
  });
});
