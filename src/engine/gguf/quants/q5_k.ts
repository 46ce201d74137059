/**
 * Q5_K: super-blocks of 256 values in 8 sub-blocks of 32, 176 bytes.
 * value = (d * sc[s]) * q - (dmin * m[s]), q in [0, 31], sc and m 6-bit.
 *
 * ```
 * byte   0..1    d         f16 scale of the sub-block scales
 * byte   2..3    dmin      f16 scale of the sub-block mins
 * byte   4..15   scales    packed 6-bit scales and mins, exactly as Q4_K (see q4_k.ts)
 * byte  16..47   qh[32]    high bits: bit 2c of byte 16+l = 5th bit of element 64c+l,
 *                          bit 2c+1 = 5th bit of element 64c+32+l
 * byte  48..175  qs[128]   low 4 bits, laid out as Q4_K's qs (chunk c = bytes 48+32c..48+32c+31)
 * ```
 *
 * Reference quantizer (quantize_row_q5_K_ref): Q4_K's, with make_qkx2_quants(nmax 31, rmin -0.5,
 * rdelta 0.1, 15 steps).
 */
import { GgmlType } from '../ggml-types.ts';
import { fr, minK4, scaleK4 } from './f32-math.ts';
import { checkDequantize, prepareQuantize, type QuantFormat } from './format.ts';
import { F16_TO_F32 } from './half.ts';
import { KScratch, quantizeSuperBlockK, type Qkx2Params } from './q4_k.ts';

const QK = 256;
const BYTES = 176;

export function dequantizeQ5_K(src: Uint8Array, dst: Float32Array, count: number): void {
  const blocks = checkDequantize(q5_K, src, dst, count);
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += BYTES) {
    const d = F16_TO_F32[src[o]! | (src[o + 1]! << 8)]!;
    const min = F16_TO_F32[src[o + 2]! | (src[o + 3]! << 8)]!;
    const qh = o + 16;
    for (let c = 0; c < 4; c++) {
      const d1 = fr(d * scaleK4(2 * c, src, o + 4));
      const m1 = fr(min * minK4(2 * c, src, o + 4));
      const d2 = fr(d * scaleK4(2 * c + 1, src, o + 4));
      const m2 = fr(min * minK4(2 * c + 1, src, o + 4));
      const b1 = 2 * c;
      const b2 = 2 * c + 1;
      const ql = o + 48 + 32 * c;
      // Branch-free high bits: random bits defeat branch prediction.
      for (let l = 0; l < 32; l++) dst[y + l] = fr(d1 * ((src[ql + l]! & 0xf) | (((src[qh + l]! >> b1) & 1) << 4))) - m1;
      for (let l = 0; l < 32; l++) dst[y + 32 + l] = fr(d2 * ((src[ql + l]! >> 4) | (((src[qh + l]! >> b2) & 1) << 4))) - m2;
      y += 64;
    }
  }
}

const Q5_K_PARAMS: Qkx2Params = { nmax: 31, rmin: -0.5, rdelta: fr(0.1), nstep: 15 };

export function quantizeQ5_K(src: Float32Array, count = src.length, out?: Uint8Array): Uint8Array {
  const dst = prepareQuantize(q5_K, src, count, out);
  const s = new KScratch();
  for (let b = 0, o = 0, x = 0; b < count / QK; b++, o += BYTES, x += QK) {
    quantizeSuperBlockK(src, x, dst, o, Q5_K_PARAMS, s);
    packQuantsQ5_K(s.L, dst, o);
  }
  return dst;
}

/** Q5_K's quants: low 4 bits in 4 chunks of 32 bytes, the fifth bits in qh (2 per chunk). */
export function packQuantsQ5_K(L: Uint8Array, dst: Uint8Array, o: number): void {
  const qh = o + 16;
  dst.fill(0, qh, qh + 32);
  for (let c = 0; c < 4; c++) {
    const m1 = 1 << (2 * c);
    const m2 = 2 << (2 * c);
    const ql = o + 48 + 32 * c;
    for (let j = 0; j < 32; j++) {
      let l1 = L[64 * c + j]!;
      if (l1 > 15) {
        l1 -= 16;
        dst[qh + j]! |= m1;
      }
      let l2 = L[64 * c + 32 + j]!;
      if (l2 > 15) {
        l2 -= 16;
        dst[qh + j]! |= m2;
      }
      dst[ql + j] = l1 | (l2 << 4);
    }
  }
}

export const q5_K: QuantFormat = {
  type: GgmlType.Q5_K,
  name: 'Q5_K',
  blockSize: QK,
  typeSize: BYTES,
  dequantize: dequantizeQ5_K,
  quantize: quantizeQ5_K,
  matchesLlamaCpp: true,
};
