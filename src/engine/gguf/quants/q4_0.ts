/**
 * Q4_0: blocks of 32 values, 18 bytes, value = d * (q - 8), q in [0, 15].
 *
 * ```
 * byte  0..1   d       f16 scale
 * byte  2..17  qs[16]  byte 2 + j: low nibble = element j, high nibble = element j + 16
 * ```
 *
 * Reference quantizer (quantize_row_q4_0_ref): d = max / -8 where max is the value of largest
 * magnitude (sign kept, first one wins ties), q = min(15, (int8)(x / d + 8.5)): truncation of
 * x*id + 8.5 in f32, so ties round up, not to even.
 */
import { GgmlType } from '../ggml-types.ts';
import { fr } from './f32-math.ts';
import { checkDequantize, prepareQuantize, type QuantFormat } from './format.ts';
import { F16_TO_F32, f32ToF16 } from './half.ts';

const QK = 32;
const BYTES = 18;

export function dequantizeQ4_0(src: Uint8Array, dst: Float32Array, count: number): void {
  const blocks = checkDequantize(q4_0, src, dst, count);
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += BYTES, y += QK) {
    const d = F16_TO_F32[src[o]! | (src[o + 1]! << 8)]!;
    for (let j = 0; j < 16; j++) {
      const q = src[o + 2 + j]!;
      dst[y + j] = ((q & 0xf) - 8) * d;
      dst[y + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

export function quantizeQ4_0(src: Float32Array, count = src.length, out?: Uint8Array): Uint8Array {
  const dst = prepareQuantize(q4_0, src, count, out);
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
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    const h = f32ToF16(d);
    dst[o] = h & 0xff;
    dst[o + 1] = h >> 8;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(fr(fr(src[x + j]! * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(fr(fr(src[x + j + 16]! * id) + 8.5)));
      dst[o + 2 + j] = q0 | (q1 << 4);
    }
  }
  return dst;
}

export const q4_0: QuantFormat = {
  type: GgmlType.Q4_0,
  name: 'Q4_0',
  blockSize: QK,
  typeSize: BYTES,
  dequantize: dequantizeQ4_0,
  quantize: quantizeQ4_0,
  matchesLlamaCpp: true,
};
