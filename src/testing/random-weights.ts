/**
 * Random weights for kernel tests. Two ways to know the exact value of every weight:
 * - `randomWeight` (F32, F16, BF16, Q8_0) picks the encoded fields and computes the value each
 *   one stands for, with no dequantizer involved;
 * - `randomBlocks` (every format) makes random valid GGUF bytes, and `exactWeights` decodes them
 *   with the CPU reference dequantizers, which are bit-exact with llama.cpp.
 * Kernel tests then compare against float64 over those values.
 */
import { GgmlType, ggmlTypeInfo } from '../engine/gguf/ggml-types.ts';
import { requireQuantFormat } from '../engine/gguf/quants/index.ts';
import type { FrozenMatrix } from '../engine/backend/train-ops.ts';
import { mulberry32 } from './random.ts';

export interface RandomWeight {
  bytes: Uint8Array<ArrayBuffer>;
  /** The value of every weight, rows x k, row-major. */
  values: Float64Array;
}


/** Value of IEEE half-float bits. */
export function halfBitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Random finite half-float bits with magnitude in about [2^-(spread), 2^1]. */
function randomHalfBits(next: () => number, spread = 8): number {
  const exponent = 15 - Math.floor(next() * spread) + 1; // 2^1 down to 2^-(spread-2)
  const mantissa = Math.floor(next() * 1024);
  const sign = next() < 0.5 ? 0x8000 : 0;
  return sign | (exponent << 10) | mantissa;
}

/**
 * Where each block format keeps its f16 fields: [byte offset, log2 of the smallest and largest
 * magnitude]. Magnitudes are chosen so dequantized weights stay around 1 at the largest quants
 * and scales (a 6-bit K-quant scale times a 4-bit quant is up to ~1000, so its d is small).
 */
const HALF_FIELDS: Partial<Record<GgmlType, Array<[offset: number, minExp: number, maxExp: number]>>> = {
  [GgmlType.Q4_0]: [[0, -8, -3]],
  [GgmlType.Q4_1]: [[0, -8, -3], [2, -4, 0]],
  [GgmlType.Q5_0]: [[0, -9, -4]],
  [GgmlType.Q5_1]: [[0, -9, -4], [2, -4, 0]],
  [GgmlType.Q8_0]: [[0, -11, -6]],
  [GgmlType.Q2_K]: [[80, -8, -4], [82, -8, -4]],
  [GgmlType.Q3_K]: [[108, -9, -5]],
  [GgmlType.Q4_K]: [[0, -10, -6], [2, -10, -6]],
  [GgmlType.Q5_K]: [[0, -11, -7], [2, -10, -6]],
  [GgmlType.Q6_K]: [[208, -13, -9]],
  [GgmlType.IQ4_NL]: [[0, -11, -6]],
  [GgmlType.IQ4_XS]: [[0, -13, -9]],
};

/** Block formats `randomBlocks` can generate. */
export const RANDOM_BLOCK_TYPES: readonly GgmlType[] = Object.keys(HALF_FIELDS).map(Number);

/**
 * Random but valid GGUF bytes for a rows x k tensor of a block format: every byte random (so every
 * bit pattern of quants and packed scales occurs), except the f16 scale fields, which get finite,
 * sensibly sized values of either sign (occasionally zero or subnormal). For F32, F16 and BF16, random
 * finite values in about [-2, 2]. The exact weights are whatever llama.cpp's dequantizer makes of
 * these bytes: get them from the CPU reference (`requireQuantFormat(type).dequantize`).
 */
export function randomBlocks(type: GgmlType, rows: number, k: number, seed: number): Uint8Array<ArrayBuffer> {
  const next = mulberry32(seed);
  const n = rows * k;
  if (type === GgmlType.F32) {
    const f = new Float32Array(n);
    for (let i = 0; i < n; i++) f[i] = next() * 4 - 2;
    return new Uint8Array(f.buffer);
  }
  if (type === GgmlType.F16 || type === GgmlType.BF16) {
    const h = new Uint16Array(n + (n % 2));
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    for (let i = 0; i < n; i++) {
      if (type === GgmlType.F16) {
        h[i] = randomHalfBits(next);
      } else {
        f[0] = next() * 4 - 2;
        h[i] = u[0]! >>> 16;
      }
    }
    return new Uint8Array(h.buffer, 0, n * 2);
  }
  const fields = HALF_FIELDS[type];
  if (!fields) throw new Error(`randomBlocks: no generator for ${GgmlType[type]}`);
  const { blockSize, typeSize } = ggmlTypeInfo(type)!;
  if (k % blockSize !== 0) throw new RangeError(`${GgmlType[type]} rows must be a multiple of ${blockSize}, got k=${k}`);
  const blocks = n / blockSize;
  const bytes = new Uint8Array(blocks * typeSize);
  // Four random bytes per draw: the generator gives 32 random bits.
  for (let i = 0; i < bytes.length; i += 4) {
    const r = Math.floor(next() * 4294967296);
    for (let j = 0; j < 4 && i + j < bytes.length; j++) bytes[i + j] = (r >>> (8 * j)) & 0xff;
  }
  for (let b = 0; b < blocks; b++) {
    for (const [offset, minExp, maxExp] of fields) {
      const kind = next();
      let bits = 0; // zero, 1 in 64
      if (kind >= 1 / 64 && kind < 1 / 16) {
        // Subnormal, 3 in 64: real files have them (tiny mins), and a GPU must not flush them.
        bits = (next() < 0.5 ? 0x8000 : 0) | (1 + Math.floor(next() * 1023));
      } else if (kind >= 1 / 16) {
        const exponent = 15 + minExp + Math.floor(next() * (maxExp - minExp + 1));
        bits = (next() < 0.5 ? 0x8000 : 0) | (exponent << 10) | Math.floor(next() * 1024);
      }
      bytes[b * typeSize + offset] = bits & 0xff;
      bytes[b * typeSize + offset + 1] = bits >> 8;
    }
  }
  return bytes;
}

export function randomWeight(type: GgmlType, rows: number, k: number, seed: number): RandomWeight {
  const next = mulberry32(seed);
  const values = new Float64Array(rows * k);
  const n = rows * k;
  switch (type) {
    case GgmlType.F32: {
      const f = new Float32Array(n);
      for (let i = 0; i < n; i++) values[i] = f[i] = next() * 2 - 1;
      return { bytes: new Uint8Array(f.buffer), values };
    }
    case GgmlType.F16: {
      const h = new Uint16Array(n + (n % 2));
      for (let i = 0; i < n; i++) values[i] = halfBitsToNumber((h[i] = randomHalfBits(next)));
      return { bytes: new Uint8Array(h.buffer, 0, n * 2), values };
    }
    case GgmlType.BF16: {
      const h = new Uint16Array(n + (n % 2));
      const f = new Float32Array(1);
      const u = new Uint32Array(f.buffer);
      for (let i = 0; i < n; i++) {
        f[0] = next() * 2 - 1;
        h[i] = u[0]! >>> 16;
        u[0] = h[i]! << 16;
        values[i] = f[0];
      }
      return { bytes: new Uint8Array(h.buffer, 0, n * 2), values };
    }
    case GgmlType.Q8_0: {
      if (k % 32 !== 0) throw new RangeError('Q8_0 rows must be a multiple of 32');
      const blocks = n / 32;
      const bytes = new Uint8Array(blocks * 34);
      const view = new DataView(bytes.buffer);
      for (let b = 0; b < blocks; b++) {
        const dBits = randomHalfBits(next, 6) & 0x7fff; // positive scale, like llama.cpp's
        view.setUint16(b * 34, dBits, true);
        const d = halfBitsToNumber(dBits);
        for (let j = 0; j < 32; j++) {
          const q = Math.floor(next() * 255) - 127;
          view.setInt8(b * 34 + 2 + j, q);
          values[b * 32 + j] = Math.fround(d * q);
        }
      }
      return { bytes, values };
    }
    default:
      throw new Error(`randomWeight: type ${GgmlType[type]} not supported here; use a quantizer`);
  }
}

/**
 * The exact float32 weights llama.cpp decodes from `bytes` (`count` values), by the shared CPU
 * reference dequantizers (bit-exact with llama.cpp's dequantize_row_*).
 */
export function exactWeights(type: GgmlType, bytes: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count);
  requireQuantFormat(type).dequantize(bytes, out, count);
  return out;
}

/** A frozen base matrix for the training ops' tests: nOut rows of nIn random values encoded in `type`. */
export function randomFrozenMatrix(type: GgmlType, nIn: number, nOut: number, seed: number): FrozenMatrix {
  return { name: `w${seed}`, nIn, nOut, type, bytes: randomBlocks(type, nOut, nIn, seed) };
}
