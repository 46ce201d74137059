/**
 * Properties of the quant formats that need no llama.cpp: exhaustive f16/bf16 conversion checks
 * against an independent implementation, the rounding helpers, hand-built blocks that pin the byte
 * layouts, quantization error bounds, and the calling convention (offsets, bounds, errors).
 * llama-parity.test.ts checks bit-exactness against llama.cpp itself.
 */
import { describe, expect, it } from 'vitest';
import { GgmlType, ggmlTypeInfo } from '../ggml-types.ts';
import { minK4, nearestInt, packScalesK4, roundAway, scaleK4 } from './f32-math.ts';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, QUANT_FORMATS, quantFormat, requireQuantFormat } from './index.ts';
import { F16_TO_F32_BITS } from './half.ts';
import { DISTRIBUTIONS, mixedRows, rng, testSeed } from '../../../testing/quant-test-data.ts';

const seed = testSeed();
console.log(`quants: seed ${seed} (QUANT_SEED=${seed} to repeat)`);

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);
function f32FromBits(bits: number): number {
  U32[0] = bits;
  return F32[0]!;
}
function bitsOfF32(x: number): number {
  F32[0] = x;
  return U32[0]!;
}

/** Nearest half to a finite value, ties to even, written from the definition (not ggml's trick). */
function referenceF16(v: number): number {
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a >= 65520) return sign | 0x7c00; // 65520 = halfway between 65504 and 2^16 rounds to even: up
  let e = Math.floor(Math.log2(a || 1));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, -14) - 10);
  const q = a / ulp; // exact: a is an f32, ulp a power of two
  let r = Math.floor(q);
  const frac = q - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r++;
  const value = r * ulp;
  if (value === 0) return sign;
  if (value < 2 ** -14) return sign | (value / 2 ** -24);
  let ve = Math.floor(Math.log2(value));
  if (2 ** ve > value) ve--;
  if (2 ** (ve + 1) <= value) ve++;
  return sign | ((ve + 15) << 10) | (value / 2 ** (ve - 10) - 1024);
}

describe('f16 conversion (bit-exact with ggml)', () => {
  it('decodes known halves', () => {
    expect(f16ToF32(0x3c00)).toBe(1);
    expect(f16ToF32(0xc000)).toBe(-2);
    expect(f16ToF32(0x7bff)).toBe(65504);
    expect(f16ToF32(0x0400)).toBe(2 ** -14);
    expect(f16ToF32(0x0001)).toBe(2 ** -24);
    expect(f16ToF32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(f16ToF32(0x3555)).toBe(0.333251953125);
    expect(f16ToF32(0x7c00)).toBe(Infinity);
    expect(f16ToF32(0xfc00)).toBe(-Infinity);
    expect(Object.is(f16ToF32(0x8000), -0)).toBe(true);
    expect(f16ToF32(0x7e00)).toBeNaN();
    // NaN halves decode to quiet f32 NaNs carrying the payload (x86 quiets a signalling NaN).
    expect(F16_TO_F32_BITS[0x7c01]).toBe(0x7fc02000);
    expect(F16_TO_F32_BITS[0xfe00]).toBe(0xffc00000);
  });

  it('round-trips all 65536 halves (NaNs become ggml\'s 0x7E00 with the sign kept)', () => {
    let mismatches = 0;
    for (let h = 0; h < 65536; h++) {
      const isNan = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      const want = isNan ? (h & 0x8000) | 0x7e00 : h;
      if (f32ToF16(f16ToF32(h)) !== want) mismatches++;
    }
    expect(mismatches).toBe(0);
  });

  it('rounds every midpoint between adjacent halves to even, and its f32 neighbours to the nearer half', () => {
    const failures: string[] = [];
    for (let h = 0; h < 0x7c00; h++) {
      const lo = f16ToF32(h);
      const hi = h === 0x7bff ? 65536 : f16ToF32(h + 1);
      const mid = (lo + hi) / 2; // exact in f32: one more bit than a half's mantissa
      const midBits = bitsOfF32(mid);
      for (const [x, want] of [
        [mid, h % 2 === 0 ? h : h + 1],
        [f32FromBits(midBits - 1), h],
        [f32FromBits(midBits + 1), h + 1],
      ] as const) {
        for (const sign of [1, -1]) {
          const got = f32ToF16(sign * x);
          const expected = (sign < 0 ? 0x8000 : 0) | want;
          if (got !== expected && failures.length < 5) failures.push(`${sign * x}: got ${got.toString(16)} want ${expected.toString(16)}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('matches an independent round-to-nearest-even over random f32 bit patterns', () => {
    const next = rng(seed);
    const failures: string[] = [];
    for (let i = 0; i < 300_000; i++) {
      const bits = Math.floor(next() * 2 ** 32);
      const x = f32FromBits(bits);
      if (Number.isNaN(x)) continue;
      const want = referenceF16(x);
      const got = f32ToF16(x);
      if (got !== want && failures.length < 5) failures.push(`0x${bits.toString(16)} (${x}): got ${got.toString(16)} want ${want.toString(16)}`);
    }
    expect(failures, `seed ${seed}`).toEqual([]);
  });

  it('handles the edges: overflow to infinity, underflow to zero, NaN', () => {
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(65519.99)).toBe(0x7bff);
    expect(f32ToF16(65520)).toBe(0x7c00);
    expect(f32ToF16(1e10)).toBe(0x7c00);
    expect(f32ToF16(-Infinity)).toBe(0xfc00);
    expect(f32ToF16(2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal: even
    expect(f32ToF16(2 ** -25 * 1.5)).toBe(1);
    expect(f32ToF16(-(2 ** -26))).toBe(0x8000);
    expect(f32ToF16(NaN)).toBe(0x7e00);
    expect(f32ToF16(f32FromBits(0xffc00001))).toBe(0xfe00);
  });
});

describe('bf16 conversion (bit-exact with ggml)', () => {
  it('round-trips all 65536 bf16 values (NaNs get the quiet bit)', () => {
    let mismatches = 0;
    for (let h = 0; h < 65536; h++) {
      const isNan = (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
      if (f32ToBf16(bf16ToF32(h)) !== (isNan ? h | 0x40 : h)) mismatches++;
    }
    expect(mismatches).toBe(0);
  });

  it('rounds to nearest, ties to even, and quiets NaN keeping its payload', () => {
    expect(f32ToBf16(1)).toBe(0x3f80);
    expect(f32ToBf16(f32FromBits(0x3f808000))).toBe(0x3f80); // tie, even below
    expect(f32ToBf16(f32FromBits(0x3f818000))).toBe(0x3f82); // tie, even above
    expect(f32ToBf16(f32FromBits(0x3f808001))).toBe(0x3f81);
    expect(f32ToBf16(f32FromBits(0x7f7fffff))).toBe(0x7f80); // max float rounds to infinity
    expect(f32ToBf16(f32FromBits(0x7f800001))).toBe(0x7fc0);
    expect(f32ToBf16(f32FromBits(0xff812345))).toBe(0xffc1);
    expect(bf16ToF32(0xc040)).toBe(-3);
  });
});

describe('rounding helpers', () => {
  it('nearestInt rounds half to even, like ggml\'s magic-number trick', () => {
    const cases: [number, number][] = [[0.5, 0], [1.5, 2], [2.5, 2], [-0.5, 0], [-1.5, -2], [-2.5, -2], [0.49999997, 0],
      [2.5000002, 3], [4194303, 4194303], [-4194303, -4194303], [7.4999995, 7]];
    for (const [x, want] of cases) expect(nearestInt(Math.fround(x)), `nearestInt(${x})`).toBe(want);
    // Out of ggml's asserted range release builds return the mantissa bits; so do we.
    expect(nearestInt(2 ** 23)).toBe(-(2 ** 21)); // 2.5 * 2^23 has mantissa bits 2^21
    expect(nearestInt(Infinity)).toBe(-0x400000);
    expect(nearestInt(NaN)).toBe(0);
  });

  it('roundAway is C roundf: half away from zero', () => {
    const cases: [number, number][] = [[0.5, 1], [1.5, 2], [2.5, 3], [-0.5, -1], [-2.5, -3], [0.49999997, 0], [-0.49999997, -0], [126.5, 127]];
    for (const [x, want] of cases) expect(roundAway(Math.fround(x)), `roundAway(${x})`).toBe(want);
  });

  it('Q4_K/Q5_K 6-bit scale packing round-trips every scale and min', () => {
    const next = rng(seed ^ 0x6b);
    const ls = new Uint8Array(8);
    const lm = new Uint8Array(8);
    const packed = new Uint8Array(14);
    for (let t = 0; t < 2000; t++) {
      for (let j = 0; j < 8; j++) {
        ls[j] = t < 64 ? t : Math.floor(next() * 64);
        lm[j] = t < 64 ? 63 - t : Math.floor(next() * 64);
      }
      packed.fill(0xaa);
      packScalesK4(ls, lm, packed, 1);
      expect(packed[0]).toBe(0xaa);
      expect(packed[13]).toBe(0xaa);
      for (let j = 0; j < 8; j++) {
        expect(scaleK4(j, packed, 1)).toBe(ls[j]);
        expect(minK4(j, packed, 1)).toBe(lm[j]);
      }
    }
  });
});

describe('registry', () => {
  it('agrees with the ggml type table on block geometry', () => {
    expect(QUANT_FORMATS.map((f) => f.name)).toEqual([
      'F32', 'F16', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'IQ4_NL', 'IQ4_XS', 'BF16',
    ]);
    for (const fmt of QUANT_FORMATS) {
      const info = ggmlTypeInfo(fmt.type)!;
      expect([fmt.name, fmt.blockSize, fmt.typeSize]).toEqual([info.name, info.blockSize, info.typeSize]);
      expect(quantFormat(fmt.type)).toBe(fmt);
      expect(requireQuantFormat(fmt.type)).toBe(fmt);
    }
  });

  it('rejects unsupported types with the list of supported ones', () => {
    expect(quantFormat(GgmlType.IQ2_XXS)).toBeUndefined();
    expect(() => requireQuantFormat(GgmlType.Q8_K)).toThrow(/Q8_K \(15\) is not supported; supported: F32, F16, Q4_0.*IQ4_XS, BF16/);
    expect(() => requireQuantFormat(99 as GgmlType)).toThrow(/unknown\(99\)/);
  });
});

describe('calling convention', () => {
  const q4k = requireQuantFormat(GgmlType.Q4_K);

  it('rejects partial blocks and short arrays', () => {
    expect(() => q4k.dequantize(new Uint8Array(144), new Float32Array(256), 100)).toThrow(RangeError);
    expect(() => q4k.dequantize(new Uint8Array(143), new Float32Array(256), 256)).toThrow(/need 144 bytes, got 143/);
    expect(() => q4k.dequantize(new Uint8Array(144), new Float32Array(255), 256)).toThrow(/holds 255 floats/);
    expect(() => q4k.quantize!(new Float32Array(300))).toThrow(RangeError);
    expect(() => q4k.quantize!(new Float32Array(256), 256, new Uint8Array(100))).toThrow(/holds 100 bytes/);
  });

  it.each(QUANT_FORMATS.map((f) => [f.name, f] as const))('%s: works on subarrays at odd offsets and writes exactly count values', (_name, fmt) => {
    const count = 2 * Math.max(256, fmt.blockSize);
    const data = mixedRows(seed ^ fmt.type, 1, count);
    const bytes = fmt.quantize!(data);
    expect(bytes.length).toBe((count / fmt.blockSize) * fmt.typeSize);
    // Quantize into the middle of a bigger buffer: same bytes, neighbours untouched.
    const big = new Uint8Array(bytes.length + 7).fill(0x5a);
    const written = fmt.quantize!(data, count, big.subarray(3));
    expect(written.byteOffset).toBe(3);
    expect(Array.from(written)).toEqual(Array.from(bytes));
    expect([big[2], big[3 + bytes.length]]).toEqual([0x5a, 0x5a]);
    // Dequantize from an unaligned view into the middle of a poisoned output.
    const aligned = new Float32Array(count);
    fmt.dequantize(bytes, aligned, count);
    const out = new Float32Array(count + 2).fill(-12345);
    fmt.dequantize(big.subarray(3), out.subarray(1), count);
    expect(out[0]).toBe(-12345);
    expect(out[count + 1]).toBe(-12345);
    expect(Array.from(out.subarray(1, count + 1))).toEqual(Array.from(aligned));
  });
});

describe('hand-built blocks (byte layouts)', () => {
  it('Q8_0: d then 32 int8 quants', () => {
    const b = new Uint8Array(34);
    b[0] = 0x00;
    b[1] = 0x38; // d = 0.5
    for (let j = 0; j < 32; j++) b[2 + j] = (j * 8 - 128) & 0xff;
    const out = new Float32Array(32);
    requireQuantFormat(GgmlType.Q8_0).dequantize(b, out, 32);
    expect(Array.from(out)).toEqual(Array.from({ length: 32 }, (_, j) => (j * 8 - 128) * 0.5));
  });

  it('Q4_0: element j in the low nibble of byte 2+j, element j+16 in the high nibble', () => {
    const b = new Uint8Array(18);
    b[1] = 0x40; // d = 2
    for (let j = 0; j < 16; j++) b[2 + j] = j | ((15 - j) << 4);
    const out = new Float32Array(32);
    requireQuantFormat(GgmlType.Q4_0).dequantize(b, out, 32);
    expect(Array.from(out)).toEqual([...Array.from({ length: 16 }, (_, j) => (j - 8) * 2), ...Array.from({ length: 16 }, (_, j) => (7 - j) * 2)]);
  });

  it('Q5_1: qh bit j is the 5th bit of element j', () => {
    const b = new Uint8Array(24);
    b[1] = 0x3c; // d = 1
    b[3] = 0xbc; // m = -1
    b[4] = 0b101; // elements 0 and 2 get +16
    b[7] = 0x80; // element 31 gets +16
    b[8] = 0x21; // element 0 low bits 1, element 16 low bits 2
    const out = new Float32Array(32);
    requireQuantFormat(GgmlType.Q5_1).dequantize(b, out, 32);
    expect([out[0], out[1], out[2], out[16], out[31]]).toEqual([16, -1, 15, 1, 15]);
  });

  it('Q4_K: scales and mins as documented, 64-element chunks of paired nibbles', () => {
    const sc = [1, 2, 3, 4, 40, 41, 42, 43];
    const mn = [5, 6, 7, 8, 50, 51, 52, 63];
    const b = new Uint8Array(144);
    b[1] = 0x3c; // d = 1
    b[3] = 0x38; // dmin = 0.5
    const S = 4;
    for (let s = 0; s < 4; s++) {
      b[S + s] = sc[s]! | ((sc[s + 4]! >> 4) << 6);
      b[S + s + 4] = mn[s]! | ((mn[s + 4]! >> 4) << 6);
      b[S + s + 8] = (sc[s + 4]! & 15) | ((mn[s + 4]! & 15) << 4);
    }
    for (let c = 0; c < 4; c++) for (let l = 0; l < 32; l++) b[16 + 32 * c + l] = (l % 16) | ((15 - (l % 16)) << 4);
    const out = new Float32Array(256);
    requireQuantFormat(GgmlType.Q4_K).dequantize(b, out, 256);
    for (let i = 0; i < 256; i++) {
      const s = i >> 5;
      const l = i % 32;
      const q = s % 2 === 0 ? l % 16 : 15 - (l % 16);
      expect(out[i], `element ${i}`).toBe(sc[s]! * q - 0.5 * mn[s]!);
    }
  });

  it('Q6_K: ql/qh/scales/d at the end', () => {
    const b = new Uint8Array(210);
    b[209] = 0x3c; // d = 1
    for (let s = 0; s < 16; s++) b[192 + s] = (s - 8) & 0xff;
    // element 128h + 32k + l: low nibble from ql, 2 high bits from qh bits 2k.
    const want = new Float32Array(256);
    for (let h = 0; h < 2; h++) {
      for (let l = 0; l < 32; l++) {
        const q = [(l + h) % 64, (l * 3) % 64, (l * 5 + 7) % 64, 63 - l];
        b[64 * h + l] = (q[0]! & 15) | ((q[2]! & 15) << 4);
        b[64 * h + 32 + l] = (q[1]! & 15) | ((q[3]! & 15) << 4);
        b[128 + 32 * h + l] = (q[0]! >> 4) | ((q[1]! >> 4) << 2) | ((q[2]! >> 4) << 4) | ((q[3]! >> 4) << 6);
        for (let k = 0; k < 4; k++) {
          const i = 128 * h + 32 * k + l;
          want[i] = ((i >> 4) - 8) * (q[k]! - 32);
        }
      }
    }
    const out = new Float32Array(256);
    requireQuantFormat(GgmlType.Q6_K).dequantize(b, out, 256);
    expect(Array.from(out)).toEqual(Array.from(want));
  });
});

describe('quantization quality', () => {
  /** Upper bounds on RMS error / RMS value for gaussian data: the worst of 30 seeds plus ~20%. */
  const MAX_REL_RMSE: Record<string, number> = {
    F32: 0, F16: 0.0003, BF16: 0.0022, Q8_0: 0.007, Q6_K: 0.022, Q5_0: 0.053, Q5_1: 0.047, Q5_K: 0.045,
    Q4_0: 0.105, Q4_1: 0.095, Q4_K: 0.088, IQ4_NL: 0.094, IQ4_XS: 0.094, Q3_K: 0.19, Q2_K: 0.36,
  };

  it.each(QUANT_FORMATS.map((f) => [f.name, f] as const))('%s: error within bounds on gaussian data, zero blocks stay zero', (name, fmt) => {
    const next = rng(seed ^ (fmt.type << 4));
    const n = 8192;
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = DISTRIBUTIONS.gaussian!(next, i);
    data.fill(0, 512, 1024); // two whole super-blocks of zeros
    const back = new Float32Array(n);
    fmt.dequantize(fmt.quantize!(data), back, n);
    let err = 0;
    let norm = 0;
    for (let i = 0; i < n; i++) {
      err += (back[i]! - data[i]!) ** 2;
      norm += data[i]! ** 2;
    }
    expect(Math.sqrt(err / norm), `${name} seed ${seed}`).toBeLessThanOrEqual(MAX_REL_RMSE[name]!);
    expect(back.subarray(512, 1024).every((v) => v === 0)).toBe(true);
  });

  it('Q8_0 and Q4_0 reproduce values that are exactly on their grid', () => {
    const next = rng(seed ^ 0x80);
    const data = new Float32Array(64);
    for (let b = 0; b < 2; b++) {
      const d = 2 ** (Math.floor(next() * 10) - 5);
      for (let j = 0; j < 32; j++) data[32 * b + j] = (Math.floor(next() * 255) - 127) * d;
      data[32 * b + 5] = 127 * d; // the extreme sets the scale to exactly d
    }
    const back = new Float32Array(64);
    requireQuantFormat(GgmlType.Q8_0).dequantize(requireQuantFormat(GgmlType.Q8_0).quantize!(data), back, 64);
    expect(Array.from(back)).toEqual(Array.from(data));
    for (let b = 0; b < 2; b++) {
      const d = 2 ** (Math.floor(next() * 10) - 5);
      for (let j = 0; j < 32; j++) data[32 * b + j] = (Math.floor(next() * 16) - 8) * d;
      data[32 * b + 7] = -8 * d; // max / -8 = d
    }
    requireQuantFormat(GgmlType.Q4_0).dequantize(requireQuantFormat(GgmlType.Q4_0).quantize!(data), back, 64);
    expect(Array.from(back)).toEqual(Array.from(data));
  });
});
