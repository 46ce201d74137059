/**
 * IQ4_XS: super-blocks of 256 values in 8 blocks of 32, 136 bytes.
 * value = (d * (ls[b] - 32)) * K[q], K = kvalues_iq4nl (see iq4_nl.ts), ls 6-bit.
 *
 * ```
 * byte   0..1    d            f16 super-block scale
 * byte   2..3    scales_h     u16 little-endian: bits 2b..2b+1 = high 2 bits of ls[b]
 * byte   4..7    scales_l[4]  byte 4 + floor(b/2): low nibble = low 4 bits of ls[b] for even b,
 *                             high nibble for odd b
 * byte   8..135  qs[128]      block b uses bytes 8+16b..8+16b+15: low nibble of byte 8+16b+j =
 *                             index of element 32b+j, high nibble = of element 32b+16+j
 * ```
 *
 * Quantizer: ggml's quantize_row_iq4_nl_impl(256, 32, ntry 7) without importance weights; the
 * `_ref` entry point and ggml_quantize_chunk agree for this type.
 */
import { GgmlType } from '../ggml-types.ts';
import { checkDequantize, prepareQuantize, type QuantFormat } from './format.ts';
import { F16_TO_F32 } from './half.ts';
import { Iq4Scratch, KVALUES_IQ4NL, quantizeIq4Super } from './iq4_nl.ts';
import { fr } from './f32-math.ts';

const QK = 256;
const BYTES = 136;

export function dequantizeIq4Xs(src: Uint8Array, dst: Float32Array, count: number): void {
  const blocks = checkDequantize(iq4_XS, src, dst, count);
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += BYTES) {
    const d = F16_TO_F32[src[o]! | (src[o + 1]! << 8)]!;
    const sh = src[o + 2]! | (src[o + 3]! << 8);
    for (let ib = 0; ib < 8; ib++, y += 32) {
      const ls = ((src[o + 4 + (ib >> 1)]! >> (4 * (ib & 1))) & 0xf) | (((sh >> (2 * ib)) & 3) << 4);
      const dl = fr(d * (ls - 32));
      const qs = o + 8 + 16 * ib;
      for (let j = 0; j < 16; j++) {
        const q = src[qs + j]!;
        dst[y + j] = dl * KVALUES_IQ4NL[q & 0xf]!;
        dst[y + j + 16] = dl * KVALUES_IQ4NL[q >> 4]!;
      }
    }
  }
}

export function quantizeIq4Xs(src: Float32Array, count = src.length, out?: Uint8Array): Uint8Array {
  const dst = prepareQuantize(iq4_XS, src, count, out);
  const s = new Iq4Scratch();
  for (let b = 0, o = 0, x = 0; b < count / QK; b++, o += BYTES, x += QK) {
    quantizeIq4Super(QK, src, x, dst, o, o + 8, o + 2, o + 4, 7, s);
  }
  return dst;
}

export const iq4_XS: QuantFormat = {
  type: GgmlType.IQ4_XS,
  name: 'IQ4_XS',
  blockSize: QK,
  typeSize: BYTES,
  dequantize: dequantizeIq4Xs,
  quantize: quantizeIq4Xs,
  matchesLlamaCpp: true,
};
