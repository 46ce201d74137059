/**
 * Q6_K: super-blocks of 256 values in 16 sub-blocks of 16, 210 bytes.
 * value = (d * sc[s]) * (q - 32), q in [0, 63], sc int8.
 *
 * ```
 * byte    0..127  ql[128]     low 4 bits; half h (elements 128h..128h+127) uses bytes 64h..64h+63:
 *                               byte 64h+l:    low nibble = element 128h+l,    high = element 128h+64+l
 *                               byte 64h+32+l: low nibble = element 128h+32+l, high = element 128h+96+l
 *                             (l in 0..31)
 * byte  128..191  qh[64]      high 2 bits; byte 128+32h+l holds, from bit 0 up, the top bits of
 *                             elements 128h+l, 128h+32+l, 128h+64+l, 128h+96+l (2 bits each)
 * byte  192..207  scales[16]  int8 scale of sub-block s (elements 16s..16s+15)
 * byte  208..209  d           f16 super-block scale
 * ```
 *
 * Reference quantizer (quantize_row_q6_K_ref): make_qx_quants(16, 32, rmse_type 1) per sub-block,
 * scales quantized to int8 against the one of largest magnitude (iscale = -128 / max_scale, so that
 * one becomes -128), quants recomputed with nearest_int(x / (d * sc)). A super-block whose scales are
 * all below 1e-15 is written as 210 zero bytes.
 */
import { GgmlType } from '../ggml-types.ts';
import { GROUP_MAX_EPS, fr, makeQxQuantsRmse1, nearestInt } from './f32-math.ts';
import { checkDequantize, prepareQuantize, type QuantFormat } from './format.ts';
import { F16_TO_F32, f32ToF16 } from './half.ts';

const QK = 256;
const BYTES = 210;

export function dequantizeQ6_K(src: Uint8Array, dst: Float32Array, count: number): void {
  const blocks = checkDequantize(q6_K, src, dst, count);
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += BYTES) {
    const d = F16_TO_F32[src[o + 208]! | (src[o + 209]! << 8)]!;
    for (let h = 0; h < 2; h++, y += 128) {
      const ql = o + 64 * h;
      const qh = o + 128 + 32 * h;
      const sc = o + 192 + 8 * h;
      for (let l = 0; l < 32; l++) {
        const is = sc + (l >> 4);
        const a = src[ql + l]!;
        const c = src[ql + l + 32]!;
        const hb = src[qh + l]!;
        // d * sc is exact; the store rounds the product with q, as C's (d * sc) * q does.
        dst[y + l] = fr(d * ((src[is]! << 24) >> 24)) * (((a & 0xf) | ((hb & 3) << 4)) - 32);
        dst[y + l + 32] = fr(d * ((src[is + 2]! << 24) >> 24)) * (((c & 0xf) | (((hb >> 2) & 3) << 4)) - 32);
        dst[y + l + 64] = fr(d * ((src[is + 4]! << 24) >> 24)) * (((a >> 4) | (((hb >> 4) & 3) << 4)) - 32);
        dst[y + l + 96] = fr(d * ((src[is + 6]! << 24) >> 24)) * (((c >> 4) | ((hb >> 6) << 4)) - 32);
      }
    }
  }
}

export function quantizeQ6_K(src: Float32Array, count = src.length, out?: Uint8Array): Uint8Array {
  const dst = prepareQuantize(q6_K, src, count, out);
  const L = new Uint8Array(QK);
  const scales = new Float32Array(16);
  for (let b = 0, o = 0, x = 0; b < count / QK; b++, o += BYTES, x += QK) quantizeBlockQ6_K(src, x, dst, o, L, scales);
  return dst;
}

/**
 * One row of `nPerRow` values at `src[xo]` with importance weights (quantize_row_q6_K_impl): the
 * weights replace x^2 in make_qx_quants, the rest is the reference quantizer.
 */
export function quantizeQ6_KWeighted(src: Float32Array, xo: number, nPerRow: number, weights: Float32Array, dst: Uint8Array, o: number): void {
  const L = new Uint8Array(QK);
  const scales = new Float32Array(16);
  for (let b = 0; b < nPerRow / QK; b++) quantizeBlockQ6_K(src, xo + b * QK, dst, o + b * BYTES, L, scales, weights, b * QK);
}

function quantizeBlockQ6_K(
  src: Float32Array,
  x: number,
  dst: Uint8Array,
  o: number,
  L: Uint8Array,
  scales: Float32Array,
  qw?: Float32Array,
  qwo = 0,
): void {
  let maxScale = 0;
  let maxAbsScale = 0;
  for (let ib = 0; ib < 16; ib++) {
    const scale = makeQxQuantsRmse1(16, 32, src, x + 16 * ib, L, 16 * ib, qw, qwo + 16 * ib);
    scales[ib] = scale;
    const abs = Math.abs(scale);
    if (abs > maxAbsScale) {
      maxAbsScale = abs;
      maxScale = scale;
    }
  }
  if (maxAbsScale < GROUP_MAX_EPS) {
    dst.fill(0, o, o + BYTES);
    return;
  }
  const iscale = fr(-128 / maxScale);
  const hd = f32ToF16(fr(1 / iscale));
  dst[o + 208] = hd & 0xff;
  dst[o + 209] = hd >> 8;
  const dAll = F16_TO_F32[hd]!;
  for (let ib = 0; ib < 16; ib++) {
    // int8_t = MIN(127, nearest_int(...)): can reach -128 for the largest scale.
    const sc = (Math.min(127, nearestInt(fr(iscale * scales[ib]!))) << 24) >> 24;
    dst[o + 192 + ib] = sc & 0xff;
    const d = fr(dAll * sc);
    // A zero scale keeps the quants make_qx_quants chose.
    if (!d) continue;
    for (let ii = 0; ii < 16; ii++) {
      const l = Math.max(-32, Math.min(31, nearestInt(fr(src[x + 16 * ib + ii]! / d))));
      L[16 * ib + ii] = l + 32;
    }
  }
  for (let h = 0; h < 2; h++) {
    const ql = o + 64 * h;
    const qh = o + 128 + 32 * h;
    const j = 128 * h;
    for (let l = 0; l < 32; l++) {
      const q1 = L[j + l]!;
      const q2 = L[j + l + 32]!;
      const q3 = L[j + l + 64]!;
      const q4 = L[j + l + 96]!;
      dst[ql + l] = (q1 & 0xf) | ((q3 & 0xf) << 4);
      dst[ql + l + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
      dst[qh + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
    }
  }
}

export const q6_K: QuantFormat = {
  type: GgmlType.Q6_K,
  name: 'Q6_K',
  blockSize: QK,
  typeSize: BYTES,
  dequantize: dequantizeQ6_K,
  quantize: quantizeQ6_K,
  matchesLlamaCpp: true,
};
