/**
 * Every CPU kernel against a float64 reference (the WebGPU kernels' references, so both backends
 * are held to one semantics), in both builds: plain SIMD128 and relaxed SIMD. Fresh random data per
 * run (seed printed; replay with HEARTH_TEST_SEED), awkward sizes, outputs poisoned with NaN.
 */
import { setFlagsFromString } from 'node:v8';
import { beforeAll, describe, expect, it } from 'vitest';
import { GgmlType } from '../../gguf/ggml-types.ts';
import { normalizedMse } from '../../../testing/compare.ts';
import { exactWeights, randomBlocks } from '../../../testing/random-weights.ts';
import { attentionReference } from '../webgpu/kernels/attention.ts';
import { elementwiseReference } from '../webgpu/kernels/elementwise.ts';
import { embedReference } from '../webgpu/kernels/embed.ts';
import { gluReference } from '../webgpu/kernels/glu.ts';
import { matmulReference } from '../webgpu/kernels/matmul.ts';
import { normReference } from '../webgpu/kernels/norm.ts';
import { yarnCorrDims } from '../rope-scaling.ts';
import { llama3FreqFactors, ropeReference } from '../webgpu/kernels/rope.ts';
import { softmaxReference } from '../webgpu/kernels/softmax.ts';
import { ATTENTION_SCRATCH_FLOATS_PER_KEY, CPU_WEIGHT_TYPES, CpuKernels, MATMUL_SCRATCH_FLOATS, Q8A_BLOCK_BYTES, Q8A_WEIGHT_TYPES, Q8K_BLOCK_BYTES, Q8K_WEIGHT_TYPES, relaxedSimdSupported, simdSupported } from './kernels.ts';
import { mulberry32 as rng, freshSeed } from '../../../testing/random.ts';

// Node 20's V8 has relaxed SIMD behind a flag (on by default from Node 22, Chrome 114): turn it on
// so the relaxed build is tested here too.
setFlagsFromString('--experimental-wasm-relaxed-simd');



function floats(next: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() * 2 - 1) * scale;
  return out;
}

const MAX_NMSE = 1e-6;

/**
 * Normalized MSE bounds of matmulQ8A against the float64 product with the unquantized activations:
 * the error of 8-bit activations with one scale per 32 (llama.cpp's Q8_0/Q8_K activations make the
 * same trade). Rounding error is uniform in +-d/2 with d = max|x| / 127, so for activations uniform
 * in [-1, 1] the expected value is about (1/127)^2 / 12 / (1/3) = 1.6e-5; one 8x outlier every 97
 * values (a third of the blocks get a scale 8x larger) raises it to about 3e-4. Measured here:
 * 2e-6..7e-5 and 1.4e-5..4.6e-4 (random K-quant scales make a few blocks dominate a row).
 */
const Q8A_MAX_NMSE_PLAIN = 2e-4;
const Q8A_MAX_NMSE_OUTLIERS = 2e-3;

/**
 * The same for Q8K (one activation scale per 256, as llama.cpp's Q8_K): the same for activations
 * without outliers, but an outlier now coarsens 256 values, not 32. Measured: see the [q8k] lines.
 */
const Q8K_MAX_NMSE_PLAIN = 2e-4;
const Q8K_MAX_NMSE_OUTLIERS = 1e-2;

/**
 * Whether this engine computes relaxed SIMD correctly. Node 20's flag-gated implementation does
 * not (wrong i8 x i7 dot sums; see relaxedSelfTest), Chromium 156's and newer V8s' do: where it is
 * broken, the relaxed build is checked in Chromium instead (relaxed.chromium.test.ts).
 */
const relaxedWorksHere = await CpuKernels.create({ relaxed: true }).then(
  () => true,
  () => false,
);

it('detects SIMD and relaxed SIMD, and falls back to plain SIMD where relaxed SIMD is wrong', async () => {
  expect(simdSupported()).toBe(true);
  expect(relaxedSimdSupported()).toBe(true); // validation only (the flag above)
  const auto = await CpuKernels.create();
  console.log(`[cpu] relaxed SIMD ${relaxedWorksHere ? 'works' : 'validates but fails its self-test'} in V8 ${process.versions.v8}`);
  expect(auto.relaxed).toBe(relaxedWorksHere);
  const plain = await CpuKernels.create({ relaxed: false });
  expect(plain.relaxed).toBe(false);
});

describe.each([
  { variant: 'simd', relaxed: false },
  ...(relaxedWorksHere ? [{ variant: 'relaxed', relaxed: true }] : []),
])('CPU kernels ($variant)', ({ variant, relaxed }) => {
  let cpu: CpuKernels;
  let next: () => number;

  beforeAll(async () => {
    cpu = await CpuKernels.create({ relaxed });
    next = rng(freshSeed(`cpu kernels ${variant}`));
  });

  it('loaded the requested build', () => {
    expect(cpu.relaxed).toBe(relaxed);
  });

  /** Allocates f32 scratch and fills it with NaN. */
  function poisoned(n: number): number {
    const p = cpu.allocF32(n);
    cpu.f32(p, n).fill(NaN);
    return p;
  }

  function upload(data: ArrayBufferView): number {
    return cpu.upload(data);
  }

  it.each(CPU_WEIGHT_TYPES.map((t) => [GgmlType[t], t] as const))('dequantize %s bit-exactly', (_name, type) => {
    const mark = cpu.mark();
    const k = type === GgmlType.F32 || type === GgmlType.F16 || type === GgmlType.BF16 ? 77 : 512;
    const rows = 3;
    const bytes = randomBlocks(type, rows, k, Math.floor(next() * 2 ** 31));
    const expected = exactWeights(type, bytes, rows * k);
    const src = upload(bytes);
    const dst = poisoned(rows * k);
    cpu.dequantize(type, src, dst, rows * k);
    const got = cpu.f32(dst, rows * k);
    // Compare bit patterns: NaN-safe and exact (including -0).
    expect(new Uint32Array(got.slice().buffer)).toEqual(new Uint32Array(expected.buffer));
    cpu.release(mark);
  });

  function kFor(type: GgmlType, big: boolean): number {
    switch (type) {
      case GgmlType.F32: return big ? 1101 : 77;
      case GgmlType.F16:
      case GgmlType.BF16: return big ? 1030 : 83;
      case GgmlType.Q8_0:
      case GgmlType.Q4_0:
      case GgmlType.Q4_1:
      case GgmlType.Q5_0:
      case GgmlType.Q5_1: return big ? 32 * 37 : 32 * 7;
      default: return big ? 256 * 5 : 256 * 2;
    }
  }

  const matmulCases = CPU_WEIGHT_TYPES.flatMap((type) => [
    { type, name: GgmlType[type], big: false, tokens: 1, bias: false },
    { type, name: GgmlType[type], big: true, tokens: 6, bias: true },
  ]);

  function setupMatmul(type: GgmlType, big: boolean, tokens: number, bias: boolean, outliers = true) {
    const k = kFor(type, big);
    const rows = 37;
    const bytes = randomBlocks(type, rows, k, Math.floor(next() * 2 ** 31));
    const w = exactWeights(type, bytes, rows * k);
    // Activations with a few outliers, as real hidden states have.
    const x = floats(next, tokens * k);
    if (outliers) for (let i = 0; i < x.length; i += 97) x[i]! *= 8;
    const b = bias ? floats(next, rows) : undefined;
    const ref = matmulReference(w, k, rows, x, tokens, b);
    return { k, rows, bytes, x, b, ref };
  }

  it.each(matmulCases)('matmul $name k big=$big tokens=$tokens bias=$bias within 1e-6 of float64', ({ type, big, tokens, bias }) => {
    const mark = cpu.mark();
    const { k, rows, bytes, x, b, ref } = setupMatmul(type, big, tokens, bias);
    // Activations in a wider buffer (stride > k), outputs too: exercises the strides.
    const xStride = k + 5;
    const xp = cpu.allocF32(tokens * xStride);
    for (let t = 0; t < tokens; t++) cpu.f32(xp + 4 * t * xStride, k).set(x.subarray(t * k, (t + 1) * k));
    const yStride = rows + 3;
    const yp = poisoned(tokens * yStride);
    const wp = upload(bytes);
    const bp = b ? upload(b) : undefined;
    const scratch = cpu.allocF32(MATMUL_SCRATCH_FLOATS);
    // Two row ranges, as two workers would split it.
    const split = 17;
    for (const [rowStart, rowEnd] of [[0, split], [split, rows]] as const) {
      cpu.matmul({ type, w: wp, k, x: { ptr: xp, stride: xStride }, y: { ptr: yp, stride: yStride }, tokens, bias: bp, rowStart, rowEnd, scratch });
    }
    const all = cpu.f32(yp, tokens * yStride);
    const got = new Float32Array(tokens * rows);
    for (let t = 0; t < tokens; t++) {
      got.set(all.subarray(t * yStride, t * yStride + rows), t * rows);
      // The padding after each row is never written.
      for (let i = rows; i < yStride; i++) expect(all[t * yStride + i]).toBeNaN();
    }
    expect(normalizedMse(got, ref)).toBeLessThanOrEqual(MAX_NMSE);
    cpu.release(mark);
  });

  it('matmul leaves rows outside [rowStart, rowEnd) alone', () => {
    const mark = cpu.mark();
    const { k, rows, bytes, x, ref } = setupMatmul(GgmlType.Q4_K, false, 2, false);
    const xp = upload(x);
    const yp = poisoned(2 * rows);
    const scratch = cpu.allocF32(MATMUL_SCRATCH_FLOATS);
    cpu.matmul({ type: GgmlType.Q4_K, w: upload(bytes), k, x: { ptr: xp, stride: k }, y: { ptr: yp, stride: rows }, tokens: 2, rowStart: 5, rowEnd: 9, scratch });
    const y = cpu.f32(yp, 2 * rows);
    for (let t = 0; t < 2; t++) {
      for (let r = 0; r < rows; r++) {
        if (r >= 5 && r < 9) expect(Math.abs(y[t * rows + r]! - ref[t * rows + r]!)).toBeLessThan(1e-3 * (1 + Math.abs(ref[t * rows + r]!)));
        else expect(y[t * rows + r]).toBeNaN();
      }
    }
    cpu.release(mark);
  });

  it('quantizeQ8A matches its definition (d = max|x| / 127, q = round(x / d), half sums)', () => {
    const mark = cpu.mark();
    const k = 32 * 5;
    const rows = 3;
    const x = floats(next, rows * k, 3);
    x.fill(0, k, k + 32); // an all-zero block: d = 0, q = 0
    const xp = upload(x);
    const dst = cpu.alloc(cpu.q8aBytes(k, rows));
    cpu.u8(dst, cpu.q8aBytes(k, rows)).fill(0xa5);
    cpu.quantizeQ8A({ ptr: xp, stride: k }, dst, k, 0, rows);
    const view = new DataView(cpu.memory.buffer, dst, cpu.q8aBytes(k, rows));
    for (let blk = 0; blk < (rows * k) / 32; blk++) {
      const o = blk * Q8A_BLOCK_BYTES;
      let amax = 0;
      for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[blk * 32 + i]!));
      const d = Math.fround(amax / 127);
      expect(view.getFloat32(o, true)).toBe(d);
      const id = d ? Math.fround(1 / d) : 0;
      const sums = [0, 0];
      for (let i = 0; i < 32; i++) {
        const q = view.getInt8(o + 8 + i);
        const v = Math.fround(x[blk * 32 + i]! * id);
        // Round half to even (f32x4.nearest); only exact ties could differ from llama.cpp's roundf.
        const r = Math.round(v);
        const expected = Math.abs(v - Math.trunc(v)) === 0.5 ? 2 * Math.round(v / 2) : r;
        expect(q).toBe(expected + 0); // + 0: Int8 has no -0
        expect(Math.abs(q)).toBeLessThanOrEqual(127);
        sums[i >> 4]! += q;
      }
      expect(view.getInt16(o + 4, true)).toBe(sums[0]);
      expect(view.getInt16(o + 6, true)).toBe(sums[1]);
    }
    cpu.release(mark);
  });

  /** Dequantizes Q8A rows written by the kernel: the activations the integer path really used. */
  function readQ8A(ptr: number, k: number, rows: number): Float64Array {
    const view = new DataView(cpu.memory.buffer, ptr, cpu.q8aBytes(k, rows));
    const out = new Float64Array(k * rows);
    for (let blk = 0; blk < (k * rows) / 32; blk++) {
      const d = view.getFloat32(blk * Q8A_BLOCK_BYTES, true);
      for (let i = 0; i < 32; i++) out[blk * 32 + i] = d * view.getInt8(blk * Q8A_BLOCK_BYTES + 8 + i);
    }
    return out;
  }

  const q8Cases = Q8A_WEIGHT_TYPES.flatMap((type) => [
    { type, name: GgmlType[type], big: false, tokens: 1, bias: false },
    { type, name: GgmlType[type], big: true, tokens: 5, bias: true },
    // The tiled prefill path: two groups of four tokens and a remainder of three.
    { type, name: GgmlType[type], big: false, tokens: 11, bias: false },
  ]);

  it.each(q8Cases)('matmulQ8A $name big=$big tokens=$tokens: exact on its quantized activations, within bound of f32', ({ type, big, tokens, bias }) => {
    for (const outliers of [false, true]) {
      const mark = cpu.mark();
      const { k, rows, bytes, x, b, ref } = setupMatmul(type, big, tokens, bias, outliers);
      const w = exactWeights(type, bytes, rows * k);
      const xp = upload(x);
      const xq = cpu.alloc(cpu.q8aBytes(k, tokens));
      cpu.quantizeQ8A({ ptr: xp, stride: k }, xq, k, 0, tokens);
      const yp = poisoned(tokens * rows);
      const wp = upload(bytes);
      const bp = b ? upload(b) : undefined;
      cpu.matmulQ8A({ type, w: wp, k, xq, y: { ptr: yp, stride: rows }, tokens, bias: bp, rowStart: 0, rowEnd: 20 });
      cpu.matmulQ8A({ type, w: wp, k, xq, y: { ptr: yp, stride: rows }, tokens, bias: bp, rowStart: 20, rowEnd: rows });
      const got = cpu.f32(yp, tokens * rows).slice();
      // 1. The integer dot products are exact: against float64 on the activations as quantized, the
      //    only error left is f32 accumulation.
      const refQ = matmulReference(w, k, rows, readQ8A(xq, k, tokens), tokens, b);
      expect(normalizedMse(got, refQ)).toBeLessThanOrEqual(MAX_NMSE);
      // 2. Against the unquantized activations: the error of 8-bit activations.
      const err = normalizedMse(got, ref);
      console.log(`[q8a] ${GgmlType[type]} k=${k} tokens=${tokens} outliers=${outliers}: normalized MSE vs f32 activations ${err.toExponential(2)}`);
      expect(err).toBeLessThanOrEqual(outliers ? Q8A_MAX_NMSE_OUTLIERS : Q8A_MAX_NMSE_PLAIN);
      cpu.release(mark);
    }
  });

  it('quantizeQ8K matches its definition (one d = max|x| / 127 per 256, sums per 16)', () => {
    const mark = cpu.mark();
    const k = 512;
    const x = floats(next, 2 * k, 3);
    x.fill(0, k, k + 256);
    const bytes = cpu.q8kBytes(k, 2);
    const dst = cpu.alloc(bytes);
    cpu.u8(dst, bytes).fill(0xa5);
    cpu.quantizeQ8K({ ptr: upload(x), stride: k }, dst, k, 0, 2);
    const view = new DataView(cpu.memory.buffer, dst, bytes);
    for (let blk = 0; blk < (2 * k) / 256; blk++) {
      const o = blk * Q8K_BLOCK_BYTES;
      let amax = 0;
      for (let i = 0; i < 256; i++) amax = Math.max(amax, Math.abs(x[blk * 256 + i]!));
      const d = Math.fround(amax / 127);
      expect(view.getFloat32(o, true)).toBe(d);
      const id = d ? Math.fround(1 / d) : 0;
      for (let g = 0; g < 16; g++) {
        let sum = 0;
        for (let i = 16 * g; i < 16 * g + 16; i++) {
          const q = view.getInt8(o + 36 + i);
          const v = Math.fround(x[blk * 256 + i]! * id);
          const expected = Math.abs(v - Math.trunc(v)) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v);
          expect(q).toBe(expected + 0);
          sum += q;
        }
        expect(view.getInt16(o + 4 + 2 * g, true)).toBe(sum);
      }
    }
    cpu.release(mark);
  });

  /** Dequantizes Q8K rows written by the kernel. */
  function readQ8K(ptr: number, k: number, rows: number): Float64Array {
    const view = new DataView(cpu.memory.buffer, ptr, cpu.q8kBytes(k, rows));
    const out = new Float64Array(k * rows);
    for (let blk = 0; blk < (k * rows) / 256; blk++) {
      const d = view.getFloat32(blk * Q8K_BLOCK_BYTES, true);
      for (let i = 0; i < 256; i++) out[blk * 256 + i] = d * view.getInt8(blk * Q8K_BLOCK_BYTES + 36 + i);
    }
    return out;
  }

  const q8kCases = Q8K_WEIGHT_TYPES.flatMap((type) => [
    { type, name: GgmlType[type], big: false, tokens: 1, bias: false },
    { type, name: GgmlType[type], big: true, tokens: 6, bias: true },
  ]);

  it.each(q8kCases)('matmulQ8K $name big=$big tokens=$tokens: exact on its quantized activations, within bound of f32', ({ type, big, tokens, bias }) => {
    for (const outliers of [false, true]) {
      const mark = cpu.mark();
      const { k, rows, bytes, x, b, ref } = setupMatmul(type, big, tokens, bias, outliers);
      const w = exactWeights(type, bytes, rows * k);
      const xq = cpu.alloc(cpu.q8kBytes(k, tokens));
      cpu.quantizeQ8K({ ptr: upload(x), stride: k }, xq, k, 0, tokens);
      const yp = poisoned(tokens * rows);
      const wp = upload(bytes);
      const bp = b ? upload(b) : undefined;
      cpu.matmulQ8K({ type, w: wp, k, xq, y: { ptr: yp, stride: rows }, tokens, bias: bp, rowStart: 0, rowEnd: 11 });
      cpu.matmulQ8K({ type, w: wp, k, xq, y: { ptr: yp, stride: rows }, tokens, bias: bp, rowStart: 11, rowEnd: rows });
      const got = cpu.f32(yp, tokens * rows).slice();
      const refQ = matmulReference(w, k, rows, readQ8K(xq, k, tokens), tokens, b);
      expect(normalizedMse(got, refQ)).toBeLessThanOrEqual(MAX_NMSE);
      const err = normalizedMse(got, ref);
      console.log(`[q8k] ${GgmlType[type]} k=${k} tokens=${tokens} outliers=${outliers}: normalized MSE vs f32 activations ${err.toExponential(2)}`);
      expect(err).toBeLessThanOrEqual(outliers ? Q8K_MAX_NMSE_OUTLIERS : Q8K_MAX_NMSE_PLAIN);
      cpu.release(mark);
    }
  });

  it.each([
    { kind: 'rms' as const, n: 4096, rows: 3, weight: true, bias: false, inPlace: false },
    { kind: 'rms' as const, n: 37, rows: 5, weight: true, bias: false, inPlace: true },
    { kind: 'rms' as const, n: 100, rows: 2, weight: false, bias: false, inPlace: false },
    { kind: 'layer' as const, n: 771, rows: 4, weight: true, bias: true, inPlace: false },
  ])('norm $kind n=$n rows=$rows weight=$weight in-place=$inPlace', ({ kind, n, rows, weight, bias, inPlace }) => {
    const mark = cpu.mark();
    const x = floats(next, rows * n, 3);
    for (let i = 0; i < x.length; i++) x[i]! += 0.5; // a mean for LayerNorm to remove
    const w = weight ? floats(next, n) : undefined;
    const b = bias ? floats(next, n) : undefined;
    const eps = 1e-5;
    const ref = normReference(kind, x, n, rows, eps, w, b);
    const xp = upload(x);
    const yp = inPlace ? xp : poisoned(rows * n);
    cpu.norm({ kind, x: { ptr: xp, stride: n }, y: { ptr: yp, stride: n }, n, eps, weight: w && upload(w), bias: b && upload(b), rowStart: 0, rowEnd: rows });
    expect(normalizedMse(cpu.f32(yp, rows * n), ref)).toBeLessThanOrEqual(MAX_NMSE);
    cpu.release(mark);
  });

  it.each([
    { name: 'normal full', mode: 'normal' as const, heads: 4, headDim: 64, nRot: 64, tokens: 5, factors: false, yarn: false },
    { name: 'neox full', mode: 'neox' as const, heads: 3, headDim: 128, nRot: 128, tokens: 4, factors: false, yarn: false },
    { name: 'neox partial (Phi)', mode: 'neox' as const, heads: 5, headDim: 80, nRot: 32, tokens: 3, factors: false, yarn: false },
    { name: 'normal partial', mode: 'normal' as const, heads: 2, headDim: 96, nRot: 46, tokens: 7, factors: false, yarn: false },
    { name: 'llama3 freq factors', mode: 'normal' as const, heads: 4, headDim: 64, nRot: 64, tokens: 3, factors: true, yarn: false },
    { name: 'yarn', mode: 'neox' as const, heads: 2, headDim: 64, nRot: 64, tokens: 4, factors: false, yarn: true },
  ])('rope $name', ({ mode, heads, headDim, nRot, tokens, factors, yarn }) => {
    const mark = cpu.mark();
    const x = floats(next, tokens * heads * headDim);
    const positions = Uint32Array.from({ length: tokens }, () => Math.floor(next() * 5000));
    const freqBase = 10000 + Math.floor(next() * 500000);
    const ff = factors ? llama3FreqFactors(nRot, freqBase, 8, 1, 4, 8192) : undefined;
    const scaling = yarn ? { freqScale: 0.25, extFactor: 1, attnFactor: 1, betaFast: 32, betaSlow: 1, origCtx: 4096 } : undefined;
    const params = { mode, nRot, freqBase, ...(scaling ? { scaling } : {}) };
    const ref = ropeReference(x, tokens, heads, headDim, positions, params, ff);
    const xp = upload(x);
    const corr = yarn ? yarnCorrDims(nRot, 4096, freqBase, 32, 1) : undefined;
    cpu.rope({
      x: { ptr: xp, stride: heads * headDim }, headStride: headDim, heads, nRot, mode, positions: upload(positions), freqBase,
      freqScale: scaling?.freqScale, extFactor: scaling?.extFactor, attnFactor: scaling?.attnFactor, corr, freqFactors: ff && upload(ff),
      tokStart: 0, tokEnd: tokens,
    });
    const got = cpu.f32(xp, tokens * heads * headDim);
    expect(normalizedMse(got, ref)).toBeLessThanOrEqual(MAX_NMSE);
    // Dims past nRot are untouched, bit for bit.
    for (let t = 0; t < tokens; t++) for (let h = 0; h < heads; h++) for (let d = nRot; d < headDim; d++) {
      const i = (t * heads + h) * headDim + d;
      expect(got[i]).toBe(x[i]);
    }
    cpu.release(mark);
  });

  it.each([
    { name: 'decode MHA', heads: 4, kvHeads: 4, headDim: 64, tokens: 1, prefix: 37 },
    { name: 'decode GQA long', heads: 8, kvHeads: 2, headDim: 128, tokens: 1, prefix: 700, qGain: 3 },
    { name: 'MQA odd head dim', heads: 6, kvHeads: 1, headDim: 78, tokens: 2, prefix: 51 },
    { name: 'prefill causal from empty', heads: 4, kvHeads: 2, headDim: 64, tokens: 23, prefix: 0 },
    { name: 'sliding window', heads: 4, kvHeads: 2, headDim: 64, tokens: 5, prefix: 300, window: 64 },
    { name: 'softcap', heads: 2, kvHeads: 1, headDim: 256, tokens: 2, prefix: 90, softcap: 5, scale: 0.0625, qGain: 8 },
    { name: 'first token', heads: 2, kvHeads: 2, headDim: 32, tokens: 1, prefix: 0 },
    // Scores hundreds apart: most weights under e^-87, which the kernel's exp gives as 0; keys not a multiple of four.
    { name: 'peaked scores', heads: 4, kvHeads: 1, headDim: 64, tokens: 3, prefix: 130, qGain: 60 },
    // T5: the encoder (every key, a bias both ways), the decoder (causal, a bias), cross-attention
    // (every key of a longer input, queries at early positions, no bias); scale 1.
    { name: 'T5 encoder: not causal, relative bias', heads: 6, kvHeads: 6, headDim: 12, tokens: 37, prefix: 0, causal: false, buckets: 32, scale: 1 },
    { name: 'T5 decoder: causal, relative bias', heads: 4, kvHeads: 4, headDim: 16, tokens: 3, prefix: 40, buckets: 16, scale: 1 },
    // A bias with heads sharing KV heads (run in pairs: each head's own bias column).
    { name: 'relative bias, GQA', heads: 6, kvHeads: 2, headDim: 20, tokens: 4, prefix: 33, buckets: 16, scale: 0.5 },
    { name: 'T5 cross-attention: not causal, keys past the queries', heads: 4, kvHeads: 4, headDim: 64, tokens: 2, prefix: 0, causal: false, extraKeys: 50, scale: 1 },
  ])('attention $name', ({ heads, kvHeads, headDim, tokens, prefix, window, softcap, scale, qGain, causal, buckets, extraKeys }) => {
    const mark = cpu.mark();
    const kvLength = prefix + tokens + (extraKeys ?? 0);
    const capacity = kvLength + 3;
    const q = floats(next, tokens * heads * headDim, qGain ?? 1);
    const kc = floats(next, capacity * kvHeads * headDim);
    const vc = floats(next, capacity * kvHeads * headDim);
    const positions = Uint32Array.from({ length: tokens }, (_, t) => prefix + t);
    const s = scale ?? 1 / Math.sqrt(headDim);
    // Bucket ids for every key - query offset in (-capacity, capacity), drawn at random: the kernel adds what they name.
    const bias = buckets
      ? { table: floats(next, buckets * heads, 2), bucketIds: Uint32Array.from({ length: 2 * capacity - 1 }, () => Math.floor(next() * buckets)), offset: capacity - 1 }
      : undefined;
    const ref = attentionReference({ q, kCache: kc, vCache: vc, positions, tokens, heads, kvHeads, headDim, kvLength, scale: s, softcap, window, causal, bias });
    // q inside a wider fused row (as a qkv projection output): offset 3, stride heads*headDim + 10.
    const qStride = heads * headDim + 10;
    const qp = cpu.allocF32(tokens * qStride);
    for (let t = 0; t < tokens; t++) cpu.f32(qp + 4 * (t * qStride + 3), heads * headDim).set(q.subarray(t * heads * headDim, (t + 1) * heads * headDim));
    const out = poisoned(tokens * heads * headDim);
    const args = {
      q: { ptr: qp, stride: qStride, offset: 3 }, kCache: upload(kc), vCache: upload(vc), out: { ptr: out, stride: heads * headDim },
      positions: upload(positions), heads, kvHeads, headDim, kvLength, scale: s, softcap, window, scratch: cpu.allocF32(ATTENTION_SCRATCH_FLOATS_PER_KEY * kvLength),
      causal, bias: bias && { table: upload(bias.table), bucketIds: upload(bias.bucketIds), offset: bias.offset },
    };
    const units = tokens * heads;
    const split = Math.floor(units / 2);
    cpu.attention({ ...args, uStart: 0, uEnd: split });
    cpu.attention({ ...args, uStart: split, uEnd: units });
    expect(normalizedMse(cpu.f32(out, tokens * heads * headDim), ref)).toBeLessThanOrEqual(MAX_NMSE);
    // Heads sharing a KV head run in pairs; each unit alone gives bitwise the same outputs.
    const alone = poisoned(tokens * heads * headDim);
    for (let u = 0; u < units; u++) cpu.attention({ ...args, out: { ptr: alone, stride: heads * headDim }, uStart: u, uEnd: u + 1 });
    expect(cpu.f32(alone, tokens * heads * headDim)).toEqual(cpu.f32(out, tokens * heads * headDim));
    cpu.release(mark);
  });

  it('attention weights are exp of the score differences within 4 ulp, 0 below e^-87', () => {
    const mark = cpu.mark();
    // Two keys: k0 = 0 (score 0), k1 = e0 (score -d for the query -d e0); values e0, e1. Head h's
    // output is [1, exp(-d)] / (1 + exp(-d)), so out1 / out0 is the kernel's exp(-d).
    const ds = [0, 1e-3, 0.1, 0.35, 0.5, 1, 2.5, 5, 10, 20, 33.3, 50, 70, 80, 86.9, 87.5, 90, 103, 120];
    const headDim = 4;
    const q = new Float32Array(ds.length * headDim);
    ds.forEach((d, h) => (q[h * headDim] = -d));
    const kc = Float32Array.from([0, 0, 0, 0, 1, 0, 0, 0]);
    const vc = Float32Array.from([1, 0, 0, 0, 0, 1, 0, 0]);
    const out = poisoned(ds.length * headDim);
    cpu.attention({
      q: { ptr: upload(q), stride: ds.length * headDim }, kCache: upload(kc), vCache: upload(vc), out: { ptr: out, stride: ds.length * headDim },
      positions: upload(Uint32Array.from([1])), heads: ds.length, kvHeads: 1, headDim, kvLength: 2, scale: 1, scratch: cpu.allocF32(ATTENTION_SCRATCH_FLOATS_PER_KEY * 2), uStart: 0, uEnd: ds.length,
    });
    const o = cpu.f32(out, ds.length * headDim);
    const wrong: string[] = [];
    ds.forEach((d, h) => {
      const ratio = o[h * headDim + 1]! / o[h * headDim]!;
      const exact = Math.exp(-Math.fround(d));
      const ok = d > 87 ? ratio === 0 : Math.abs(ratio / exact - 1) <= 4 * 2 ** -24;
      if (!ok) wrong.push(`exp(-${d}): ${ratio} for ${exact}`);
    });
    expect(wrong).toEqual([]);
    cpu.release(mark);
  });

  it.each([
    { n: 151936, rows: 1, scale: 1 },
    { n: 37, rows: 6, scale: 0.3 },
  ])('softmax n=$n rows=$rows', ({ n, rows, scale }) => {
    const mark = cpu.mark();
    const x = floats(next, n * rows, 20);
    const ref = softmaxReference(x, n, rows, scale);
    const xp = upload(x);
    const yp = poisoned(n * rows);
    cpu.softmax({ x: { ptr: xp, stride: n }, y: { ptr: yp, stride: n }, n, scale, rowStart: 0, rowEnd: rows });
    expect(normalizedMse(cpu.f32(yp, n * rows), ref)).toBeLessThanOrEqual(MAX_NMSE);
    cpu.release(mark);
  });

  it.each(['silu', 'gelu'] as const)('glu %s on a fused gate|up buffer', (activation) => {
    const mark = cpu.mark();
    const n = 1003;
    const rows = 3;
    const fused = floats(next, rows * 2 * n, 12); // beyond the GELU cut-offs at +-10 too
    const gate = new Float32Array(rows * n);
    const up = new Float32Array(rows * n);
    for (let r = 0; r < rows; r++) {
      gate.set(fused.subarray(r * 2 * n, r * 2 * n + n), r * n);
      up.set(fused.subarray(r * 2 * n + n, (r + 1) * 2 * n), r * n);
    }
    const ref = gluReference(activation, gate, up);
    const fp = upload(fused);
    const out = poisoned(rows * n);
    cpu.glu({ activation, gate: { ptr: fp, stride: 2 * n }, up: { ptr: fp, stride: 2 * n, offset: n }, out: { ptr: out, stride: n }, n, rowStart: 0, rowEnd: rows });
    expect(normalizedMse(cpu.f32(out, rows * n), ref)).toBeLessThanOrEqual(MAX_NMSE);
    cpu.release(mark);
  });

  it('elementwise relu: max(a, 0) exactly, strided rows, in place', () => {
    const mark = cpu.mark();
    const n = 203;
    const rows = 3;
    const a = floats(next, (n + 5) * rows);
    const ap = upload(a);
    const out = poisoned(n * rows);
    cpu.elementwise({ op: 'relu', a: { ptr: ap, stride: n + 5, offset: 2 }, out: { ptr: out, stride: n }, n, rowStart: 0, rowEnd: rows });
    const ref = Float32Array.from({ length: n * rows }, (_, i) => Math.max(0, a[Math.floor(i / n) * (n + 5) + 2 + (i % n)]!));
    expect(Array.from(cpu.f32(out, n * rows))).toEqual(Array.from(ref));
    expect(ref.some((v) => v === 0) && ref.some((v) => v > 0)).toBe(true);
    cpu.elementwise({ op: 'relu', a: { ptr: ap, stride: n + 5 }, out: { ptr: ap, stride: n + 5 }, n: n + 5, rowStart: 0, rowEnd: rows });
    expect(Array.from(cpu.f32(ap, (n + 5) * rows))).toEqual(Array.from(a, (v) => Math.max(0, v)));
    cpu.release(mark);
  });

  it.each([
    { op: 'add' as const, broadcast: false, scale: 1 },
    { op: 'mul' as const, broadcast: true, scale: 0.5 },
    { op: 'scale' as const, broadcast: false, scale: 3 },
  ])('elementwise $op broadcast=$broadcast', ({ op, broadcast, scale }) => {
    const mark = cpu.mark();
    const n = 203;
    const rows = 4;
    const a = floats(next, n * rows);
    const b = floats(next, broadcast ? n : n * rows);
    const ref = elementwiseReference(op, a, b, n, rows, scale, broadcast);
    const ap = upload(a);
    const out = poisoned(n * rows);
    cpu.elementwise({ op, a: { ptr: ap, stride: n }, b: { ptr: upload(b), stride: broadcast ? 0 : n }, out: { ptr: out, stride: n }, n, scale, rowStart: 0, rowEnd: rows });
    expect(normalizedMse(cpu.f32(out, n * rows), ref)).toBeLessThanOrEqual(MAX_NMSE);
    // In place (out = a).
    cpu.elementwise({ op, a: { ptr: ap, stride: n }, b: { ptr: upload(b), stride: broadcast ? 0 : n }, out: { ptr: ap, stride: n }, n, scale, rowStart: 0, rowEnd: rows });
    expect(normalizedMse(cpu.f32(ap, n * rows), ref)).toBeLessThanOrEqual(MAX_NMSE);
    cpu.release(mark);
  });

  it('elementwise softcap in place', () => {
    const mark = cpu.mark();
    const n = 301;
    const x = floats(next, n * 2, 60);
    const cap = 30;
    const ref = Array.from(x, (v) => cap * Math.tanh(v / cap));
    const xp = upload(x);
    cpu.elementwise({ op: 'softcap', a: { ptr: xp, stride: n }, out: { ptr: xp, stride: n }, n, scale: cap, rowStart: 0, rowEnd: 2 });
    expect(normalizedMse(cpu.f32(xp, 2 * n), ref)).toBeLessThanOrEqual(MAX_NMSE);
    cpu.release(mark);
  });

  it.each(CPU_WEIGHT_TYPES.map((t) => [GgmlType[t], t] as const))('embed %s (with an out-of-range id)', (_name, type) => {
    const mark = cpu.mark();
    const k = type === GgmlType.F32 || type === GgmlType.F16 || type === GgmlType.BF16 ? 70 : 256;
    const rows = 11;
    const bytes = randomBlocks(type, rows, k, Math.floor(next() * 2 ** 31));
    const values = exactWeights(type, bytes, rows * k);
    const ids = Uint32Array.from([3, 0, 10, 99, 3]);
    const scale = Math.fround(Math.sqrt(k));
    const ref = embedReference(values, k, rows, ids, scale);
    const out = poisoned(ids.length * k);
    cpu.embed({ type, table: upload(bytes), k, rows, ids: upload(ids), out: { ptr: out, stride: k }, scale, tokStart: 0, tokEnd: ids.length });
    // The kernel's arithmetic is the reference's (f32 dequantize, one f32 multiply): exact.
    expect(Array.from(cpu.f32(out, ids.length * k))).toEqual(Array.from(ref));
    cpu.release(mark);
  });

  it('argmax picks the first of equal maxima', () => {
    const mark = cpu.mark();
    const n = 32000;
    const rows = 3;
    const x = floats(next, n * rows);
    const expected: number[] = [];
    for (let r = 0; r < rows; r++) {
      const a = 1 + Math.floor(next() * (n - 2));
      x[r * n + a] = 5;
      x[r * n + a + 1] = 5;
      expected.push(a);
    }
    const out = cpu.alloc(4 * rows);
    cpu.u32(out, rows).fill(0xffffffff);
    cpu.argmax({ x: { ptr: upload(x), stride: n }, n, out, rowStart: 0, rowEnd: rows });
    expect(Array.from(cpu.u32(out, rows))).toEqual(expected);
    cpu.release(mark);
  });

  it('rejects unsupported types and shapes', () => {
    expect(() => cpu.dequantize(GgmlType.IQ2_XXS, 0, 0, 256)).toThrow(RangeError);
    expect(() => cpu.matmulQ8A({ type: GgmlType.F16, w: 0, k: 32, xq: 0, y: { ptr: 0, stride: 1 }, tokens: 1, rowStart: 0, rowEnd: 0 })).toThrow(RangeError);
    expect(() => cpu.quantizeQ8A({ ptr: 0, stride: 33 }, 0, 33, 0, 1)).toThrow(RangeError);
  });
});

it('f16 conversion in the kernels: every half, subnormals, infinities and NaN, like the CPU reference', async () => {
  for (const relaxed of relaxedWorksHere ? [false, true] : [false]) {
    const cpu = await CpuKernels.create({ relaxed });
    // Every half through the vector conversion (F16 rows) ...
    const bits = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const expected = exactWeights(GgmlType.F16, new Uint8Array(bits.buffer), bits.length);
    const dst = cpu.allocF32(bits.length);
    cpu.dequantize(GgmlType.F16, cpu.upload(bits), dst, bits.length);
    // ... and through the scalar one: one Q8_0 block per half, its quants all 1, so each block's
    // values are exactly its scale.
    const blocks = new Uint8Array(65536 * 34);
    for (let i = 0; i < 65536; i++) {
      blocks[34 * i] = i & 0xff;
      blocks[34 * i + 1] = i >> 8;
      blocks.fill(1, 34 * i + 2, 34 * i + 34);
    }
    const scales = cpu.allocF32(65536 * 32);
    cpu.dequantize(GgmlType.Q8_0, cpu.upload(blocks), scales, 65536 * 32);
    const vector = cpu.f32(dst, bits.length);
    const scalar = cpu.f32(scales, 65536 * 32);
    const wrong: string[] = [];
    for (let i = 0; i < 65536 && wrong.length < 5; i++) {
      const want = expected[i]!;
      const same = (x: number) => (Number.isNaN(want) ? Number.isNaN(x) : Object.is(x, want));
      if (!same(vector[i]!)) wrong.push(`vector 0x${i.toString(16)}: ${vector[i]} for ${want}`);
      if (!same(scalar[32 * i]!)) wrong.push(`scalar 0x${i.toString(16)}: ${scalar[32 * i]} for ${want}`);
    }
    expect(wrong, `relaxed ${relaxed}`).toEqual([]);
  }
});
