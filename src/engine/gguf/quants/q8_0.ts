/**
 * Q8_0: blocks of 32 values, 34 bytes, value = d * q.
 *
 * ```
 * byte  0..1   d      f16 scale
 * byte  2..33  qs[32] int8 quants, element j in byte 2 + j
 * ```
 *
 * Reference quantizer (quantize_row_q8_0_ref): d = amax / 127 in f32, q = roundf(x * (1/d))
 * (half away from zero, unlike the K-quants' nearest_int).
 */
import { GgmlType } from '../ggml-types.ts';
import { fr, roundAway } from './f32-math.ts';
import { checkDequantize, prepareQuantize, type QuantFormat } from './format.ts';
import { F16_TO_F32, f32ToF16 } from './half.ts';

const QK = 32;
const BYTES = 34;

export function dequantizeQ8_0(src: Uint8Array, dst: Float32Array, count: number): void {
  const blocks = checkDequantize(q8_0, src, dst, count);
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += BYTES, y += QK) {
    const d = F16_TO_F32[src[o]! | (src[o + 1]! << 8)]!;
    // int8 * f16 is exact in double; the Float32Array store rounds once, as C's f32 multiply does.
    for (let j = 0; j < QK; j++) dst[y + j] = ((src[o + 2 + j]! << 24) >> 24) * d;
  }
}

export function quantizeQ8_0(src: Float32Array, count = src.length, out?: Uint8Array): Uint8Array {
  const dst = prepareQuantize(q8_0, src, count, out);
  for (let b = 0, o = 0, x = 0; b < count / QK; b++, o += BYTES, x += QK) {
    let amax = 0;
    for (let j = 0; j < QK; j++) {
      const a = Math.abs(src[x + j]!);
      amax = amax > a ? amax : a; // C's MAX macro, NaN behaviour included
    }
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    const h = f32ToF16(d);
    dst[o] = h & 0xff;
    dst[o + 1] = h >> 8;
    for (let j = 0; j < QK; j++) dst[o + 2 + j] = roundAway(fr(src[x + j]! * id)) & 0xff;
  }
  return dst;
}

export const q8_0: QuantFormat = {
  type: GgmlType.Q8_0,
  name: 'Q8_0',
  blockSize: QK,
  typeSize: BYTES,
  dequantize: dequantizeQ8_0,
  quantize: quantizeQ8_0,
  matchesLlamaCpp: true,
};
