/**
 * Q5_0: blocks of 32 values, 22 bytes, value = d * (q - 16), q in [0, 31].
 *
 * ```
 * byte  0..1   d       f16 scale
 * byte  2..5   qh      u32 little-endian: bit j = 5th bit (value 16) of element j
 * byte  6..21  qs[16]  byte 6 + j: low nibble = low 4 bits of element j, high nibble = of element j + 16
 * ```
 *
 * Reference quantizer (quantize_row_q5_0_ref): like Q4_0 with d = max / -16 and
 * q = min(31, (int8)(x / d + 16.5)).
 */
import { GgmlType } from '../ggml-types.ts';
import { fr } from './f32-math.ts';
import { checkDequantize, prepareQuantize, type QuantFormat } from './format.ts';
import { F16_TO_F32, f32ToF16 } from './half.ts';

const QK = 32;
const BYTES = 22;

export function dequantizeQ5_0(src: Uint8Array, dst: Float32Array, count: number): void {
  const blocks = checkDequantize(q5_0, src, dst, count);
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += BYTES, y += QK) {
    const d = F16_TO_F32[src[o]! | (src[o + 1]! << 8)]!;
    const qh = src[o + 2]! | (src[o + 3]! << 8) | (src[o + 4]! << 16) | (src[o + 5]! << 24);
    for (let j = 0; j < 16; j++) {
      const q = src[o + 6 + j]!;
      const h0 = ((qh >>> j) << 4) & 0x10;
      const h1 = (qh >>> (j + 12)) & 0x10;
      dst[y + j] = (((q & 0xf) | h0) - 16) * d;
      dst[y + j + 16] = (((q >> 4) | h1) - 16) * d;
    }
  }
}

export function quantizeQ5_0(src: Float32Array, count = src.length, out?: Uint8Array): Uint8Array {
  const dst = prepareQuantize(q5_0, src, count, out);
  for (let b = 0, o = 0, x = 0; b < count / QK; b++, o += BYTES, x += QK) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = src[x + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -16);
    const id = d ? fr(1 / d) : 0;
    const h = f32ToF16(d);
    dst[o] = h & 0xff;
    dst[o + 1] = h >> 8;
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(31, Math.trunc(fr(fr(src[x + j]! * id) + 16.5)));
      const q1 = Math.min(31, Math.trunc(fr(fr(src[x + j + 16]! * id) + 16.5)));
      dst[o + 6 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      qh |= ((q0 & 0x10) >> 4) << j;
      qh |= ((q1 & 0x10) >> 4) << (j + 16);
    }
    dst[o + 2] = qh & 0xff;
    dst[o + 3] = (qh >>> 8) & 0xff;
    dst[o + 4] = (qh >>> 16) & 0xff;
    dst[o + 5] = qh >>> 24;
  }
  return dst;
}

export const q5_0: QuantFormat = {
  type: GgmlType.Q5_0,
  name: 'Q5_0',
  blockSize: QK,
  typeSize: BYTES,
  dequantize: dequantizeQ5_0,
  quantize: quantizeQ5_0,
  matchesLlamaCpp: true,
};
