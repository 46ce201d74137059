/**
 * IEEE binary16 (f16) and bfloat16 (bf16) conversions, bit-exact with ggml's
 * (`ggml-impl.h`: `ggml_compute_fp16_to_fp32`, `ggml_compute_fp32_to_fp16`,
 * `ggml_compute_bf16_to_fp32`, `ggml_compute_fp32_to_bf16`), which the reference quantizers use.
 *
 * f32 -> f16 rounds to nearest, ties to even, overflows to infinity and keeps half subnormals, like
 * the hardware instruction; it differs from F16C only for NaN, which ggml turns into 0x7E00 with the
 * sign kept (F16C would keep the payload). f32 -> bf16 rounds to nearest even and quiets NaN by
 * setting bit 6 (payload kept). Both f16 -> f32 and bf16 -> f32 are exact.
 *
 * All functions take and return bit patterns as plain numbers (0..0xFFFF for halves). GGUF and every
 * platform we run on are little-endian; the typed-array views below rely on that.
 */

const SCRATCH_F32 = new Float32Array(1);
const SCALE_TO_INF = 2 ** 112;
const SCALE_TO_ZERO = 2 ** -110;
const SCRATCH_U32 = new Uint32Array(SCRATCH_F32.buffer);

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('Hearth needs a little-endian platform (GGUF data is little-endian)');
}

/**
 * f32 bit patterns of all 65536 halves, as ggml computes them. NaN halves become quiet f32 NaNs
 * with the half's payload in the top mantissa bits (x86 multiplies a NaN by quieting it).
 */
export const F16_TO_F32_BITS: Uint32Array = (() => {
  const table = new Uint32Array(65536);
  const f = new Float32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 31) {
      table[h] = (sign | 0x7f800000 | (mantissa << 13) | (mantissa ? 0x400000 : 0)) >>> 0;
    } else {
      // Exact in f32: every half is an f32.
      const magnitude = exponent === 0 ? mantissa * 2 ** -24 : (1024 + mantissa) * 2 ** (exponent - 25);
      f[h] = sign ? -magnitude : magnitude;
    }
  }
  return table;
})();

/** The same table as f32 values, for dequantizers (`F16_TO_F32[bits]`). */
export const F16_TO_F32: Float32Array = new Float32Array(F16_TO_F32_BITS.buffer);

/** Value of half-float bits (exact). */
export function f16ToF32(bits: number): number {
  return F16_TO_F32[bits & 0xffff]!;
}

/** Half bits for the f32 whose bit pattern is `w` (ggml_compute_fp32_to_fp16, step by step). */
export function f32BitsToF16(w: number): number {
  const shl1w = (w << 1) >>> 0;
  const sign = (w >>> 16) & 0x8000;
  if (shl1w > 0xff000000) return sign | 0x7e00; // NaN
  // ggml: base = (fabsf(f) * 0x1p+112f) * 0x1p-110f, both products rounded to f32 (the first
  // overflows to infinity for values too large for a half).
  SCRATCH_U32[0] = w & 0x7fffffff;
  let base = Math.fround(Math.fround(SCRATCH_F32[0]! * SCALE_TO_INF) * SCALE_TO_ZERO);
  let bias = shl1w & 0xff000000;
  if (bias >>> 0 < 0x71000000) bias = 0x71000000;
  // Adding 2^(e+...) pushes the bits to drop below the f32 mantissa: the f32 addition rounds them
  // to nearest even, which is the whole trick.
  SCRATCH_U32[0] = (bias >>> 1) + 0x07800000;
  base = Math.fround(SCRATCH_F32[0]! + base);
  SCRATCH_F32[0] = base;
  const bits = SCRATCH_U32[0]!;
  return sign | (((bits >>> 13) & 0x7c00) + (bits & 0xfff));
}

/** Half bits nearest to `x` (rounded to f32 first, as a C `float` argument would be). */
export function f32ToF16(x: number): number {
  SCRATCH_F32[0] = x;
  return f32BitsToF16(SCRATCH_U32[0]!);
}

/** Value of bfloat16 bits (exact). */
export function bf16ToF32(bits: number): number {
  SCRATCH_U32[0] = (bits & 0xffff) << 16;
  return SCRATCH_F32[0]!;
}

/** bf16 bits for the f32 whose bit pattern is `w` (ggml_compute_fp32_to_bf16). */
export function f32BitsToBf16(w: number): number {
  if ((w & 0x7fffffff) >>> 0 > 0x7f800000) return (w >>> 16) | 64; // NaN: force quiet
  return ((w >>> 0) + 0x7fff + ((w >>> 16) & 1)) >>> 16;
}

/** bf16 bits nearest to `x` (rounded to f32 first). */
export function f32ToBf16(x: number): number {
  SCRATCH_F32[0] = x;
  return f32BitsToBf16(SCRATCH_U32[0]!);
}
