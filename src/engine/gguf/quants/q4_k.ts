/**
 * Q4_K: super-blocks of 256 values in 8 sub-blocks of 32, 144 bytes.
 * value = (d * sc[s]) * q - (dmin * m[s]), q in [0, 15], sc and m 6-bit.
 *
 * ```
 * byte   0..1    d         f16 scale of the sub-block scales
 * byte   2..3    dmin      f16 scale of the sub-block mins
 * byte   4..15   scales    8 six-bit scales and 8 six-bit mins; with S = these 12 bytes:
 *                            s < 4:  sc = S[s] & 63,                        m = S[s+4] & 63
 *                            s >= 4: sc = (S[s+4] & 15) | (S[s-4] >> 6) << 4, m = (S[s+4] >> 4) | (S[s] >> 6) << 4
 * byte  16..143  qs[128]   4 chunks of 32 bytes, chunk c covers elements 64c..64c+63:
 *                            low nibble of byte 16+32c+l = element 64c+l (sub-block 2c),
 *                            high nibble = element 64c+32+l (sub-block 2c+1)
 * ```
 *
 * Reference quantizer (quantize_row_q4_K_ref): per sub-block, weights av_x + |x| with
 * av_x = sqrt(mean x^2), then make_qkx2_quants(nmax 15, rmin -1, rdelta 0.1, 20 steps); the 8
 * scales and mins are quantized to 6 bits against the largest of each, and the quants are
 * recomputed from the rounded scales with nearest_int((x + dm) / d).
 */
import { GgmlType } from '../ggml-types.ts';
import { fr, makeQkx2Quants, minK4, nearestInt, packScalesK4, scaleK4 } from './f32-math.ts';
import { checkDequantize, prepareQuantize, type QuantFormat } from './format.ts';
import { F16_TO_F32, f32ToF16 } from './half.ts';

const QK = 256;
const BYTES = 144;

export function dequantizeQ4_K(src: Uint8Array, dst: Float32Array, count: number): void {
  const blocks = checkDequantize(q4_K, src, dst, count);
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += BYTES) {
    const d = F16_TO_F32[src[o]! | (src[o + 1]! << 8)]!;
    const min = F16_TO_F32[src[o + 2]! | (src[o + 3]! << 8)]!;
    for (let c = 0; c < 4; c++) {
      const d1 = fr(d * scaleK4(2 * c, src, o + 4));
      const m1 = fr(min * minK4(2 * c, src, o + 4));
      const d2 = fr(d * scaleK4(2 * c + 1, src, o + 4));
      const m2 = fr(min * minK4(2 * c + 1, src, o + 4));
      const q = o + 16 + 32 * c;
      for (let l = 0; l < 32; l++) dst[y + l] = fr(d1 * (src[q + l]! & 0xf)) - m1;
      for (let l = 0; l < 32; l++) dst[y + 32 + l] = fr(d2 * (src[q + l]! >> 4)) - m2;
      y += 64;
    }
  }
}

/** Shared by Q4_K and Q5_K: their reference quantizers differ only in these parameters. */
export interface Qkx2Params {
  nmax: number;
  rmin: number;
  rdelta: number;
  nstep: number;
}

/**
 * The common part of quantize_row_q4_K_ref / quantize_row_q5_K_ref for one super-block at `x`:
 * fills `L[0..256)` with quants in [0, nmax], writes d, dmin and the 12 scale bytes at `o`.
 */
export function quantizeSuperBlockK(
  src: Float32Array,
  x: number,
  dst: Uint8Array,
  o: number,
  params: Qkx2Params,
  s: KScratch,
): void {
  const { nmax } = params;
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const xo = x + 32 * j;
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(src[xo + l]! * src[xo + l]!));
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) s.weights[l] = fr(avX + Math.abs(src[xo + l]!));
    const scale = makeQkx2Quants(32, nmax, src, xo, s.weights, s.L, 32 * j, s.laux, s.theMin, params.rmin, params.rdelta, params.nstep, false);
    s.scales[j] = scale;
    const min = s.theMin[0]!;
    s.mins[j] = min;
    if (scale > maxScale) maxScale = scale;
    if (min > maxMin) maxMin = min;
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  for (let j = 0; j < 8; j++) {
    // uint8_t ls = nearest_int(...): wraps to 8 bits before the clamp to 63.
    s.ls[j] = Math.min(63, nearestInt(fr(invScale * s.scales[j]!)) & 0xff);
    s.lm[j] = Math.min(63, nearestInt(fr(invMin * s.mins[j]!)) & 0xff);
  }
  packScalesK4(s.ls, s.lm, dst, o + 4);
  const hd = f32ToF16(fr(maxScale / 63));
  const hm = f32ToF16(fr(maxMin / 63));
  dst[o] = hd & 0xff;
  dst[o + 1] = hd >> 8;
  dst[o + 2] = hm & 0xff;
  dst[o + 3] = hm >> 8;
  quantsFromScalesK(src, x, dst, o, nmax, s.L);
}

/**
 * The last step of the Q4_K/Q5_K quantizers: with d, dmin and the 6-bit scales and mins already
 * written at `o`, each value's quant from them, nearest_int((x + dm) / d) clamped to [0, nmax]. A
 * zero scale keeps the quants chosen before (they multiply to 0 anyway).
 */
export function quantsFromScalesK(src: Float32Array, x: number, dst: Uint8Array, o: number, nmax: number, L: Uint8Array): void {
  const dAll = F16_TO_F32[dst[o]! | (dst[o + 1]! << 8)]!;
  const mAll = F16_TO_F32[dst[o + 2]! | (dst[o + 3]! << 8)]!;
  for (let j = 0; j < 8; j++) {
    const d = fr(dAll * scaleK4(j, dst, o + 4));
    if (!d) continue;
    const dm = fr(mAll * minK4(j, dst, o + 4));
    const xo = x + 32 * j;
    for (let ii = 0; ii < 32; ii++) L[32 * j + ii] = Math.max(0, Math.min(nmax, nearestInt(fr(fr(src[xo + ii]! + dm) / d))));
  }
}

/** Q4_K's quants: 4 chunks of 32 bytes, low nibbles the first 32 of each 64 values. */
export function packQuantsQ4_K(L: Uint8Array, dst: Uint8Array, o: number): void {
  for (let c = 0; c < 4; c++) {
    const q = o + 16 + 32 * c;
    for (let l = 0; l < 32; l++) dst[q + l] = L[64 * c + l]! | (L[64 * c + 32 + l]! << 4);
  }
}

/** Per-call scratch for the K-quant quantizers (no per-block allocation). */
export class KScratch {
  readonly L = new Uint8Array(256);
  readonly laux = new Uint8Array(32);
  readonly weights = new Float32Array(32);
  readonly scales = new Float32Array(8);
  readonly mins = new Float32Array(8);
  readonly theMin = new Float32Array(1);
  readonly ls = new Uint8Array(8);
  readonly lm = new Uint8Array(8);
}

const Q4_K_PARAMS: Qkx2Params = { nmax: 15, rmin: -1, rdelta: fr(0.1), nstep: 20 };

export function quantizeQ4_K(src: Float32Array, count = src.length, out?: Uint8Array): Uint8Array {
  const dst = prepareQuantize(q4_K, src, count, out);
  const s = new KScratch();
  for (let b = 0, o = 0, x = 0; b < count / QK; b++, o += BYTES, x += QK) {
    quantizeSuperBlockK(src, x, dst, o, Q4_K_PARAMS, s);
    packQuantsQ4_K(s.L, dst, o);
  }
  return dst;
}

export const q4_K: QuantFormat = {
  type: GgmlType.Q4_K,
  name: 'Q4_K',
  blockSize: QK,
  typeSize: BYTES,
  dequantize: dequantizeQ4_K,
  quantize: quantizeQ4_K,
  matchesLlamaCpp: true,
};
