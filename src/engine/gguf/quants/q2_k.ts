/**
 * Q2_K: super-blocks of 256 values in 16 sub-blocks of 16, 84 bytes.
 * value = (d * sc[s]) * q - (dmin * m[s]), q in [0, 3], sc and m 4-bit.
 *
 * ```
 * byte   0..15   scales[16]  sub-block s: low nibble = sc[s], high nibble = m[s]
 * byte  16..79   qs[64]      half h (elements 128h..128h+127) uses bytes 16+32h..16+32h+31:
 *                            bits 2k..2k+1 of byte 16+32h+l = element 128h+32k+l (k = 0..3, l = 0..31)
 * byte  80..81   d           f16 scale of the sub-block scales
 * byte  82..83   dmin        f16 scale of the sub-block mins
 * ```
 *
 * Reference quantizer (quantize_row_q2_K_ref): make_qkx2_quants(16, 3, weights |x|, rmin -0.5,
 * rdelta 0.1, 15 steps, absolute error) per sub-block, 4-bit scales and mins against the largest,
 * quants recomputed from the rounded scales.
 */
import { GgmlType } from '../ggml-types.ts';
import { fr, makeQkx2Quants, nearestInt } from './f32-math.ts';
import { checkDequantize, prepareQuantize, type QuantFormat } from './format.ts';
import { F16_TO_F32, f32ToF16 } from './half.ts';

const QK = 256;
const BYTES = 84;

export function dequantizeQ2_K(src: Uint8Array, dst: Float32Array, count: number): void {
  const blocks = checkDequantize(q2_K, src, dst, count);
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += BYTES) {
    const d = F16_TO_F32[src[o + 80]! | (src[o + 81]! << 8)]!;
    const min = F16_TO_F32[src[o + 82]! | (src[o + 83]! << 8)]!;
    let is = o;
    for (let h = 0; h < 2; h++) {
      const q = o + 16 + 32 * h;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 32; half += 16) {
          const sc = src[is++]!;
          const dl = fr(d * (sc & 0xf));
          const ml = fr(min * (sc >> 4));
          for (let l = 0; l < 16; l++) dst[y++] = fr(dl * ((src[q + half + l]! >> shift) & 3)) - ml;
        }
      }
    }
  }
}

export function quantizeQ2_K(src: Float32Array, count = src.length, out?: Uint8Array): Uint8Array {
  const dst = prepareQuantize(q2_K, src, count, out);
  const L = new Uint8Array(QK);
  const laux = new Uint8Array(16);
  const weights = new Float32Array(16);
  const mins = new Float32Array(16);
  const scales = new Float32Array(16);
  const theMin = new Float32Array(1);
  const rdelta = fr(0.1);
  for (let b = 0, o = 0, x = 0; b < count / QK; b++, o += BYTES, x += QK) {
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 16; j++) {
      for (let l = 0; l < 16; l++) weights[l] = Math.abs(src[x + 16 * j + l]!);
      const scale = makeQkx2Quants(16, 3, src, x + 16 * j, weights, L, 16 * j, laux, theMin, -0.5, rdelta, 15, true);
      scales[j] = scale;
      mins[j] = theMin[0]!;
      if (scale > maxScale) maxScale = scale;
      if (mins[j]! > maxMin) maxMin = mins[j]!;
    }
    let hd = 0;
    if (maxScale > 0) {
      const iscale = fr(15 / maxScale);
      for (let j = 0; j < 16; j++) dst[o + j] = nearestInt(fr(iscale * scales[j]!)) & 0xff;
      hd = f32ToF16(fr(maxScale / 15));
    } else {
      dst.fill(0, o, o + 16);
    }
    let hm = 0;
    if (maxMin > 0) {
      const iscale = fr(15 / maxMin);
      for (let j = 0; j < 16; j++) dst[o + j]! |= (nearestInt(fr(iscale * mins[j]!)) << 4) & 0xff;
      hm = f32ToF16(fr(maxMin / 15));
    }
    dst[o + 80] = hd & 0xff;
    dst[o + 81] = hd >> 8;
    dst[o + 82] = hm & 0xff;
    dst[o + 83] = hm >> 8;
    const dAll = F16_TO_F32[hd]!;
    const mAll = F16_TO_F32[hm]!;
    for (let j = 0; j < 16; j++) {
      const d = fr(dAll * (dst[o + j]! & 0xf));
      if (!d) continue;
      const dm = fr(mAll * (dst[o + j]! >> 4));
      for (let ii = 0; ii < 16; ii++) {
        L[16 * j + ii] = Math.max(0, Math.min(3, nearestInt(fr(fr(src[x + 16 * j + ii]! + dm) / d))));
      }
    }
    for (let h = 0; h < 2; h++) {
      const j = 128 * h;
      for (let l = 0; l < 32; l++) {
        dst[o + 16 + 32 * h + l] = L[j + l]! | (L[j + l + 32]! << 2) | (L[j + l + 64]! << 4) | (L[j + l + 96]! << 6);
      }
    }
  }
  return dst;
}

export const q2_K: QuantFormat = {
  type: GgmlType.Q2_K,
  name: 'Q2_K',
  blockSize: QK,
  typeSize: BYTES,
  dequantize: dequantizeQ2_K,
  quantize: quantizeQ2_K,
  matchesLlamaCpp: true,
};
