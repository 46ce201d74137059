/**
 * Q4_1: blocks of 32 values, 20 bytes, value = d * q + m, q in [0, 15].
 *
 * ```
 * byte  0..1   d       f16 scale
 * byte  2..3   m       f16 min (the block's smallest value)
 * byte  4..19  qs[16]  byte 4 + j: low nibble = element j, high nibble = element j + 16
 * ```
 *
 * Reference quantizer (quantize_row_q4_1_ref): d = (max - min) / 15, q = min(15, (int8)((x - min)/d + 0.5)).
 */
import { GgmlType } from '../ggml-types.ts';
import { fr } from './f32-math.ts';
import { checkDequantize, prepareQuantize, type QuantFormat } from './format.ts';
import { F16_TO_F32, f32ToF16 } from './half.ts';

const QK = 32;
const BYTES = 20;
const FLT_MAX = 3.4028234663852886e38;

export function dequantizeQ4_1(src: Uint8Array, dst: Float32Array, count: number): void {
  const blocks = checkDequantize(q4_1, src, dst, count);
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += BYTES, y += QK) {
    const d = F16_TO_F32[src[o]! | (src[o + 1]! << 8)]!;
    const m = F16_TO_F32[src[o + 2]! | (src[o + 3]! << 8)]!;
    for (let j = 0; j < 16; j++) {
      const q = src[o + 4 + j]!;
      dst[y + j] = fr((q & 0xf) * d) + m;
      dst[y + j + 16] = fr((q >> 4) * d) + m;
    }
  }
}

export function quantizeQ4_1(src: Float32Array, count = src.length, out?: Uint8Array): Uint8Array {
  const dst = prepareQuantize(q4_1, src, count, out);
  for (let b = 0, o = 0, x = 0; b < count / QK; b++, o += BYTES, x += QK) {
    let min = FLT_MAX;
    let max = -FLT_MAX;
    for (let j = 0; j < QK; j++) {
      const v = src[x + j]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = fr(fr(max - min) / 15);
    const id = d ? fr(1 / d) : 0;
    const hd = f32ToF16(d);
    const hm = f32ToF16(min);
    dst[o] = hd & 0xff;
    dst[o + 1] = hd >> 8;
    dst[o + 2] = hm & 0xff;
    dst[o + 3] = hm >> 8;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(fr(fr(fr(src[x + j]! - min) * id) + 0.5)));
      const q1 = Math.min(15, Math.trunc(fr(fr(fr(src[x + j + 16]! - min) * id) + 0.5)));
      dst[o + 4 + j] = q0 | (q1 << 4);
    }
  }
  return dst;
}

export const q4_1: QuantFormat = {
  type: GgmlType.Q4_1,
  name: 'Q4_1',
  blockSize: QK,
  typeSize: BYTES,
  dequantize: dequantizeQ4_1,
  quantize: quantizeQ4_1,
  matchesLlamaCpp: true,
};
