/**
 * Q3_K: super-blocks of 256 values in 16 sub-blocks of 16, 110 bytes.
 * value = (d * (sc[s] - 32)) * (q - 4), q in [0, 7], sc 6-bit.
 *
 * ```
 * byte    0..31   hmask[32]   bit k of byte l = 3rd bit (value 4) of element 32k+l
 * byte   32..95   qs[64]      low 2 bits, laid out as Q2_K's qs: bits 2k..2k+1 of byte 32+32h+l
 *                             = element 128h+32k+l
 * byte   96..107  scales[12]  16 six-bit scales, with S = these bytes and s = 0..15:
 *                             low 4 bits = s < 8 ? S[s] & 15 : S[s-8] >> 4,
 *                             high 2 bits = (S[8 + s%4] >> 2*floor(s/4)) & 3
 * byte  108..109  d           f16 super-block scale
 * ```
 *
 * Note the high bit is set when q >= 4: the stored value is q - 4 + 4*hbit, so a clear hmask bit
 * means "subtract 4" in ggml's dequantizer.
 *
 * Reference quantizer (quantize_row_q3_K_ref): make_q3_quants(16, 4, do_rmse) per sub-block, scales
 * to 6 bits against the one of largest magnitude, quants recomputed with nearest_int(x / d).
 */
import { GgmlType } from '../ggml-types.ts';
import { fr, makeQ3Quants, nearestInt } from './f32-math.ts';
import { checkDequantize, prepareQuantize, type QuantFormat } from './format.ts';
import { F16_TO_F32, f32ToF16 } from './half.ts';

const QK = 256;
const BYTES = 110;

function scaleQ3(src: Uint8Array, s: number, j: number): number {
  const low = j < 8 ? src[s + j]! & 0xf : src[s + j - 8]! >> 4;
  return (low | (((src[s + 8 + (j & 3)]! >> (2 * (j >> 2))) & 3) << 4)) - 32;
}

export function dequantizeQ3_K(src: Uint8Array, dst: Float32Array, count: number): void {
  const blocks = checkDequantize(q3_K, src, dst, count);
  const dl = new Float32Array(16);
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += BYTES, y += QK) {
    const dAll = F16_TO_F32[src[o + 108]! | (src[o + 109]! << 8)]!;
    for (let s = 0; s < 16; s++) dl[s] = dAll * scaleQ3(src, o + 96, s); // exact: 11 x 6 bits
    for (let h = 0; h < 2; h++) {
      const q = o + 32 + 32 * h;
      for (let k = 0; k < 4; k++) {
        const shift = 2 * k;
        const bit = 4 * h + k;
        const s = 8 * h + 2 * k;
        const yo = y + 128 * h + 32 * k;
        for (let l = 0; l < 32; l++) {
          // Branch-free: a clear hmask bit means "minus 4"; random bits defeat branch prediction.
          const v = ((src[q + l]! >> shift) & 3) + (((src[o + l]! >> bit) & 1) << 2) - 4;
          dst[yo + l] = dl[s + (l >> 4)]! * v;
        }
      }
    }
  }
}

export function quantizeQ3_K(src: Float32Array, count = src.length, out?: Uint8Array): Uint8Array {
  const dst = prepareQuantize(q3_K, src, count, out);
  const L = new Int8Array(QK);
  const scales = new Float32Array(16);
  for (let b = 0, o = 0, x = 0; b < count / QK; b++, o += BYTES, x += QK) {
    let maxScale = 0;
    let amax = 0;
    for (let j = 0; j < 16; j++) {
      scales[j] = makeQ3Quants(16, 4, src, x + 16 * j, L, 16 * j);
      const scale = Math.abs(scales[j]!);
      if (scale > amax) {
        amax = scale;
        maxScale = scales[j]!;
      }
    }
    const s = o + 96;
    dst.fill(0, s, s + 12);
    let hd = 0;
    if (maxScale) {
      const iscale = fr(-32 / maxScale);
      for (let j = 0; j < 16; j++) {
        // int8_t l = nearest_int(...): wraps to 8 bits before the clamp.
        let l = Math.max(-32, Math.min(31, (nearestInt(fr(iscale * scales[j]!)) << 24) >> 24)) + 32;
        if (j < 8) dst[s + j] = l & 0xf;
        else dst[s + j - 8]! |= (l & 0xf) << 4;
        l >>= 4;
        dst[s + 8 + (j % 4)]! |= l << (2 * (j >> 2));
      }
      hd = f32ToF16(fr(1 / iscale));
    }
    dst[o + 108] = hd & 0xff;
    dst[o + 109] = hd >> 8;
    const dAll = F16_TO_F32[hd]!;
    for (let j = 0; j < 16; j++) {
      const d = fr(dAll * scaleQ3(dst, s, j));
      if (!d) continue;
      for (let ii = 0; ii < 16; ii++) {
        L[16 * j + ii] = Math.max(-4, Math.min(3, nearestInt(fr(src[x + 16 * j + ii]! / d)))) + 4;
      }
    }
    dst.fill(0, o, o + 32);
    let m = 0;
    let hm = 1;
    for (let j = 0; j < QK; j++) {
      if (L[j]! > 3) {
        dst[o + m]! |= hm;
        L[j] = L[j]! - 4;
      }
      if (++m === 32) {
        m = 0;
        hm <<= 1;
      }
    }
    for (let h = 0; h < 2; h++) {
      const j = 128 * h;
      for (let l = 0; l < 32; l++) {
        dst[o + 32 + 32 * h + l] = L[j + l]! | (L[j + l + 32]! << 2) | (L[j + l + 64]! << 4) | (L[j + l + 96]! << 6);
      }
    }
  }
  return dst;
}

export const q3_K: QuantFormat = {
  type: GgmlType.Q3_K,
  name: 'Q3_K',
  blockSize: QK,
  typeSize: BYTES,
  dequantize: dequantizeQ3_K,
  quantize: quantizeQ3_K,
  matchesLlamaCpp: true,
};
