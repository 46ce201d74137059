/**
 * IQ4_NL: blocks of 32 values, 18 bytes, value = d * K[q] with the fixed non-linear table
 * K = kvalues_iq4nl (16 int8 values from -127 to 113, denser near zero).
 *
 * ```
 * byte  0..1   d       f16 scale
 * byte  2..17  qs[16]  byte 2 + j: low nibble = index of element j, high nibble = of element j + 16
 * ```
 *
 * Quantizer: ggml's quantize_row_iq4_nl_impl with weights x^2. llama.cpp has two entry points that
 * disagree: `quantize_iq4_nl` (what ggml_quantize_chunk and llama-quantize use) searches 15 scales
 * (ntry 7), while `quantize_row_iq4_nl_ref` tries only the first (ntry -1) and, for an all-zero
 * block, packs whatever its index buffer held before (uninitialized memory for the first block;
 * the values still decode to 0 because d is 0). `quantize` here is the chunk version.
 */
import { GgmlType } from '../ggml-types.ts';
import { GROUP_MAX_EPS, bestIndexInt8, fr, nearestInt } from './f32-math.ts';
import { checkDequantize, prepareQuantize, type QuantFormat } from './format.ts';
import { F16_TO_F32, f32ToF16 } from './half.ts';

const QK = 32;
const BYTES = 18;

/** ggml's kvalues_iq4nl. */
export const KVALUES_IQ4NL = new Int8Array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]);

export function dequantizeIq4Nl(src: Uint8Array, dst: Float32Array, count: number): void {
  const blocks = checkDequantize(iq4_NL, src, dst, count);
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += BYTES, y += QK) {
    const d = F16_TO_F32[src[o]! | (src[o + 1]! << 8)]!;
    for (let j = 0; j < 16; j++) {
      const q = src[o + 2 + j]!;
      dst[y + j] = d * KVALUES_IQ4NL[q & 0xf]!;
      dst[y + j + 16] = d * KVALUES_IQ4NL[q >> 4]!;
    }
  }
}

/** Scratch for quantizeIq4Super; `L` persists across calls, as the C caller's buffer does. */
export class Iq4Scratch {
  readonly L = new Uint8Array(256);
  readonly weight = new Float32Array(32);
  readonly scales = new Float32Array(8);
}

/**
 * ggml's quantize_row_iq4_nl_impl without importance weights for one super-block of `superSize`
 * values (32 for IQ4_NL, 256 for IQ4_XS) in blocks of 32. Writes the f16 `d` at `dh`, the packed
 * nibbles at `q4`, and for IQ4_XS the 6-bit block scales at `scalesH` (u16) and `scalesL` (4 bytes).
 */
export function quantizeIq4Super(
  superSize: number,
  src: Float32Array,
  x: number,
  dst: Uint8Array,
  dh: number,
  q4: number,
  scalesH: number,
  scalesL: number,
  ntry: number,
  s: Iq4Scratch,
): void {
  const values = KVALUES_IQ4NL;
  const { L, weight, scales } = s;
  const nb = superSize / 32;
  dst.fill(0, q4, q4 + superSize / 2);
  let maxScale = 0;
  let amaxScale = 0;
  for (let ib = 0; ib < nb; ib++) {
    const xb = x + 32 * ib;
    const lb = 32 * ib;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = src[xb + j]!;
      weight[j] = fr(v * v);
      const ax = Math.abs(v);
      if (ax > amax) {
        amax = ax;
        max = v;
      }
    }
    if (amax < GROUP_MAX_EPS) {
      scales[ib] = 0;
      continue;
    }
    let d = ntry > 0 ? fr(-max / values[0]!) : fr(max / values[0]!);
    let id = fr(1 / d);
    let sumqx = 0;
    let sumq2 = 0;
    for (let j = 0; j < 32; j++) {
      const v = src[xb + j]!;
      const l = bestIndexInt8(16, values, fr(id * v));
      L[lb + j] = l;
      const q = values[l]!;
      const wq = fr(weight[j]! * q);
      sumqx = fr(sumqx + fr(wq * v));
      sumq2 = fr(sumq2 + fr(wq * q));
    }
    d = sumq2 > 0 ? fr(sumqx / sumq2) : 0;
    let best = fr(d * sumqx);
    for (let itry = -ntry; itry <= ntry; itry++) {
      id = fr((itry + values[0]!) / max);
      sumqx = 0;
      sumq2 = 0;
      for (let j = 0; j < 32; j++) {
        const v = src[xb + j]!;
        const q = values[bestIndexInt8(16, values, fr(id * v))]!;
        const wq = fr(weight[j]! * q);
        sumqx = fr(sumqx + fr(wq * v));
        sumq2 = fr(sumq2 + fr(wq * q));
      }
      if (sumq2 > 0 && fr(sumqx * sumqx) > fr(best * sumq2)) {
        d = fr(sumqx / sumq2);
        best = fr(d * sumqx);
      }
    }
    scales[ib] = d;
    const absD = Math.abs(d);
    if (absD > amaxScale) {
      amaxScale = absD;
      maxScale = d;
    }
  }

  if (nb > 1) {
    let sh = 0;
    const d = fr(-maxScale / 32);
    const hd = f32ToF16(d);
    dst[dh] = hd & 0xff;
    dst[dh + 1] = hd >> 8;
    const id = d ? fr(1 / d) : 0;
    for (let ib = 0; ib < nb; ib++) {
      let l = Math.max(-32, Math.min(31, nearestInt(fr(id * scales[ib]!))));
      const dl = fr(d * l);
      const idl = dl ? fr(1 / dl) : 0;
      for (let j = 0; j < 32; j++) L[32 * ib + j] = bestIndexInt8(16, values, fr(idl * src[x + 32 * ib + j]!));
      l += 32;
      if (ib % 2 === 0) dst[scalesL + (ib >> 1)] = l & 0xf;
      else dst[scalesL + (ib >> 1)]! |= (l & 0xf) << 4;
      sh |= (l >> 4) << (2 * (ib % 8));
    }
    dst[scalesH] = sh & 0xff;
    dst[scalesH + 1] = sh >> 8;
  } else {
    const hd = f32ToF16(scales[0]!);
    dst[dh] = hd & 0xff;
    dst[dh + 1] = hd >> 8;
    if (ntry > 0) {
      const id = scales[0] ? fr(1 / scales[0]) : 0;
      for (let j = 0; j < superSize; j++) L[j] = bestIndexInt8(16, values, fr(id * src[x + j]!));
    }
  }

  for (let i = 0; i < superSize / 32; i++) {
    for (let j = 0; j < 16; j++) dst[q4 + 16 * i + j] = L[32 * i + j]! | (L[32 * i + 16 + j]! << 4);
  }
}

function quantizeIq4NlWith(ntry: number, src: Float32Array, count: number, out: Uint8Array | undefined): Uint8Array {
  const dst = prepareQuantize(iq4_NL, src, count, out);
  const s = new Iq4Scratch();
  for (let b = 0, o = 0, x = 0; b < count / QK; b++, o += BYTES, x += QK) {
    quantizeIq4Super(QK, src, x, dst, o, o + 2, -1, -1, ntry, s);
  }
  return dst;
}

/** llama.cpp's IQ4_NL quantizer as llama-quantize runs it (quantize_iq4_nl, 15 trial scales). */
export function quantizeIq4Nl(src: Float32Array, count = src.length, out?: Uint8Array): Uint8Array {
  return quantizeIq4NlWith(7, src, count, out);
}

/**
 * quantize_row_iq4_nl_ref (one trial scale). For an all-zero block the index nibbles are the
 * previous block's (zero for the first block, where C reads uninitialized memory).
 */
export function quantizeIq4NlRef(src: Float32Array, count = src.length, out?: Uint8Array): Uint8Array {
  return quantizeIq4NlWith(-1, src, count, out);
}

export const iq4_NL: QuantFormat = {
  type: GgmlType.IQ4_NL,
  name: 'IQ4_NL',
  blockSize: QK,
  typeSize: BYTES,
  dequantize: dequantizeIq4Nl,
  quantize: quantizeIq4Nl,
  matchesLlamaCpp: true,
};
