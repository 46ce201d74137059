/**
 * Quantization with importance weights (an imatrix): what ggml_quantize_chunk runs when
 * llama-quantize is given `--imatrix` (ggml-quants.c `quantize_row_*_impl`), for the types the
 * engine's mixes produce. Each row has its own pass; `weights` holds one value per column
 * (`nPerRow`), the same for every row. Float32 arithmetic replayed as in f32-math.ts.
 *
 * Q8_0 and the float types ignore importance weights in ggml; callers use their plain quantizers.
 */
import { GgmlType } from '../ggml-types.ts';
import { fr, GROUP_MAX_EPS, makeQkx2Quants, makeQxQuantsRmse1, nearestInt, packScalesK4 } from './f32-math.ts';
import { f32ToF16 } from './half.ts';
import { KScratch, packQuantsQ4_K, quantsFromScalesK } from './q4_k.ts';
import { packQuantsQ5_K } from './q5_k.ts';
import { quantizeQ6_KWeighted } from './q6_k.ts';

const RMIN = fr(-0.9);
const RDELTA = fr(0.05);
const TENTH = fr(0.1);

/**
 * ggml's make_qkx3_quants with importance weights given: the same search as make_qkx2_quants with
 * squared error over candidate scales -0.9 + 0.05 * i (ggml keeps two copies; we keep one).
 */
function makeQkx3Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  w: Float32Array,
  L: Uint8Array,
  lo: number,
  theMin: Float32Array,
  laux: Uint8Array,
  nstep: number,
): number {
  return makeQkx2Quants(n, nmax, x, xo, w, L, lo, laux, theMin, RMIN, RDELTA, nstep, false);
}

/** ggml's make_qp_quants: non-negative x ~ scale * L, L in [0, nmax], weighted; refines L 5 times. */
function makeQpQuants(n: number, nmax: number, x: Float32Array, L: Uint8Array, qw: Float32Array): number {
  let max = 0;
  for (let i = 0; i < n; i++) max = max > x[i]! ? max : x[i]!;
  if (max < GROUP_MAX_EPS) {
    L.fill(0, 0, n);
    return 0;
  }
  let iscale = fr(nmax / max);
  for (let i = 0; i < n; i++) L[i] = nearestInt(fr(iscale * x[i]!)) & 0xff;
  const scale = fr(1 / iscale);
  let bestMse = 0;
  for (let i = 0; i < n; i++) {
    const diff = fr(x[i]! - fr(scale * L[i]!));
    bestMse = fr(bestMse + fr(fr(qw[i]! * diff) * diff));
  }
  for (let is = -4; is <= 4; is++) {
    if (is === 0) continue;
    const iscaleIs = fr(fr(fr(TENTH * is) + nmax) / max);
    const scaleIs = fr(1 / iscaleIs);
    let mse = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.min(nmax, nearestInt(fr(iscaleIs * x[i]!)));
      const diff = fr(x[i]! - fr(scaleIs * l));
      mse = fr(mse + fr(fr(qw[i]! * diff) * diff));
    }
    if (mse < bestMse) {
      bestMse = mse;
      iscale = iscaleIs;
    }
  }
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.min(nmax, nearestInt(fr(iscale * x[i]!)));
    L[i] = l & 0xff;
    sumlx = fr(sumlx + fr(fr(qw[i]! * x[i]!) * l));
    suml2 = fr(suml2 + fr(fr(qw[i]! * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const w = qw[i]!;
      let slx = fr(sumlx - fr(fr(w * x[i]!) * L[i]!));
      let sl2 = fr(suml2 - fr(fr(w * L[i]!) * L[i]!));
      if (slx > 0 && sl2 > 0) {
        const newL = Math.min(nmax, nearestInt(fr(fr(x[i]! * sl2) / slx)));
        if (newL !== L[i]) {
          slx = fr(slx + fr(fr(w * x[i]!) * newL));
          sl2 = fr(sl2 + fr(fr(w * newL) * newL));
          if (fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
            L[i] = newL & 0xff;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  return suml2 > 0 ? fr(sumlx / suml2) : 0;
}

function putF16(dst: Uint8Array, o: number, v: number): void {
  const h = f32ToF16(v);
  dst[o] = h & 0xff;
  dst[o + 1] = h >> 8;
}

/** sigma2 of a row: sum of squares over n_per_row (the legacy types' weighting). */
function rowSigma2(x: Float32Array, xo: number, n: number): number {
  let sum = 0;
  for (let j = 0; j < n; j++) sum = fr(sum + fr(x[xo + j]! * x[xo + j]!));
  return fr(sum / n);
}

/** Q4_0 / Q5_0 / Q4_1 / Q5_1 with importance weights: 32-value blocks. */
function quantizeLegacyRow(type: GgmlType, x: Float32Array, xo: number, n: number, qw: Float32Array, dst: Uint8Array, o: number): number {
  const sigma2 = rowSigma2(x, xo, n);
  const weight = new Float32Array(32);
  const L = new Uint8Array(32);
  const laux = new Uint8Array(32);
  const theMin = new Float32Array(1);
  const five = type === GgmlType.Q5_0 || type === GgmlType.Q5_1;
  const withMin = type === GgmlType.Q4_1 || type === GgmlType.Q5_1;
  const size = (withMin ? 4 : 2) + (five ? 4 : 0) + 16;
  for (let ib = 0; ib < n / 32; ib++, o += size) {
    const xb = xo + 32 * ib;
    for (let j = 0; j < 32; j++) weight[j] = fr(qw[32 * ib + j]! * fr(Math.sqrt(fr(sigma2 + fr(x[xb + j]! * x[xb + j]!)))));
    let q = o + 2;
    if (withMin) {
      const d = makeQkx3Quants(32, five ? 31 : 15, x, xb, weight, L, 0, theMin, laux, 36);
      putF16(dst, o, d);
      putF16(dst, o + 2, -theMin[0]!);
      q += 2;
    } else {
      putF16(dst, o, makeQxQuantsRmse1(32, five ? 16 : 8, x, xb, L, 0, weight, 0));
    }
    if (five) {
      let qh = 0;
      for (let j = 0; j < 16; j++) {
        qh |= ((L[j]! & 0x10) >> 4) << j;
        qh |= ((L[j + 16]! & 0x10) >> 4) << (j + 16);
      }
      dst[q] = qh & 0xff;
      dst[q + 1] = (qh >>> 8) & 0xff;
      dst[q + 2] = (qh >>> 16) & 0xff;
      dst[q + 3] = (qh >>> 24) & 0xff;
      q += 4;
    }
    for (let j = 0; j < 16; j++) dst[q + j] = (L[j]! & 0xf) | ((L[j + 16]! & 0xf) << 4);
  }
  return o;
}

/** Q4_K / Q5_K with importance weights: 256-value super-blocks of 8 sub-blocks. */
function quantizeKRow(type: GgmlType, x: Float32Array, xo: number, n: number, qw: Float32Array, dst: Uint8Array, o: number): number {
  const five = type === GgmlType.Q5_K;
  const nmax = five ? 31 : 15;
  const size = five ? 176 : 144;
  const { L, laux, ls, lm, weights, mins, scales, theMin } = new KScratch();
  const sw = new Float32Array(8);
  for (let i = 0; i < n / 256; i++, o += size) {
    const xb = xo + 256 * i;
    let sumX2 = 0;
    for (let l = 0; l < 256; l++) sumX2 = fr(sumX2 + fr(x[xb + l]! * x[xb + l]!));
    const sigma2 = fr(fr(2 * sumX2) / 256);
    for (let j = 0; j < 8; j++) {
      const xs = xb + 32 * j;
      for (let l = 0; l < 32; l++) weights[l] = fr(qw[256 * i + 32 * j + l]! * fr(Math.sqrt(fr(sigma2 + fr(x[xs + l]! * x[xs + l]!)))));
      let sumw = 0;
      for (let l = 0; l < 32; l++) sumw = fr(sumw + weights[l]!);
      sw[j] = sumw;
      scales[j] = makeQkx3Quants(32, nmax, x, xs, weights, L, 32 * j, theMin, laux, 36);
      mins[j] = theMin[0]!;
    }
    const dBlock = makeQpQuants(8, 63, scales, ls, sw);
    const mBlock = makeQpQuants(8, 63, mins, lm, sw);
    for (let j = 0; j < 8; j++) {
      ls[j] = Math.min(63, ls[j]!);
      lm[j] = Math.min(63, lm[j]!);
    }
    dst.fill(0, o + 4, o + 16);
    packScalesK4(ls, lm, dst, o + 4);
    putF16(dst, o, dBlock);
    putF16(dst, o + 2, mBlock);
    quantsFromScalesK(x, xb, dst, o, nmax, L);
    if (five) packQuantsQ5_K(L, dst, o);
    else packQuantsQ4_K(L, dst, o);
  }
  return o;
}

const ROW_BYTES: Partial<Record<GgmlType, [number, number]>> = {
  [GgmlType.Q4_0]: [32, 18],
  [GgmlType.Q4_1]: [32, 20],
  [GgmlType.Q5_0]: [32, 22],
  [GgmlType.Q5_1]: [32, 24],
  [GgmlType.Q4_K]: [256, 144],
  [GgmlType.Q5_K]: [256, 176],
  [GgmlType.Q6_K]: [256, 210],
};

/** Types {@link quantizeWeighted} handles. */
export function hasWeightedQuantizer(type: GgmlType): boolean {
  return ROW_BYTES[type] !== undefined;
}

/**
 * `nRows` rows of `nPerRow` values quantized with per-column importance `weights` (length nPerRow),
 * byte-equal to ggml_quantize_chunk with the same quant_weights.
 */
export function quantizeWeighted(type: GgmlType, src: Float32Array, nPerRow: number, nRows: number, weights: Float32Array): Uint8Array {
  const geometry = ROW_BYTES[type];
  if (!geometry) throw new RangeError(`no weighted quantizer for ggml type ${type}`);
  const [block, bytes] = geometry;
  if (nPerRow % block !== 0) throw new RangeError(`weighted quantize: row of ${nPerRow} is not a multiple of ${block}`);
  if (weights.length < nPerRow) throw new RangeError(`weighted quantize: ${weights.length} weights for rows of ${nPerRow}`);
  if (src.length < nPerRow * nRows) throw new RangeError(`weighted quantize: ${src.length} values for ${nRows} rows of ${nPerRow}`);
  const rowBytes = (nPerRow / block) * bytes;
  const dst = new Uint8Array(rowBytes * nRows);
  for (let r = 0; r < nRows; r++) {
    const xo = r * nPerRow;
    const o = r * rowBytes;
    if (type === GgmlType.Q6_K) quantizeQ6_KWeighted(src, xo, nPerRow, weights, dst, o);
    else if (type === GgmlType.Q4_K || type === GgmlType.Q5_K) quantizeKRow(type, src, xo, nPerRow, weights, dst, o);
    else quantizeLegacyRow(type, src, xo, nPerRow, weights, dst, o);
  }
  return dst;
}
