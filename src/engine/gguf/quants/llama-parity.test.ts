/**
 * Our quant formats against llama.cpp itself (tools/llama-ref, linked to the ggml that
 * node-llama-cpp ships): dequantization bit for bit, quantization byte for byte, on fresh random
 * data each run. Re-run a failure with QUANT_SEED=<seed printed below>.
 */
import { describe, expect, it } from 'vitest';
import { llamaRefDequantize, llamaRefQuantize } from '../../../testing/llama-ref.ts';
import { QUANT_FORMATS, type QuantFormat } from './index.ts';
import { quantizeIq4NlRef } from './iq4_nl.ts';
import { DISTRIBUTIONS, firstDifference, mixedRows, rng, testSeed } from '../../../testing/quant-test-data.ts';

const seed = testSeed();
console.log(`llama-parity: seed ${seed} (QUANT_SEED=${seed} to repeat)`);

/** ggml's type names (llama-ref takes them case-insensitively, but say them as ggml does). */
const GGML_NAME: Record<string, string> = {
  F32: 'f32', F16: 'f16', BF16: 'bf16', Q4_0: 'q4_0', Q4_1: 'q4_1', Q5_0: 'q5_0', Q5_1: 'q5_1', Q8_0: 'q8_0',
  Q2_K: 'q2_K', Q3_K: 'q3_K', Q4_K: 'q4_K', Q5_K: 'q5_K', Q6_K: 'q6_K', IQ4_NL: 'iq4_nl', IQ4_XS: 'iq4_xs',
};

/** Two rows per distribution, 768 values each (3 super-blocks, 24 blocks of 32). */
const N_PER_ROW = 768;
const ROWS = 2 * Object.keys(DISTRIBUTIONS).length;

function bitsOf(f: Float32Array): Uint32Array {
  return new Uint32Array(f.buffer, f.byteOffset, f.length);
}

function describeMismatch(fmt: QuantFormat, i: number, ours: ArrayLike<number>, theirs: ArrayLike<number>, unit: string): string {
  const row = Math.floor(i / (unit === 'byte' ? (N_PER_ROW / fmt.blockSize) * fmt.typeSize : N_PER_ROW));
  const dist = Object.keys(DISTRIBUTIONS)[row % Object.keys(DISTRIBUTIONS).length];
  return `${fmt.name} seed ${seed}: first ${unit} mismatch at ${i} (row ${row}, ${dist}): ours ${ours[i]} llama.cpp ${theirs[i]}`;
}

describe.each(QUANT_FORMATS.map((f) => [f.name, f] as const))('%s against llama.cpp', (name, fmt) => {
  const ggmlName = GGML_NAME[name]!;
  const data = mixedRows(seed ^ fmt.type, ROWS, N_PER_ROW);

  it('dequantizes llama.cpp-quantized data bit for bit', () => {
    // F32 has no quantize_row_*_ref in ggml, only ggml_quantize_chunk (a copy).
    const bytes = llamaRefQuantize(ggmlName, data, N_PER_ROW, { chunk: fmt.name === 'F32' });
    expect(bytes.length).toBe((data.length / fmt.blockSize) * fmt.typeSize);
    const theirs = llamaRefDequantize(ggmlName, bytes, data.length);
    const ours = new Float32Array(data.length).fill(NaN);
    fmt.dequantize(bytes, ours, data.length);
    const i = firstDifference(bitsOf(ours), bitsOf(theirs));
    expect(i, i < 0 ? '' : describeMismatch(fmt, i, ours, theirs, 'value')).toBe(-1);
  });

  it('dequantizes random bytes bit for bit (every bit pattern of the fields, not just quantizer output)', () => {
    const next = rng(seed ^ (fmt.type << 8));
    const blocks = 64 * (256 / fmt.blockSize);
    const bytes = new Uint8Array(blocks * fmt.typeSize);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(next() * 256);
    // Keep f16/bf16 fields finite: ggml's NaN payloads after arithmetic are not something to pin.
    sanitizeHalves(fmt, bytes);
    const n = blocks * fmt.blockSize;
    const theirs = llamaRefDequantize(ggmlName, bytes, n);
    const ours = new Float32Array(n).fill(NaN);
    fmt.dequantize(bytes, ours, n);
    const i = firstDifference(bitsOf(ours), bitsOf(theirs));
    expect(i, i < 0 ? '' : describeMismatch(fmt, i, ours, theirs, 'value')).toBe(-1);
  });

  if (fmt.quantize) {
    const quantize = fmt.quantize.bind(fmt);
    it('quantizes byte for byte like llama.cpp (quantize_row_*_ref and ggml_quantize_chunk)', () => {
      expect(fmt.matchesLlamaCpp).toBe(true);
      const ours = quantize(data);
      // IQ4_NL's _ref differs from its chunk quantizer (see the separate test below); F32 has no _ref.
      const entryPoints = fmt.name === 'IQ4_NL' || fmt.name === 'F32' ? [true] : [false, true];
      for (const chunk of entryPoints) {
        const theirs = llamaRefQuantize(ggmlName, data, N_PER_ROW, { chunk });
        const i = firstDifference(ours, theirs);
        expect(i, i < 0 ? '' : `${chunk ? 'chunk' : 'ref'}: ${describeMismatch(fmt, i, ours, theirs, 'byte')}`).toBe(-1);
      }
    });
  }
});

describe('IQ4_NL reference quantizer (quantize_row_iq4_nl_ref)', () => {
  it('matches llama.cpp byte for byte on data without all-zero blocks', () => {
    // An all-zero block makes the C code pack uninitialized indices, so leave those out here.
    const data = mixedRows(seed ^ 0x4e4c, ROWS, N_PER_ROW);
    const next = rng(seed ^ 0x4e4d);
    for (let b = 0; b < data.length; b += 32) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(data[b + j]!));
      if (amax < 1e-15) data[b + Math.floor(next() * 32)] = 0.25;
    }
    const theirs = llamaRefQuantize('iq4_nl', data, N_PER_ROW);
    const ours = quantizeIq4NlRef(data);
    const i = firstDifference(ours, theirs);
    expect(i, `seed ${seed}: first byte mismatch at ${i}`).toBe(-1);
  });
});

describe('F16 and BF16 conversions against ggml', () => {
  it('quantize random f32 bit patterns (NaN, infinities, subnormals, overflow) like ggml', () => {
    const next = rng(seed ^ 0xf16);
    const n = 1 << 16;
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) bits[i] = Math.floor(next() * 2 ** 32);
    // Plus the edges: half overflow and rounding boundaries, zeros, infinities, a NaN of each sign.
    const edges = [0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x477fe000, 0x477fefff,
      0x477ff000, 0x33000000, 0x33000001, 0x387fc000, 0x3f801000, 0x3f803000, 0x7f7fffff, 0x00000001];
    bits.set(edges);
    const data = new Float32Array(bits.buffer);
    for (const name of ['F16', 'BF16'] as const) {
      const fmt = QUANT_FORMATS.find((f) => f.name === name)!;
      const theirs = llamaRefQuantize(GGML_NAME[name]!, data, n);
      const ours = fmt.quantize!(data);
      const i = firstDifference(ours, theirs);
      expect(i, `${name} seed ${seed}: first byte mismatch at ${i}, input bits 0x${bits[i >> 1]?.toString(16)}`).toBe(-1);
    }
  });
});

/** Replaces NaN/infinite f16 and bf16 fields (scales, mins, plain values) with finite ones. */
function sanitizeHalves(fmt: QuantFormat, bytes: Uint8Array): void {
  const halfOffsets: Record<string, number[]> = {
    F16: [0], BF16: [0], Q4_0: [0], Q4_1: [0, 2], Q5_0: [0], Q5_1: [0, 2], Q8_0: [0],
    Q2_K: [80, 82], Q3_K: [108], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208], IQ4_NL: [0], IQ4_XS: [0],
  };
  const offsets = halfOffsets[fmt.name];
  if (!offsets) return;
  const isBf16 = fmt.name === 'BF16';
  for (let b = 0; b < bytes.length; b += fmt.typeSize) {
    for (const off of offsets) {
      const hi = b + off + 1;
      // f16: exponent bits 14..10 all set means inf/NaN; bf16: bits 14..7.
      if (isBf16 ? (bytes[hi]! & 0x7f) === 0x7f && bytes[hi - 1]! & 0x80 : (bytes[hi]! & 0x7c) === 0x7c) bytes[hi]! ^= 0x40;
    }
  }
}
