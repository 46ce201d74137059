/**
 * Q5_1: blocks of 32 values, 24 bytes, value = d * q + m, q in [0, 31].
 *
 * ```
 * byte  0..1   d       f16 scale
 * byte  2..3   m       f16 min
 * byte  4..7   qh      u32 little-endian: bit j = 5th bit (value 16) of element j
 * byte  8..23  qs[16]  byte 8 + j: low nibble = low 4 bits of element j, high nibble = of element j + 16
 * ```
 *
 * Reference quantizer (quantize_row_q5_1_ref): d = (max - min) / 31, q = (uint8)((x - min)/d + 0.5)
 * with no clamp.
 */
import { GgmlType } from '../ggml-types.ts';
import { fr } from './f32-math.ts';
import { checkDequantize, prepareQuantize, type QuantFormat } from './format.ts';
import { F16_TO_F32, f32ToF16 } from './half.ts';

const QK = 32;
const BYTES = 24;
const FLT_MAX = 3.4028234663852886e38;

export function dequantizeQ5_1(src: Uint8Array, dst: Float32Array, count: number): void {
  const blocks = checkDequantize(q5_1, src, dst, count);
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += BYTES, y += QK) {
    const d = F16_TO_F32[src[o]! | (src[o + 1]! << 8)]!;
    const m = F16_TO_F32[src[o + 2]! | (src[o + 3]! << 8)]!;
    const qh = src[o + 4]! | (src[o + 5]! << 8) | (src[o + 6]! << 16) | (src[o + 7]! << 24);
    for (let j = 0; j < 16; j++) {
      const q = src[o + 8 + j]!;
      const h0 = ((qh >>> j) << 4) & 0x10;
      const h1 = (qh >>> (j + 12)) & 0x10;
      dst[y + j] = fr(((q & 0xf) | h0) * d) + m;
      dst[y + j + 16] = fr(((q >> 4) | h1) * d) + m;
    }
  }
}

export function quantizeQ5_1(src: Float32Array, count = src.length, out?: Uint8Array): Uint8Array {
  const dst = prepareQuantize(q5_1, src, count, out);
  for (let b = 0, o = 0, x = 0; b < count / QK; b++, o += BYTES, x += QK) {
    let min = FLT_MAX;
    let max = -FLT_MAX;
    for (let j = 0; j < QK; j++) {
      const v = src[x + j]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = fr(fr(max - min) / 31);
    const id = d ? fr(1 / d) : 0;
    const hd = f32ToF16(d);
    const hm = f32ToF16(min);
    dst[o] = hd & 0xff;
    dst[o + 1] = hd >> 8;
    dst[o + 2] = hm & 0xff;
    dst[o + 3] = hm >> 8;
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.trunc(fr(fr(fr(src[x + j]! - min) * id) + 0.5)) & 0xff;
      const q1 = Math.trunc(fr(fr(fr(src[x + j + 16]! - min) * id) + 0.5)) & 0xff;
      dst[o + 8 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      qh |= ((q0 & 0x10) >> 4) << j;
      qh |= ((q1 & 0x10) >> 4) << (j + 16);
    }
    dst[o + 4] = qh & 0xff;
    dst[o + 5] = (qh >>> 8) & 0xff;
    dst[o + 6] = (qh >>> 16) & 0xff;
    dst[o + 7] = qh >>> 24;
  }
  return dst;
}

export const q5_1: QuantFormat = {
  type: GgmlType.Q5_1,
  name: 'Q5_1',
  blockSize: QK,
  typeSize: BYTES,
  dequantize: dequantizeQ5_1,
  quantize: quantizeQ5_1,
  matchesLlamaCpp: true,
};
