/**
 * Random weights for kernel tests, built so the exact value of every weight is known without a
 * dequantizer: the generator picks the encoded fields (f16 bits, int8 quants) and computes the
 * value each one stands for. Kernel tests then compare against float64 over those values.
 */
import { GgmlType } from '../engine/gguf/ggml-types.ts';

export interface RandomWeight {
  bytes: Uint8Array<ArrayBuffer>;
  /** The value of every weight, rows x k, row-major. */
  values: Float64Array;
}

function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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

export function randomWeight(type: GgmlType, rows: number, k: number, seed: number): RandomWeight {
  const next = rng(seed);
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
