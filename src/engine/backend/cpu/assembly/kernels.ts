// @ts-nocheck: AssemblyScript (v128, usize, load/store builtins), compiled by ../build.mjs, not tsc.
/**
 * Hearth's CPU kernels in WebAssembly SIMD128, written in AssemblyScript. Every pointer is a byte
 * offset into the one linear memory (imported, so the host owns it and can later make it shared
 * between workers). Every op that works on independent rows takes `rowStart, rowEnd` so the host can
 * split one op across threads.
 *
 * `RELAXED` is a compile-time constant (`asc --use RELAXED=0|1`): the build emits one module per
 * value and the host picks the relaxed one only where the engine validates a relaxed-SIMD module.
 *
 * Weight types use ggml's numbers and GGUF's raw block layouts (see src/engine/gguf/quants/*.ts):
 * F32 0, F16 1, Q4_0 2, Q4_1 3, Q5_0 6, Q5_1 7, Q8_0 8, Q4_K 12, Q5_K 13, Q6_K 14, BF16 30.
 */

const T_F32: i32 = 0;
const T_F16: i32 = 1;
const T_Q4_0: i32 = 2;
const T_Q4_1: i32 = 3;
const T_Q5_0: i32 = 6;
const T_Q5_1: i32 = 7;
const T_Q8_0: i32 = 8;
const T_Q2_K: i32 = 10;
const T_Q3_K: i32 = 11;
const T_Q4_K: i32 = 12;
const T_Q5_K: i32 = 13;
const T_Q6_K: i32 = 14;
const T_IQ4_NL: i32 = 20;
const T_IQ4_XS: i32 = 23;
const T_BF16: i32 = 30;
/**
 * Not ggml types: Q4_0 / Q5_0 / Q8_0 / IQ4_NL / Q4_K / Q6_K rows stored four-row interleaved by
 * `packQ4_0x4` / `packQ5_0x4` / `packQ8_0x4` / `packQ4_Kx4` / `packQ6_Kx4` (the relaxed build's
 * decode layouts, same bytes; see "Q5_0x4", "Q8_0x4", "Q6_Kx4" and "Q4_Kx4" below). Only `matmulInterleaved` and `embed`
 * read them.
 */
const T_Q4_0X4: i32 = 1002;
const T_Q5_0X4: i32 = 1006;
const T_Q8_0X4: i32 = 1008;
const T_IQ4_NLX4: i32 = 1020;
const T_Q4_KX4: i32 = 1012;
const T_Q6_KX4: i32 = 1014;

/** First free byte after the module's static data: the host's allocator starts here. */
export function heapBase(): usize {
  return __heap_base;
}

/** 1 when this build uses relaxed SIMD. */
export function isRelaxed(): i32 {
  return RELAXED;
}

/**
 * Known-answer check of the relaxed integer dot on data written to `scratch` (64 bytes): 1 when it
 * matches the plain SIMD result. Node 20's flag-gated relaxed SIMD (V8 11.3) returns wrong sums
 * here while Chromium 156 is right, so validating a relaxed module is not enough: the host runs this
 * before trusting the relaxed build. Always 1 in the plain build.
 */
export function relaxedSelfTest(scratch: usize): i32 {
  if (!RELAXED) return 1;
  for (let i = 0; i < 32; i++) {
    store<i8>(scratch + i, <i8>(((i * 37) % 255) - 127));
    store<u8>(scratch + 32 + i, <u8>((i * 13) & 63));
  }
  let relaxed = i32x4.splat(0);
  let plain = i32x4.splat(0);
  for (let h = 0; h < 32; h += 16) {
    const x = v128.load(scratch + h);
    const w = v128.load(scratch + 32 + h);
    relaxed = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, w, relaxed);
    const p = i16x8.add(i16x8.extmul_low_i8x16_s(w, x), i16x8.extmul_high_i8x16_s(w, x));
    plain = i32x4.add(plain, i32x4.extadd_pairwise_i16x8_s(p));
  }
  // The lanes group the products differently (4 adjacent vs interleaved pairs); the totals agree.
  return hsumI(relaxed) == hsumI(plain) ? 1 : 0;
}

/**
 * 1 where relaxed SIMD's i32 dot takes its second operand as an unsigned byte and sums exactly
 * (x86 with AVX-VNNI, where V8 emits vpdpbusd), 0 where not, -1 until `unsignedDotOn` has asked
 * `detectUnsignedDot`. The spec leaves bytes above 127 there implementation-defined: pmaddubsw
 * saturates its pair sums, Arm's sdot reads the byte as signed. Where it is exact:
 * - the signed 8-bit types' packed prefill (Q8_0, IQ4_NL, IQ4_XS) stores quants + 128 as one plane
 *   of bytes, one dot per 16 products instead of one per plane of nibbles;
 * - Q8_0x4's decode dots each weight vector once instead of against both halves of a split token,
 *   and IQ4_NL's decode takes levels + 128;
 * - the K-quant prefill tiles use i32 dots (one instruction there) instead of i16 pair sums.
 * The same integers either way (tested both ways in relaxed.chromium.test.ts).
 */
let unsignedDot: i32 = -1;

/**
 * Known-answer check of the relaxed i32 dot on second operands of 128..255: 1 when every lane
 * equals the exact sum of its four products (including 127 x 255 pairs, which a saturating i16
 * pair sum gets wrong). Its 96 bytes are static data: threads sharing the memory write the same bytes.
 */
export function detectUnsignedDot(): i32 {
  if (!RELAXED) return 0;
  const scratch = memory.data(96, 16);
  for (let i = 0; i < 32; i++) {
    store<i8>(scratch + i, <i8>(i < 16 ? 127 : ((i * 37) & 255) - 128));
    store<u8>(scratch + 32 + i, <u8>(i < 16 ? 255 : 255 - ((i * 29) & 127)));
  }
  for (let h: usize = 0; h < 32; h += 16) {
    const r = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(scratch + h), v128.load(scratch + 32 + h), i32x4.splat(0));
    v128.store(scratch + 64 + h, r);
  }
  for (let lane: usize = 0; lane < 8; lane++) {
    let exact = 0;
    for (let j: usize = 0; j < 4; j++) exact += <i32>load<i8>(scratch + 4 * lane + j) * <i32>load<u8>(scratch + 32 + 4 * lane + j);
    if (load<i32>(scratch + 64 + 4 * lane) != exact) return 0;
  }
  return 1;
}

/** Whether the unsigned-byte dot is exact here (detected on first use). */
@inline function unsignedDotOn(): bool {
  if (!RELAXED) return false;
  if (unsignedDot < 0) unsignedDot = detectUnsignedDot();
  return unsignedDot == 1;
}

/** Tests and benchmarks: 0 turns the unsigned-byte dot off; -1 detects it again on next use. */
export function setUnsignedDot(mode: i32): void {
  unsignedDot = mode < 0 ? -1 : 0;
}

/** acc + sums of four adjacent products of signed bytes x and unsigned bytes w (only where unsignedDotOn). */
@inline function dotU8Add(x: v128, w: v128, acc: v128): v128 {
  if (RELAXED) return i32x4.relaxed_dot_i8x16_i7x16_add_s(x, w, acc);
  unreachable();
  return acc;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * Every byte value splatted as a 32-bit pattern (entry b is b * 0x01010101), for `bytes`. Hot code
 * takes its vector constants from memory, not from literals: V8 (Chromium 150's) does not keep a
 * v128 constant in a register but rebuilds it at every use from a 64-bit immediate moved into a
 * vector register and duplicated (three instructions, two of them on the vector ports), where a
 * 32-bit broadcast load is one instruction on a load port. The nibble masks alone of the Q4_K
 * decode dot cost it a fifth of its time.
 */
const BYTE_SPLATS = memory.data(1024, 16);

/** Every i16 value 0..255 splatted as a 32-bit pattern (entry v is v * 0x00010001), for `words`. */
const WORD_SPLATS = memory.data(1024, 16);

// Filled by the module's start function, at every instantiation: the pool's workers instantiate
// over the same shared memory and write the same bytes again.
for (let v: u32 = 0; v < 256; v++) {
  store<u32>(BYTE_SPLATS + (<usize>v << 2), v * 0x01010101);
  store<u32>(WORD_SPLATS + (<usize>v << 2), v * 0x00010001);
}

/** 32-bit patterns of the f16 conversion (f16x4) and the exp (expNonPositive), by the K_* indices, for `lanes32`. */
const LANE_CONSTS = memory.data<u32>([0x7fff, 0x7c00, 0x7f800000, 0x38000000, 0x3ff, 0x8000, 127]);
const K_F16_EM: i32 = 0; // 0x7fff: exponent and mantissa
const K_F16_EXP: i32 = 1; // 0x7c00
const K_F32_INF: i32 = 2; // 0x7f800000
const K_F16_REBIAS: i32 = 3; // 0x38000000: (127 - 15) << 23
const K_F16_MANT: i32 = 4; // 0x3ff
const K_F16_SIGN: i32 = 5; // 0x8000
const K_EXP_BIAS: i32 = 6; // 127

/**
 * f32 constants by the F_* indices, for `floats`: 2^-24 (f16x4's subnormals); expNonPositive's
 * cut-off, log2(e), ln 2 in a high and a low part, its polynomial (highest degree first) and 1.
 */
const FLOAT_CONSTS = memory.data<f32>([
  5.9604644775390625e-8, -87, 1.44269504088896341, 0.693359375, -2.12194440e-4,
  1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1, 1,
]);
const F_TWO_M24: i32 = 0;
const F_EXP_MIN: i32 = 1;
const F_LOG2E: i32 = 2;
const F_LN2_HI: i32 = 3;
const F_LN2_LO: i32 = 4;
const F_EXP_P0: i32 = 5; // 5..10
const F_ONE: i32 = 11;

/** i8x16.splat(b) for a literal b, from memory (see BYTE_SPLATS). */
@inline function bytes(b: i32): v128 {
  return v128.load32_splat(BYTE_SPLATS + (<usize>(b & 0xff) << 2));
}

/** i16x8.splat(v) for a literal v in 0..255, from memory (see BYTE_SPLATS). */
@inline function words(v: i32): v128 {
  return v128.load32_splat(WORD_SPLATS + (<usize>(v & 0xff) << 2));
}

/** LANE_CONSTS[i] (a K_* index) in every 32-bit lane, from memory (see BYTE_SPLATS). */
@inline function lanes32(i: i32): v128 {
  return v128.load32_splat(LANE_CONSTS + (<usize>i << 2));
}

/** FLOAT_CONSTS[i] (an F_* index) in every lane, from memory (see BYTE_SPLATS). */
@inline function floats(i: i32): v128 {
  return v128.load32_splat(FLOAT_CONSTS + (<usize>i << 2));
}

@inline function madd(a: v128, b: v128, c: v128): v128 {
  // relaxed_madd may fuse (one rounding) or not, per machine: fine inside a sum.
  if (RELAXED) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

@inline function hsumI(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

/**
 * IEEE half bits (low 16 bits of h) to f32, exactly, including subnormals, inf and NaN. No float
 * operation here ever sees a denormal f32: x86 without flush-to-zero (WebAssembly has none) takes a
 * microcode assist of ~100 cycles for each, and Q6_K's super-block scale is an f16 subnormal in most
 * real files (|d| < 2^-14), which made every Q6_K dot twice as slow when the conversion multiplied
 * the bits as a denormal by 2^112. Normal halves rebias the exponent in integers; subnormal ones
 * are their 10-bit mantissa, converted exactly, times 2^-24 (a normal f32).
 */
@inline function f16(h: u32): f32 {
  const em = (h & 0x7fff) << 13;
  const exponent = h & 0x7c00;
  let v = select<u32>(em | 0x7f800000, em + 0x38000000, exponent == 0x7c00);
  v = select<u32>(reinterpret<u32>(<f32>(h & 0x3ff) * 5.9604644775390625e-8), v, exponent == 0);
  return reinterpret<f32>(v | ((h & 0x8000) << 16));
}

/** Four halves in the low 16 bits of each i32 lane to f32x4 (as f16: no denormal operands). */
@inline function f16x4(h: v128): v128 {
  const em = i32x4.shl(v128.and(h, lanes32(K_F16_EM)), 13);
  const exponent = v128.and(h, lanes32(K_F16_EXP));
  let v = v128.bitselect(v128.or(em, lanes32(K_F32_INF)), i32x4.add(em, lanes32(K_F16_REBIAS)), i32x4.eq(exponent, lanes32(K_F16_EXP)));
  const subnormal = f32x4.mul(f32x4.convert_i32x4_s(v128.and(h, lanes32(K_F16_MANT))), floats(F_TWO_M24));
  v = v128.bitselect(subnormal, v, i32x4.eq(exponent, i32x4.splat(0)));
  return v128.or(v, i32x4.shl(v128.and(h, lanes32(K_F16_SIGN)), 16));
}

@inline function loadF16(p: usize): f32 {
  return f16(<u32>load<u16>(p));
}

/** 6-bit scale j of a Q4_K/Q5_K block whose 12 scale bytes start at s (get_scale_min_k4). */
@inline function scaleK4(j: i32, s: usize): i32 {
  return j < 4
    ? <i32>load<u8>(s + j) & 63
    : (<i32>load<u8>(s + j + 4) & 0xf) | ((<i32>load<u8>(s + j - 4) >> 6) << 4);
}

@inline function minK4(j: i32, s: usize): i32 {
  return j < 4
    ? <i32>load<u8>(s + j + 4) & 63
    : (<i32>load<u8>(s + j + 4) >> 4) | ((<i32>load<u8>(s + j) >> 6) << 4);
}

/**
 * 0x10 in each lane whose byte of qh has bit `bit` set (Q5_K's fifth bit). A compare, not byte
 * shifts: wasm's i8x16 shifts have no x86 instruction and cost several each.
 */
@inline function bit5(qh: v128, bit: i32): v128 {
  const m: i32 = 1 << bit;
  return v128.and(i8x16.ne(v128.and(qh, bytes(m)), i8x16.splat(0)), bytes(0x10));
}

/** High nibbles of each byte (v >> 4 per byte) with a native 16-bit shift and a mask. */
@inline function hiNibbles(v: v128): v128 {
  return v128.and(i16x8.shr_u(v, 4), bytes(0x0f));
}

/**
 * The fifth bits of a Q5_0 / Q5_1 block (qh, a little-endian u32: bit j for element j) as 0x10 per
 * byte: elements 0..15 (hi = false, qh bytes 0 and 1) or 16..31 (hi = true, bytes 2 and 3). Each
 * byte j picks qh byte j / 8 (swizzle), masks bit j % 8 and compares: llama.cpp's bytes_from_bits_32.
 */
const Q5_BIT_BYTES = memory.data<u8>([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3]);
const Q5_BIT_MASKS = memory.data<u8>([1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128]);
@inline function q5HighBits(qh: u32, hi: bool): v128 {
  const idx = v128.load(Q5_BIT_BYTES + (hi ? 16 : 0));
  const mask = v128.load(Q5_BIT_MASKS);
  const b = lookup16(i32x4.splat(qh), idx);
  return v128.and(i8x16.eq(v128.and(b, mask), mask), bytes(0x10));
}

/** Sixteen signed 8-bit lanes times `scale`, minus `sub`, stored as 16 floats at dst. */
@inline function store16(dst: usize, q: v128, scale: v128, sub: v128): void {
  const lo = i16x8.extend_low_i8x16_s(q);
  const hi = i16x8.extend_high_i8x16_s(q);
  v128.store(dst, f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)), scale), sub));
  v128.store(dst, f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), scale), sub), 16);
  v128.store(dst, f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), scale), sub), 32);
  v128.store(dst, f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), scale), sub), 48);
}

/**
 * Integer dot of 16 lanes: `w` holds non-negative values < 128 (4-, 5-, 6-bit quants), `x` signed
 * 8-bit activations in [-127, 127]; added to the i32x4 accumulator. Relaxed SIMD's i8 x i7 dot is
 * exactly this case (its second operand must have the top bit clear).
 */
@inline function dotU7(w: v128, x: v128, acc: v128): v128 {
  if (RELAXED) return i32x4.relaxed_dot_i8x16_i7x16_add_s(x, w, acc);
  // |w * x| <= 127 * 127, so two products still fit in i16.
  const p = i16x8.add(i16x8.extmul_low_i8x16_s(w, x), i16x8.extmul_high_i8x16_s(w, x));
  return i32x4.add(acc, i32x4.extadd_pairwise_i16x8_s(p));
}

/**
 * `acc + scale * dot(w, x)` over 16 lanes, w in [0, 63] (6-bit quants), |x| <= 127, |scale| <= 128.
 * Plain SIMD: i32x4.dot_i16x8_s adds the lane pairs and applies the sub-block scale in one
 * instruction (two products per i16 lane <= 2 * 63 * 127 < 2^15; times the scale, pairs < 2^22).
 * Exact integers either way, so both builds give the same sums.
 */
@inline function dotU7Scaled(w: v128, x: v128, scale: i32, acc: v128): v128 {
  if (RELAXED) return i32x4.add(acc, i32x4.mul(i32x4.relaxed_dot_i8x16_i7x16_add_s(x, w, i32x4.splat(0)), i32x4.splat(scale)));
  const p = i16x8.add(i16x8.extmul_low_i8x16_s(w, x), i16x8.extmul_high_i8x16_s(w, x));
  return i32x4.add(acc, i32x4.dot_i16x8_s(p, i16x8.splat(<i16>scale)));
}

/**
 * `acc + scale * dot` over one 32-lane sub-block (w0|w1 against x0|x1), w in [0, 31] (4-, 5-bit
 * quants), |x| <= 127, 0 <= scale < 64. Plain SIMD: four products per i16 lane (<= 4 * 31 * 127 <
 * 2^14) before one widening dot with the scale: 9 instructions instead of 12 for the
 * decode-dominant K-quant path.
 */
@inline function dotU5x32Scaled(w0: v128, x0: v128, w1: v128, x1: v128, scale: i32, acc: v128): v128 {
  if (RELAXED) return i32x4.add(acc, i32x4.mul(dotU7(w1, x1, dotU7(w0, x0, i32x4.splat(0))), i32x4.splat(scale)));
  const p = i16x8.add(
    i16x8.add(i16x8.extmul_low_i8x16_s(w0, x0), i16x8.extmul_high_i8x16_s(w0, x0)),
    i16x8.add(i16x8.extmul_low_i8x16_s(w1, x1), i16x8.extmul_high_i8x16_s(w1, x1)),
  );
  return i32x4.add(acc, i32x4.dot_i16x8_s(p, i16x8.splat(<i16>scale)));
}

/** Integer dot of 16 signed lanes (Q8_0 weights may be -128: 128 * 127 * 2 still fits in i16). */
@inline function dotS8(w: v128, x: v128, acc: v128): v128 {
  const p = i16x8.add(i16x8.extmul_low_i8x16_s(w, x), i16x8.extmul_high_i8x16_s(w, x));
  return i32x4.add(acc, i32x4.extadd_pairwise_i16x8_s(p));
}

// ---------------------------------------------------------------------------------------------
// Dequantization: `n` elements starting at the block at `src` into f32 at `dst`, bit-exact with
// llama.cpp's dequantize_row_* (and src/engine/gguf/quants). n is a whole number of blocks.

function dequantF16(src: usize, dst: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(src + (<usize>i << 1));
    v128.store(dst + (<usize>i << 2), f16x4(i32x4.extend_low_i16x8_u(h)));
    v128.store(dst + (<usize>i << 2), f16x4(i32x4.extend_high_i16x8_u(h)), 16);
  }
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), loadF16(src + (<usize>i << 1)));
}

function dequantBF16(src: usize, dst: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(src + (<usize>i << 1));
    v128.store(dst + (<usize>i << 2), i32x4.shl(i32x4.extend_low_i16x8_u(h), 16));
    v128.store(dst + (<usize>i << 2), i32x4.shl(i32x4.extend_high_i16x8_u(h), 16), 16);
  }
  for (; i < n; i++) store<u32>(dst + (<usize>i << 2), (<u32>load<u16>(src + (<usize>i << 1))) << 16);
}

function dequantQ8_0(src: usize, dst: usize, n: i32): void {
  const zero = f32x4.splat(0);
  for (let b = 0; b < n; b += 32, src += 34, dst += 128) {
    const d = f32x4.splat(loadF16(src));
    store16(dst, v128.load(src, 2), d, zero);
    store16(dst + 64, v128.load(src, 18), d, zero);
  }
}

function dequantQ4_0(src: usize, dst: usize, n: i32): void {
  const zero = f32x4.splat(0);
  const m4 = bytes(0x0f);
  const eight = bytes(8);
  for (let b = 0; b < n; b += 32, src += 18, dst += 128) {
    const d = f32x4.splat(loadF16(src));
    const q = v128.load(src, 2);
    store16(dst, i8x16.sub(v128.and(q, m4), eight), d, zero);
    store16(dst + 64, i8x16.sub(hiNibbles(q), eight), d, zero);
  }
}

function dequantQ5_0(src: usize, dst: usize, n: i32): void {
  const zero = f32x4.splat(0);
  const m4 = bytes(0x0f);
  const sixteen = bytes(16);
  for (let b = 0; b < n; b += 32, src += 22, dst += 128) {
    const d = f32x4.splat(loadF16(src));
    const qh = load<u32>(src + 2);
    const q = v128.load(src, 6);
    store16(dst, i8x16.sub(v128.or(v128.and(q, m4), q5HighBits(qh, false)), sixteen), d, zero);
    store16(dst + 64, i8x16.sub(v128.or(hiNibbles(q), q5HighBits(qh, true)), sixteen), d, zero);
  }
}

/**
 * Q4_1 (q5 = false) and Q5_1 (q5 = true): d * q + m, as llama.cpp rounds it (the product, then the
 * sum: store16's x * d - (-m), never fused).
 */
@inline function dequantQx_1(src: usize, dst: usize, n: i32, q5: bool): void {
  const m4 = bytes(0x0f);
  const bs: usize = q5 ? 24 : 20;
  for (let b = 0; b < n; b += 32, src += bs, dst += 128) {
    const d = f32x4.splat(loadF16(src));
    const negM = f32x4.splat(-loadF16(src + 2));
    const q = v128.load(src + (q5 ? 8 : 4));
    let lo = v128.and(q, m4);
    let hi = hiNibbles(q);
    if (q5) {
      const qh = load<u32>(src + 4);
      lo = v128.or(lo, q5HighBits(qh, false));
      hi = v128.or(hi, q5HighBits(qh, true));
    }
    store16(dst, lo, d, negM);
    store16(dst + 64, hi, d, negM);
  }
}

/** Q4_K (q5 = false) and Q5_K (q5 = true): the same scales, Q5_K adds a fifth bit from qh. */
@inline function dequantK45(src: usize, dst: usize, n: i32, q5: bool): void {
  const m4 = bytes(0x0f);
  const bs: usize = q5 ? 176 : 144;
  for (let b = 0; b < n; b += 256, src += bs) {
    const d = loadF16(src);
    const dmin = loadF16(src + 2);
    const qs = src + (q5 ? 48 : 16);
    for (let c = 0; c < 4; c++) {
      const j = 2 * c;
      const d1 = f32x4.splat(d * <f32>scaleK4(j, src + 4));
      const m1 = f32x4.splat(dmin * <f32>minK4(j, src + 4));
      const d2 = f32x4.splat(d * <f32>scaleK4(j + 1, src + 4));
      const m2 = f32x4.splat(dmin * <f32>minK4(j + 1, src + 4));
      const p = qs + 32 * c;
      for (let h = 0; h < 32; h += 16) {
        const v = v128.load(p + h);
        let lo = v128.and(v, m4);
        let hi = hiNibbles(v);
        if (q5) {
          const qh = v128.load(src + 16 + h);
          lo = v128.or(lo, bit5(qh, j));
          hi = v128.or(hi, bit5(qh, j + 1));
        }
        store16(dst + (<usize>h << 2), lo, d1, m1);
        store16(dst + 128 + (<usize>h << 2), hi, d2, m2);
      }
      dst += 256;
    }
  }
}

/**
 * The 16 six-bit quants (0..63) of Q6_K group g (elements 128h + 32g + l0 + [0, 16)) from the 16
 * bytes of ql at 64h + l0 (`qlA`), at 64h + 32 + l0 (`qlB`) and of qh at 128 + 32h + l0: low
 * nibbles from ql, two high bits from qh. Callers pass g as a literal so the shifts fold; 16-bit
 * shifts of masked bytes never carry across a byte.
 */
@inline function q6Lanes(qlA: v128, qlB: v128, qh: v128, g: i32): v128 {
  const m4 = bytes(0x0f);
  if (g == 0) return v128.or(v128.and(qlA, m4), i16x8.shl(v128.and(qh, bytes(0x03)), 4));
  if (g == 1) return v128.or(v128.and(qlB, m4), i16x8.shl(v128.and(qh, bytes(0x0c)), 2));
  if (g == 2) return v128.or(hiNibbles(qlA), v128.and(qh, bytes(0x30)));
  return v128.or(hiNibbles(qlB), i16x8.shr_u(v128.and(qh, bytes(0xc0)), 2));
}

@inline function dequantQ6Group(src: usize, dst: usize, d: f32, qlA: v128, qlB: v128, qh: v128, h: i32, l0: i32, g: i32): void {
  const s = 8 * h + 2 * g + (l0 >> 4); // sub-block of 16
  const sc = f32x4.splat(d * <f32>load<i8>(src + 192 + s));
  store16(dst + (<usize>(128 * h + 32 * g + l0) << 2), i8x16.sub(q6Lanes(qlA, qlB, qh, g), bytes(32)), sc, f32x4.splat(0));
}

function dequantQ6_K(src: usize, dst: usize, n: i32): void {
  for (let b = 0; b < n; b += 256, src += 210) {
    const d = loadF16(src + 208);
    for (let h = 0; h < 2; h++) {
      for (let l0 = 0; l0 < 32; l0 += 16) {
        const qlA = v128.load(src + 64 * h + l0);
        const qlB = v128.load(src + 64 * h + 32 + l0);
        const qh = v128.load(src + 128 + 32 * h + l0);
        dequantQ6Group(src, dst, d, qlA, qlB, qh, h, l0, 0);
        dequantQ6Group(src, dst, d, qlA, qlB, qh, h, l0, 1);
        dequantQ6Group(src, dst, d, qlA, qlB, qh, h, l0, 2);
        dequantQ6Group(src, dst, d, qlA, qlB, qh, h, l0, 3);
      }
    }
    dst += 1024;
  }
}

/**
 * Q2_K: (d * sc) * q - dmin * m per sub-block of 16, q in [0, 3] (bits 2k..2k+1 of the 32 bytes of
 * half h: elements 128h + 32k + l); store16's product then difference, as llama.cpp rounds it.
 */
function dequantQ2_K(src: usize, dst: usize, n: i32): void {
  const m3 = bytes(3);
  for (let b = 0; b < n; b += 256, src += 84) {
    const d = loadF16(src + 80);
    const dmin = loadF16(src + 82);
    let sc = src;
    for (let h: usize = 0; h < 2; h++) {
      const q0 = v128.load(src + 16 + 32 * h);
      const q1 = v128.load(src + 32 + 32 * h);
      for (let shift = 0; shift < 8; shift += 2, sc += 2, dst += 128) {
        // 16-bit shifts: the bits a byte gets from its neighbour lie above the 2-bit mask.
        const s0 = load<u8>(sc);
        const s1 = load<u8>(sc, 1);
        store16(dst, v128.and(i16x8.shr_u(q0, shift), m3), f32x4.splat(d * <f32>(s0 & 15)), f32x4.splat(dmin * <f32>(s0 >> 4)));
        store16(dst + 64, v128.and(i16x8.shr_u(q1, shift), m3), f32x4.splat(d * <f32>(s1 & 15)), f32x4.splat(dmin * <f32>(s1 >> 4)));
      }
    }
  }
}

/** Q3_K's six-bit scale of sub-block j (scale bytes at s) less 32. */
@inline function scaleQ3(s: usize, j: i32): i32 {
  const low: u32 = j < 8 ? <u32>load<u8>(s + <usize>j) & 15 : <u32>load<u8>(s + <usize>(j - 8)) >> 4;
  return <i32>(low | (((<u32>load<u8>(s + 8 + <usize>(j & 3)) >> (2 * (j >> 2))) & 3) << 4)) - 32;
}

/**
 * Q3_K: (d * (sc - 32)) * (q - 4) per sub-block of 16: q's two low bits as Q2_K's, its third from
 * hmask (bit 4h + k of byte l for element 128h + 32k + l).
 */
function dequantQ3_K(src: usize, dst: usize, n: i32): void {
  const four = bytes(4);
  const zero = f32x4.splat(0);
  for (let b = 0; b < n; b += 256, src += 110) {
    const d = loadF16(src + 108);
    const hm0 = v128.load(src);
    const hm1 = v128.load(src + 16);
    for (let h = 0; h < 2; h++) {
      const q0 = v128.load(src + 32 + 32 * <usize>h);
      const q1 = v128.load(src + 48 + 32 * <usize>h);
      for (let k = 0; k < 4; k++, dst += 128) {
        const s = 8 * h + 2 * k;
        store16(dst, i8x16.sub(q3Lanes(q0, hm0, 2 * k, 4 * h + k), four), f32x4.splat(d * <f32>scaleQ3(src + 96, s)), zero);
        store16(dst + 64, i8x16.sub(q3Lanes(q1, hm1, 2 * k, 4 * h + k), four), f32x4.splat(d * <f32>scaleQ3(src + 96, s + 1)), zero);
      }
    }
  }
}

/**
 * table[idx] per byte for indices 0..15 (nibbles, the IQ4 levels' lookups). There relaxed SIMD's
 * swizzle is exact and one pshufb on x86, where the plain swizzle adds a saturating add that sends
 * indices past 15 to 0 (two instructions). Swizzles that rely on that zeroing keep i8x16.swizzle.
 */
@inline function lookup16(table: v128, idx: v128): v128 {
  if (RELAXED) return i8x16.relaxed_swizzle(table, idx);
  return i8x16.swizzle(table, idx);
}

/**
 * A byte gather whose indices are 0..15 or at least 0x80 (giving 0): exact in both builds, one
 * pshufb with relaxed SIMD (the plain swizzle adds a saturating fix-up for indices 16..127).
 */
@inline function zeroSwizzle(v: v128, idx: v128): v128 {
  if (RELAXED) return i8x16.relaxed_swizzle(v, idx);
  return i8x16.swizzle(v, idx);
}

/** ggml's kvalues_iq4nl: the 16 levels of IQ4_NL / IQ4_XS, looked up by nibble with lookup16. */
@inline function iq4Levels(): v128 {
  return v128.load(IQ4_LEVELS);
}

/** IQ4_NL: d * K[q] per block of 32 (low nibbles elements 0..15, high nibbles 16..31). */
function dequantIQ4_NL(src: usize, dst: usize, n: i32): void {
  const levels = iq4Levels();
  const m4 = bytes(0x0f);
  const zero = f32x4.splat(0);
  for (let b = 0; b < n; b += 32, src += 18, dst += 128) {
    const d = f32x4.splat(loadF16(src));
    const q = v128.load(src, 2);
    store16(dst, lookup16(levels, v128.and(q, m4)), d, zero);
    store16(dst + 64, lookup16(levels, hiNibbles(q)), d, zero);
  }
}

/** IQ4_XS's six-bit scale of block ib (0..7) of the super-block at w, less 32: 4 low bits from byte 4 + ib / 2, 2 high from the u16 at 2. */
@inline function iq4xsScale(w: usize, ib: i32): i32 {
  const lo = (<u32>load<u8>(w + 4 + <usize>(ib >> 1)) >> (4 * (ib & 1))) & 15;
  return <i32>(lo | (((<u32>load<u16>(w + 2) >> (2 * ib)) & 3) << 4)) - 32;
}

/** IQ4_XS: (d * (ls - 32)) * K[q] per block of 32 of a 256 super-block, ls six bits (4 low, 2 high). */
function dequantIQ4_XS(src: usize, dst: usize, n: i32): void {
  const levels = iq4Levels();
  const m4 = bytes(0x0f);
  const zero = f32x4.splat(0);
  for (let b = 0; b < n; b += 256, src += 136) {
    const d = loadF16(src);
    for (let ib = 0; ib < 8; ib++, dst += 128) {
      const dl = f32x4.splat(d * <f32>iq4xsScale(src, ib));
      const q = v128.load(src + 8 + 16 * <usize>ib);
      store16(dst, lookup16(levels, v128.and(q, m4)), dl, zero);
      store16(dst + 64, lookup16(levels, hiNibbles(q)), dl, zero);
    }
  }
}

function blockSize(type: i32): i32 {
  if (type == T_Q4_0 || type == T_Q8_0 || type == T_Q4_1 || type == T_Q5_0 || type == T_Q5_1) return 32;
  if (type == T_Q4_K || type == T_Q5_K || type == T_Q6_K || type == T_Q2_K || type == T_Q3_K || type == T_IQ4_XS) return 256;
  if (type == T_IQ4_NL) return 32;
  return 1;
}

function typeSize(type: i32): i32 {
  switch (type) {
    case T_F32: return 4;
    case T_F16: return 2;
    case T_BF16: return 2;
    case T_Q4_0: return 18;
    case T_Q8_0: return 34;
    case T_Q4_1: return 20;
    case T_Q5_0: return 22;
    case T_Q5_1: return 24;
    case T_Q4_K: return 144;
    case T_Q5_K: return 176;
    case T_Q6_K: return 210;
    case T_Q2_K: return 84;
    case T_Q3_K: return 110;
    case T_IQ4_NL: return 18;
    case T_IQ4_XS: return 136;
  }
  return 0;
}

/** Bytes of one row of k elements of `type`; 0 for an unsupported type. */
export function rowBytes(type: i32, k: i32): usize {
  return <usize>(k / blockSize(type)) * <usize>typeSize(type);
}

/** Dequantizes elements [0, n) of the row at src (n a whole number of blocks) into dst. */
export function dequantize(type: i32, src: usize, dst: usize, n: i32): void {
  switch (type) {
    case T_F32: memory.copy(dst, src, <usize>n << 2); break;
    case T_F16: dequantF16(src, dst, n); break;
    case T_BF16: dequantBF16(src, dst, n); break;
    case T_Q8_0: dequantQ8_0(src, dst, n); break;
    case T_Q4_0: dequantQ4_0(src, dst, n); break;
    case T_Q4_1: dequantQx_1(src, dst, n, false); break;
    case T_Q5_0: dequantQ5_0(src, dst, n); break;
    case T_Q5_1: dequantQx_1(src, dst, n, true); break;
    case T_Q4_K: dequantK45(src, dst, n, false); break;
    case T_Q5_K: dequantK45(src, dst, n, true); break;
    case T_Q6_K: dequantQ6_K(src, dst, n); break;
    case T_Q2_K: dequantQ2_K(src, dst, n); break;
    case T_Q3_K: dequantQ3_K(src, dst, n); break;
    case T_IQ4_NL: dequantIQ4_NL(src, dst, n); break;
    case T_IQ4_XS: dequantIQ4_XS(src, dst, n); break;
    default: unreachable();
  }
}

// ---------------------------------------------------------------------------------------------
// f32 dot products

/**
 * a * b + c, never fused: the f32 path's dot chains are latency-bound, and a fused multiply-add
 * (relaxed_madd, 4 cycles) on each chain made them 20% slower than a multiply beside a 3-cycle add.
 */
@inline function mulAdd(a: v128, b: v128, c: v128): v128 {
  return f32x4.add(f32x4.mul(a, b), c);
}

function dot1(a: usize, x: usize, n: i32): f32 {
  let s0 = f32x4.splat(0);
  let s1 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const o = <usize>i << 2;
    s0 = mulAdd(v128.load(a + o), v128.load(x + o), s0);
    s1 = mulAdd(v128.load(a + o, 16), v128.load(x + o, 16), s1);
  }
  let s = hsum(f32x4.add(s0, s1));
  for (; i < n; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(x + (<usize>i << 2));
  return s;
}

/** Dots of `a` with four rows x0 + t * xs (t < 4), added to out[t * os]. */
function dot4(a: usize, x0: usize, xs: usize, n: i32, out: usize, os: usize): void {
  let s0 = f32x4.splat(0);
  let s1 = f32x4.splat(0);
  let s2 = f32x4.splat(0);
  let s3 = f32x4.splat(0);
  const x1 = x0 + xs;
  const x2 = x1 + xs;
  const x3 = x2 + xs;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const w = v128.load(a + o);
    s0 = mulAdd(w, v128.load(x0 + o), s0);
    s1 = mulAdd(w, v128.load(x1 + o), s1);
    s2 = mulAdd(w, v128.load(x2 + o), s2);
    s3 = mulAdd(w, v128.load(x3 + o), s3);
  }
  let r0 = hsum(s0);
  let r1 = hsum(s1);
  let r2 = hsum(s2);
  let r3 = hsum(s3);
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const w = load<f32>(a + o);
    r0 += w * load<f32>(x0 + o);
    r1 += w * load<f32>(x1 + o);
    r2 += w * load<f32>(x2 + o);
    r3 += w * load<f32>(x3 + o);
  }
  store<f32>(out, load<f32>(out) + r0);
  store<f32>(out + os, load<f32>(out + os) + r1);
  store<f32>(out + 2 * os, load<f32>(out + 2 * os) + r2);
  store<f32>(out + 3 * os, load<f32>(out + 3 * os) + r3);
}

/** Elements dequantized at a time into scratch: 4 KiB stays in L1 next to the weight row. */
const CHUNK: i32 = 1024;

/**
 * y[t][r] = bias[r] + sum_i w[r][i] * x[t][i] for rows [rowStart, rowEnd) and tokens [0, tokens):
 * f32 activations, weights dequantized a chunk at a time into `scratch` (CHUNK floats), f32
 * accumulation. x row t at x + t * xStride floats, y row t at y + t * yStride floats; bias 0 = none.
 */
export function matmul(
  type: i32, w: usize, k: i32, x: usize, xStride: i32, y: usize, yStride: i32,
  tokens: i32, bias: usize, rowStart: i32, rowEnd: i32, scratch: usize,
): void {
  const rb = rowBytes(type, k);
  const bsz = blockSize(type);
  const ts = <usize>typeSize(type);
  const xs = <usize>xStride << 2;
  const ys = <usize>yStride << 2;
  for (let r = rowStart; r < rowEnd; r++) {
    const wr = w + <usize>r * rb;
    const yr = y + (<usize>r << 2);
    const b0: f32 = bias ? load<f32>(bias + (<usize>r << 2)) : 0;
    for (let t = 0; t < tokens; t++) store<f32>(yr + <usize>t * ys, b0);
    for (let c0 = 0; c0 < k; c0 += CHUNK) {
      const n = min(CHUNK, k - c0);
      let a: usize;
      if (type == T_F32) {
        a = wr + (<usize>c0 << 2);
      } else {
        dequantize(type, wr + <usize>(c0 / bsz) * ts, scratch, n);
        a = scratch;
      }
      const xc = x + (<usize>c0 << 2);
      let t = 0;
      for (; t + 4 <= tokens; t += 4) dot4(a, xc + <usize>t * xs, xs, n, yr + <usize>t * ys, ys);
      for (; t < tokens; t++) {
        const o = yr + <usize>t * ys;
        store<f32>(o, load<f32>(o) + dot1(a, xc + <usize>t * xs, n));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Quantized activations: rows of k floats as blocks of 32 ("Q8A", 40 bytes):
//   f32 d; i16 sum of q[0..16); i16 sum of q[16..32); i8 q[32]
// with d = max|x| / 127 and q = round(x / d) in [-127, 127] (llama.cpp's Q8_0 / Q8_1 activations).
// The sums let unsigned weight quants (0..15, 0..31, 0..63) go straight into integer dots, their
// offsets (8, 32) and K-quant mins applied once per sub-block.

export const Q8A_BLOCK_BYTES: i32 = 40;

/** Quantizes rows [rowStart, rowEnd) of x (k floats each, k % 32 == 0) into Q8A at dst. */
export function quantizeQ8A(x: usize, xStride: i32, dst: usize, k: i32, rowStart: i32, rowEnd: i32): void {
  const rowQ = <usize>(k >> 5) * 40;
  for (let r = rowStart; r < rowEnd; r++) {
    let xp = x + (<usize>r * <usize>xStride << 2);
    let o = dst + <usize>r * rowQ;
    for (let b = 0; b < k; b += 32, xp += 128, o += 40) {
      let m = f32x4.splat(0);
      for (let i = 0; i < 8; i++) m = f32x4.max(m, f32x4.abs(v128.load(xp + (<usize>i << 4))));
      const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
      const d: f32 = amax / 127;
      const id = f32x4.splat(d != 0 ? 1 / d : 0);
      store<f32>(o, d);
      for (let h = 0; h < 2; h++) {
        const p = xp + (<usize>h << 6);
        const i0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p), id)));
        const i1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 16), id)));
        const i2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 32), id)));
        const i3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 48), id)));
        const q16a = i16x8.narrow_i32x4_s(i0, i1);
        const q16b = i16x8.narrow_i32x4_s(i2, i3);
        const q8 = i8x16.narrow_i16x8_s(q16a, q16b);
        v128.store(o + 8 + (<usize>h << 4), q8);
        store<i16>(o + 4 + (<usize>h << 1), <i16>hsumI(i32x4.add(i32x4.add(i0, i1), i32x4.add(i2, i3))));
      }
    }
  }
}

@inline function q8d(xb: usize): f32 {
  return load<f32>(xb);
}

@inline function q8sum(xb: usize, half: i32): i32 {
  return <i32>load<i16>(xb + 4 + (<usize>half << 1));
}

function dotQ8_0(w: usize, xq: usize, k: i32): f32 {
  let acc = f32x4.splat(0);
  for (let b = 0; b < k; b += 32, w += 34, xq += 40) {
    let s = i32x4.splat(0);
    s = dotS8(v128.load(w, 2), v128.load(xq, 8), s);
    s = dotS8(v128.load(w, 18), v128.load(xq, 24), s);
    acc = madd(f32x4.convert_i32x4_s(s), f32x4.splat(loadF16(w) * q8d(xq)), acc);
  }
  return hsum(acc);
}

/**
 * A token's Q8A quants split for relaxed dots against signed weights: x = xp - xn with xp, xn in
 * [0, 127], the 7-bit operand relaxed SIMD's i8 dot needs (Q8A quants are in [-127, 127]). 64 bytes
 * a block at dst: xp[32], xn[32].
 */
@inline function splitSignedQ8A(xq: usize, nb: i32, dst: usize): void {
  const z = i8x16.splat(0);
  for (let b = 0; b < nb; b++, xq += 40, dst += 64) {
    const x0 = v128.load(xq, 8);
    const x1 = v128.load(xq, 24);
    v128.store(dst, i8x16.max_s(x0, z));
    v128.store(dst, i8x16.max_s(x1, z), 16);
    v128.store(dst, i8x16.max_s(i8x16.neg(x0), z), 32);
    v128.store(dst, i8x16.max_s(i8x16.neg(x1), z), 48);
  }
}

/**
 * dot(w, x) over 16 lanes as i16 pair sums, w signed (Q8_0, may be -128), x = xp - xn split: each
 * relaxed dot's pair is at most 2 * 128 * 127 < 2^15, and the wrapping difference is the exact
 * pair sum of w * x, which fits too.
 */
@inline function dotSplitPairs(w: v128, xp: v128, xn: v128): v128 {
  return i16x8.sub(i16x8.relaxed_dot_i8x16_i7x16_s(w, xp), i16x8.relaxed_dot_i8x16_i7x16_s(w, xn));
}

/**
 * Relaxed-build Q8_0 row dot on a token split by splitSignedQ8A (xs) with its Q8A scales (xq):
 * 1.1-1.2x dotQ8_0 (four i8 dots per block instead of four widening multiplies and adds). Its
 * lanes group the products as the relaxed dot does (four adjacent), not as dotQ8_0 does, so the
 * float sums round differently: the decode of the scratch-less fallback (rows over 32768) is not
 * bitwise this.
 */
function dotQ8_0Split(w: usize, xs: usize, xq: usize, k: i32): f32 {
  let acc = f32x4.splat(0);
  for (let b = 0; b < k; b += 32, w += 34, xs += 64, xq += 40) {
    const p0 = dotSplitPairs(v128.load(w, 2), v128.load(xs), v128.load(xs, 32));
    const p1 = dotSplitPairs(v128.load(w, 18), v128.load(xs, 16), v128.load(xs, 48));
    const s = i32x4.add(i32x4.extadd_pairwise_i16x8_s(p0), i32x4.extadd_pairwise_i16x8_s(p1));
    acc = madd(f32x4.convert_i32x4_s(s), f32x4.splat(loadF16(w) * q8d(xq)), acc);
  }
  return hsum(acc);
}

/**
 * IQ4_NL row dot on Q8A activations: per block of 32, d * dx * sum K[q] x with the signed levels
 * by swizzle and i8 x i8 products (as Q8_0's dotS8); one float multiply-add per block.
 */
function dotIQ4_NL(w: usize, xq: usize, k: i32): f32 {
  const levels = iq4Levels();
  const m4 = bytes(0x0f);
  let acc = f32x4.splat(0);
  for (let b = 0; b < k; b += 32, w += 18, xq += 40) {
    const q = v128.load(w, 2);
    let s = dotS8(lookup16(levels, v128.and(q, m4)), v128.load(xq, 8), i32x4.splat(0));
    s = dotS8(lookup16(levels, hiNibbles(q)), v128.load(xq, 24), s);
    acc = madd(f32x4.convert_i32x4_s(s), f32x4.splat(loadF16(w) * q8d(xq)), acc);
  }
  return hsum(acc);
}

/** The 16 nibble bytes of block b (32 elements: low nibbles 0..15, high 16..31) of an IQ4_NL / IQ4_XS (xs) row at w. */
@inline function iq4Block32(w: usize, b: i32, xs: bool): usize {
  return xs ? w + <usize>(b >> 3) * 136 + 8 + 16 * <usize>(b & 7) : w + <usize>b * 18 + 2;
}

/** Block b's scale: IQ4_NL's f16 d; IQ4_XS's super-block d times the block's ls - 32 (exact in f32: 11 x 6 bits). */
@inline function iq4Scale32(w: usize, b: i32, xs: bool): f32 {
  if (!xs) return loadF16(w + <usize>b * 18);
  const sb = w + <usize>(b >> 3) * 136;
  return loadF16(sb) * <f32>iq4xsScale(sb, b & 7);
}

/**
 * One IQ4_NL / IQ4_XS block of 32 (nibble bytes q) against its 32 activation quants at x, where the
 * unsigned-byte dot is exact: the levels + 128 (levelsU8) as the unsigned operand. Lanes hold partial
 * sums of dot(x, K[q] + 128); the caller subtracts 128 times the block's activation sum.
 */
@inline function iq4BlockU8(q: v128, levelsU8: v128, x: usize): v128 {
  const lo = lookup16(levelsU8, v128.and(q, bytes(0x0f)));
  const hi = lookup16(levelsU8, hiNibbles(q));
  return dotU8Add(v128.load(x, 16), hi, dotU8Add(v128.load(x), lo, i32x4.splat(0)));
}

/**
 * dotIQ4_NL where the unsigned-byte dot is exact: four blocks at a time, their totals gathered by
 * hsum4I, less 128 times each block's sum (its Q8A half sums), times the four blocks' d * dx.
 * The same integers per block as dotIQ4_NL, rounded in another order.
 */
function dotIQ4_NLU8(w: usize, xq: usize, k: i32): f32 {
  const levels = v128.xor(iq4Levels(), bytes(-128));
  const m = words(128);
  const nb = k >> 5;
  let acc = f32x4.splat(0);
  let b = 0;
  for (; b + 4 <= nb; b += 4, w += 72, xq += 160) {
    const s = hsum4I(
      iq4BlockU8(v128.load(w, 2), levels, xq + 8),
      iq4BlockU8(v128.load(w, 20), levels, xq + 48),
      iq4BlockU8(v128.load(w, 38), levels, xq + 88),
      iq4BlockU8(v128.load(w, 56), levels, xq + 128),
    );
    // Each block's two i16 half sums in its lane; one i16 dot adds them times 128.
    let hs = i32x4.splat(load<i32>(xq + 4));
    hs = i32x4.replace_lane(hs, 1, load<i32>(xq + 44));
    hs = i32x4.replace_lane(hs, 2, load<i32>(xq + 84));
    hs = i32x4.replace_lane(hs, 3, load<i32>(xq + 124));
    let dh = i32x4.splat(<i32>load<u16>(w));
    dh = i32x4.replace_lane(dh, 1, <i32>load<u16>(w + 18));
    dh = i32x4.replace_lane(dh, 2, <i32>load<u16>(w + 36));
    dh = i32x4.replace_lane(dh, 3, <i32>load<u16>(w + 54));
    const scale = f32x4.mul(f16x4(dh), gather4(xq, xq + 40, xq + 80, xq + 120));
    acc = madd(f32x4.convert_i32x4_s(i32x4.sub(s, i32x4.dot_i16x8_s(hs, m))), scale, acc);
  }
  let tail: f32 = 0;
  for (; b < nb; b++, w += 18, xq += 40) {
    const s = i32x4.sub(iq4BlockU8(v128.load(w, 2), levels, xq + 8), i32x4.dot_i16x8_s(v128.load32_zero(xq + 4), m));
    tail += <f32>hsumI(s) * (loadF16(w) * q8d(xq));
  }
  return hsum(acc) + tail;
}

function dotQ4_0(w: usize, xq: usize, k: i32): f32 {
  let acc = f32x4.splat(0);
  let off: f32 = 0;
  const m4 = bytes(0x0f);
  for (let b = 0; b < k; b += 32, w += 18, xq += 40) {
    const q = v128.load(w, 2);
    let s = i32x4.splat(0);
    s = dotU7(v128.and(q, m4), v128.load(xq, 8), s);
    s = dotU7(hiNibbles(q), v128.load(xq, 24), s);
    const scale = loadF16(w) * q8d(xq);
    acc = madd(f32x4.convert_i32x4_s(s), f32x4.splat(scale), acc);
    const sx: i32 = (q8sum(xq, 0) + q8sum(xq, 1)) << 3;
    off += scale * <f32>sx;
  }
  return hsum(acc) - off;
}

function dotQ5_0(w: usize, xq: usize, k: i32): f32 {
  let acc = f32x4.splat(0);
  const m4 = bytes(0x0f);
  for (let b = 0; b < k; b += 32, w += 22, xq += 40) {
    const qh = load<u32>(w + 2);
    const q = v128.load(w, 6);
    let s = dotU7(v128.or(v128.and(q, m4), q5HighBits(qh, false)), v128.load(xq, 8), i32x4.splat(0));
    s = dotU7(v128.or(hiNibbles(q), q5HighBits(qh, true)), v128.load(xq, 24), s);
    // The -16 offset in integers: 16 * sum(x), into lane 0 (|lanes| stay below 2^17).
    s = i32x4.sub(s, i32x4.replace_lane(i32x4.splat(0), 0, (q8sum(xq, 0) + q8sum(xq, 1)) << 4));
    acc = madd(f32x4.convert_i32x4_s(s), f32x4.splat(loadF16(w) * q8d(xq)), acc);
  }
  return hsum(acc);
}

/**
 * Q4_1 (q5 = false) / Q5_1 (q5 = true): sum d * q * x + m * sum(x), the min applied with the
 * activation block's stored sums (llama.cpp's Q8_1 s field, here in integers).
 */
@inline function dotQx_1(w: usize, xq: usize, k: i32, q5: bool): f32 {
  let acc = f32x4.splat(0);
  let mins: f32 = 0;
  const m4 = bytes(0x0f);
  const bs: usize = q5 ? 24 : 20;
  for (let b = 0; b < k; b += 32, w += bs, xq += 40) {
    const q = v128.load(w + (q5 ? 8 : 4));
    let lo = v128.and(q, m4);
    let hi = hiNibbles(q);
    if (q5) {
      const qh = load<u32>(w + 4);
      lo = v128.or(lo, q5HighBits(qh, false));
      hi = v128.or(hi, q5HighBits(qh, true));
    }
    const s = dotU7(hi, v128.load(xq, 24), dotU7(lo, v128.load(xq, 8), i32x4.splat(0)));
    const dx = q8d(xq);
    acc = madd(f32x4.convert_i32x4_s(s), f32x4.splat(loadF16(w) * dx), acc);
    mins += loadF16(w + 2) * dx * <f32>(q8sum(xq, 0) + q8sum(xq, 1));
  }
  return hsum(acc) + mins;
}

@inline function dotK45(w: usize, xq: usize, k: i32, q5: bool): f32 {
  let acc = f32x4.splat(0);
  let off: f32 = 0;
  const m4 = bytes(0x0f);
  const bs: usize = q5 ? 176 : 144;
  for (let b = 0; b < k; b += 256, w += bs) {
    const d = loadF16(w);
    const dmin = loadF16(w + 2);
    const qs = w + (q5 ? 48 : 16);
    for (let c = 0; c < 4; c++, xq += 80) {
      const j = 2 * c;
      const v0 = v128.load(qs + 32 * c);
      const v1 = v128.load(qs + 32 * c + 16);
      let l0 = v128.and(v0, m4);
      let l1 = v128.and(v1, m4);
      let h0 = hiNibbles(v0);
      let h1 = hiNibbles(v1);
      if (q5) {
        const qh0 = v128.load(w + 16);
        const qh1 = v128.load(w + 32);
        l0 = v128.or(l0, bit5(qh0, j));
        l1 = v128.or(l1, bit5(qh1, j));
        h0 = v128.or(h0, bit5(qh0, j + 1));
        h1 = v128.or(h1, bit5(qh1, j + 1));
      }
      const xa = xq;
      const xb = xq + 40;
      const sa = dotU7(l1, v128.load(xa, 24), dotU7(l0, v128.load(xa, 8), i32x4.splat(0)));
      const sb = dotU7(h1, v128.load(xb, 24), dotU7(h0, v128.load(xb, 8), i32x4.splat(0)));
      const da = q8d(xa);
      const db = q8d(xb);
      const d1 = d * <f32>scaleK4(j, w + 4);
      const d2 = d * <f32>scaleK4(j + 1, w + 4);
      acc = madd(f32x4.convert_i32x4_s(sa), f32x4.splat(d1 * da), acc);
      acc = madd(f32x4.convert_i32x4_s(sb), f32x4.splat(d2 * db), acc);
      off += dmin * <f32>minK4(j, w + 4) * da * <f32>(q8sum(xa, 0) + q8sum(xa, 1));
      off += dmin * <f32>minK4(j + 1, w + 4) * db * <f32>(q8sum(xb, 0) + q8sum(xb, 1));
    }
  }
  return hsum(acc) - off;
}

/**
 * One Q6_K group g (32 elements: activation block xb, sub-blocks s = 8h + 2g and s + 1 of 16): the
 * two integer dots are combined with their integer scales before one conversion to float.
 * Returns acc plus the group's contribution.
 */
@inline function q6Group(w: usize, xb: usize, d: f32, lo: v128, hi: v128, h: i32, g: i32, acc: v128): v128 {
  const s = 8 * h + 2 * g;
  const sc0 = <i32>load<i8>(w + 192 + s);
  const sc1 = <i32>load<i8>(w + 193 + s);
  const d0 = dotU7(lo, v128.load(xb, 8), i32x4.splat(0));
  const d1 = dotU7(hi, v128.load(xb, 24), i32x4.splat(0));
  // |sc| <= 128, |dot lane| <= 4 * 63 * 127: the scaled sums fit in i32 with room to spare.
  let sum = i32x4.add(i32x4.mul(d0, i32x4.splat(sc0)), i32x4.mul(d1, i32x4.splat(sc1)));
  // The -32 offset: 32 * (sc0 * sum(x[0..16)) + sc1 * sum(x[16..32))), into lane 0.
  const off = (sc0 * q8sum(xb, 0) + sc1 * q8sum(xb, 1)) << 5;
  sum = i32x4.sub(sum, i32x4.replace_lane(i32x4.splat(0), 0, off));
  return madd(f32x4.convert_i32x4_s(sum), f32x4.splat(d * q8d(xb)), acc);
}

function dotQ6_K(w: usize, xq: usize, k: i32): f32 {
  let acc = f32x4.splat(0);
  for (let b = 0; b < k; b += 256, w += 210, xq += 320) {
    const d = loadF16(w + 208);
    for (let h = 0; h < 2; h++) {
      const qlA0 = v128.load(w + 64 * h);
      const qlA1 = v128.load(w + 64 * h + 16);
      const qlB0 = v128.load(w + 64 * h + 32);
      const qlB1 = v128.load(w + 64 * h + 48);
      const qh0 = v128.load(w + 128 + 32 * h);
      const qh1 = v128.load(w + 128 + 32 * h + 16);
      // Elements 128h + 32g + [0, 32) use activation block 4h + g.
      const xb = xq + 160 * h;
      acc = q6Group(w, xb, d, q6Lanes(qlA0, qlB0, qh0, 0), q6Lanes(qlA1, qlB1, qh1, 0), h, 0, acc);
      acc = q6Group(w, xb + 40, d, q6Lanes(qlA0, qlB0, qh0, 1), q6Lanes(qlA1, qlB1, qh1, 1), h, 1, acc);
      acc = q6Group(w, xb + 80, d, q6Lanes(qlA0, qlB0, qh0, 2), q6Lanes(qlA1, qlB1, qh1, 2), h, 2, acc);
      acc = q6Group(w, xb + 120, d, q6Lanes(qlA0, qlB0, qh0, 3), q6Lanes(qlA1, qlB1, qh1, 3), h, 3, acc);
    }
  }
  return hsum(acc);
}

// Several tokens per pass over the weights (prefill): a weight row's block is loaded once and
// dotted with each token's, and the four tokens' integer sums are gathered into one vector so the
// float work (convert, scale, accumulate) happens once per block for the four.

/** [hsum(s0), hsum(s1), hsum(s2), hsum(s3)]: a 4 x 4 transpose-and-add with interleaving shuffles. */
@inline function hsum4I(s0: v128, s1: v128, s2: v128, s3: v128): v128 {
  const p01 = i32x4.add(i32x4.shuffle(s0, s1, 0, 4, 1, 5), i32x4.shuffle(s0, s1, 2, 6, 3, 7));
  const p23 = i32x4.add(i32x4.shuffle(s2, s3, 0, 4, 1, 5), i32x4.shuffle(s2, s3, 2, 6, 3, 7));
  return i32x4.add(i64x2.shuffle(p01, p23, 0, 2), i64x2.shuffle(p01, p23, 1, 3));
}

/** The f32 fields at p0 .. p3 as one vector (the four tokens' activation scales of a block). */
@inline function gather4(p0: usize, p1: usize, p2: usize, p3: usize): v128 {
  let v = f32x4.splat(load<f32>(p0));
  v = f32x4.replace_lane(v, 1, load<f32>(p1));
  v = f32x4.replace_lane(v, 2, load<f32>(p2));
  return f32x4.replace_lane(v, 3, load<f32>(p3));
}

/**
 * 32 sign-extended weights (w0..w3, i16x8 each) against the 32 i8 quants at x: the activations are
 * sign-extended as they are loaded (`v128.load8x8_s`, one instruction) and multiplied and pair-added
 * by `i32x4.dot_i16x8_s` (one instruction per 8 products). Q8_0's weights are signed (-128 allowed),
 * which relaxed SIMD's i8 x i7 dot cannot take, and this is as short in both builds.
 */
@inline function dotI16x32(w0: v128, w1: v128, w2: v128, w3: v128, x: usize): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(w0, v128.load8x8_s(x)), i32x4.dot_i16x8_s(w1, v128.load8x8_s(x, 8))),
    i32x4.add(i32x4.dot_i16x8_s(w2, v128.load8x8_s(x, 16)), i32x4.dot_i16x8_s(w3, v128.load8x8_s(x, 24))),
  );
}

/** The four tokens' block sums (two i16 halves each, at p + 4) as one i32 vector. */
@inline function blockSums4(p0: usize, p1: usize, p2: usize, p3: usize): v128 {
  let v = i32x4.splat(load<i32>(p0 + 4));
  v = i32x4.replace_lane(v, 1, load<i32>(p1 + 4));
  v = i32x4.replace_lane(v, 2, load<i32>(p2 + 4));
  v = i32x4.replace_lane(v, 3, load<i32>(p3 + 4));
  return i32x4.add(i32x4.shr_s(i32x4.shl(v, 16), 16), i32x4.shr_s(v, 16));
}

/** dot(u, x) over one Q8A block's 32 quants at xb: u0 = lanes 0..15, u1 = 16..31, unsigned < 128. */
@inline function dotU7x32(u0: v128, u1: v128, xb: usize): v128 {
  return dotU7(u1, v128.load(xb, 24), dotU7(u0, v128.load(xb, 8), i32x4.splat(0)));
}

/**
 * One row of a Q8A weight type (a compile-time constant after inlining) against four tokens of Q8A
 * activations (rows xqs bytes apart); outputs at out + t * os. Each block's weights are unpacked
 * once for the four tokens. Q8_0's signed quants are sign-extended to i16 (dotI16x32) in both
 * builds. The 4- and 5-bit types' unsigned quants go to relaxed SIMD's i8 x i7 dot where the build
 * has it, to the i16 dot otherwise (the same integers either way); their offsets (-8, -16) and
 * Q4_1 / Q5_1's min come from the tokens' block sums.
 */
@inline function dotQ8Ax4(type: i32, w: usize, xq: usize, xqs: usize, k: i32, out: usize, os: usize, bias: f32): void {
  let acc = f32x4.splat(0);
  let mins = f32x4.splat(0);
  const x1 = xq + xqs;
  const x2 = x1 + xqs;
  const x3 = x2 + xqs;
  const m4 = bytes(0x0f);
  const bs: usize = type == T_Q8_0 ? 34 : type == T_Q4_0 ? 18 : type == T_Q5_0 ? 22 : type == T_Q4_1 ? 20 : 24;
  for (let o: usize = 0, e = 0; e < k; e += 32, w += bs, o += 40) {
    const b0 = xq + o + 8;
    const b1 = x1 + o + 8;
    const b2 = x2 + o + 8;
    const b3 = x3 + o + 8;
    let s: v128;
    if (type == T_Q8_0) {
      const w0 = v128.load8x8_s(w, 2);
      const w1 = v128.load8x8_s(w, 10);
      const w2 = v128.load8x8_s(w, 18);
      const w3 = v128.load8x8_s(w, 26);
      s = hsum4I(dotI16x32(w0, w1, w2, w3, b0), dotI16x32(w0, w1, w2, w3, b1), dotI16x32(w0, w1, w2, w3, b2), dotI16x32(w0, w1, w2, w3, b3));
    } else {
      let lo: v128, hi: v128;
      if (type == T_Q4_0 || type == T_Q4_1) {
        const q = v128.load(w + (type == T_Q4_0 ? 2 : 4));
        lo = v128.and(q, m4);
        hi = hiNibbles(q);
      } else {
        const qh = load<u32>(w + (type == T_Q5_0 ? 2 : 4));
        const q = v128.load(w + (type == T_Q5_0 ? 6 : 8));
        lo = v128.or(v128.and(q, m4), q5HighBits(qh, false));
        hi = v128.or(hiNibbles(q), q5HighBits(qh, true));
      }
      if (RELAXED) {
        s = hsum4I(dotU7x32(lo, hi, b0 - 8), dotU7x32(lo, hi, b1 - 8), dotU7x32(lo, hi, b2 - 8), dotU7x32(lo, hi, b3 - 8));
      } else {
        const w0 = i16x8.extend_low_i8x16_u(lo);
        const w1 = i16x8.extend_high_i8x16_u(lo);
        const w2 = i16x8.extend_low_i8x16_u(hi);
        const w3 = i16x8.extend_high_i8x16_u(hi);
        s = hsum4I(dotI16x32(w0, w1, w2, w3, b0), dotI16x32(w0, w1, w2, w3, b1), dotI16x32(w0, w1, w2, w3, b2), dotI16x32(w0, w1, w2, w3, b3));
      }
    }
    const sums = type == T_Q8_0 ? i32x4.splat(0) : blockSums4(b0 - 8, b1 - 8, b2 - 8, b3 - 8);
    if (type == T_Q4_0) s = i32x4.sub(s, i32x4.shl(sums, 3));
    if (type == T_Q5_0) s = i32x4.sub(s, i32x4.shl(sums, 4));
    const dx = gather4(b0 - 8, b1 - 8, b2 - 8, b3 - 8);
    acc = madd(f32x4.convert_i32x4_s(s), f32x4.mul(dx, f32x4.splat(loadF16(w))), acc);
    if (type == T_Q4_1 || type == T_Q5_1) mins = madd(f32x4.convert_i32x4_s(sums), f32x4.mul(dx, f32x4.splat(loadF16(w + 2))), mins);
  }
  acc = f32x4.add(acc, mins);
  store<f32>(out, f32x4.extract_lane(acc, 0) + bias);
  store<f32>(out + os, f32x4.extract_lane(acc, 1) + bias);
  store<f32>(out + 2 * os, f32x4.extract_lane(acc, 2) + bias);
  store<f32>(out + 3 * os, f32x4.extract_lane(acc, 3) + bias);
}

// ---------------------------------------------------------------------------------------------
// Relaxed-SIMD prefill for Q8_0 / Q4_0 / Q5_0: four rows at a time are unpacked once into a
// row-interleaved layout ("packed"), then every group of four tokens runs over it. In the packed
// layout each i32 lane of a vector holds one row's four consecutive quants, so one relaxed i8 x i7
// dot against four activation bytes broadcast to every lane (`v128.load32_splat`) advances four
// rows at once, and the lanes of the sums are already the four rows: no horizontal sums, no
// per-token weight unpacking, and the float work per block is one convert and one fused
// multiply-add for four outputs. Per block of 32 (144 bytes; Q8_0 272):
//   Q4_0 / Q5_0: 8 vectors of unsigned quants (vector v: rows 0..3 x elements 4v..4v+3), then the
//                four rows' scales as f32x4. The -8 / -16 offsets come from the tokens' block sums.
//   Q8_0:        the signed quants flipped to unsigned (q + 128 = 16 h + l), 8 vectors of l, 8 of h,
//                then the scales: dot = dot(x, l) + 16 dot(x, h) - 128 sum(x), exact in integers.
// The integers and the float operations per output are those of `dotQ8Ax4`, so results are
// bitwise the same as the unpacked path's.

/**
 * The signed 8-bit types of the packed prefill (Q8_0's quants, IQ4_NL / IQ4_XS's levels): stored
 * + 128 as two planes of nibbles, since relaxed SIMD's i8 x i7 dot takes no byte above 127.
 */
@inline function twoPlanes(type: i32): bool {
  return type == T_Q8_0 || type == T_IQ4_NL || type == T_IQ4_XS;
}

/**
 * Bytes of one packed block of four rows: the signed types need two planes of nibbles, or one of
 * bytes where the unsigned-byte dot is exact (u8).
 */
@inline function packedBlockBytes(type: i32, u8: bool): usize {
  return twoPlanes(type) && !u8 ? 272 : 144;
}

/** Elements 0..15 (hi false) or 16..31 of block b of a Q8_0 / IQ4_NL / IQ4_XS row at w as signed bytes. */
@inline function signedHalf(type: i32, w: usize, b: i32, hi: bool): v128 {
  if (type == T_Q8_0) return v128.load(w + <usize>b * 34 + 2 + (hi ? 16 : 0));
  const q = v128.load(iq4Block32(w, b, type == T_IQ4_XS));
  return lookup16(iq4Levels(), hi ? hiNibbles(q) : v128.and(q, bytes(0x0f)));
}

/** Block b's f32 scale of a packed-prefill type's row at w. */
@inline function blockScale32(type: i32, w: usize, b: i32): f32 {
  if (type == T_IQ4_NL || type == T_IQ4_XS) return iq4Scale32(w, b, type == T_IQ4_XS);
  return loadF16(w + <usize>b * (type == T_Q8_0 ? 34 : type == T_Q4_0 ? 18 : 22));
}

/** Bytes `matmulQ8A`'s packed prefill needs in its scratch for rows of k elements of `type`. */
export function q8aPackBytes(type: i32, k: i32): usize {
  return <usize>(k >> 5) * packedBlockBytes(type, false);
}

/** [a.0 b.0 c.0 d.0], [a.1 b.1 ...], ...: a 4 x 4 transpose of i32 lanes, stored 16 bytes apart. */
@inline function storeTransposed(a: v128, b: v128, c: v128, d: v128, dst: usize): void {
  const ab0 = i32x4.shuffle(a, b, 0, 4, 1, 5);
  const ab1 = i32x4.shuffle(a, b, 2, 6, 3, 7);
  const cd0 = i32x4.shuffle(c, d, 0, 4, 1, 5);
  const cd1 = i32x4.shuffle(c, d, 2, 6, 3, 7);
  v128.store(dst, i64x2.shuffle(ab0, cd0, 0, 2));
  v128.store(dst, i64x2.shuffle(ab0, cd0, 1, 3), 16);
  v128.store(dst, i64x2.shuffle(ab1, cd1, 0, 2), 32);
  v128.store(dst, i64x2.shuffle(ab1, cd1, 1, 3), 48);
}

/** Elements 0..15 (hi false) or 16..31 of a Q4_0 / Q5_0 block as unsigned quants. */
@inline function unsignedHalf(type: i32, w: usize, hi: bool): v128 {
  const m4 = bytes(0x0f);
  if (type == T_Q4_0) {
    const q = v128.load(w + 2);
    return hi ? hiNibbles(q) : v128.and(q, m4);
  }
  const q = v128.load(w + 6);
  const qh = load<u32>(w + 2);
  return hi ? v128.or(hiNibbles(q), q5HighBits(qh, true)) : v128.or(v128.and(q, m4), q5HighBits(qh, false));
}

/** Rows r..r+3 (row bytes rb apart) of a Q8_0 / Q4_0 / Q5_0 / IQ4_NL / IQ4_XS matrix into the packed layout at dst. */
@inline function packRows4(type: i32, w: usize, rb: usize, nb: i32, dst: usize, u8: bool): void {
  const bs: usize = type == T_Q4_0 ? 18 : 22;
  const pb = packedBlockBytes(type, u8);
  const w1 = w + rb;
  const w2 = w1 + rb;
  const w3 = w2 + rb;
  for (let b = 0, o: usize = 0; b < nb; b++, o += bs, dst += pb) {
    if (twoPlanes(type) && u8) {
      const flip = bytes(-128);
      for (let half: usize = 0; half < 2; half++) {
        const hi = half == 1;
        storeTransposed(v128.xor(signedHalf(type, w, b, hi), flip), v128.xor(signedHalf(type, w1, b, hi), flip), v128.xor(signedHalf(type, w2, b, hi), flip), v128.xor(signedHalf(type, w3, b, hi), flip), dst + 64 * half);
      }
    } else if (twoPlanes(type)) {
      const flip = bytes(-128);
      const m4 = bytes(0x0f);
      for (let half: usize = 0; half < 2; half++) {
        const q0 = v128.xor(signedHalf(type, w, b, half == 1), flip);
        const q1 = v128.xor(signedHalf(type, w1, b, half == 1), flip);
        const q2 = v128.xor(signedHalf(type, w2, b, half == 1), flip);
        const q3 = v128.xor(signedHalf(type, w3, b, half == 1), flip);
        storeTransposed(v128.and(q0, m4), v128.and(q1, m4), v128.and(q2, m4), v128.and(q3, m4), dst + 64 * half);
        storeTransposed(hiNibbles(q0), hiNibbles(q1), hiNibbles(q2), hiNibbles(q3), dst + 128 + 64 * half);
      }
    } else {
      storeTransposed(unsignedHalf(type, w + o, false), unsignedHalf(type, w1 + o, false), unsignedHalf(type, w2 + o, false), unsignedHalf(type, w3 + o, false), dst);
      storeTransposed(unsignedHalf(type, w + o, true), unsignedHalf(type, w1 + o, true), unsignedHalf(type, w2 + o, true), unsignedHalf(type, w3 + o, true), dst + 64);
    }
    let d = f32x4.splat(blockScale32(type, w, b));
    d = f32x4.replace_lane(d, 1, blockScale32(type, w1, b));
    d = f32x4.replace_lane(d, 2, blockScale32(type, w2, b));
    d = f32x4.replace_lane(d, 3, blockScale32(type, w3, b));
    v128.store(dst + pb - 16, d);
  }
}

/** Pair sums of 16 unsigned quants w (< 128) times 16 activation bytes x, as i16x8 (pmaddubsw). */
@inline function pairDot(x: v128, w: v128): v128 {
  if (RELAXED) return i16x8.relaxed_dot_i8x16_i7x16_s(x, w);
  // Plain SIMD (the packed kernels are not run there, but the module must compile): the same
  // pair sums from the even and odd bytes widened to i16.
  const m = words(0xff);
  const even = i16x8.mul(i16x8.shr_s(i16x8.shl(x, 8), 8), v128.and(w, m));
  return i16x8.add(even, i16x8.mul(i16x8.shr_s(x, 8), i16x8.shr_u(w, 8)));
}

/**
 * One token's dot of 4 packed vectors at p (elements 16 apart per row: 16 per row) against the 16
 * activation bytes at xb, as i16 pair sums: each pair <= 2 * 31 * 127, so four still fit in i16.
 */
@inline function packedDot16(p: usize, xb: usize): v128 {
  return i16x8.add(
    i16x8.add(pairDot(v128.load32_splat(xb), v128.load(p)), pairDot(v128.load32_splat(xb, 4), v128.load(p, 16))),
    i16x8.add(pairDot(v128.load32_splat(xb, 8), v128.load(p, 32)), pairDot(v128.load32_splat(xb, 12), v128.load(p, 48))),
  );
}

/**
 * A 32-block's integer dot for one token (its two i16 half sums at hs, its 32 quants at xs: a Q8A
 * block's at +4 and +8, or a Q8K block's share) against the packed block at p, offsets applied:
 * four rows' sums. The i16 pair sums widen to i32 with one `i32x4.dot_i16x8_s` per half (which
 * also applies the two-plane types' 16 for the high nibbles).
 */
@inline function packedBlockSum(type: i32, p: usize, hs: usize, xs: usize): v128 {
  // The block's two i16 half sums in every lane; one i16 dot with `m` adds them times m.
  const sums = v128.load32_splat(hs);
  const one = words(1);
  if (twoPlanes(type)) {
    // Nibbles <= 15: eight pair sums of one plane fit in i16.
    const lo = i16x8.add(packedDot16(p, xs), packedDot16(p + 64, xs + 16));
    const hi = i16x8.add(packedDot16(p + 128, xs), packedDot16(p + 192, xs + 16));
    return i32x4.sub(i32x4.add(i32x4.dot_i16x8_s(lo, one), i32x4.dot_i16x8_s(hi, words(16))), i32x4.dot_i16x8_s(sums, words(128)));
  }
  const s = i32x4.add(i32x4.dot_i16x8_s(packedDot16(p, xs), one), i32x4.dot_i16x8_s(packedDot16(p + 64, xs + 16), one));
  return i32x4.sub(s, i32x4.dot_i16x8_s(sums, words(type == T_Q4_0 ? 8 : 16)));
}

/**
 * Four packed rows against four tokens of Q8A activations (rows xqs bytes apart): y rows
 * out, out + os, ... get the four rows' outputs (plus bias4) as one vector each.
 */
@inline function packedTile(type: i32, p: usize, nb: i32, xq: usize, xqs: usize, out: usize, os: usize, bias4: v128, u8: bool): void {
  const pb = packedBlockBytes(type, u8);
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  const x1 = xq + xqs;
  const x2 = x1 + xqs;
  const x3 = x2 + xqs;
  // IQ4_XS runs on Q8K activations (as its decode), the others on Q8A: block b's activation scale
  // at o, its two half sums at hs, its quants at xs.
  const q8k = type == T_IQ4_XS;
  for (let b = 0; b < nb; b++, p += pb) {
    const o: usize = q8k ? 292 * <usize>(b >> 3) : 40 * <usize>b;
    const hs: usize = q8k ? o + 4 + 4 * <usize>(b & 7) : o + 4;
    const xs: usize = q8k ? o + 36 + 32 * <usize>(b & 7) : o + 8;
    const d = v128.load(p + pb - 16);
    if (twoPlanes(type) && u8) {
      // One plane of quants + 128 (vector j: the rows' elements 4j..4j+3), each vector loaded once
      // for the four tokens; then less 128 times the block's sum (its two half sums, one i16 dot).
      let s0 = i32x4.splat(0);
      let s1 = i32x4.splat(0);
      let s2 = i32x4.splat(0);
      let s3 = i32x4.splat(0);
      for (let j: usize = 0; j < 32; j += 4) {
        const wj = v128.load(p + 4 * j);
        s0 = dotU8Add(v128.load32_splat(xq + xs + j), wj, s0);
        s1 = dotU8Add(v128.load32_splat(x1 + xs + j), wj, s1);
        s2 = dotU8Add(v128.load32_splat(x2 + xs + j), wj, s2);
        s3 = dotU8Add(v128.load32_splat(x3 + xs + j), wj, s3);
      }
      const m = words(128);
      a0 = madd(f32x4.convert_i32x4_s(i32x4.sub(s0, i32x4.dot_i16x8_s(v128.load32_splat(xq + hs), m))), f32x4.mul(v128.load32_splat(xq + o), d), a0);
      a1 = madd(f32x4.convert_i32x4_s(i32x4.sub(s1, i32x4.dot_i16x8_s(v128.load32_splat(x1 + hs), m))), f32x4.mul(v128.load32_splat(x1 + o), d), a1);
      a2 = madd(f32x4.convert_i32x4_s(i32x4.sub(s2, i32x4.dot_i16x8_s(v128.load32_splat(x2 + hs), m))), f32x4.mul(v128.load32_splat(x2 + o), d), a2);
      a3 = madd(f32x4.convert_i32x4_s(i32x4.sub(s3, i32x4.dot_i16x8_s(v128.load32_splat(x3 + hs), m))), f32x4.mul(v128.load32_splat(x3 + o), d), a3);
      continue;
    }
    a0 = madd(f32x4.convert_i32x4_s(packedBlockSum(type, p, xq + hs, xq + xs)), f32x4.mul(v128.load32_splat(xq + o), d), a0);
    a1 = madd(f32x4.convert_i32x4_s(packedBlockSum(type, p, x1 + hs, x1 + xs)), f32x4.mul(v128.load32_splat(x1 + o), d), a1);
    a2 = madd(f32x4.convert_i32x4_s(packedBlockSum(type, p, x2 + hs, x2 + xs)), f32x4.mul(v128.load32_splat(x2 + o), d), a2);
    a3 = madd(f32x4.convert_i32x4_s(packedBlockSum(type, p, x3 + hs, x3 + xs)), f32x4.mul(v128.load32_splat(x3 + o), d), a3);
  }
  storeTile(a0, a1, a2, a3, bias4, out, os);
}

/** The four rows' outputs of four tokens (a0..a3, one vector per token) plus bias4, to out + t * os. */
@inline function storeTile(a0: v128, a1: v128, a2: v128, a3: v128, bias4: v128, out: usize, os: usize): void {
  v128.store(out, f32x4.add(a0, bias4));
  v128.store(out + os, f32x4.add(a1, bias4));
  v128.store(out + 2 * os, f32x4.add(a2, bias4));
  v128.store(out + 3 * os, f32x4.add(a3, bias4));
}

/**
 * The packed prefill over rows [rowStart, rowEnd) (whole groups of four) and the first `tiled`
 * tokens: each group of four rows is packed into scratch once (packRows4 for the 32-blocks,
 * packRowsK for the K-quants), then swept by every group of four tokens. `u8`: the unsigned-byte
 * dot is exact here (`unsignedDotOn`), so the tiles take its forms.
 */
@inline function packedRows(type: i32, w: usize, rb: usize, k: i32, xq: usize, xqs: usize, y: usize, ys: usize, tiled: i32, bias: usize, rowStart: i32, rowEnd: i32, scratch: usize, u8: bool): void {
  const kQuant = type == T_Q4_K || type == T_Q5_K || type == T_Q6_K || type == T_Q3_K || type == T_Q2_K;
  const nb = kQuant ? k >> 8 : k >> 5;
  for (let r = rowStart; r < rowEnd; r += 4) {
    if (kQuant) packRowsK(type, w + <usize>r * rb, rb, nb, scratch);
    else packRows4(type, w + <usize>r * rb, rb, nb, scratch, u8);
    const bias4 = bias ? v128.load(bias + (<usize>r << 2)) : f32x4.splat(0);
    for (let t = 0; t < tiled; t += 4) {
      const out = y + <usize>t * ys + (<usize>r << 2);
      tileOf(type, u8, scratch, nb, xq + <usize>t * xqs, xqs, out, ys, bias4);
    }
  }
}

// Each packed tile in a function of its own (the callers pass the type as a literal, so tileOf
// folds to one call): inlined into the large matmul functions, the same tile's speed moved with
// whatever else the caller held (Q4_0's 99 -> 71 GFLOP/s from a change elsewhere in matmulQ8A).
// Each function holds both forms of its type; the flag picks one per tile, outside its loops.
// binaryen still inlines a function with one call site, whatever its size: tileQ4_K and tileIQ4_NL
// end up inside their callers. Kept apart (Q4_K with Q5_K, IQ4_NL with IQ4_XS in shared functions
// of two call sites) they ran 0.95-1.00x, so they stay as they are.
function tileQ8_0(u8: bool, p: usize, nb: i32, xq: usize, xqs: usize, out: usize, os: usize, bias4: v128): void {
  if (u8) packedTile(T_Q8_0, p, nb, xq, xqs, out, os, bias4, true);
  else packedTile(T_Q8_0, p, nb, xq, xqs, out, os, bias4, false);
}
function tileQ4_0(p: usize, nb: i32, xq: usize, xqs: usize, out: usize, os: usize, bias4: v128): void {
  packedTile(T_Q4_0, p, nb, xq, xqs, out, os, bias4, false);
}
function tileQ5_0(p: usize, nb: i32, xq: usize, xqs: usize, out: usize, os: usize, bias4: v128): void {
  packedTile(T_Q5_0, p, nb, xq, xqs, out, os, bias4, false);
}
function tileIQ4_NL(u8: bool, p: usize, nb: i32, xq: usize, xqs: usize, out: usize, os: usize, bias4: v128): void {
  if (u8) packedTile(T_IQ4_NL, p, nb, xq, xqs, out, os, bias4, true);
  else packedTile(T_IQ4_NL, p, nb, xq, xqs, out, os, bias4, false);
}
function tileIQ4_XS(u8: bool, p: usize, nb: i32, xq: usize, xqs: usize, out: usize, os: usize, bias4: v128): void {
  if (u8) packedTile(T_IQ4_XS, p, nb, xq, xqs, out, os, bias4, true);
  else packedTile(T_IQ4_XS, p, nb, xq, xqs, out, os, bias4, false);
}
function tileQ4_K(u8: bool, p: usize, nb: i32, xq: usize, xqs: usize, out: usize, os: usize, bias4: v128): void {
  if (u8) packedKTile(T_Q4_K, p, nb, xq, xqs, out, os, bias4, true);
  else packedKTile(T_Q4_K, p, nb, xq, xqs, out, os, bias4, false);
}
function tileQ5_K(u8: bool, p: usize, nb: i32, xq: usize, xqs: usize, out: usize, os: usize, bias4: v128): void {
  if (u8) packedKTile(T_Q5_K, p, nb, xq, xqs, out, os, bias4, true);
  else packedKTile(T_Q5_K, p, nb, xq, xqs, out, os, bias4, false);
}
function tileQ6_K(u8: bool, p: usize, nb: i32, xq: usize, xqs: usize, out: usize, os: usize, bias4: v128): void {
  if (u8) packedKTile(T_Q6_K, p, nb, xq, xqs, out, os, bias4, true);
  else packedKTile(T_Q6_K, p, nb, xq, xqs, out, os, bias4, false);
}
function tileQ3_K(u8: bool, p: usize, nb: i32, xq: usize, xqs: usize, out: usize, os: usize, bias4: v128): void {
  if (u8) packedKTile(T_Q3_K, p, nb, xq, xqs, out, os, bias4, true);
  else packedKTile(T_Q3_K, p, nb, xq, xqs, out, os, bias4, false);
}
function tileQ2_K(u8: bool, p: usize, nb: i32, xq: usize, xqs: usize, out: usize, os: usize, bias4: v128): void {
  if (u8) packedKTile(T_Q2_K, p, nb, xq, xqs, out, os, bias4, true);
  else packedKTile(T_Q2_K, p, nb, xq, xqs, out, os, bias4, false);
}

/** One packed tile (four rows by four tokens) of `type` (a literal at every call), in the form `u8` says. */
@inline function tileOf(type: i32, u8: bool, p: usize, nb: i32, xq: usize, xqs: usize, out: usize, os: usize, bias4: v128): void {
  switch (type) {
    case T_Q8_0: tileQ8_0(u8, p, nb, xq, xqs, out, os, bias4); break;
    case T_Q4_0: tileQ4_0(p, nb, xq, xqs, out, os, bias4); break;
    case T_Q5_0: tileQ5_0(p, nb, xq, xqs, out, os, bias4); break;
    case T_IQ4_NL: tileIQ4_NL(u8, p, nb, xq, xqs, out, os, bias4); break;
    case T_IQ4_XS: tileIQ4_XS(u8, p, nb, xq, xqs, out, os, bias4); break;
    case T_Q4_K: tileQ4_K(u8, p, nb, xq, xqs, out, os, bias4); break;
    case T_Q5_K: tileQ5_K(u8, p, nb, xq, xqs, out, os, bias4); break;
    case T_Q6_K: tileQ6_K(u8, p, nb, xq, xqs, out, os, bias4); break;
    case T_Q3_K: tileQ3_K(u8, p, nb, xq, xqs, out, os, bias4); break;
    default: tileQ2_K(u8, p, nb, xq, xqs, out, os, bias4);
  }
}

/** Rows per block of the tiled loops: their weights stay in L2 while every token group passes. */
const ROW_BLOCK: i32 = 16;

/**
 * matmulQ8A's Q8_0 tokens past the tiles (decode), relaxed build: each token split once into the
 * scratch (free again after the packed prefill); rows in storage order, one stream the prefetcher
 * follows. A function of its own: inside matmulQ8A its speed moved with the rest of that function.
 */
function splitDecodeQ8_0(w: usize, rb: usize, k: i32, xq: usize, xqs: usize, y: usize, ys: usize, tiled: i32, tokens: i32, bias: usize, rowStart: i32, rowEnd: i32, scratch: usize): void {
  for (let t = tiled; t < tokens; t++) {
    const xt = xq + <usize>t * xqs;
    splitSignedQ8A(xt, k >> 5, scratch);
    for (let r = rowStart; r < rowEnd; r++) {
      const b0: f32 = bias ? load<f32>(bias + (<usize>r << 2)) : 0;
      store<f32>(y + <usize>t * ys + (<usize>r << 2), dotQ8_0Split(w + <usize>r * rb, scratch, xt, k) + b0);
    }
  }
}

/** True for the weight types `matmulQ8A` handles. */
export function q8aSupports(type: i32): i32 {
  return type == T_Q8_0 || type == T_Q4_0 || type == T_Q4_1 || type == T_Q5_0 || type == T_Q5_1 ||
    type == T_Q4_K || type == T_Q5_K || type == T_Q6_K || type == T_IQ4_NL ? 1 : 0;
}

/**
 * `matmul` on quantized activations (quantizeQ8A's output, `tokens` rows of k / 32 blocks):
 * integer dot products per block, f32 accumulation across blocks.
 */
export function matmulQ8A(
  type: i32, w: usize, k: i32, xq: usize, y: usize, yStride: i32,
  tokens: i32, bias: usize, rowStart: i32, rowEnd: i32, scratch: usize,
): void {
  const rb = rowBytes(type, k);
  const xqs = <usize>(k >> 5) * 40;
  const ys = <usize>yStride << 2;
  // Tiled prefill (the 32-blocks; the K-quants take matmulQ8K): each block of rows is swept by
  // every group of four tokens. IQ4_NL has packed tiles only (relaxed SIMD, a scratch).
  const packs = RELAXED && scratch != 0 && (type == T_Q8_0 || type == T_Q4_0 || type == T_Q5_0 || type == T_IQ4_NL);
  const tiled = type == T_Q4_K || type == T_Q5_K || type == T_Q6_K || (type == T_IQ4_NL && !packs) ? 0 : tokens & ~3;
  let tiledFrom = rowStart;
  if (packs && tiled) {
    // Packed four-row groups; rows past the last whole group take the loop below.
    tiledFrom = rowStart + ((rowEnd - rowStart) & ~3);
    switch (type) {
      case T_Q8_0: packedRows(T_Q8_0, w, rb, k, xq, xqs, y, ys, tiled, bias, rowStart, tiledFrom, scratch, unsignedDotOn()); break;
      case T_Q4_0: packedRows(T_Q4_0, w, rb, k, xq, xqs, y, ys, tiled, bias, rowStart, tiledFrom, scratch, false); break;
      case T_Q5_0: packedRows(T_Q5_0, w, rb, k, xq, xqs, y, ys, tiled, bias, rowStart, tiledFrom, scratch, false); break;
      default: packedRows(T_IQ4_NL, w, rb, k, xq, xqs, y, ys, tiled, bias, rowStart, tiledFrom, scratch, unsignedDotOn());
    }
  }
  if (tiled) {
    for (let r0 = tiledFrom; r0 < rowEnd; r0 += ROW_BLOCK) {
      const r1 = min(r0 + ROW_BLOCK, rowEnd);
      for (let t = 0; t < tiled; t += 4) {
        const xt = xq + <usize>t * xqs;
        for (let r = r0; r < r1; r++) {
          const b0: f32 = bias ? load<f32>(bias + (<usize>r << 2)) : 0;
          const wr = w + <usize>r * rb;
          const o = y + <usize>t * ys + (<usize>r << 2);
          switch (type) {
            case T_Q8_0: dotQ8Ax4(T_Q8_0, wr, xt, xqs, k, o, ys, b0); break;
            case T_Q4_0: dotQ8Ax4(T_Q4_0, wr, xt, xqs, k, o, ys, b0); break;
            case T_Q5_0: dotQ8Ax4(T_Q5_0, wr, xt, xqs, k, o, ys, b0); break;
            case T_Q4_1: dotQ8Ax4(T_Q4_1, wr, xt, xqs, k, o, ys, b0); break;
            case T_Q5_1: dotQ8Ax4(T_Q5_1, wr, xt, xqs, k, o, ys, b0); break;
            case T_IQ4_NL: for (let i: usize = 0; i < 4; i++) store<f32>(o + i * ys, dotIQ4_NL(wr, xt + i * xqs, k) + b0); break;
            default: unreachable();
          }
        }
      }
    }
  }
  if (RELAXED && scratch && type == T_Q8_0) {
    splitDecodeQ8_0(w, rb, k, xq, xqs, y, ys, tiled, tokens, bias, rowStart, rowEnd, scratch);
    return;
  }
  const iq4U8 = type == T_IQ4_NL && unsignedDotOn();
  for (let r = rowStart; r < rowEnd; r++) {
    const wr = w + <usize>r * rb;
    const b0: f32 = bias ? load<f32>(bias + (<usize>r << 2)) : 0;
    for (let t = tiled; t < tokens; t++) {
      const xt = xq + <usize>t * xqs;
      let s: f32 = 0;
      switch (type) {
        case T_Q8_0: s = dotQ8_0(wr, xt, k); break;
        case T_Q4_0: s = dotQ4_0(wr, xt, k); break;
        case T_Q4_1: s = dotQx_1(wr, xt, k, false); break;
        case T_Q5_0: s = dotQ5_0(wr, xt, k); break;
        case T_Q5_1: s = dotQx_1(wr, xt, k, true); break;
        case T_Q4_K: s = dotK45(wr, xt, k, false); break;
        case T_Q5_K: s = dotK45(wr, xt, k, true); break;
        case T_Q6_K: s = dotQ6_K(wr, xt, k); break;
        case T_IQ4_NL: s = iq4U8 ? dotIQ4_NLU8(wr, xt, k) : dotIQ4_NL(wr, xt, k); break;
        default: unreachable();
      }
      store<f32>(y + <usize>t * ys + (<usize>r << 2), s + b0);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Q8K activations for the K-quants, llama.cpp's Q8_K layout in spirit: one scale per 256 values
// ("Q8K", 292 bytes): f32 d; i16 sums of q per 16 (16 of them); i8 q[256]. One activation scale
// per super-block lets the integer sub-block scales multiply integer dots, and the float work
// happens once per 256 values instead of once per 32; the price is a coarser activation scale.

export const Q8K_BLOCK_BYTES: i32 = 292;

/** Quantizes rows [rowStart, rowEnd) of x (k floats each, k % 256 == 0) into Q8K at dst. */
export function quantizeQ8K(x: usize, xStride: i32, dst: usize, k: i32, rowStart: i32, rowEnd: i32): void {
  const rowQ = <usize>(k >> 8) * 292;
  for (let r = rowStart; r < rowEnd; r++) {
    let xp = x + (<usize>r * <usize>xStride << 2);
    let o = dst + <usize>r * rowQ;
    for (let b = 0; b < k; b += 256, xp += 1024, o += 292) {
      let m = f32x4.splat(0);
      for (let i = 0; i < 64; i++) m = f32x4.max(m, f32x4.abs(v128.load(xp + (<usize>i << 4))));
      const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
      const d: f32 = amax / 127;
      const id = f32x4.splat(d != 0 ? 1 / d : 0);
      store<f32>(o, d);
      for (let g = 0; g < 16; g++) {
        const p = xp + (<usize>g << 6);
        const i0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p), id)));
        const i1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 16), id)));
        const i2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 32), id)));
        const i3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 48), id)));
        v128.store(o + 36 + (<usize>g << 4), i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(i0, i1), i16x8.narrow_i32x4_s(i2, i3)));
        store<i16>(o + 4 + (<usize>g << 1), <i16>hsumI(i32x4.add(i32x4.add(i0, i1), i32x4.add(i2, i3))));
      }
    }
  }
}

/**
 * The 8 six-bit scales and 8 mins of a Q4_K/Q5_K block (12 bytes at s) as four u32 of 4 bytes:
 * llama.cpp's kmask unpacking, branch-free. Decoding them one by one (scaleK4/minK4) cost a
 * quarter of the decode matvec's time.
 */
@inline function k4ScalesLo(u0: u32): u32 {
  return u0 & 0x3f3f3f3f; // scales 0..3
}
@inline function k4ScalesHi(u0: u32, u2: u32): u32 {
  return (u2 & 0x0f0f0f0f) | (((u0 >> 6) & 0x03030303) << 4); // scales 4..7
}
@inline function k4Mins(u0: u32, u1: u32, u2: u32): v128 {
  const lo = u1 & 0x3f3f3f3f; // mins 0..3
  const hi = ((u2 >> 4) & 0x0f0f0f0f) | (((u1 >> 6) & 0x03030303) << 4); // mins 4..7
  return i64x2.replace_lane(i64x2.splat(0), 0, (<i64>hi << 32) | <i64>lo);
}

/** k4MinDot's gathers: mins 0..3, then 4..7, each twice as the low byte of an i16 lane. */
const MIN_PAIR_INDICES = memory.data<u8>([
  0, 0x80, 0, 0x80, 1, 0x80, 1, 0x80, 2, 0x80, 2, 0x80, 3, 0x80, 3, 0x80,
  4, 0x80, 4, 0x80, 5, 0x80, 5, 0x80, 6, 0x80, 6, 0x80, 7, 0x80, 7, 0x80,
]);
/**
 * sum_j min_j * (bsum[2j] + bsum[2j + 1]) in the lanes of an i32x4: the 8 mins (bytes of `mins`)
 * widened to 16 i16 lanes, each twice, against the Q8K block's 16 sums per 16 (< 2^17 a lane).
 */
@inline function k4MinDot(mins: v128, xb: usize): v128 {
  const m0 = zeroSwizzle(mins, v128.load(MIN_PAIR_INDICES));
  const m1 = zeroSwizzle(mins, v128.load(MIN_PAIR_INDICES, 16));
  return i32x4.add(i32x4.dot_i16x8_s(m0, v128.load(xb + 4)), i32x4.dot_i16x8_s(m1, v128.load(xb + 20)));
}

/**
 * Q4_K (q5 = false) / Q5_K (q5 = true) row dot on Q8K activations. hi16 (Q4_K where the
 * unsigned-byte dot is exact): the high nibbles stay in place (q & 0xf0, 16 times their value; no
 * shift), the low nibbles' scales are taken 16 times to match, and the block's float scale is
 * divided by 16. Every integer is exactly 16 times the other form's and 16 is a power of two, so
 * the result is bitwise the same.
 */
@inline function dotK45Q8K(w: usize, xq: usize, k: i32, q5: bool, hi16: bool = false): f32 {
  let acc = f32x4.splat(0);
  let offs = f32x4.splat(0);
  const bs: usize = q5 ? 176 : 144;
  for (let b = 0; b < k; b += 256, w += bs, xq += 292) {
    const u0 = load<u32>(w + 4);
    const u1 = load<u32>(w + 8);
    const u2 = load<u32>(w + 12);
    const xs = xq + 36;
    // Lanes stay below 8 * 63 * 32 * 31 * 127: < 2^26.
    let isum = k45Quad(w, xs, 0, q5, k4ScalesLo(u0), hi16);
    isum = i32x4.add(isum, k45Quad(w, xs, 1, q5, k4ScalesHi(u0, u2), hi16));
    const dx = load<f32>(xq);
    acc = madd(f32x4.convert_i32x4_s(isum), f32x4.splat(hi16 ? loadF16(w) * dx * 0.0625 : loadF16(w) * dx), acc);
    offs = madd(f32x4.convert_i32x4_s(k4MinDot(k4Mins(u0, u1, u2), xq)), f32x4.splat(loadF16(w + 2) * dx), offs);
  }
  return hsum(acc) - hsum(offs);
}

/**
 * Sub-blocks 4h .. 4h + 3 of a Q4_K / Q5_K (q5) block at w (the 64-element chunks 2h, 2h + 1: low
 * nibbles one sub-block, high nibbles the next) against the Q8K quants at xs, times their scales
 * (the bytes of sc). Relaxed SIMD: the four dots gathered by hsum4I and scaled by one multiply
 * (1.2x the multiply per sub-block in Chromium); plain SIMD: each sub-block's four products per i16
 * lane scaled by one i16 dot (dotU5x32Scaled), 0.89x if it took the relaxed build's way.
 */
/** i16 multipliers [16, 1] repeated: k45Quad's scales for low / high nibbles in the hi16 form. */
const LOW_NIBBLE_SCALE = memory.data<u16>([16, 1]);
@inline function k45Quad(w: usize, xs: usize, h: i32, q5: bool, sc: u32, hi16: bool): v128 {
  const qs = w + (q5 ? 48 : 16) + 64 * <usize>h;
  const m4 = bytes(0x0f);
  const z = i32x4.splat(0);
  const x = xs + 128 * <usize>h;
  const a0 = v128.load(qs);
  const a1 = v128.load(qs + 16);
  const b0 = v128.load(qs + 32);
  const b1 = v128.load(qs + 48);
  let la0 = v128.and(a0, m4);
  let la1 = v128.and(a1, m4);
  let ha0 = hi16 ? v128.and(a0, bytes(0xf0)) : hiNibbles(a0);
  let ha1 = hi16 ? v128.and(a1, bytes(0xf0)) : hiNibbles(a1);
  let lb0 = v128.and(b0, m4);
  let lb1 = v128.and(b1, m4);
  let hb0 = hi16 ? v128.and(b0, bytes(0xf0)) : hiNibbles(b0);
  let hb1 = hi16 ? v128.and(b1, bytes(0xf0)) : hiNibbles(b1);
  if (q5) {
    const qh0 = v128.load(w + 16);
    const qh1 = v128.load(w + 32);
    const j = 4 * h;
    la0 = v128.or(la0, bit5(qh0, j));
    la1 = v128.or(la1, bit5(qh1, j));
    ha0 = v128.or(ha0, bit5(qh0, j + 1));
    ha1 = v128.or(ha1, bit5(qh1, j + 1));
    lb0 = v128.or(lb0, bit5(qh0, j + 2));
    lb1 = v128.or(lb1, bit5(qh1, j + 2));
    hb0 = v128.or(hb0, bit5(qh0, j + 3));
    hb1 = v128.or(hb1, bit5(qh1, j + 3));
  }
  if (!RELAXED) {
    let s = dotU5x32Scaled(la0, v128.load(x), la1, v128.load(x, 16), <i32>(sc & 0xff), z);
    s = dotU5x32Scaled(ha0, v128.load(x, 32), ha1, v128.load(x, 48), <i32>((sc >> 8) & 0xff), s);
    s = dotU5x32Scaled(lb0, v128.load(x, 64), lb1, v128.load(x, 80), <i32>((sc >> 16) & 0xff), s);
    return dotU5x32Scaled(hb0, v128.load(x, 96), hb1, v128.load(x, 112), <i32>(sc >> 24), s);
  }
  const d0 = dotU7(la1, v128.load(x, 16), dotU7(la0, v128.load(x), z));
  const d2 = dotU7(lb1, v128.load(x, 80), dotU7(lb0, v128.load(x, 64), z));
  if (hi16) {
    const d1 = dotU8Add(v128.load(x, 48), ha1, dotU8Add(v128.load(x, 32), ha0, z));
    const d3 = dotU8Add(v128.load(x, 112), hb1, dotU8Add(v128.load(x, 96), hb0, z));
    // Lanes 0, 2 (low nibbles) take 16 times their scales.
    const scales16 = i16x8.mul(i16x8.extend_low_i8x16_u(i32x4.splat(sc)), v128.load32_splat(LOW_NIBBLE_SCALE));
    return i32x4.mul(hsum4I(d0, d1, d2, d3), i32x4.extend_low_i16x8_u(scales16));
  }
  const d1 = dotU7(ha1, v128.load(x, 48), dotU7(ha0, v128.load(x, 32), z));
  const d3 = dotU7(hb1, v128.load(x, 112), dotU7(hb0, v128.load(x, 96), z));
  const scales = i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(i32x4.splat(sc)));
  return i32x4.mul(hsum4I(d0, d1, d2, d3), scales);
}

/**
 * Half h of a Q6_K super-block at w (sub-blocks 8h .. 8h + 7 of 16) against the Q8K quants at xs,
 * times their scales (scA: sub-blocks 8h .. 8h + 3 as i32 lanes, scB: the next four): each four
 * sub-blocks' dots gathered by hsum4I and scaled by one multiply (as k45Quad; relaxed SIMD only).
 */
@inline function q6Half(w: usize, xs: usize, h: i32, scA: v128, scB: v128): v128 {
  const q = w + 64 * <usize>h;
  const qlA0 = v128.load(q);
  const qlA1 = v128.load(q, 16);
  const qlB0 = v128.load(q, 32);
  const qlB1 = v128.load(q, 48);
  const qh0 = v128.load(w + 128 + 32 * <usize>h);
  const qh1 = v128.load(w + 144 + 32 * <usize>h);
  const z = i32x4.splat(0);
  // Group g: elements 32g .. 32g + 15 are sub-block 8h + 2g, the next 16 sub-block 8h + 2g + 1.
  const d0 = dotU7(q6Lanes(qlA0, qlB0, qh0, 0), v128.load(xs), z);
  const d1 = dotU7(q6Lanes(qlA1, qlB1, qh1, 0), v128.load(xs, 16), z);
  const d2 = dotU7(q6Lanes(qlA0, qlB0, qh0, 1), v128.load(xs, 32), z);
  const d3 = dotU7(q6Lanes(qlA1, qlB1, qh1, 1), v128.load(xs, 48), z);
  const d4 = dotU7(q6Lanes(qlA0, qlB0, qh0, 2), v128.load(xs, 64), z);
  const d5 = dotU7(q6Lanes(qlA1, qlB1, qh1, 2), v128.load(xs, 80), z);
  const d6 = dotU7(q6Lanes(qlA0, qlB0, qh0, 3), v128.load(xs, 96), z);
  const d7 = dotU7(q6Lanes(qlA1, qlB1, qh1, 3), v128.load(xs, 112), z);
  // A sub-block's dot <= 16 * 63 * 127, times |scale| <= 128: the half's lanes stay below 2^25.
  return i32x4.add(i32x4.mul(hsum4I(d0, d1, d2, d3), scA), i32x4.mul(hsum4I(d4, d5, d6, d7), scB));
}

function dotQ6_KQ8K(w: usize, xq: usize, k: i32): f32 {
  let acc = f32x4.splat(0);
  for (let b = 0; b < k; b += 256, w += 210, xq += 292) {
    let isum = i32x4.splat(0);
    if (RELAXED) {
      const sc = v128.load(w + 192);
      const lo = i16x8.extend_low_i8x16_s(sc);
      const hi = i16x8.extend_high_i8x16_s(sc);
      isum = i32x4.add(
        q6Half(w, xq + 36, 0, i32x4.extend_low_i16x8_s(lo), i32x4.extend_high_i16x8_s(lo)),
        q6Half(w, xq + 164, 1, i32x4.extend_low_i16x8_s(hi), i32x4.extend_high_i16x8_s(hi)),
      );
    } else {
      for (let h = 0; h < 2; h++) {
        const qlA0 = v128.load(w + 64 * h);
        const qlA1 = v128.load(w + 64 * h + 16);
        const qlB0 = v128.load(w + 64 * h + 32);
        const qlB1 = v128.load(w + 64 * h + 48);
        const qh0 = v128.load(w + 128 + 32 * h);
        const qh1 = v128.load(w + 128 + 32 * h + 16);
        const xs = xq + 36 + 128 * h;
        isum = q6GroupK(w, xs, q6Lanes(qlA0, qlB0, qh0, 0), q6Lanes(qlA1, qlB1, qh1, 0), 8 * h, isum);
        isum = q6GroupK(w, xs + 32, q6Lanes(qlA0, qlB0, qh0, 1), q6Lanes(qlA1, qlB1, qh1, 1), 8 * h + 2, isum);
        isum = q6GroupK(w, xs + 64, q6Lanes(qlA0, qlB0, qh0, 2), q6Lanes(qlA1, qlB1, qh1, 2), 8 * h + 4, isum);
        isum = q6GroupK(w, xs + 96, q6Lanes(qlA0, qlB0, qh0, 3), q6Lanes(qlA1, qlB1, qh1, 3), 8 * h + 6, isum);
      }
    }
    // The -32 offset: 32 * sum_s sc_s * bsum_s, with one i16 dot over the 16 sub-blocks.
    isum = i32x4.sub(isum, q6Offset(w, xq));
    acc = madd(f32x4.convert_i32x4_s(isum), f32x4.splat(loadF16(w + 208) * load<f32>(xq)), acc);
  }
  return hsum(acc);
}

/**
 * Q3_K's 16 six-bit scales less 32 (the 12 scale bytes at s) as i8 lanes, sub-block order: low
 * nibbles of bytes 0..7 then their high nibbles, plus bits 2j..2j+1 of bytes 8..11 (byte 8 + s % 4
 * for sub-block s, j = s / 4) as bits 4..5, each group of four lanes shifted by its own amount.
 */
@inline function q3Scales(s: usize): v128 {
  const m4 = bytes(0x0f);
  const m30 = bytes(0x30);
  const v = v128.load64_zero(s);
  const low = i8x16.shuffle(v128.and(v, m4), hiNibbles(v), 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  // Bytes 8..11 in every group of four lanes; 16-bit shifts, masked to the byte's own bits 4..5.
  const hb = i32x4.splat(load<u32>(s + 8));
  const g01 = i8x16.shuffle(v128.and(i16x8.shl(hb, 4), m30), v128.and(i16x8.shl(hb, 2), m30), 0, 1, 2, 3, 20, 21, 22, 23, 0, 0, 0, 0, 0, 0, 0, 0);
  const g23 = i8x16.shuffle(v128.and(hb, m30), v128.and(i16x8.shr_u(hb, 2), m30), 8, 9, 10, 11, 28, 29, 30, 31, 0, 0, 0, 0, 0, 0, 0, 0);
  const high = i8x16.shuffle(g01, g23, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  return i8x16.sub(v128.or(low, high), bytes(32));
}

/**
 * 16 Q3_K quants as unsigned 0..7 (value + 4): two low bits from q (bits shift..shift + 1 of each
 * byte), the third from bit `bit` of hm's bytes. 16-bit shifts: what crosses from the neighbouring
 * byte lies outside the masks.
 */
@inline function q3Lanes(q: v128, hm: v128, shift: i32, bit: i32): v128 {
  const low = v128.and(i16x8.shr_u(q, shift), bytes(3));
  const third = bit >= 2 ? i16x8.shr_u(hm, bit - 2) : i16x8.shl(hm, 2 - bit);
  return v128.or(low, v128.and(third, bytes(4)));
}

/**
 * Four sub-blocks of 16 (unsigned quants u0..u3 < 128) against the 64 Q8K quants at x: their four
 * integer dots summed per lane, times their scales (sc, i32 lanes): `hsum4I` then one multiply
 * instead of a multiply per sub-block.
 */
@inline function quadDots(u0: v128, u1: v128, u2: v128, u3: v128, x: usize, sc: v128): v128 {
  const z = i32x4.splat(0);
  return i32x4.mul(hsum4I(dotU7(u0, v128.load(x), z), dotU7(u1, v128.load(x, 16), z), dotU7(u2, v128.load(x, 32), z), dotU7(u3, v128.load(x, 48), z)), sc);
}

/** Sub-blocks 4j .. 4j + 3 of a Q3_K block (half h, bit pairs k0, k0 + 1) against Q8K quants at xs (the block's first), scaled by sc. */
@inline function q3Quad(w: usize, xs: usize, hm0: v128, hm1: v128, h: i32, k0: i32, sc: v128): v128 {
  const q0 = v128.load(w + 32 + 32 * <usize>h);
  const q1 = v128.load(w + 48 + 32 * <usize>h);
  return quadDots(
    q3Lanes(q0, hm0, 2 * k0, 4 * h + k0), q3Lanes(q1, hm1, 2 * k0, 4 * h + k0),
    q3Lanes(q0, hm0, 2 * k0 + 2, 4 * h + k0 + 1), q3Lanes(q1, hm1, 2 * k0 + 2, 4 * h + k0 + 1),
    xs + <usize>(128 * h + 32 * k0), sc,
  );
}

/** Sub-blocks 4j .. 4j + 3 of a Q2_K block (half h, bit pairs k0, k0 + 1: quants (q >> 2k) & 3) against Q8K quants at xs, scaled by sc. */
@inline function q2Quad(w: usize, xs: usize, h: i32, k0: i32, sc: v128): v128 {
  const m3 = bytes(3);
  const q0 = v128.load(w + 16 + 32 * <usize>h);
  const q1 = v128.load(w + 32 + 32 * <usize>h);
  return quadDots(
    v128.and(i16x8.shr_u(q0, 2 * k0), m3), v128.and(i16x8.shr_u(q1, 2 * k0), m3),
    v128.and(i16x8.shr_u(q0, 2 * k0 + 2), m3), v128.and(i16x8.shr_u(q1, 2 * k0 + 2), m3),
    xs + <usize>(128 * h + 32 * k0), sc,
  );
}

/**
 * Q2_K row dot on Q8K activations: d * sum_s sc_s * dot(q, x)_s - dmin * sum_s m_s * bsum_s per
 * block (4-bit scales and mins, quants 0..3 straight into the dots), as llama.cpp's
 * ggml_vec_dot_q2_K_q8_K.
 */
function dotQ2_KQ8K(w: usize, xq: usize, k: i32): f32 {
  let acc = f32x4.splat(0);
  let offs = f32x4.splat(0);
  for (let b = 0; b < k; b += 256, w += 84, xq += 292) {
    const v = v128.load(w);
    const sc = v128.and(v, bytes(0x0f));
    const s16lo = i16x8.extend_low_i8x16_u(sc);
    const s16hi = i16x8.extend_high_i8x16_u(sc);
    const xs = xq + 36;
    // |lane| <= 16 sub-blocks * 15 * 16 * 3 * 127: < 2^21.
    let isum = q2Quad(w, xs, 0, 0, i32x4.extend_low_i16x8_u(s16lo));
    isum = i32x4.add(isum, q2Quad(w, xs, 0, 2, i32x4.extend_high_i16x8_u(s16lo)));
    isum = i32x4.add(isum, q2Quad(w, xs, 1, 0, i32x4.extend_low_i16x8_u(s16hi)));
    isum = i32x4.add(isum, q2Quad(w, xs, 1, 2, i32x4.extend_high_i16x8_u(s16hi)));
    const m = hiNibbles(v);
    const mins = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(m), v128.load(xq + 4)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(m), v128.load(xq + 20)));
    const dx = load<f32>(xq);
    acc = madd(f32x4.convert_i32x4_s(isum), f32x4.splat(loadF16(w + 80) * dx), acc);
    offs = madd(f32x4.convert_i32x4_s(mins), f32x4.splat(loadF16(w + 82) * dx), offs);
  }
  return hsum(acc) - hsum(offs);
}

/** A token's Q8K quants (nb blocks at xq) split into x = xp - xn, both 0..127, per 16: xp then xn (512 bytes a block). */
@inline function splitSignedQ8K(xq: usize, nb: i32, dst: usize): void {
  const z = i8x16.splat(0);
  for (let b = 0; b < nb; b++, xq += 292) {
    for (let i: usize = 0; i < 16; i++, dst += 32) {
      const x = v128.load(xq + 36 + 16 * i);
      v128.store(dst, i8x16.max_s(x, z));
      v128.store(dst, i8x16.max_s(i8x16.neg(x), z), 16);
    }
  }
}

/** IQ4_XS's six-bit block scales less 32 of blocks 4j .. 4j + 3 (the super-block at w) as i32 lanes. */
@inline function iq4xsScales(w: usize, j: i32): v128 {
  let v = i32x4.splat(iq4xsScale(w, 4 * j));
  v = i32x4.replace_lane(v, 1, iq4xsScale(w, 4 * j + 1));
  v = i32x4.replace_lane(v, 2, iq4xsScale(w, 4 * j + 2));
  return i32x4.replace_lane(v, 3, iq4xsScale(w, 4 * j + 3));
}

/**
 * IQ4_XS block ib of the super-block at w against the split token at xs (splitSignedQ8K's, this
 * super-block's): the signed levels as relaxed SIMD's i8 operand, xp and xn as its i7 one.
 */
@inline function iq4xsSplitDot(w: usize, xs: usize, ib: i32): v128 {
  const q = v128.load(w + 8 + 16 * <usize>ib);
  const lo = lookup16(iq4Levels(), v128.and(q, bytes(0x0f)));
  const hi = lookup16(iq4Levels(), hiNibbles(q));
  const x = xs + 64 * <usize>ib;
  const z = i32x4.splat(0);
  const p = dotI8U7Add(hi, v128.load(x, 32), dotI8U7Add(lo, v128.load(x), z));
  return i32x4.sub(p, dotI8U7Add(hi, v128.load(x, 48), dotI8U7Add(lo, v128.load(x, 16), z)));
}

/**
 * dotIQ4_XSQ8K on a token split once per call (relaxed build; 1.4-1.6x the i16 products): four blocks'
 * dots gathered by hsum4I and scaled by one multiply. The integers are the same; the float sums
 * group them differently, so outputs agree to f32 rounding, not bitwise.
 */
function dotIQ4_XSSplit(w: usize, xs: usize, xq: usize, k: i32): f32 {
  let acc = f32x4.splat(0);
  for (let b = 0; b < k; b += 256, w += 136, xq += 292, xs += 512) {
    let isum = i32x4.mul(hsum4I(iq4xsSplitDot(w, xs, 0), iq4xsSplitDot(w, xs, 1), iq4xsSplitDot(w, xs, 2), iq4xsSplitDot(w, xs, 3)), iq4xsScales(w, 0));
    isum = i32x4.add(isum, i32x4.mul(hsum4I(iq4xsSplitDot(w, xs, 4), iq4xsSplitDot(w, xs, 5), iq4xsSplitDot(w, xs, 6), iq4xsSplitDot(w, xs, 7)), iq4xsScales(w, 1)));
    acc = madd(f32x4.convert_i32x4_s(isum), f32x4.splat(loadF16(w) * load<f32>(xq)), acc);
  }
  return hsum(acc);
}

/**
 * IQ4_XS row dot on Q8K activations: d * sum_b (ls_b - 32) * dot(K[q], x)_b per block of 32. The
 * levels are signed (-127..113), so not relaxed SIMD's i7 operand: i8 x i8 products widened to i16
 * pairs (<= 2 * 127 * 127), then `i32x4.dot_i16x8_s` against the block's scale adds the pairs and
 * scales them in one instruction.
 */
function dotIQ4_XSQ8K(w: usize, xq: usize, k: i32): f32 {
  const levels = iq4Levels();
  const m4 = bytes(0x0f);
  let acc = f32x4.splat(0);
  for (let b = 0; b < k; b += 256, w += 136, xq += 292) {
    let isum = i32x4.splat(0);
    for (let ib = 0; ib < 8; ib++) {
      const sc = i16x8.splat(<i16>iq4xsScale(w, ib));
      const q = v128.load(w + 8 + 16 * <usize>ib);
      const lo = lookup16(levels, v128.and(q, m4));
      const hi = lookup16(levels, hiNibbles(q));
      const x0 = v128.load(xq + 36 + 32 * <usize>ib);
      const x1 = v128.load(xq + 52 + 32 * <usize>ib);
      const p0 = i16x8.add(i16x8.extmul_low_i8x16_s(lo, x0), i16x8.extmul_high_i8x16_s(lo, x0));
      const p1 = i16x8.add(i16x8.extmul_low_i8x16_s(hi, x1), i16x8.extmul_high_i8x16_s(hi, x1));
      // |lane| <= 8 blocks * 32 * 4 * 127 * 127: < 2^22.
      isum = i32x4.add(isum, i32x4.add(i32x4.dot_i16x8_s(p0, sc), i32x4.dot_i16x8_s(p1, sc)));
    }
    acc = madd(f32x4.convert_i32x4_s(isum), f32x4.splat(loadF16(w) * load<f32>(xq)), acc);
  }
  return hsum(acc);
}

/**
 * Q3_K row dot on Q8K activations: sum_s (sc_s - 32) * (dot(u, x)_s - 4 * bsum_s) per block, u the
 * quants + 4 (unsigned, relaxed SIMD's i7 operand), the -4 from the Q8K block's 16-sums; one
 * float multiply-add per block (llama.cpp's ggml_vec_dot_q3_K_q8_K does the same integers).
 */
function dotQ3_KQ8K(w: usize, xq: usize, k: i32): f32 {
  let acc = f32x4.splat(0);
  for (let b = 0; b < k; b += 256, w += 110, xq += 292) {
    const sc = q3Scales(w + 96);
    const s16lo = i16x8.extend_low_i8x16_s(sc);
    const s16hi = i16x8.extend_high_i8x16_s(sc);
    const hm0 = v128.load(w);
    const hm1 = v128.load(w + 16);
    const xs = xq + 36;
    // |lane| <= 16 sub-blocks * 32 * 16 * 7 * 127: < 2^23.
    let isum = q3Quad(w, xs, hm0, hm1, 0, 0, i32x4.extend_low_i16x8_s(s16lo));
    isum = i32x4.add(isum, q3Quad(w, xs, hm0, hm1, 0, 2, i32x4.extend_high_i16x8_s(s16lo)));
    isum = i32x4.add(isum, q3Quad(w, xs, hm0, hm1, 1, 0, i32x4.extend_low_i16x8_s(s16hi)));
    isum = i32x4.add(isum, q3Quad(w, xs, hm0, hm1, 1, 2, i32x4.extend_high_i16x8_s(s16hi)));
    // The +4 of every quant: 4 * sum_s sc_s * bsum_s, one i16 dot per 8 sub-blocks.
    const offs = i32x4.add(i32x4.dot_i16x8_s(s16lo, v128.load(xq + 4)), i32x4.dot_i16x8_s(s16hi, v128.load(xq + 20)));
    isum = i32x4.sub(isum, i32x4.shl(offs, 2));
    acc = madd(f32x4.convert_i32x4_s(isum), f32x4.splat(loadF16(w + 108) * load<f32>(xq)), acc);
  }
  return hsum(acc);
}

/** One Q6_K group of 32 (sub-blocks s, s + 1 of 16) on Q8K activations at xs, integer only. */
@inline function q6GroupK(w: usize, xs: usize, lo: v128, hi: v128, s: i32, isum: v128): v128 {
  // |lane| <= 4 * 63 * 127 * 128 per sub-block, 16 sub-blocks: < 2^27.
  isum = dotU7Scaled(lo, v128.load(xs), <i32>load<i8>(w + 192 + s), isum);
  return dotU7Scaled(hi, v128.load(xs, 16), <i32>load<i8>(w + 193 + s), isum);
}

// Four tokens at a time (prefill): the weights are unpacked once and dotted with each token's
// activations, with the decode dots' integer scales (dotU5x32Scaled, dotU7Scaled) and mins
// (k4MinDot, q6Offset); the four tokens' integer sums are gathered into one vector (hsum4I), so the
// float work is once per 256 values for the four. Outputs go to out + t * os (bytes), t < 4.

/** Token t's two sub-blocks (32 quants each) of Q4_K/Q5_K chunk c at xc, with their scales. */
@inline function k45Token(xc: usize, l0: v128, l1: v128, h0: v128, h1: v128, scA: i32, scB: i32, isum: v128): v128 {
  isum = dotU5x32Scaled(l0, v128.load(xc), l1, v128.load(xc, 16), scA, isum);
  return dotU5x32Scaled(h0, v128.load(xc, 32), h1, v128.load(xc, 48), scB, isum);
}

/** The four tokens' results (lanes of acc) plus bias, to out + t * os. */
@inline function store4(acc: v128, out: usize, os: usize, bias: f32): void {
  store<f32>(out, f32x4.extract_lane(acc, 0) + bias);
  store<f32>(out + os, f32x4.extract_lane(acc, 1) + bias);
  store<f32>(out + 2 * os, f32x4.extract_lane(acc, 2) + bias);
  store<f32>(out + 3 * os, f32x4.extract_lane(acc, 3) + bias);
}

@inline function dotK45Q8Kx4(w: usize, xq: usize, xqs: usize, k: i32, q5: bool, out: usize, os: usize, bias: f32): void {
  let acc = f32x4.splat(0);
  let offs = f32x4.splat(0);
  const m4 = bytes(0x0f);
  const bs: usize = q5 ? 176 : 144;
  for (let b = 0; b < k; b += 256, w += bs, xq += 292) {
    const qs = w + (q5 ? 48 : 16);
    const x0 = xq;
    const x1 = xq + xqs;
    const x2 = x1 + xqs;
    const x3 = x2 + xqs;
    const u0 = load<u32>(w + 4);
    const u1 = load<u32>(w + 8);
    const u2 = load<u32>(w + 12);
    const scLo = k4ScalesLo(u0);
    const scHi = k4ScalesHi(u0, u2);
    let s0 = i32x4.splat(0);
    let s1 = i32x4.splat(0);
    let s2 = i32x4.splat(0);
    let s3 = i32x4.splat(0);
    for (let c = 0; c < 4; c++) {
      const j = 2 * c;
      const v0 = v128.load(qs + 32 * c);
      const v1 = v128.load(qs + 32 * c + 16);
      let l0 = v128.and(v0, m4);
      let l1 = v128.and(v1, m4);
      let h0 = hiNibbles(v0);
      let h1 = hiNibbles(v1);
      if (q5) {
        const qh0 = v128.load(w + 16);
        const qh1 = v128.load(w + 32);
        l0 = v128.or(l0, bit5(qh0, j));
        l1 = v128.or(l1, bit5(qh1, j));
        h0 = v128.or(h0, bit5(qh0, j + 1));
        h1 = v128.or(h1, bit5(qh1, j + 1));
      }
      const sc = (c < 2 ? scLo : scHi) >> (<u32>(c & 1) << 4);
      const scA = <i32>(sc & 0xff);
      const scB = <i32>((sc >> 8) & 0xff);
      const off: usize = 36 + 64 * c;
      s0 = k45Token(x0 + off, l0, l1, h0, h1, scA, scB, s0);
      s1 = k45Token(x1 + off, l0, l1, h0, h1, scA, scB, s1);
      s2 = k45Token(x2 + off, l0, l1, h0, h1, scA, scB, s2);
      s3 = k45Token(x3 + off, l0, l1, h0, h1, scA, scB, s3);
    }
    const mins = k4Mins(u0, u1, u2);
    const m = hsum4I(k4MinDot(mins, x0), k4MinDot(mins, x1), k4MinDot(mins, x2), k4MinDot(mins, x3));
    const dx = gather4(x0, x1, x2, x3);
    acc = madd(f32x4.convert_i32x4_s(hsum4I(s0, s1, s2, s3)), f32x4.mul(dx, f32x4.splat(loadF16(w))), acc);
    offs = madd(f32x4.convert_i32x4_s(m), f32x4.mul(dx, f32x4.splat(loadF16(w + 2))), offs);
  }
  store4(f32x4.sub(acc, offs), out, os, bias);
}

/** Q6_K group g of half h (sub-blocks s, s + 1) against the four tokens' accumulators, in place. */
@inline function q6Group4K(w: usize, x0: usize, xqs: usize, xo: usize, lo: v128, hi: v128, s: i32, t: i32, acc: v128): v128 {
  // AssemblyScript has no multiple returns: the caller calls this once per token t with the same lanes.
  return q6GroupK(w, x0 + <usize>t * xqs + xo, lo, hi, s, acc);
}

function dotQ6_KQ8Kx4(w: usize, xq: usize, xqs: usize, k: i32, out: usize, os: usize, bias: f32): void {
  let acc = f32x4.splat(0);
  for (let b = 0; b < k; b += 256, w += 210, xq += 292) {
    let s0 = i32x4.splat(0);
    let s1 = i32x4.splat(0);
    let s2 = i32x4.splat(0);
    let s3 = i32x4.splat(0);
    for (let h = 0; h < 2; h++) {
      const qlA0 = v128.load(w + 64 * h);
      const qlA1 = v128.load(w + 64 * h + 16);
      const qlB0 = v128.load(w + 64 * h + 32);
      const qlB1 = v128.load(w + 64 * h + 48);
      const qh0 = v128.load(w + 128 + 32 * h);
      const qh1 = v128.load(w + 128 + 32 * h + 16);
      const xo: usize = 36 + 128 * h;
      const sb = 8 * h;
      for (let g = 0; g < 4; g++) {
        // g is a loop variable here, so q6Lanes' shifts are chosen at run time: four selects.
        let lo: v128;
        let hi: v128;
        if (g == 0) {
          lo = q6Lanes(qlA0, qlB0, qh0, 0);
          hi = q6Lanes(qlA1, qlB1, qh1, 0);
        } else if (g == 1) {
          lo = q6Lanes(qlA0, qlB0, qh0, 1);
          hi = q6Lanes(qlA1, qlB1, qh1, 1);
        } else if (g == 2) {
          lo = q6Lanes(qlA0, qlB0, qh0, 2);
          hi = q6Lanes(qlA1, qlB1, qh1, 2);
        } else {
          lo = q6Lanes(qlA0, qlB0, qh0, 3);
          hi = q6Lanes(qlA1, qlB1, qh1, 3);
        }
        const xg = xo + <usize>(32 * g);
        const sg = sb + 2 * g;
        s0 = q6Group4K(w, xq, xqs, xg, lo, hi, sg, 0, s0);
        s1 = q6Group4K(w, xq, xqs, xg, lo, hi, sg, 1, s1);
        s2 = q6Group4K(w, xq, xqs, xg, lo, hi, sg, 2, s2);
        s3 = q6Group4K(w, xq, xqs, xg, lo, hi, sg, 3, s3);
      }
    }
    const x1 = xq + xqs;
    const x2 = x1 + xqs;
    const x3 = x2 + xqs;
    // The -32 offsets, then the four tokens' sums in one vector.
    const sum = hsum4I(i32x4.sub(s0, q6Offset(w, xq)), i32x4.sub(s1, q6Offset(w, x1)), i32x4.sub(s2, q6Offset(w, x2)), i32x4.sub(s3, q6Offset(w, x3)));
    acc = madd(f32x4.convert_i32x4_s(sum), f32x4.mul(gather4(xq, x1, x2, x3), f32x4.splat(loadF16(w + 208))), acc);
  }
  store4(acc, out, os, bias);
}

/** The -32 offset term of one Q6_K super-block for the Q8K block at xb: 32 * sum_s sc_s * bsum_s. */
@inline function q6Offset(w: usize, xb: usize): v128 {
  const sc = v128.load(w + 192);
  const o = i32x4.add(
    i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(sc), v128.load(xb + 4)),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(sc), v128.load(xb + 20)),
  );
  return i32x4.shl(o, 5);
}

/** True for the weight types `matmulQ8K` handles. */
export function q8kSupports(type: i32): i32 {
  return type == T_Q4_K || type == T_Q5_K || type == T_Q6_K || type == T_Q3_K || type == T_Q2_K || type == T_IQ4_XS ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Q5_0x4: Q5_0 matrices stored four-row interleaved, for the relaxed build's decode. Q5_0's
// fifth bits cost as much as the rest of its one-row dot (bytes_from_bits per block per row), so
// at load time each group of four rows is rewritten in place, in the same bytes, as per block of 32
// (88 bytes):
//   [0, 8)    the four rows' f16 scales;
//   [8, 72)   4 vectors of the rows' quant bytes: vector v holds bytes 4v..4v+3 of rows 0..3 (one
//             i32 lane per row): low nibbles are elements 4v..4v+3, high nibbles 16 + 4v..;
//   [72, 88)  the fifth bits as a plane: bit j of byte i is the fifth bit of element 4j + (i & 3) of
//             row i >> 2, so quant vector j (elements 4j..4j+3 of the four rows, the packed
//             prefill's layout) gets its fifth bits with one 16-bit shift and a mask.
// A token's dot is then the packed prefill's (`packedBlockSum`) on vectors unpacked from registers:
// the same integers and float operations, so a token decoded here and the same token in a prefill
// tile give bitwise the same outputs. Q4_0x4 is the same without the plane (72 bytes): Q4_0's
// one-row dot is cheap, but the four rows in one stream drop the per-row sums and loop setup, which
// on short rows (Qwen2.5-0.5B's 896) cost as much as the dots.

const Q5X4_BLOCK: usize = 88;
/** Q4_0x4: Q5_0x4 without the bit plane (the four scales and the 64 nibble bytes), 72 bytes. */
const Q4X4_BLOCK: usize = 72;

/** Quant vector j (0..7, a literal) of the Q5_0x4 (q5) / Q4_0x4 block at p: unsigned quants 0..31 / 0..15. */
@inline function x4Quants(q5: bool, p: usize, j: i32): v128 {
  const nib = v128.load(p + 8 + 16 * <usize>(j & 3));
  const q = j < 4 ? v128.and(nib, bytes(0x0f)) : hiNibbles(nib);
  if (!q5) return q;
  const plane = v128.load(p + 72);
  // Bit j of each byte to bit 4: 16-bit shifts by less than 8 never carry into bit 4 of the other byte.
  const b = j < 4 ? i16x8.shl(plane, 4 - j) : j == 4 ? plane : i16x8.shr_u(plane, j - 4);
  return v128.or(q, v128.and(b, bytes(0x10)));
}

/** The four rows' f32 scales of the Q5_0x4 / Q4_0x4 block at p. */
@inline function x4Scales(p: usize): v128 {
  return f16x4(i32x4.extend_low_i16x8_u(v128.load64_zero(p)));
}

/**
 * A token's 32 quants at x (a Q8A block's at its + 8) against four rows' eight interleaved weight
 * vectors (vector j: the rows' elements 4j..4j + 3, unsigned bytes) with the unsigned-byte dot: the
 * four rows' sums. The token's bytes are broadcast from two loads (1.27x a 4-byte broadcast load
 * each) and the dots run in two chains (one chain of eight waits on each dot's latency: 0.97x).
 * The interleaved decodes and the Q4_K / Q5_K packed tile (packedKDot32) share it.
 */
@inline function x4DotsU8(w0: v128, w1: v128, w2: v128, w3: v128, w4: v128, w5: v128, w6: v128, w7: v128, x: usize): v128 {
  const xa = v128.load(x);
  const xc = v128.load(x, 16);
  let s = dotU8Add(i32x4.shuffle(xa, xa, 0, 0, 0, 0), w0, i32x4.splat(0));
  let e = dotU8Add(i32x4.shuffle(xa, xa, 1, 1, 1, 1), w1, i32x4.splat(0));
  s = dotU8Add(i32x4.shuffle(xa, xa, 2, 2, 2, 2), w2, s);
  e = dotU8Add(i32x4.shuffle(xa, xa, 3, 3, 3, 3), w3, e);
  s = dotU8Add(i32x4.shuffle(xc, xc, 0, 0, 0, 0), w4, s);
  e = dotU8Add(i32x4.shuffle(xc, xc, 1, 1, 1, 1), w5, e);
  s = dotU8Add(i32x4.shuffle(xc, xc, 2, 2, 2, 2), w6, s);
  e = dotU8Add(i32x4.shuffle(xc, xc, 3, 3, 3, 3), w7, e);
  return i32x4.add(s, e);
}

/**
 * x4BlockSum where the unsigned-byte dot is exact (one instruction): the eight quant vectors'
 * i32 dots (x4DotsU8) less the offset. The same integers; 1.09-1.15x.
 */
@inline function x4BlockSumU8(q5: bool, p: usize, xb: usize): v128 {
  const s = x4DotsU8(
    x4Quants(q5, p, 0), x4Quants(q5, p, 1), x4Quants(q5, p, 2), x4Quants(q5, p, 3),
    x4Quants(q5, p, 4), x4Quants(q5, p, 5), x4Quants(q5, p, 6), x4Quants(q5, p, 7), xb + 8,
  );
  return i32x4.sub(s, i32x4.dot_i16x8_s(v128.load32_splat(xb + 4), words(q5 ? 16 : 8)));
}

/** One token's Q8A block at xb against the Q5_0x4 (q5) / Q4_0x4 block at p: the four rows' integer sums (packedBlockSum's). */
@inline function x4BlockSum(q5: bool, p: usize, xb: usize): v128 {
  const a = i16x8.add(
    i16x8.add(pairDot(v128.load32_splat(xb, 8), x4Quants(q5, p, 0)), pairDot(v128.load32_splat(xb, 12), x4Quants(q5, p, 1))),
    i16x8.add(pairDot(v128.load32_splat(xb, 16), x4Quants(q5, p, 2)), pairDot(v128.load32_splat(xb, 20), x4Quants(q5, p, 3))),
  );
  const b = i16x8.add(
    i16x8.add(pairDot(v128.load32_splat(xb, 24), x4Quants(q5, p, 4)), pairDot(v128.load32_splat(xb, 28), x4Quants(q5, p, 5))),
    i16x8.add(pairDot(v128.load32_splat(xb, 32), x4Quants(q5, p, 6)), pairDot(v128.load32_splat(xb, 36), x4Quants(q5, p, 7))),
  );
  const one = words(1);
  const s = i32x4.add(i32x4.dot_i16x8_s(a, one), i32x4.dot_i16x8_s(b, one));
  return i32x4.sub(s, i32x4.dot_i16x8_s(v128.load32_splat(xb + 4), words(q5 ? 16 : 8)));
}

/** The Q5_0x4 (q5) / Q4_0x4 group at p (nb blocks) unpacked into the packed prefill layout at dst (packRows4's output). */
@inline function unpackX4(q5: bool, p: usize, nb: i32, dst: usize): void {
  for (let b = 0; b < nb; b++, p += q5 ? Q5X4_BLOCK : Q4X4_BLOCK, dst += 144) {
    v128.store(dst, x4Quants(q5, p, 0));
    v128.store(dst, x4Quants(q5, p, 1), 16);
    v128.store(dst, x4Quants(q5, p, 2), 32);
    v128.store(dst, x4Quants(q5, p, 3), 48);
    v128.store(dst, x4Quants(q5, p, 4), 64);
    v128.store(dst, x4Quants(q5, p, 5), 80);
    v128.store(dst, x4Quants(q5, p, 6), 96);
    v128.store(dst, x4Quants(q5, p, 7), 112);
    v128.store(dst, x4Scales(p), 128);
  }
}

/**
 * Rewrites rows [0, rows) (rows % 4 == 0) of the Q5_0 (q5) / Q4_0 matrix at w in place as Q5_0x4 /
 * Q4_0x4. `scratch`: 152 bytes per block of a row (one group's packed quants and raw scales).
 */
@inline function packX4(q5: bool, w: usize, rows: i32, k: i32, scratch: usize): void {
  const type = q5 ? T_Q5_0 : T_Q4_0;
  const nb = k >> 5;
  const rb = rowBytes(type, k);
  const bs: usize = q5 ? 22 : 18;
  const halves = scratch + <usize>nb * 144;
  for (let r = 0; r < rows; r += 4) {
    const g = w + <usize>r * rb;
    packRows4(type, g, rb, nb, scratch, false);
    for (let b = 0; b < nb; b++) {
      for (let i: usize = 0; i < 4; i++) store<u16>(halves + 8 * <usize>b + 2 * i, load<u16>(g + i * rb + bs * <usize>b));
    }
    // The group's bytes are all in the scratch now: write it back interleaved.
    for (let b = 0; b < nb; b++) {
      const q = scratch + 144 * <usize>b;
      const o = g + (q5 ? Q5X4_BLOCK : Q4X4_BLOCK) * <usize>b;
      store<u64>(o, load<u64>(halves + 8 * <usize>b));
      const m4 = bytes(0x0f);
      for (let v: usize = 0; v < 4; v++) {
        const lo = v128.load(q + 16 * v);
        const hi = v128.load(q + 64 + 16 * v);
        v128.store(o + 8 + 16 * v, v128.or(v128.and(lo, m4), i16x8.shl(v128.and(hi, m4), 4)));
      }
      if (q5) {
        let plane = i8x16.splat(0);
        for (let j = 0; j < 8; j++) {
          // Bit 4 of quant vector j's bytes to bit j of the plane's.
          const bit = v128.and(i16x8.shr_u(v128.load(q + 16 * <usize>j), 4), bytes(1));
          plane = v128.or(plane, i16x8.shl(bit, j));
        }
        v128.store(o + 72, plane);
      }
    }
  }
}

/** Rewrites a Q5_0 matrix in place as Q5_0x4 (packX4). */
export function packQ5_0x4(w: usize, rows: i32, k: i32, scratch: usize): void {
  packX4(true, w, rows, k, scratch);
}

/** Rewrites a Q4_0 matrix in place as Q4_0x4 (packX4). */
export function packQ4_0x4(w: usize, rows: i32, k: i32, scratch: usize): void {
  packX4(false, w, rows, k, scratch);
}

/**
 * The four rows' outputs of one token (Q8A blocks at xt) against the Q5_0x4 (q5) / Q4_0x4 group at
 * g, without bias; u8 (a literal): the unsigned-byte dot's block sums.
 */
@inline function dotX4(q5: bool, g: usize, xt: usize, nb: i32, u8: bool): v128 {
  let acc = f32x4.splat(0);
  for (let b = 0, o: usize = 0; b < nb; b++, o += 40, g += q5 ? Q5X4_BLOCK : Q4X4_BLOCK) {
    const s = u8 ? x4BlockSumU8(q5, g, xt + o) : x4BlockSum(q5, g, xt + o);
    acc = madd(f32x4.convert_i32x4_s(s), f32x4.mul(v128.load32_splat(xt + o), x4Scales(g)), acc);
  }
  return acc;
}

// IQ4_NLx4: IQ4_NL blocks have Q4_0's bytes (an f16 scale, 16 bytes of nibbles), so packQ4_0x4
// interleaves them into Q4_0x4's layout; the nibbles index the 16 levels. Only where the
// unsigned-byte dot is exact (the host packs IQ4_NL only there): each quant vector's levels + 128
// against the broadcast token bytes, less 128 times the block's sum, as the IQ4_NL prefill tile's
// one plane does. So a token decoded here and in a prefill tile gives bitwise the same outputs.

/** The four rows' outputs of one token (Q8A blocks at xt) against the IQ4_NLx4 group at g, without bias. */
@inline function dotIQ4_NLx4U8(g: usize, xt: usize, nb: i32): v128 {
  const levels = v128.xor(iq4Levels(), bytes(-128));
  const m = words(128);
  let acc = f32x4.splat(0);
  for (let b = 0, o: usize = 0; b < nb; b++, o += 40, g += Q4X4_BLOCK) {
    const xb = xt + o;
    const dots = x4DotsU8(
      lookup16(levels, x4Quants(false, g, 0)), lookup16(levels, x4Quants(false, g, 1)), lookup16(levels, x4Quants(false, g, 2)), lookup16(levels, x4Quants(false, g, 3)),
      lookup16(levels, x4Quants(false, g, 4)), lookup16(levels, x4Quants(false, g, 5)), lookup16(levels, x4Quants(false, g, 6)), lookup16(levels, x4Quants(false, g, 7)), xb + 8,
    );
    const s = i32x4.sub(dots, i32x4.dot_i16x8_s(v128.load32_splat(xb + 4), m));
    acc = madd(f32x4.convert_i32x4_s(s), f32x4.mul(v128.load32_splat(xb), x4Scales(g)), acc);
  }
  return acc;
}

/** The IQ4_NLx4 group at p (nb blocks) unpacked into the IQ4_NL prefill tile's one plane (levels + 128) and f32 scales. */
@inline function unpackIQ4_NLx4(p: usize, nb: i32, dst: usize): void {
  const levels = v128.xor(iq4Levels(), bytes(-128));
  for (let b = 0; b < nb; b++, p += Q4X4_BLOCK, dst += 144) {
    for (let j = 0; j < 8; j++) v128.store(dst + 16 * <usize>j, lookup16(levels, x4Quants(false, p, j)));
    v128.store(dst, x4Scales(p), 128);
  }
}

/**
 * The first `tiled` tokens (whole groups of four) of an interleaved matrix (Q4_0x4 / Q5_0x4 /
 * Q8_0x4 / IQ4_NLx4 by `type`, groups of gb bytes) as the packed prefill: each group of four rows
 * unpacked once into scratch, then swept by every group of four tokens.
 */
@inline function interleavedTiles(type: i32, w: usize, gb: usize, nb: i32, xq: usize, xqs: usize, y: usize, ys: usize, tiled: i32, bias: usize, rowStart: i32, rowEnd: i32, scratch: usize, u8: bool): void {
  if (!tiled) return;
  for (let r = rowStart; r < rowEnd; r += 4) {
    const g = w + <usize>(r >> 2) * gb;
    if (type == T_Q8_0) unpackQ8_0x4(g, nb, scratch, u8);
    else if (type == T_IQ4_NL) unpackIQ4_NLx4(g, nb, scratch);
    else unpackX4(type == T_Q5_0, g, nb, scratch);
    const bias4 = bias ? v128.load(bias + (<usize>r << 2)) : f32x4.splat(0);
    for (let t = 0; t < tiled; t += 4) {
      const out = y + <usize>t * ys + (<usize>r << 2);
      tileOf(type, u8, scratch, nb, xq + <usize>t * xqs, xqs, out, ys, bias4);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Q8_0x4: Q8_0 stored four rows interleaved (relaxed build only), in the same bytes as the GGUF
// rows. Per block of 32 of four rows (136 bytes): the rows' four f16 scales, then 8 vectors where
// lane r of vector j holds row r's quants 4j .. 4j + 3 (signed). Decode dots the four rows at once
// in one stream: the token split once into x = xp - xn (splitSignedQ8A), each vector against the
// broadcast xp and xn bytes with `i32x4.relaxed_dot_i8x16_i7x16_add_s`, the rows' sums landing in
// their own lanes (no horizontal sums; 1.4x the one-row split dot). Per token the block integers
// and float operations are the packed prefill tile's, so a token gives bitwise the same outputs
// decoded alone or in a prefill.

const Q8X4_BLOCK: usize = 136;

/** The Q8_0x4 group at p (nb blocks) unpacked into the packed prefill layout at dst (packRows4's Q8_0 output). */
@inline function unpackQ8_0x4(p: usize, nb: i32, dst: usize, u8: bool): void {
  const flip = bytes(-128);
  const m4 = bytes(0x0f);
  const pb = packedBlockBytes(T_Q8_0, u8);
  for (let b = 0; b < nb; b++, p += Q8X4_BLOCK, dst += pb) {
    for (let j: usize = 0; j < 8; j++) {
      const q = v128.xor(v128.load(p + 8 + 16 * j), flip);
      if (u8) {
        v128.store(dst + 16 * j, q);
      } else {
        v128.store(dst + 16 * j, v128.and(q, m4));
        v128.store(dst + 128 + 16 * j, hiNibbles(q));
      }
    }
    v128.store(dst + pb - 16, f16x4(i32x4.extend_low_i16x8_u(v128.load64_zero(p))));
  }
}

/**
 * Rewrites rows [0, rows) (rows % 4 == 0) of the Q8_0 matrix at w in place as Q8_0x4. `scratch`:
 * one four-row group's bytes (136 a block of 32).
 */
export function packQ8_0x4(w: usize, rows: i32, k: i32, scratch: usize): void {
  const nb = k >> 5;
  const rb = rowBytes(T_Q8_0, k);
  for (let r = 0; r < rows; r += 4) {
    const g = w + <usize>r * rb;
    memory.copy(scratch, g, 4 * rb);
    for (let b = 0; b < nb; b++) {
      const i = scratch + 34 * <usize>b;
      const o = g + Q8X4_BLOCK * <usize>b;
      store<u16>(o, load<u16>(i));
      store<u16>(o, load<u16>(i + rb), 2);
      store<u16>(o, load<u16>(i + 2 * rb), 4);
      store<u16>(o, load<u16>(i + 3 * rb), 6);
      for (let half: usize = 0; half < 2; half++) {
        const q = i + 2 + 16 * half;
        storeTransposed(v128.load(q), v128.load(q + rb), v128.load(q + 2 * rb), v128.load(q + 3 * rb), o + 8 + 64 * half);
      }
    }
  }
}

/** iq4Levels() in static memory, for scalar lookups. */
const IQ4_LEVELS = memory.data<i8>([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]);

/** Row `id` of a Q4_0x4 / Q5_0x4 / Q8_0x4 / IQ4_NLx4 table (`type` T_Q4_0X4 / T_Q5_0X4 / T_Q8_0X4 / T_IQ4_NLX4, k elements) dequantized to f32 at dst (embed): the GGUF rows' values. */
function dequantInterleavedRow(type: i32, table: usize, k: i32, id: u32, dst: usize): void {
  const nb = k >> 5;
  const bs = type == T_Q8_0X4 ? Q8X4_BLOCK : type == T_Q5_0X4 ? Q5X4_BLOCK : Q4X4_BLOCK;
  const g = table + <usize>(id >> 2) * <usize>nb * bs;
  const lane = <usize>(id & 3);
  for (let b = 0; b < nb; b++) {
    const p = g + bs * <usize>b;
    const d = f16(<u32>load<u16>(p + 2 * lane));
    for (let e = 0; e < 32; e++) {
      const j = e >> 2;
      let q: i32;
      if (type == T_Q8_0X4) {
        q = <i32>load<i8>(p + 8 + 16 * <usize>j + 4 * lane + <usize>(e & 3));
      } else {
        const byte = load<u8>(p + 8 + 16 * <usize>(j & 3) + 4 * lane + <usize>(e & 3));
        const nib = j < 4 ? byte & 15 : byte >> 4;
        if (type == T_IQ4_NLX4) {
          q = <i32>load<i8>(IQ4_LEVELS + <usize>nib);
        } else if (type == T_Q5_0X4) {
          const hb = (load<u8>(p + 72 + 4 * lane + <usize>(e & 3)) >> <u8>j) & 1;
          q = <i32>(nib | (hb << 4)) - 16;
        } else {
          q = <i32>nib - 8;
        }
      }
      store<f32>(dst + (<usize>(32 * b + e) << 2), d * <f32>q);
    }
  }
}

/**
 * acc + the sums of four adjacent products of signed bytes w and bytes x in [0, 127]: relaxed
 * SIMD's i32 i8 x i7 dot (exact: each pair <= 2 * 128 * 127 < 2^15). Plain SIMD (never run on
 * the Q8_0x4 path, but the module must compile): the same sums from pairDot.
 */
@inline function dotI8U7Add(w: v128, x: v128, acc: v128): v128 {
  if (RELAXED) return i32x4.relaxed_dot_i8x16_i7x16_add_s(w, x, acc);
  return i32x4.add(acc, i32x4.dot_i16x8_s(pairDot(w, x), words(1)));
}

/** The four rows' outputs of one token split at xs (its Q8A blocks at xq) against the Q8_0x4 group at g, without bias. */
@inline function dotQ8_0x4(g: usize, xs: usize, xq: usize, nb: i32): v128 {
  let acc = f32x4.splat(0);
  for (let b = 0; b < nb; b++, g += Q8X4_BLOCK, xs += 64, xq += 40) {
    // |lane| <= 32 * 128 * 127 in each sum: no overflow.
    let sp = i32x4.splat(0);
    let sn = i32x4.splat(0);
    for (let j: usize = 0; j < 8; j++) {
      const w = v128.load(g + 8 + 16 * j);
      sp = dotI8U7Add(w, v128.load32_splat(xs + 4 * j), sp);
      sn = dotI8U7Add(w, v128.load32_splat(xs + 32 + 4 * j), sn);
    }
    acc = madd(f32x4.convert_i32x4_s(i32x4.sub(sp, sn)), f32x4.mul(v128.load32_splat(xq), f16x4(i32x4.extend_low_i16x8_u(v128.load64_zero(g)))), acc);
  }
  return acc;
}

/**
 * dotQ8_0x4 where the unsigned-byte dot is exact: each weight vector + 128 against the token's
 * quants at xq (no split), less 128 times the block's sum; the same integers.
 */
@inline function dotQ8_0x4U8(g: usize, xq: usize, nb: i32): v128 {
  let acc = f32x4.splat(0);
  const flip = bytes(-128);
  const m = words(128);
  for (let b = 0; b < nb; b++, g += Q8X4_BLOCK, xq += 40) {
    // The token's bytes broadcast from two loads (x4DotsU8): 1.02-1.05x four-byte broadcast loads.
    const dots = x4DotsU8(
      v128.xor(v128.load(g + 8), flip), v128.xor(v128.load(g + 24), flip), v128.xor(v128.load(g + 40), flip), v128.xor(v128.load(g + 56), flip),
      v128.xor(v128.load(g + 72), flip), v128.xor(v128.load(g + 88), flip), v128.xor(v128.load(g + 104), flip), v128.xor(v128.load(g + 120), flip), xq + 8,
    );
    const s = i32x4.sub(dots, i32x4.dot_i16x8_s(v128.load32_splat(xq + 4), m));
    acc = madd(f32x4.convert_i32x4_s(s), f32x4.mul(v128.load32_splat(xq), f16x4(i32x4.extend_low_i16x8_u(v128.load64_zero(g)))), acc);
  }
  return acc;
}

/**
 * `matmulQ8A` for a Q4_0x4, Q5_0x4 or Q8_0x4 matrix (`type` T_Q4_0 / T_Q5_0 / T_Q8_0; relaxed build only): rows
 * [rowStart, rowEnd), multiples of 4. Whole groups of four tokens run as the packed prefill (each
 * group of rows unpacked once into `scratch`, packedPrefillBytes(type, k)); the other tokens
 * (decode: all of them) one at a time straight from the interleaved layout. Q8_0x4 needs the
 * scratch (each such token is split into it); Q4_0x4 / Q5_0x4 without one run every token one at a time.
 */
export function matmulInterleaved(
  type: i32, w: usize, k: i32, xq: usize, y: usize, yStride: i32,
  tokens: i32, bias: usize, rowStart: i32, rowEnd: i32, scratch: usize,
): void {
  if (type == T_Q6_K || type == T_Q4_K) {
    kx4Rows(type, w, k, xq, y, yStride, tokens, bias, rowStart, rowEnd, scratch);
    return;
  }
  const q8 = type == T_Q8_0;
  const q5 = type == T_Q5_0;
  const nl = type == T_IQ4_NL;
  // IQ4_NLx4 exists only where the unsigned-byte dot is exact (the host's choice): a trap otherwise.
  if (nl && !unsignedDotOn()) unreachable();
  const nb = k >> 5;
  const gb = <usize>nb * (q8 ? Q8X4_BLOCK : q5 ? Q5X4_BLOCK : Q4X4_BLOCK);
  const xqs = <usize>nb * 40;
  const ys = <usize>yStride << 2;
  const tiled = scratch ? tokens & ~3 : 0;
  // Q8_0x4's tiles and decode both take the unsigned-byte forms where that dot is exact, and so
  // does the Q4_0x4 / Q5_0x4 decode (x4BlockSumU8).
  const u8any = unsignedDotOn();
  const u8 = q8 && u8any;
  switch (type) {
    case T_Q8_0: interleavedTiles(T_Q8_0, w, gb, nb, xq, xqs, y, ys, tiled, bias, rowStart, rowEnd, scratch, u8); break;
    case T_Q5_0: interleavedTiles(T_Q5_0, w, gb, nb, xq, xqs, y, ys, tiled, bias, rowStart, rowEnd, scratch, false); break;
    case T_IQ4_NL: interleavedTiles(T_IQ4_NL, w, gb, nb, xq, xqs, y, ys, tiled, bias, rowStart, rowEnd, scratch, true); break;
    default: interleavedTiles(T_Q4_0, w, gb, nb, xq, xqs, y, ys, tiled, bias, rowStart, rowEnd, scratch, false);
  }
  for (let t = tiled; t < tokens; t++) {
    const xt = xq + <usize>t * xqs;
    if (q8 && !u8) splitSignedQ8A(xt, nb, scratch);
    for (let r = rowStart; r < rowEnd; r += 4) {
      const g = w + <usize>(r >> 2) * gb;
      const out = u8 ? dotQ8_0x4U8(g, xt, nb) : q8 ? dotQ8_0x4(g, scratch, xt, nb) : nl ? dotIQ4_NLx4U8(g, xt, nb)
        : u8any ? (q5 ? dotX4(true, g, xt, nb, true) : dotX4(false, g, xt, nb, true))
        : q5 ? dotX4(true, g, xt, nb, false) : dotX4(false, g, xt, nb, false);
      kx4Store(out, bias, y + <usize>t * ys, r);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Q6_Kx4: Q6_K stored four rows interleaved, in the same bytes (the relaxed build's decode layout).
// Per super-block of the four rows (840 bytes = 4 x 210):
//   [0, 8)     the rows' f16 d;
//   [8, 72)    the scales: byte 8 + 4s + r is row r's scale of sub-block s (16 elements);
//   [72, 840)  per sub-block s, three vectors A, B, C at 72 + 48s. Byte p of "lane vector" e
//              (e = 0..3) is element 16s + 4e + (p & 3) of row p >> 2, as a 6-bit quant 0..63
//              (the packed prefill's vector layout). A, B and C hold lane vectors 0, 1, 2 in their
//              low six bits, and lane vector 3's bits 0-1, 2-3 and 4-5 in their top two bits.
// So the 64 quants of a sub-block's four rows take three loads, three masks and eight operations
// for the fourth vector (17 per 64 in GGUF's ql / qh split), and their four dots against the
// token's broadcast bytes accumulate in the rows' lanes: no hsum4I, one multiply by the four rows'
// scales per sub-block. The integers per block and the float operations are the packed prefill
// tile's (packedKTile), so a token gives bitwise the same outputs in a tile or decoded alone.

const Q6X4_BLOCK: usize = 840;

/** `matmulInterleaved` of a Q4_Kx4 / Q6_Kx4 matrix on Q8K activations. */
function kx4Rows(type: i32, w: usize, k: i32, xq: usize, y: usize, yStride: i32, tokens: i32, bias: usize, rowStart: i32, rowEnd: i32, scratch: usize): void {
  const q4 = type == T_Q4_K;
  const nb = k >> 8;
  const gb = <usize>nb * (q4 ? Q4KX4_BLOCK : Q6X4_BLOCK);
  const xqs = <usize>nb * 292;
  const ys = <usize>yStride << 2;
  // Whole groups of four tokens: each four-row group unpacked into the packed prefill's layout (as
  // packRowsK does from GGUF rows), then the K tiles; every other token decoded from the layout.
  const tiled = scratch ? tokens & ~3 : 0;
  const u8 = unsignedDotOn();
  for (let r = rowStart; tiled && r < rowEnd; r += 4) {
    const g = w + <usize>(r >> 2) * gb;
    if (q4) unpackQ4_Kx4(g, nb, scratch);
    else unpackQ6_Kx4(g, nb, scratch);
    const bias4 = bias ? v128.load(bias + (<usize>r << 2)) : f32x4.splat(0);
    for (let t = 0; t < tiled; t += 4) {
      const out = y + <usize>t * ys + (<usize>r << 2);
      if (q4) tileQ4_K(u8, scratch, nb, xq + <usize>t * xqs, xqs, out, ys, bias4);
      else tileQ6_K(u8, scratch, nb, xq + <usize>t * xqs, xqs, out, ys, bias4);
    }
  }
  // One loop per form: a flag tested inside the loop let the compilers interleave the forms' shared
  // code and spill.
  for (let t = tiled; t < tokens; t++) {
    const xt = xq + <usize>t * xqs;
    const yt = y + <usize>t * ys;
    if (!q4) {
      for (let r = rowStart; r < rowEnd; r += 4) kx4Store(dotQ6_Kx4(w + <usize>(r >> 2) * gb, xt, nb), bias, yt, r);
    } else if (u8) {
      for (let r = rowStart; r < rowEnd; r += 4) kx4Store(dotQ4_Kx4(w + <usize>(r >> 2) * gb, xt, nb, true), bias, yt, r);
    } else {
      for (let r = rowStart; r < rowEnd; r += 4) kx4Store(dotQ4_Kx4(w + <usize>(r >> 2) * gb, xt, nb, false), bias, yt, r);
    }
  }
}

/** Rows r..r + 3's outputs plus their bias (0: none) to y's row r. */
@inline function kx4Store(out: v128, bias: usize, y: usize, r: i32): void {
  const bias4 = bias ? v128.load(bias + (<usize>r << 2)) : f32x4.splat(0);
  v128.store(y + (<usize>r << 2), f32x4.add(out, bias4));
}

/** The 6-bit quant (0..63) of element j of the Q6_K super-block at w (packing only). */
@inline function q6Quant(w: usize, j: i32): u32 {
  const h = j >> 7;
  const l = j & 127;
  const g = l >> 5;
  const l0 = l & 31;
  const ql = <u32>load<u8>(w + <usize>(64 * h + 32 * (g & 1) + l0));
  const qh = <u32>load<u8>(w + <usize>(128 + 32 * h + l0));
  return ((g >= 2 ? ql >> 4 : ql) & 15) | (((qh >> <u32>(2 * g)) & 3) << 4);
}

/**
 * Rewrites a Q4_K (q4) or Q6_K matrix (rows % 4 == 0, k % 256 == 0) in place as Q4_Kx4 / Q6_Kx4;
 * scratch: one four-row group's GGUF bytes (4 x k / 256 x 144 or 210).
 */
@inline function packKx4(q4: bool, w: usize, rows: i32, k: i32, scratch: usize): void {
  const nb = k >> 8;
  const bs: usize = q4 ? 144 : 210;
  const rb = <usize>nb * bs;
  for (let r = 0; r < rows; r += 4) {
    const g = w + <usize>r * rb;
    memory.copy(scratch, g, 4 * rb);
    for (let b = 0; b < nb; b++) {
      const dst = g + <usize>b * (q4 ? Q4KX4_BLOCK : Q6X4_BLOCK);
      for (let i: usize = 0; i < 4; i++) {
        const src = scratch + i * rb + <usize>b * bs;
        if (q4) packQ4_KRow(src, dst, i);
        else packQ6_KRow(src, dst, i);
      }
    }
  }
}

/** Three six-bit values a, b, c and a fourth, `top`, at p, p + 16 and p + 32 as sixBitLanes reads them. */
@inline function storeSixBits(p: usize, a: u32, b: u32, c: u32, top: u32): void {
  store<u8>(p, a | ((top & 3) << 6));
  store<u8>(p + 16, b | (((top >> 2) & 3) << 6));
  store<u8>(p + 32, c | ((top >> 4) << 6));
}

/** Row i's super-block at src (GGUF Q6_K) into its lanes of the Q6_Kx4 block at dst. */
@inline function packQ6_KRow(src: usize, dst: usize, i: usize): void {
  store<u16>(dst + 2 * i, load<u16>(src + 208));
  for (let s = 0; s < 16; s++) {
    store<i8>(dst + 8 + 4 * <usize>s + i, load<i8>(src + 192 + <usize>s));
    for (let c = 0; c < 4; c++) {
      const j = 16 * s + c;
      storeSixBits(dst + 72 + 48 * <usize>s + 4 * i + <usize>c, q6Quant(src, j), q6Quant(src, j + 4), q6Quant(src, j + 8), q6Quant(src, j + 12));
    }
  }
}

/** Rewrites a Q6_K matrix in place as Q6_Kx4 (packKx4). */
export function packQ6_Kx4(w: usize, rows: i32, k: i32, scratch: usize): void {
  packKx4(false, w, rows, k, scratch);
}

/**
 * Vector e (0..3, a literal) of 64 six-bit values stored in the three vectors at p (Q6_Kx4's quants,
 * Q4_Kx4's scales and mins): vectors 0..2 are their low six bits, vector 3 is assembled from their
 * top two bits (p's as bits 0-1, p + 16's as 2-3, p + 32's as 4-5). 16-bit shifts: what crosses
 * from the neighbouring byte lies outside the masks.
 */
@inline function sixBitLanes(p: usize, e: i32): v128 {
  if (e < 3) return v128.and(v128.load(p + 16 * <usize>e), bytes(0x3f));
  const a = v128.and(i16x8.shr_u(v128.load(p), 6), bytes(0x03));
  const b = v128.and(i16x8.shr_u(v128.load(p, 16), 4), bytes(0x0c));
  return v128.or(v128.or(a, b), v128.and(i16x8.shr_u(v128.load(p, 32), 2), bytes(0x30)));
}

/** Lane vector e (0..3, a literal) of sub-block s of the Q6_Kx4 block at g: the four rows' quants 0..63. */
@inline function q6x4Lanes(g: usize, s: usize, e: i32): v128 {
  return sixBitLanes(g + 72 + 48 * s, e);
}

/** The Q6_Kx4 group at g (nb super-blocks) unpacked into the packed prefill's layout at dst (packRowsK's bytes for its four GGUF rows). */
function unpackQ6_Kx4(g: usize, nb: i32, dst: usize): void {
  for (let b = 0; b < nb; b++, g += Q6X4_BLOCK, dst += PACKED_K_BYTES) {
    for (let s: usize = 0; s < 16; s++) {
      v128.store(dst + 64 * s, q6x4Lanes(g, s, 0));
      v128.store(dst + 64 * s + 16, q6x4Lanes(g, s, 1));
      v128.store(dst + 64 * s + 32, q6x4Lanes(g, s, 2));
      v128.store(dst + 64 * s + 48, q6x4Lanes(g, s, 3));
    }
    for (let q: usize = 0; q < 4; q++) {
      // Sub-blocks 4q .. 4q + 3: each one's scales twice ([s_r0, s_r0, s_r1, ...]), and the
      // offsets' pairs of (4q, 4q + 1) and (4q + 2, 4q + 3) ([s_r0(2p), s_r0(2p + 1), s_r1(2p), ...]).
      const sc = v128.load(g + 8 + 16 * q);
      for (let j = 0; j < 4; j++) v128.store(dst + 1024 + 16 * (4 * q + <usize>j), quadPairs(sc, j, j, true));
      v128.store(dst + 1280 + 32 * q, quadPairs(sc, 0, 1, true));
      v128.store(dst + 1296 + 32 * q, quadPairs(sc, 2, 3, true));
    }
    v128.store(dst + 1408, x4Scales(g));
  }
}

/**
 * Bytes 4a..4a + 3 and 4b..4b + 3 of v (a, b = 0..3; the four rows' values of two sub-blocks in an
 * x4 layout's scale field) interleaved and widened to i16 (signed: Q6_K's scales; unsigned: Q4_K's
 * 6-bit scales and mins): [v[4a], v[4b], v[4a + 1], v[4b + 1], ...], the packed tile's row pairs.
 */
@inline function quadPairs(v: v128, a: i32, b: i32, signed: bool): v128 {
  const ia = <u64>(4 * a);
  const ib = <u64>(4 * b);
  const idx = ia | (ib << 8) | ((ia + 1) << 16) | ((ib + 1) << 24) | ((ia + 2) << 32) | ((ib + 2) << 40) | ((ia + 3) << 48) | ((ib + 3) << 56);
  const pairs = i8x16.swizzle(v, i64x2.splat(<i64>idx));
  return signed ? i16x8.extend_low_i8x16_s(pairs) : i16x8.extend_low_i8x16_u(pairs);
}

/** Sub-block s of the Q6_Kx4 block at g against the Q8K block at xb: the four rows' integer dots of (q - 32). */
@inline function q6x4Sub(g: usize, xb: usize, s: usize): v128 {
  const x = xb + 36 + 16 * s;
  // The -32 offset as the first chain's start: -32 times the token's sum of these 16 quants.
  const d0 = dotU7(q6x4Lanes(g, s, 0), v128.load32_splat(x), i32x4.splat(<i32>load<i16>(xb + 4 + 2 * s) * -32));
  const d1 = dotU7(q6x4Lanes(g, s, 1), v128.load32_splat(x, 4), i32x4.splat(0));
  return i32x4.add(dotU7(q6x4Lanes(g, s, 2), v128.load32_splat(x, 8), d0), dotU7(q6x4Lanes(g, s, 3), v128.load32_splat(x, 12), d1));
}

/** The four rows' outputs of one token (Q8K blocks at xt) against the Q6_Kx4 group at g, without bias. */
@inline function dotQ6_Kx4(g: usize, xt: usize, nb: i32): v128 {
  let acc = f32x4.splat(0);
  for (let b = 0, o: usize = 0; b < nb; b++, o += 292, g += Q6X4_BLOCK) {
    const xb = xt + o;
    let isum = i32x4.splat(0);
    for (let q: usize = 0; q < 16; q += 4) {
      const sc = v128.load(g + 8 + 4 * q);
      const lo = i16x8.extend_low_i8x16_s(sc);
      const hi = i16x8.extend_high_i8x16_s(sc);
      isum = i32x4.add(isum, i32x4.mul(q6x4Sub(g, xb, q), i32x4.extend_low_i16x8_s(lo)));
      isum = i32x4.add(isum, i32x4.mul(q6x4Sub(g, xb, q + 1), i32x4.extend_high_i16x8_s(lo)));
      isum = i32x4.add(isum, i32x4.mul(q6x4Sub(g, xb, q + 2), i32x4.extend_low_i16x8_s(hi)));
      isum = i32x4.add(isum, i32x4.mul(q6x4Sub(g, xb, q + 3), i32x4.extend_high_i16x8_s(hi)));
    }
    acc = madd(f32x4.convert_i32x4_s(isum), f32x4.mul(v128.load32_splat(xb), x4Scales(g)), acc);
  }
  return acc;
}

// ---------------------------------------------------------------------------------------------
// Q4_Kx4: Q4_K stored four rows interleaved, in the same bytes (the relaxed build's decode layout).
// Per super-block of the four rows (576 bytes = 4 x 144):
//   [0, 8)     the rows' f16 d;  [8, 16) their f16 dmin;
//   [16, 64)   their 6-bit scales and mins as sixBitLanes' three vectors: field 0 the scales of
//              sub-blocks 0..3, field 1 those of 4..7, field 2 the mins of 0..3, field 3 those of
//              4..7; byte 4j + r of a field is row r's value of its j-th sub-block;
//   [64, 576)  per sub-block j of 32 elements, four vectors at 64 + 64j: byte p of vector e holds
//              row p >> 2's quants of elements 32j + 4e + (p & 3) (low nibble) and 16 more (high
//              nibble).
// A token's four rows: per sub-block eight dots against the token's broadcast bytes (the high
// nibbles in place where the unsigned-byte dot is exact: 16 times the sum, shifted back), one
// multiply by the rows' scales, the mins against the sub-block's activation sum; no hsum4I and
// no kmask. The integers per block and the float operations are the packed prefill tile's, so a
// token gives bitwise the same outputs decoded alone or in a tile.

const Q4KX4_BLOCK: usize = 576;

/** The quant (0..15) of element e of the Q4_K super-block at w (packing only). */
@inline function q4kQuant(w: usize, e: i32): u32 {
  const c = e >> 6;
  const l = e & 63;
  const v = <u32>load<u8>(w + 16 + <usize>(32 * c + (l & 31)));
  return l >= 32 ? v >> 4 : v & 15;
}

/** Row i's super-block at src (GGUF Q4_K) into its lanes of the Q4_Kx4 block at dst. */
@inline function packQ4_KRow(src: usize, dst: usize, i: usize): void {
  store<u16>(dst + 2 * i, load<u16>(src));
  store<u16>(dst + 8 + 2 * i, load<u16>(src + 2));
  for (let j = 0; j < 4; j++) {
    storeSixBits(dst + 16 + 4 * <usize>j + i, <u32>scaleK4(j, src + 4), <u32>scaleK4(j + 4, src + 4), <u32>minK4(j, src + 4), <u32>minK4(j + 4, src + 4));
  }
  for (let j = 0; j < 8; j++) {
    for (let e = 0; e < 4; e++) {
      for (let c = 0; c < 4; c++) {
        const el = 32 * j + 4 * e + c;
        store<u8>(dst + 64 + 64 * <usize>j + 16 * <usize>e + 4 * i + <usize>c, q4kQuant(src, el) | (q4kQuant(src, el + 16) << 4));
      }
    }
  }
}

/** Rewrites a Q4_K matrix in place as Q4_Kx4 (packKx4). */
export function packQ4_Kx4(w: usize, rows: i32, k: i32, scratch: usize): void {
  packKx4(true, w, rows, k, scratch);
}

/** Field f (0..3, a literal) of the Q4_Kx4 block at g: scales 0..3, scales 4..7, mins 0..3, mins 4..7 (byte 4j + r). */
@inline function q4Kx4Field(g: usize, f: i32): v128 {
  return sixBitLanes(g + 16, f);
}

/** Lanes 4j..4j + 3 (j = 0..3, a literal) of bytes v as unsigned i32s. */
@inline function byteQuad(v: v128, j: i32): v128 {
  const h = j < 2 ? i16x8.extend_low_i8x16_u(v) : i16x8.extend_high_i8x16_u(v);
  return (j & 1) == 0 ? i32x4.extend_low_i16x8_u(h) : i32x4.extend_high_i16x8_u(h);
}

/**
 * Sub-block j of the Q4_Kx4 block at g against the Q8K block at xb: the four rows' integer dots.
 * u8 (a literal): the high nibbles in place, 16 times their value, with the unsigned-byte dot.
 */
@inline function q4Kx4Sub(g: usize, xb: usize, j: usize, u8: bool): v128 {
  const p = g + 64 + 64 * j;
  const x = xb + 36 + 32 * j;
  const n0 = v128.load(p);
  const n1 = v128.load(p, 16);
  const n2 = v128.load(p, 32);
  const n3 = v128.load(p, 48);
  const m = bytes(0x0f);
  const z = i32x4.splat(0);
  const lo = dotU7(v128.and(n3, m), v128.load32_splat(x, 12), dotU7(v128.and(n2, m), v128.load32_splat(x, 8),
    dotU7(v128.and(n1, m), v128.load32_splat(x, 4), dotU7(v128.and(n0, m), v128.load32_splat(x), z))));
  if (u8) {
    const mh = bytes(0xf0);
    const hi = dotU8Add(v128.load32_splat(x, 28), v128.and(n3, mh), dotU8Add(v128.load32_splat(x, 24), v128.and(n2, mh),
      dotU8Add(v128.load32_splat(x, 20), v128.and(n1, mh), dotU8Add(v128.load32_splat(x, 16), v128.and(n0, mh), z))));
    return i32x4.add(lo, i32x4.shr_s(hi, 4));
  }
  const hi = dotU7(hiNibbles(n3), v128.load32_splat(x, 28), dotU7(hiNibbles(n2), v128.load32_splat(x, 24),
    dotU7(hiNibbles(n1), v128.load32_splat(x, 20), dotU7(hiNibbles(n0), v128.load32_splat(x, 16), z))));
  return i32x4.add(lo, hi);
}

/** The Q8K block at xb's sum of sub-block j's 32 quants (its two 16-sums) in every lane. */
@inline function q8kSum32(xb: usize, j: usize): v128 {
  return i32x4.dot_i16x8_s(v128.load32_splat(xb + 4 + 4 * j), words(1));
}

/** The four rows' outputs of one token (Q8K blocks at xt) against the Q4_Kx4 group at g, without bias; u8 as q4Kx4Sub. */
@inline function dotQ4_Kx4(g: usize, xt: usize, nb: i32, u8: bool): v128 {
  let acc = f32x4.splat(0);
  let macc = f32x4.splat(0);
  for (let b = 0, o: usize = 0; b < nb; b++, o += 292, g += Q4KX4_BLOCK) {
    const xb = xt + o;
    let isum = i32x4.splat(0);
    let msum = i32x4.splat(0);
    for (let h: usize = 0; h < 2; h++) {
      // Sub-blocks 4h .. 4h + 3: their scales are field h, their mins field 2 + h.
      const sc = h == 0 ? q4Kx4Field(g, 0) : q4Kx4Field(g, 1);
      const mn = h == 0 ? q4Kx4Field(g, 2) : q4Kx4Field(g, 3);
      const j: usize = 4 * h;
      isum = i32x4.add(isum, i32x4.mul(q4Kx4Sub(g, xb, j, u8), byteQuad(sc, 0)));
      isum = i32x4.add(isum, i32x4.mul(q4Kx4Sub(g, xb, j + 1, u8), byteQuad(sc, 1)));
      isum = i32x4.add(isum, i32x4.mul(q4Kx4Sub(g, xb, j + 2, u8), byteQuad(sc, 2)));
      isum = i32x4.add(isum, i32x4.mul(q4Kx4Sub(g, xb, j + 3, u8), byteQuad(sc, 3)));
      msum = i32x4.add(msum, i32x4.mul(q8kSum32(xb, j), byteQuad(mn, 0)));
      msum = i32x4.add(msum, i32x4.mul(q8kSum32(xb, j + 1), byteQuad(mn, 1)));
      msum = i32x4.add(msum, i32x4.mul(q8kSum32(xb, j + 2), byteQuad(mn, 2)));
      msum = i32x4.add(msum, i32x4.mul(q8kSum32(xb, j + 3), byteQuad(mn, 3)));
    }
    const xd = v128.load32_splat(xb);
    acc = madd(f32x4.convert_i32x4_s(isum), f32x4.mul(xd, x4Scales(g)), acc);
    macc = madd(f32x4.convert_i32x4_s(msum), f32x4.mul(xd, x4Scales(g + 8)), macc);
  }
  return f32x4.sub(acc, macc);
}


/** The Q4_Kx4 group at g (nb super-blocks) unpacked into the packed prefill's layout at dst (packRowsK's bytes for its four GGUF rows). */
function unpackQ4_Kx4(g: usize, nb: i32, dst: usize): void {
  for (let b = 0; b < nb; b++, g += Q4KX4_BLOCK, dst += PACKED_K_BYTES) {
    for (let j: usize = 0; j < 8; j++) {
      for (let e: usize = 0; e < 4; e++) {
        const n = v128.load(g + 64 + 64 * j + 16 * e);
        v128.store(dst + 128 * j + 16 * e, v128.and(n, bytes(0x0f)));
        v128.store(dst + 128 * j + 64 + 16 * e, hiNibbles(n));
      }
    }
    for (let h = 0; h < 2; h++) {
      const sc = h == 0 ? q4Kx4Field(g, 0) : q4Kx4Field(g, 1);
      const mn = h == 0 ? q4Kx4Field(g, 2) : q4Kx4Field(g, 3);
      for (let j = 0; j < 4; j++) {
        // Sub-block 4h + j's scales for both its groups of 16.
        const s = quadPairs(sc, j, j, false);
        v128.store(dst + 1024 + 32 * <usize>(4 * h + j), s);
        v128.store(dst + 1040 + 32 * <usize>(4 * h + j), s);
      }
      // The mins' pairs of sub-blocks (4h, 4h + 1) and (4h + 2, 4h + 3).
      v128.store(dst + 1280 + 32 * <usize>h, quadPairs(mn, 0, 1, false));
      v128.store(dst + 1296 + 32 * <usize>h, quadPairs(mn, 2, 3, false));
    }
    v128.store(dst + 1408, x4Scales(g));
    v128.store(dst + 1424, x4Scales(g + 8));
  }
}

/** Value e (0..3) of the six-bit quadruple whose bytes are p, p + 16 and p + 32 (storeSixBits), one at a time (embed). */
@inline function sixBitsAt(p: usize, e: i32): i32 {
  if (e < 3) return <i32>load<u8>(p + 16 * <usize>e) & 63;
  return (<i32>load<u8>(p) >> 6) | ((<i32>load<u8>(p + 16) >> 6) << 2) | ((<i32>load<u8>(p + 32) >> 6) << 4);
}

/**
 * Row `id` of a Q4_Kx4 (q4) or Q6_Kx4 table (k elements) dequantized to f32 at dst (embed): the GGUF
 * row's values, rounded as dequantK45 / dequantQ6_K round them.
 */
function dequantKx4Row(q4: bool, table: usize, k: i32, id: u32, dst: usize): void {
  const nb = k >> 8;
  const bs: usize = q4 ? Q4KX4_BLOCK : Q6X4_BLOCK;
  const lane = <usize>(id & 3);
  let p = table + <usize>(id >> 2) * <usize>nb * bs;
  for (let b = 0; b < nb; b++, p += bs, dst += 1024) {
    if (q4) dequantQ4_Kx4Lane(p, lane, dst);
    else dequantQ6_Kx4Lane(p, lane, dst);
  }
}

/** Row `lane`'s 256 values of the Q4_Kx4 block at p to dst: (d * scale) * q - dmin * min. */
@inline function dequantQ4_Kx4Lane(p: usize, lane: usize, dst: usize): void {
  const d = f16(<u32>load<u16>(p + 2 * lane));
  const dmin = f16(<u32>load<u16>(p + 8 + 2 * lane));
  for (let j: usize = 0; j < 8; j++) {
    const f = p + 16 + 4 * (j & 3) + lane;
    const d1 = d * <f32>sixBitsAt(f, j < 4 ? 0 : 1);
    const m1 = dmin * <f32>sixBitsAt(f, j < 4 ? 2 : 3);
    for (let t: usize = 0; t < 32; t++) {
      const byte = <i32>load<u8>(p + 64 + 64 * j + 16 * ((t & 15) >> 2) + 4 * lane + (t & 3));
      const q = t < 16 ? byte & 15 : byte >> 4;
      store<f32>(dst + ((32 * j + t) << 2), <f32>q * d1 - m1);
    }
  }
}

/** Row `lane`'s 256 values of the Q6_Kx4 block at p to dst: (d * scale) * (q - 32). */
@inline function dequantQ6_Kx4Lane(p: usize, lane: usize, dst: usize): void {
  const d = f16(<u32>load<u16>(p + 2 * lane));
  for (let s: usize = 0; s < 16; s++) {
    const sc = d * <f32>load<i8>(p + 8 + 4 * s + lane);
    const q = p + 72 + 48 * s + 4 * lane;
    for (let c: usize = 0; c < 4; c++) {
      for (let e = 0; e < 4; e++) store<f32>(dst + ((16 * s + 4 * <usize>e + c) << 2), sc * <f32>(sixBitsAt(q + c, e) - 32));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Relaxed-SIMD prefill for the K-quants, packed as for the 32-blocks above: four rows of a
// super-block unpacked once into unsigned quants, row-interleaved (vector e: rows 0..3 x elements
// 4e..4e+3), then every group of four tokens runs over them. Per 16 elements the i16 pair sums
// (pmaddubsw) of four vectors (Q4_K, Q5_K: quants <= 31; Q3_K + 4, Q2_K: <= 7) or two (Q6_K:
// <= 63) widen to i32 in one `i32x4.dot_i16x8_s` with the four rows' sub-block scales, so the
// scales cost nothing extra. The mins (Q4_K, Q5_K, Q2_K) and the offsets (Q6_K's -32, Q3_K's -4):
// one i16 dot per pair of sums (of 16; Q4_K, Q5_K: of 32), broadcast, against the rows' mins /
// scales. The integers and
// float operations per output are those of dotK45Q8Kx4 / dotQ6_KQ8Kx4, so results are bitwise the
// unpacked path's (Q3_K and Q2_K: the integers of their one-token dots, scaled per block). Per
// super-block (1440 bytes): 64 quant vectors; 16 scale vectors (i16 [s_r0, s_r0, s_r1, s_r1, ...]
// per 16 elements); 8 min vectors (i16 [m_r0(2p), m_r0(2p + 1), m_r1(2p), ...] per pair p of 16s;
// Q6_K, Q3_K: their scales; Q4_K, Q5_K: 4 vectors, p a pair of their mins per 32); f32x4 d;
// f32x4 dmin.

const PACKED_K_BYTES: usize = 1440;

/** Bytes `matmulQ8K`'s packed prefill needs in its scratch for rows of k elements (k % 256 == 0). */
export function q8kPackBytes(k: i32): usize {
  return <usize>(k >> 8) * PACKED_K_BYTES;
}

/** Elements 16g .. 16g + 15 of a Q4_K / Q5_K (q5) super-block at w as unsigned quants. */
@inline function k45Lanes(w: usize, g: i32, q5: bool): v128 {
  const c = g >> 2; // 64-element chunk: low nibbles are its first 32 elements, high nibbles the rest
  const h = g & 3;
  const v = v128.load(w + (q5 ? 48 : 16) + <usize>(32 * c + 16 * (h & 1)));
  let q = h < 2 ? v128.and(v, bytes(0x0f)) : hiNibbles(v);
  if (q5) q = v128.or(q, bit5(v128.load(w + 16 + <usize>(16 * (h & 1))), 2 * c + (h >> 1)));
  return q;
}

/** Elements 16g .. 16g + 15 of a Q6_K super-block at w as unsigned quants (0..63). */
@inline function q6LanesAt(w: usize, g: i32): v128 {
  const half: usize = <usize>(g >> 3);
  const l0: usize = <usize>(16 * (g & 1));
  const qlA = v128.load(w + 64 * half + l0);
  const qlB = v128.load(w + 64 * half + 32 + l0);
  const qh = v128.load(w + 128 + 32 * half + l0);
  const q = (g & 7) >> 1;
  return q == 0 ? q6Lanes(qlA, qlB, qh, 0) : q == 1 ? q6Lanes(qlA, qlB, qh, 1) : q == 2 ? q6Lanes(qlA, qlB, qh, 2) : q6Lanes(qlA, qlB, qh, 3);
}

/**
 * Elements 16g .. 16g + 15 of a Q3_K super-block at w as unsigned quants (value + 4, 0..7): half
 * h = g / 8 of the 2-bit quants, bit pair j = (g / 2) % 4, bytes 16 (g % 2) on; the third bit is
 * bit 4h + j of the same hmask bytes (as q3Quad reads them).
 */
@inline function q3LanesAt(w: usize, g: i32): v128 {
  const h = g >> 3;
  const j = (g >> 1) & 3;
  const half: usize = <usize>(16 * (g & 1));
  return q3Lanes(v128.load(w + 32 + 32 * <usize>h + half), v128.load(w + half), 2 * j, 4 * h + j);
}

/** Elements 16g .. 16g + 15 of a Q2_K super-block at w as unsigned quants (0..3), as q2Quad reads them. */
@inline function q2LanesAt(w: usize, g: i32): v128 {
  const q = v128.load(w + 16 + 32 * <usize>(g >> 3) + <usize>(16 * (g & 1)));
  return v128.and(i16x8.shr_u(q, 2 * ((g >> 1) & 3)), bytes(3));
}

/** Group g's quants of a K-quant super-block (any type). */
@inline function kLanes(type: i32, w: usize, g: i32): v128 {
  if (type == T_Q6_K) return q6LanesAt(w, g);
  if (type == T_Q3_K) return q3LanesAt(w, g);
  if (type == T_Q2_K) return q2LanesAt(w, g);
  return k45Lanes(w, g, type == T_Q5_K);
}

/** Bytes of one super-block of a K-quant type. */
@inline function kBlockBytes(type: i32): usize {
  return type == T_Q4_K ? 144 : type == T_Q5_K ? 176 : type == T_Q6_K ? 210 : type == T_Q3_K ? 110 : 84;
}

/** The 16 scales per 16 of a Q6_K (signed), Q3_K (signed, less 32) or Q2_K (unsigned 4-bit) super-block at w, as i8 lanes. */
@inline function kScales16(type: i32, w: usize): v128 {
  if (type == T_Q6_K) return v128.load(w + 192);
  if (type == T_Q3_K) return q3Scales(w + 96);
  return v128.and(v128.load(w), bytes(0x0f));
}

/** The scales per 16 elements: Q6_K, Q3_K and Q2_K (Q4_K and Q5_K have theirs per 32). */
@inline function scalesPer16(type: i32): bool {
  return type == T_Q6_K || type == T_Q3_K || type == T_Q2_K;
}

/** Offset of the f16 super-block scale d. */
@inline function kScaleOffset(type: i32): usize {
  return type == T_Q6_K ? 208 : type == T_Q3_K ? 108 : type == T_Q2_K ? 80 : 0;
}

/**
 * Two rows' eight 6-bit scales (mins: false) or mins (true) of a Q4_K / Q5_K super-block, from the
 * 12 scale bytes at s0 and s1, as bytes 0..7 and 8..15 (llama.cpp's kmask decoding).
 */
@inline function k45RowBytes(s0: usize, s1: usize, mins: bool): v128 {
  if (mins) return i64x2.replace_lane(k4Mins(load<u32>(s0), load<u32>(s0 + 4), load<u32>(s0 + 8)), 1, i64x2.extract_lane(k4Mins(load<u32>(s1), load<u32>(s1 + 4), load<u32>(s1 + 8)), 0));
  const a = (<u64>k4ScalesHi(load<u32>(s0), load<u32>(s0 + 8)) << 32) | <u64>k4ScalesLo(load<u32>(s0));
  const b = (<u64>k4ScalesHi(load<u32>(s1), load<u32>(s1 + 8)) << 32) | <u64>k4ScalesLo(load<u32>(s1));
  return i64x2.replace_lane(i64x2.splat(a), 1, b);
}

/**
 * [v_r0,i0, v_r0,i1, v_r1,i0, v_r1,i1, ...] as i16 from two k45RowBytes vectors (rows 0, 1 in lo;
 * 2, 3 in hi): a scale twice (i0 = i1) or a pair of mins.
 */
/**
 * Swizzle indices of rowPairsOf (two vectors: rows 0, 1 of lo; rows 2, 3 of hi) and rowPairsI8
 * (four: row r's two bytes at 2r), 0x80 for the bytes that stay 0.
 */
const ROW_PAIR_INDICES = memory.data<u8>([
  0, 0, 8, 8, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
  0x80, 0x80, 0x80, 0x80, 0, 0, 8, 8, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
  0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
  0x80, 0x80, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
  0x80, 0x80, 0x80, 0x80, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
  0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
]);
@inline function rowPairsOf(lo: v128, hi: v128, i0: i32, i1: i32): v128 {
  // Rows 0, 1 from lo into bytes 0..3, rows 2, 3 from hi into 4..7; indices from 0x80 give 0.
  const at = i16x8.splat(<i16>((i1 << 8) | i0));
  const a = zeroSwizzle(lo, i8x16.add(v128.load(ROW_PAIR_INDICES), at));
  const b = zeroSwizzle(hi, i8x16.add(v128.load(ROW_PAIR_INDICES, 16), at));
  return i16x8.extend_low_i8x16_u(v128.or(a, b));
}
@inline function rowPairsI8(v0: v128, v1: v128, v2: v128, v3: v128, i0: i32, i1: i32): v128 {
  // Each row's two indices at its two bytes, 0x80 (the swizzle gives 0) everywhere else.
  const at = i16x8.splat(<i16>((i1 << 8) | i0));
  const r0 = zeroSwizzle(v0, v128.or(at, v128.load(ROW_PAIR_INDICES, 32)));
  const r1 = zeroSwizzle(v1, v128.or(at, v128.load(ROW_PAIR_INDICES, 48)));
  const r2 = zeroSwizzle(v2, v128.or(at, v128.load(ROW_PAIR_INDICES, 64)));
  const r3 = zeroSwizzle(v3, v128.or(at, v128.load(ROW_PAIR_INDICES, 80)));
  return i16x8.extend_low_i8x16_s(v128.or(v128.or(r0, r1), v128.or(r2, r3)));
}

/** Rows r..r+3 (rb bytes apart) of a K-quant matrix, nb super-blocks each, packed at dst. */
@inline function packRowsK(type: i32, w: usize, rb: usize, nb: i32, dst: usize): void {
  const bs = kBlockBytes(type);
  const w1 = w + rb;
  const w2 = w1 + rb;
  const w3 = w2 + rb;
  for (let b = 0, o: usize = 0; b < nb; b++, o += bs, dst += PACKED_K_BYTES) {
    for (let g = 0; g < 16; g++) {
      storeTransposed(kLanes(type, w + o, g), kLanes(type, w1 + o, g), kLanes(type, w2 + o, g), kLanes(type, w3 + o, g), dst + 64 * <usize>g);
    }
    if (scalesPer16(type)) {
      // Scales per 16, and the offsets' (Q6_K, Q3_K) or mins' (Q2_K) pairs.
      const v0 = kScales16(type, w + o);
      const v1 = kScales16(type, w1 + o);
      const v2 = kScales16(type, w2 + o);
      const v3 = kScales16(type, w3 + o);
      for (let g = 0; g < 16; g++) v128.store(dst + 1024 + 16 * <usize>g, rowPairsI8(v0, v1, v2, v3, g, g));
      if (type == T_Q2_K) {
        const m0 = hiNibbles(v128.load(w + o));
        const m1 = hiNibbles(v128.load(w1 + o));
        const m2 = hiNibbles(v128.load(w2 + o));
        const m3 = hiNibbles(v128.load(w3 + o));
        for (let p = 0; p < 8; p++) v128.store(dst + 1280 + 16 * <usize>p, rowPairsI8(m0, m1, m2, m3, 2 * p, 2 * p + 1));
      } else {
        for (let p = 0; p < 8; p++) v128.store(dst + 1280 + 16 * <usize>p, rowPairsI8(v0, v1, v2, v3, 2 * p, 2 * p + 1));
      }
    } else {
      // Scales per 32 (both groups of 16 of sub-block j), and the mins: the pair of 16-sums of sub-block j.
      const sLo = k45RowBytes(w + o + 4, w1 + o + 4, false);
      const sHi = k45RowBytes(w2 + o + 4, w3 + o + 4, false);
      const mLo = k45RowBytes(w + o + 4, w1 + o + 4, true);
      const mHi = k45RowBytes(w2 + o + 4, w3 + o + 4, true);
      for (let j = 0; j < 8; j++) {
        const sc = rowPairsOf(sLo, sHi, j, j);
        v128.store(dst + 1024 + 32 * <usize>j, sc);
        v128.store(dst + 1024 + 32 * <usize>j + 16, sc);
      }
      for (let q = 0; q < 4; q++) v128.store(dst + 1280 + 16 * <usize>q, rowPairsOf(mLo, mHi, 2 * q, 2 * q + 1));
    }
    const dOff = kScaleOffset(type);
    let d = f32x4.splat(loadF16(w + o + dOff));
    d = f32x4.replace_lane(d, 1, loadF16(w1 + o + dOff));
    d = f32x4.replace_lane(d, 2, loadF16(w2 + o + dOff));
    d = f32x4.replace_lane(d, 3, loadF16(w3 + o + dOff));
    v128.store(dst + 1408, d);
    if (kHasMins(type)) {
      // dmin: the f16 after d.
      let m = f32x4.splat(loadF16(w + o + dOff + 2));
      m = f32x4.replace_lane(m, 1, loadF16(w1 + o + dOff + 2));
      m = f32x4.replace_lane(m, 2, loadF16(w2 + o + dOff + 2));
      m = f32x4.replace_lane(m, 3, loadF16(w3 + o + dOff + 2));
      v128.store(dst + 1424, m);
    }
  }
}

/** Q4_K, Q5_K and Q2_K subtract dmin times their mins; Q6_K and Q3_K have a fixed offset (-32, -4) instead. */
@inline function kHasMins(type: i32): bool {
  return type != T_Q6_K && type != T_Q3_K;
}

/** One token's 16 elements of group g (quants at xg) against the packed group at p, scaled, into isum. */
@inline function packedKGroup(type: i32, p: usize, sc: v128, xg: usize, isum: v128): v128 {
  const a = i16x8.add(pairDot(v128.load32_splat(xg), v128.load(p)), pairDot(v128.load32_splat(xg, 4), v128.load(p, 16)));
  const b = i16x8.add(pairDot(v128.load32_splat(xg, 8), v128.load(p, 32)), pairDot(v128.load32_splat(xg, 12), v128.load(p, 48)));
  // Q4_K / Q5_K: four pair sums <= 4 * 2 * 31 * 127 fit in i16; Q6_K's two <= 2 * 2 * 63 * 127 do.
  if (type == T_Q6_K) return i32x4.add(isum, i32x4.add(i32x4.dot_i16x8_s(a, sc), i32x4.dot_i16x8_s(b, sc)));
  return i32x4.add(isum, i32x4.dot_i16x8_s(i16x8.add(a, b), sc));
}

/**
 * One token's 16 elements at xg against a packed group's four vectors, with i32 dots (where the
 * unsigned-byte dot is exact, one instruction): the rows' sums. The 16 bytes are loaded once and
 * each group of four broadcast from the register (1.07-1.13x four 4-byte broadcast loads).
 */
@inline function packedKDot(w0: v128, w1: v128, w2: v128, w3: v128, xg: usize): v128 {
  const x = v128.load(xg);
  const d = dotU8Add(i32x4.shuffle(x, x, 0, 0, 0, 0), w0, i32x4.splat(0));
  const e = dotU8Add(i32x4.shuffle(x, x, 1, 1, 1, 1), w1, i32x4.splat(0));
  return i32x4.add(dotU8Add(i32x4.shuffle(x, x, 2, 2, 2, 2), w2, d), dotU8Add(i32x4.shuffle(x, x, 3, 3, 3, 3), w3, e));
}

/**
 * packedKDot over two consecutive groups that share their scales (Q4_K / Q5_K: a sub-block of 32
 * is groups 2j, 2j + 1): the eight weight vectors at pg, the token's 32 elements at xg, one sum
 * (x4DotsU8). Called per token with the same pg: V8 merges the four tokens' loads of the weights
 * and keeps them in registers.
 */
@inline function packedKDot32(pg: usize, xg: usize): v128 {
  return x4DotsU8(
    v128.load(pg), v128.load(pg, 16), v128.load(pg, 32), v128.load(pg, 48),
    v128.load(pg, 64), v128.load(pg, 80), v128.load(pg, 96), v128.load(pg, 112), xg,
  );
}

/** sum_q dot(lane q of v in every lane, the packed i16 pairs at p + 16q), q = 0..3. */
@inline function pairsDot4(v: v128, p: usize): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(i32x4.shuffle(v, v, 0, 0, 0, 0), v128.load(p)), i32x4.dot_i16x8_s(i32x4.shuffle(v, v, 1, 1, 1, 1), v128.load(p, 16))),
    i32x4.add(i32x4.dot_i16x8_s(i32x4.shuffle(v, v, 2, 2, 2, 2), v128.load(p, 32)), i32x4.dot_i16x8_s(i32x4.shuffle(v, v, 3, 3, 3, 3), v128.load(p, 48))),
  );
}

/**
 * One token's correction sum from its Q8K block's 16-sums (at xb + 4) and the rows' packed mins /
 * scales. Per 16 (Q6_K, Q3_K, Q2_K): eight pairs of 16-sums against the rows' pairs. Per 32 (Q4_K,
 * Q5_K's mins): the 16-sums added in pairs first (|sum| <= 32 * 127 fits i16), then four pairs of
 * those against the rows' pairs of mins: half the dots (1.2x the K tile with the line above).
 */
@inline function packedKCorr(type: i32, p: usize, xb: usize): v128 {
  const v0 = v128.load(xb + 4);
  const v1 = v128.load(xb + 20);
  if (scalesPer16(type)) return i32x4.add(pairsDot4(v0, p + 1280), pairsDot4(v1, p + 1344));
  return pairsDot4(i16x8.narrow_i32x4_s(i32x4.extadd_pairwise_i16x8_s(v0), i32x4.extadd_pairwise_i16x8_s(v1)), p + 1280);
}

/** Four packed K rows against four tokens of Q8K activations; the four rows' outputs per token as one vector. */
@inline function packedKTile(type: i32, p: usize, nb: i32, xq: usize, xqs: usize, out: usize, os: usize, bias4: v128, u8: bool): void {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let m0 = f32x4.splat(0);
  let m1 = f32x4.splat(0);
  let m2 = f32x4.splat(0);
  let m3 = f32x4.splat(0);
  const x1 = xq + xqs;
  const x2 = x1 + xqs;
  const x3 = x2 + xqs;
  // Per-32 scales (Q4_K, Q5_K) with the unsigned-byte dot: a sub-block's two groups at a time.
  const pairs = u8 && !scalesPer16(type);
  for (let b = 0, o: usize = 0; b < nb; b++, o += 292, p += PACKED_K_BYTES) {
    let s0 = i32x4.splat(0);
    let s1 = i32x4.splat(0);
    let s2 = i32x4.splat(0);
    let s3 = i32x4.splat(0);
    for (let g: usize = 0; pairs && g < 16; g += 2) {
      // Per-32 scales (Q4_K, Q5_K): two groups' dots summed before one multiply by their scales.
      const pg = p + 64 * g;
      const sc32 = i32x4.shr_s(v128.load(p + 1024 + 16 * g), 16);
      const xo = o + 36 + 16 * g;
      s0 = i32x4.add(s0, i32x4.mul(packedKDot32(pg, xq + xo), sc32));
      s1 = i32x4.add(s1, i32x4.mul(packedKDot32(pg, x1 + xo), sc32));
      s2 = i32x4.add(s2, i32x4.mul(packedKDot32(pg, x2 + xo), sc32));
      s3 = i32x4.add(s3, i32x4.mul(packedKDot32(pg, x3 + xo), sc32));
    }
    for (let g: usize = 0; !pairs && g < 16; g++) {
      const pg = p + 64 * g;
      const sc = v128.load(p + 1024 + 16 * g);
      const xo = o + 36 + 16 * g;
      if (u8) {
        // The four vectors loaded once for the four tokens; each token's i32 dots (a lane per row)
        // times the rows' scales (the i16 pairs [s, s] read as i32, shifted down).
        const w0 = v128.load(pg);
        const w1 = v128.load(pg, 16);
        const w2 = v128.load(pg, 32);
        const w3 = v128.load(pg, 48);
        const sc32 = i32x4.shr_s(sc, 16);
        s0 = i32x4.add(s0, i32x4.mul(packedKDot(w0, w1, w2, w3, xq + xo), sc32));
        s1 = i32x4.add(s1, i32x4.mul(packedKDot(w0, w1, w2, w3, x1 + xo), sc32));
        s2 = i32x4.add(s2, i32x4.mul(packedKDot(w0, w1, w2, w3, x2 + xo), sc32));
        s3 = i32x4.add(s3, i32x4.mul(packedKDot(w0, w1, w2, w3, x3 + xo), sc32));
        continue;
      }
      s0 = packedKGroup(type, pg, sc, xq + xo, s0);
      s1 = packedKGroup(type, pg, sc, x1 + xo, s1);
      s2 = packedKGroup(type, pg, sc, x2 + xo, s2);
      s3 = packedKGroup(type, pg, sc, x3 + xo, s3);
    }
    const d = v128.load(p + 1408);
    if (!kHasMins(type)) {
      // The offsets in integers: Q6_K's -32 as q6Offset, Q3_K's -4 as dotQ3_KQ8K.
      const shift = type == T_Q6_K ? 5 : 2;
      s0 = i32x4.sub(s0, i32x4.shl(packedKCorr(type, p, xq + o), shift));
      s1 = i32x4.sub(s1, i32x4.shl(packedKCorr(type, p, x1 + o), shift));
      s2 = i32x4.sub(s2, i32x4.shl(packedKCorr(type, p, x2 + o), shift));
      s3 = i32x4.sub(s3, i32x4.shl(packedKCorr(type, p, x3 + o), shift));
    } else {
      const dm = v128.load(p + 1424);
      m0 = madd(f32x4.convert_i32x4_s(packedKCorr(type, p, xq + o)), f32x4.mul(v128.load32_splat(xq + o), dm), m0);
      m1 = madd(f32x4.convert_i32x4_s(packedKCorr(type, p, x1 + o)), f32x4.mul(v128.load32_splat(x1 + o), dm), m1);
      m2 = madd(f32x4.convert_i32x4_s(packedKCorr(type, p, x2 + o)), f32x4.mul(v128.load32_splat(x2 + o), dm), m2);
      m3 = madd(f32x4.convert_i32x4_s(packedKCorr(type, p, x3 + o)), f32x4.mul(v128.load32_splat(x3 + o), dm), m3);
    }
    a0 = madd(f32x4.convert_i32x4_s(s0), f32x4.mul(v128.load32_splat(xq + o), d), a0);
    a1 = madd(f32x4.convert_i32x4_s(s1), f32x4.mul(v128.load32_splat(x1 + o), d), a1);
    a2 = madd(f32x4.convert_i32x4_s(s2), f32x4.mul(v128.load32_splat(x2 + o), d), a2);
    a3 = madd(f32x4.convert_i32x4_s(s3), f32x4.mul(v128.load32_splat(x3 + o), d), a3);
  }
  if (kHasMins(type)) {
    a0 = f32x4.sub(a0, m0);
    a1 = f32x4.sub(a1, m1);
    a2 = f32x4.sub(a2, m2);
    a3 = f32x4.sub(a3, m3);
  }
  storeTile(a0, a1, a2, a3, bias4, out, os);
}

/** One weight row of a Q8K type against one token's Q8K activations (the one-token dots, no scratch); hi16: see dotK45Q8K. */
@inline function dotQ8K(type: i32, wr: usize, xt: usize, k: i32, hi16: bool): f32 {
  switch (type) {
    case T_Q4_K: return hi16 ? dotK45Q8K(wr, xt, k, false, true) : dotK45Q8K(wr, xt, k, false);
    case T_Q5_K: return dotK45Q8K(wr, xt, k, true);
    case T_Q6_K: return dotQ6_KQ8K(wr, xt, k);
    case T_Q3_K: return dotQ3_KQ8K(wr, xt, k);
    case T_Q2_K: return dotQ2_KQ8K(wr, xt, k);
    case T_IQ4_XS: return dotIQ4_XSQ8K(wr, xt, k);
    default: unreachable();
  }
  return 0;
}

/** `matmul` on Q8K activations (quantizeQ8K's output, `tokens` rows of k / 256 blocks), K-quant weights. */
export function matmulQ8K(
  type: i32, w: usize, k: i32, xq: usize, y: usize, yStride: i32,
  tokens: i32, bias: usize, rowStart: i32, rowEnd: i32, scratch: usize,
): void {
  const rb = rowBytes(type, k);
  const xqs = <usize>(k >> 8) * 292;
  const ys = <usize>yStride << 2;
  if (RELAXED && scratch && type == T_IQ4_XS) {
    // Prefill: packed four-row groups (the signed types' planes, one of bytes where the
    // unsigned-byte dot is exact) for the whole groups of four tokens. Every other token and row:
    // the token split once into the scratch (free again after the packed rows), then each row's
    // split dot (1.2x an unsigned-byte dot without the split, for the same integers).
    const tiled = tokens & ~3;
    const to = rowStart + ((rowEnd - rowStart) & ~3);
    if (tiled) packedRows(T_IQ4_XS, w, rb, k, xq, xqs, y, ys, tiled, bias, rowStart, to, scratch, unsignedDotOn());
    for (let t = 0; t < tokens; t++) {
      const from = t < tiled ? to : rowStart;
      if (from == rowEnd) continue;
      const xt = xq + <usize>t * xqs;
      splitSignedQ8K(xt, k >> 8, scratch);
      for (let r = from; r < rowEnd; r++) {
        const b0: f32 = bias ? load<f32>(bias + (<usize>r << 2)) : 0;
        store<f32>(y + <usize>t * ys + (<usize>r << 2), dotIQ4_XSSplit(w + <usize>r * rb, scratch, xt, k) + b0);
      }
    }
    return;
  }
  let from = rowStart;
  // Q4_K's one-token dots in their hi16 form where the unsigned-byte dot is exact (1.07x).
  const hi16: bool = RELAXED && type == T_Q4_K && unsignedDotOn();
  // The unpacked four-token dots (plain SIMD's prefill). Q3_K and Q2_K have one-token dots only:
  // their packed tiles give the same integers per block, scaled per block where the one-token dots
  // scale lane partial sums (agreeing to f32 rounding; one total per block cost their decode 4%).
  // IQ4_XS (packed as the 32-block signed types) took its own branch above.
  const tiles = type == T_Q4_K || type == T_Q5_K || type == T_Q6_K;
  if (RELAXED && scratch && tokens >= 4 && (tiles || type == T_Q3_K || type == T_Q2_K)) {
    // Packed four-row groups for the whole groups of four tokens; the rest below. Where the
    // unsigned-byte dot is exact (AVX-VNNI) the i32 dot is one instruction: the tiles use it.
    const tiled = tokens & ~3;
    const u8 = unsignedDotOn();
    const to = rowStart + ((rowEnd - rowStart) & ~3);
    switch (type) {
      case T_Q4_K: packedRows(T_Q4_K, w, rb, k, xq, xqs, y, ys, tiled, bias, rowStart, to, scratch, u8); break;
      case T_Q5_K: packedRows(T_Q5_K, w, rb, k, xq, xqs, y, ys, tiled, bias, rowStart, to, scratch, u8); break;
      case T_Q6_K: packedRows(T_Q6_K, w, rb, k, xq, xqs, y, ys, tiled, bias, rowStart, to, scratch, u8); break;
      case T_Q3_K: packedRows(T_Q3_K, w, rb, k, xq, xqs, y, ys, tiled, bias, rowStart, to, scratch, u8); break;
      default: packedRows(T_Q2_K, w, rb, k, xq, xqs, y, ys, tiled, bias, rowStart, to, scratch, u8);
    }
    for (let r = rowStart; r < to; r++) {
      const wr = w + <usize>r * rb;
      const b0: f32 = bias ? load<f32>(bias + (<usize>r << 2)) : 0;
      for (let t = tiled; t < tokens; t++) {
        const xt = xq + <usize>t * xqs;
        store<f32>(y + <usize>t * ys + (<usize>r << 2), dotQ8K(type, wr, xt, k, hi16) + b0);
      }
    }
    from = to;
  }
  for (let r = from; r < rowEnd; r++) {
    const wr = w + <usize>r * rb;
    const b0: f32 = bias ? load<f32>(bias + (<usize>r << 2)) : 0;
    let t = 0;
    for (; tiles && t + 4 <= tokens; t += 4) {
      const xt = xq + <usize>t * xqs;
      const o = y + <usize>t * ys + (<usize>r << 2);
      switch (type) {
        case T_Q4_K: dotK45Q8Kx4(wr, xt, xqs, k, false, o, ys, b0); break;
        case T_Q5_K: dotK45Q8Kx4(wr, xt, xqs, k, true, o, ys, b0); break;
        case T_Q6_K: dotQ6_KQ8Kx4(wr, xt, xqs, k, o, ys, b0); break;
        default: unreachable();
      }
    }
    for (; t < tokens; t++) {
      store<f32>(y + <usize>t * ys + (<usize>r << 2), dotQ8K(type, wr, xq + <usize>t * xqs, k, hi16) + b0);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Row ops. Row r of an operand starts at ptr + r * stride floats.

/**
 * RMSNorm (layer = 0): x / sqrt(mean(x^2) + eps) * w; LayerNorm (layer = 1):
 * (x - mean) / sqrt(var + eps) * w + b. weight / bias 0 = none. In place allowed (x == y).
 */
export function norm(
  layer: i32, x: usize, xStride: i32, y: usize, yStride: i32, n: i32, eps: f32,
  weight: usize, bias: usize, rowStart: i32, rowEnd: i32,
): void {
  for (let r = rowStart; r < rowEnd; r++) {
    const xr = x + (<usize>r * <usize>xStride << 2);
    const yr = y + (<usize>r * <usize>yStride << 2);
    // Sums in f64: a row is at most a few thousand values, and this keeps norm at float64 accuracy.
    let mean: f64 = 0;
    if (layer) {
      for (let i = 0; i < n; i++) mean += <f64>load<f32>(xr + (<usize>i << 2));
      mean /= <f64>n;
    }
    let sq: f64 = 0;
    for (let i = 0; i < n; i++) {
      const v = <f64>load<f32>(xr + (<usize>i << 2)) - mean;
      sq += v * v;
    }
    const scale = <f32>(1 / Math.sqrt(sq / <f64>n + <f64>eps));
    const m = <f32>mean;
    for (let i = 0; i < n; i++) {
      const o = <usize>i << 2;
      let v = (load<f32>(xr + o) - m) * scale;
      if (weight) v *= load<f32>(weight + o);
      if (bias) v += load<f32>(bias + o);
      store<f32>(yr + o, v);
    }
  }
}

/**
 * RoPE in place on [tokens][heads][headDim] at x (token t, head h at x + t * tokenStride + h *
 * headStride floats), ggml semantics: mode 0 normal (pairs 2p, 2p+1), mode 2 NeoX (pairs p,
 * p + nRot/2); dims >= nRot untouched; theta = pos * base^(-2p/nRot) / factor[p] (freqFactors 0 =
 * none), linear freqScale, YaRN ramp between corr0 and corr1 when extFactor != 0.
 * positions: u32 per token. Tokens [tokStart, tokEnd).
 */
export function rope(
  x: usize, tokenStride: i32, headStride: i32, heads: i32, nRot: i32, mode: i32,
  positions: usize, freqBase: f32, freqScale: f32, extFactor: f32, attnFactor: f32,
  corr0: f32, corr1: f32, freqFactors: usize, tokStart: i32, tokEnd: i32,
): void {
  const half = nRot >> 1;
  for (let t = tokStart; t < tokEnd; t++) {
    const pos = <f64>load<u32>(positions + (<usize>t << 2));
    for (let p = 0; p < half; p++) {
      let thetaExtrap = pos * Math.pow(<f64>freqBase, -(2 * <f64>p) / <f64>nRot);
      if (freqFactors) thetaExtrap /= <f64>load<f32>(freqFactors + (<usize>p << 2));
      const thetaInterp = <f64>freqScale * thetaExtrap;
      let theta = thetaInterp;
      let mscale = <f64>attnFactor;
      if (extFactor != 0) {
        const yv = (<f64>p - <f64>corr0) / Math.max(0.001, <f64>corr1 - <f64>corr0);
        const rampMix = (1 - Math.min(1, Math.max(0, yv))) * <f64>extFactor;
        theta = thetaInterp * (1 - rampMix) + thetaExtrap * rampMix;
        mscale *= 1 + 0.1 * Math.log(1 / <f64>freqScale);
      }
      const c = <f32>(Math.cos(theta) * mscale);
      const s = <f32>(Math.sin(theta) * mscale);
      const i0 = mode == 2 ? p : 2 * p;
      const i1 = mode == 2 ? p + half : 2 * p + 1;
      for (let h = 0; h < heads; h++) {
        const base = x + ((<usize>t * <usize>tokenStride + <usize>h * <usize>headStride) << 2);
        const a0 = base + (<usize>i0 << 2);
        const a1 = base + (<usize>i1 << 2);
        const x0 = load<f32>(a0);
        const x1 = load<f32>(a1);
        store<f32>(a0, x0 * c - x1 * s);
        store<f32>(a1, x0 * s + x1 * c);
      }
    }
  }
}

/**
 * Attention over an f32 KV cache ([capacity][kvHeads][headDim], slot = absolute position) for the
 * (token, head) pairs u = t * heads + h in [uStart, uEnd): score = scale * q.k, softcap when > 0,
 * key p visible when p <= pos[t] and (window == 0 or pos[t] - p < window) and p < kvLength; out =
 * softmax(scores) v. q row t at q + t * qStride floats (heads * headDim within), out likewise.
 * causal 0: every key p < kvLength is visible (T5's encoder and cross-attention; window unused).
 * bias != 0: a relative position bias (T5) is added to each score, table [buckets][heads] at bias,
 * bucket of key p for query position qp = u32 bucketIds[p - qp + bucketOffset].
 * scratch: 2 * kvLength floats (ATTENTION_SCRATCH_FLOATS_PER_KEY on the host). A query that sees no key gets zeros.
 *
 * Two neighbouring units of the same token whose heads share a KV head (GQA / MQA) run as a pair:
 * each key and value row is loaded once for both queries. Each head's operations and their order
 * are those of a unit run alone, so outputs do not depend on the pairing (nor on how a thread pool
 * cuts [uStart, uEnd)).
 */
export function attention(
  q: usize, qStride: i32, kc: usize, vc: usize, out: usize, outStride: i32, positions: usize,
  heads: i32, kvHeads: i32, headDim: i32, kvLength: i32, scale: f32, softcap: f32, window: i32,
  causal: i32, bias: usize, bucketIds: usize, bucketOffset: i32,
  scratch: usize, uStart: i32, uEnd: i32,
): void {
  const group = heads / kvHeads;
  const rowKv = <usize>(kvHeads * headDim) << 2;
  const dEnd = <usize>headDim << 2;
  const headBytes = dEnd;
  let u = uStart;
  while (u < uEnd) {
    const t = u / heads;
    const h = u % heads;
    const kvh = h / group;
    const pair = u + 1 < uEnd && h + 1 < heads && (h + 1) / group == kvh;
    const qp = <i32>load<u32>(positions + (<usize>t << 2));
    const qr = q + ((<usize>t * <usize>qStride + <usize>(h * headDim)) << 2);
    const orow = out + ((<usize>t * <usize>outStride + <usize>(h * headDim)) << 2);
    const last = causal != 0 ? min(qp, kvLength - 1) : kvLength - 1;
    const first = causal != 0 && window > 0 ? max(0, qp - window + 1) : 0;
    memory.fill(orow, 0, pair ? 2 * dEnd : dEnd);
    u += pair ? 2 : 1;
    if (last < first) continue;
    const n = last - first + 1;
    const kb = kc + <usize>first * rowKv + (<usize>(kvh * headDim) << 2);
    const vb = vc + <usize>first * rowKv + (<usize>(kvh * headDim) << 2);
    // The second head's scores follow the first's.
    const scratch1 = scratch + (<usize>n << 2);
    if (pair) attentionScores2(qr, qr + headBytes, kb, n, rowKv, headDim, scale, scratch, scratch1);
    else attentionScores(qr, kb, n, rowKv, headDim, scale, scratch);
    const sum = attentionWeights(scratch, n, softcap, bias, bucketIds, bucketOffset, first - qp, heads, h);
    if (pair) {
      const sum1 = attentionWeights(scratch1, n, softcap, bias, bucketIds, bucketOffset, first - qp, heads, h + 1);
      attentionValues2(scratch, scratch1, vb, n, rowKv, headDim, orow, orow + headBytes);
      attentionNormalize(orow + headBytes, headDim, sum1);
    } else {
      attentionValues(scratch, vb, n, rowKv, headDim, orow);
    }
    attentionNormalize(orow, headDim, sum);
  }
}

/**
 * scale * q.k for n keys (rows rowKv bytes apart from kb) into s, four keys at a time: the query
 * chunk is loaded once for the four, and one transposing sum replaces four horizontal ones. Head
 * sizes not a multiple of 4 take their last elements one at a time.
 */
@inline function attentionScores(qr: usize, kb: usize, n: i32, rowKv: usize, headDim: i32, scale: f32, s: usize): void {
  const dBytes = <usize>(headDim & ~3) << 2;
  const dEnd = <usize>headDim << 2;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const k0 = kb + <usize>i * rowKv;
    const k1 = k0 + rowKv;
    const k2 = k1 + rowKv;
    const k3 = k2 + rowKv;
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    for (let o: usize = 0; o < dBytes; o += 16) {
      const qv = v128.load(qr + o);
      a0 = madd(qv, v128.load(k0 + o), a0);
      a1 = madd(qv, v128.load(k1 + o), a1);
      a2 = madd(qv, v128.load(k2 + o), a2);
      a3 = madd(qv, v128.load(k3 + o), a3);
    }
    let s4 = hsum4F(a0, a1, a2, a3);
    for (let o = dBytes; o < dEnd; o += 4) s4 = madd(f32x4.splat(load<f32>(qr + o)), gather4(k0 + o, k1 + o, k2 + o, k3 + o), s4);
    v128.store(s + (<usize>i << 2), f32x4.mul(s4, f32x4.splat(scale)));
  }
  for (; i < n; i++) store<f32>(s + (<usize>i << 2), attentionScore1(qr, kb + <usize>i * rowKv, headDim) * scale);
}

/** One key's q.k (the scores' tail of fewer than four keys). */
@inline function attentionScore1(qr: usize, kr: usize, headDim: i32): f32 {
  const dBytes = <usize>(headDim & ~3) << 2;
  const dEnd = <usize>headDim << 2;
  let a0 = f32x4.splat(0);
  for (let o: usize = 0; o < dBytes; o += 16) a0 = madd(v128.load(qr + o), v128.load(kr + o), a0);
  let sc = hsum(a0);
  for (let o = dBytes; o < dEnd; o += 4) sc += load<f32>(qr + o) * load<f32>(kr + o);
  return sc;
}

/** attentionScores for two queries (qa into sa, qb into sb) over the same keys: each key chunk loaded once. */
@inline function attentionScores2(qa: usize, qb: usize, kb: usize, n: i32, rowKv: usize, headDim: i32, scale: f32, sa: usize, sb: usize): void {
  const dBytes = <usize>(headDim & ~3) << 2;
  const dEnd = <usize>headDim << 2;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const k0 = kb + <usize>i * rowKv;
    const k1 = k0 + rowKv;
    const k2 = k1 + rowKv;
    const k3 = k2 + rowKv;
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0);
    let b1 = f32x4.splat(0);
    let b2 = f32x4.splat(0);
    let b3 = f32x4.splat(0);
    for (let o: usize = 0; o < dBytes; o += 16) {
      const kv0 = v128.load(k0 + o);
      const kv1 = v128.load(k1 + o);
      const kv2 = v128.load(k2 + o);
      const kv3 = v128.load(k3 + o);
      const qva = v128.load(qa + o);
      a0 = madd(qva, kv0, a0);
      a1 = madd(qva, kv1, a1);
      a2 = madd(qva, kv2, a2);
      a3 = madd(qva, kv3, a3);
      const qvb = v128.load(qb + o);
      b0 = madd(qvb, kv0, b0);
      b1 = madd(qvb, kv1, b1);
      b2 = madd(qvb, kv2, b2);
      b3 = madd(qvb, kv3, b3);
    }
    let sa4 = hsum4F(a0, a1, a2, a3);
    let sb4 = hsum4F(b0, b1, b2, b3);
    for (let o = dBytes; o < dEnd; o += 4) {
      const k4 = gather4(k0 + o, k1 + o, k2 + o, k3 + o);
      sa4 = madd(f32x4.splat(load<f32>(qa + o)), k4, sa4);
      sb4 = madd(f32x4.splat(load<f32>(qb + o)), k4, sb4);
    }
    v128.store(sa + (<usize>i << 2), f32x4.mul(sa4, f32x4.splat(scale)));
    v128.store(sb + (<usize>i << 2), f32x4.mul(sb4, f32x4.splat(scale)));
  }
  for (; i < n; i++) {
    const kr = kb + <usize>i * rowKv;
    store<f32>(sa + (<usize>i << 2), attentionScore1(qa, kr, headDim) * scale);
    store<f32>(sb + (<usize>i << 2), attentionScore1(qb, kr, headDim) * scale);
  }
}

/**
 * Head h's n scores at s (keys from position qp + rel) into softmax weights exp(s - max), in
 * place: softcap and the relative position bias first when asked. Returns the weights' sum.
 */
@inline function attentionWeights(s: usize, n: i32, softcap: f32, bias: usize, bucketIds: usize, bucketOffset: i32, rel: i32, heads: i32, h: i32): f32 {
  if (softcap > 0 || bias != 0) {
    for (let j = 0; j < n; j++) {
      const a = s + (<usize>j << 2);
      let sc = load<f32>(a);
      if (softcap > 0) sc = softcap * Mathf.tanh(sc / softcap);
      if (bias != 0) {
        const bucket = load<u32>(bucketIds + (<usize>(j + rel + bucketOffset) << 2));
        sc += load<f32>(bias + ((<usize>bucket * <usize>heads + <usize>h) << 2));
      }
      store<f32>(a, sc);
    }
  }
  let m: f32 = -Infinity;
  for (let j = 0; j < n; j++) m = max(m, load<f32>(s + (<usize>j << 2)));
  // Weights exp(s - m), four at a time; the sum in four lanes.
  const mv = f32x4.splat(m);
  let sum4 = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const a = s + (<usize>i << 2);
    const e = expNonPositive(f32x4.sub(v128.load(a), mv));
    v128.store(a, e);
    sum4 = f32x4.add(sum4, e);
  }
  let sum = hsum(sum4);
  for (; i < n; i++) {
    const a = s + (<usize>i << 2);
    const e = f32x4.extract_lane(expNonPositive(f32x4.splat(load<f32>(a) - m)), 0);
    store<f32>(a, e);
    sum += e;
  }
  return sum;
}

/** orow += sum_i w[i] v_i over n value rows (rowKv bytes apart from vb), four keys at a time: each output chunk loaded and stored once per four. */
@inline function attentionValues(w: usize, vb: usize, n: i32, rowKv: usize, headDim: i32, orow: usize): void {
  const dBytes = <usize>(headDim & ~3) << 2;
  const dEnd = <usize>headDim << 2;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const wv = v128.load(w + (<usize>i << 2));
    const w0 = f32x4.splat(f32x4.extract_lane(wv, 0));
    const w1 = f32x4.splat(f32x4.extract_lane(wv, 1));
    const w2 = f32x4.splat(f32x4.extract_lane(wv, 2));
    const w3 = f32x4.splat(f32x4.extract_lane(wv, 3));
    const v0 = vb + <usize>i * rowKv;
    const v1 = v0 + rowKv;
    const v2 = v1 + rowKv;
    const v3 = v2 + rowKv;
    for (let o: usize = 0; o < dBytes; o += 16) {
      let acc = v128.load(orow + o);
      acc = madd(w0, v128.load(v0 + o), acc);
      acc = madd(w1, v128.load(v1 + o), acc);
      acc = madd(w2, v128.load(v2 + o), acc);
      acc = madd(w3, v128.load(v3 + o), acc);
      v128.store(orow + o, acc);
    }
    for (let o = dBytes; o < dEnd; o += 4) {
      store<f32>(orow + o, load<f32>(orow + o) + hsum(f32x4.mul(wv, gather4(v0 + o, v1 + o, v2 + o, v3 + o))));
    }
  }
  for (; i < n; i++) attentionValue1(load<f32>(w + (<usize>i << 2)), vb + <usize>i * rowKv, headDim, orow);
}

/** orow += ws * vr (the value sums' tail of fewer than four keys). */
@inline function attentionValue1(ws: f32, vr: usize, headDim: i32, orow: usize): void {
  const dBytes = <usize>(headDim & ~3) << 2;
  const dEnd = <usize>headDim << 2;
  const wv = f32x4.splat(ws);
  for (let o: usize = 0; o < dBytes; o += 16) v128.store(orow + o, madd(wv, v128.load(vr + o), v128.load(orow + o)));
  for (let o = dBytes; o < dEnd; o += 4) store<f32>(orow + o, load<f32>(orow + o) + ws * load<f32>(vr + o));
}

/** attentionValues for two heads' weights (wa into oa, wb into ob) over the same value rows: each value chunk loaded once. */
@inline function attentionValues2(wa: usize, wb: usize, vb: usize, n: i32, rowKv: usize, headDim: i32, oa: usize, ob: usize): void {
  const dBytes = <usize>(headDim & ~3) << 2;
  const dEnd = <usize>headDim << 2;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const wva = v128.load(wa + (<usize>i << 2));
    const wvb = v128.load(wb + (<usize>i << 2));
    const a0 = f32x4.splat(f32x4.extract_lane(wva, 0));
    const a1 = f32x4.splat(f32x4.extract_lane(wva, 1));
    const a2 = f32x4.splat(f32x4.extract_lane(wva, 2));
    const a3 = f32x4.splat(f32x4.extract_lane(wva, 3));
    const b0 = f32x4.splat(f32x4.extract_lane(wvb, 0));
    const b1 = f32x4.splat(f32x4.extract_lane(wvb, 1));
    const b2 = f32x4.splat(f32x4.extract_lane(wvb, 2));
    const b3 = f32x4.splat(f32x4.extract_lane(wvb, 3));
    const v0 = vb + <usize>i * rowKv;
    const v1 = v0 + rowKv;
    const v2 = v1 + rowKv;
    const v3 = v2 + rowKv;
    for (let o: usize = 0; o < dBytes; o += 16) {
      const x0 = v128.load(v0 + o);
      const x1 = v128.load(v1 + o);
      const x2 = v128.load(v2 + o);
      const x3 = v128.load(v3 + o);
      let acc = v128.load(oa + o);
      acc = madd(a0, x0, acc);
      acc = madd(a1, x1, acc);
      acc = madd(a2, x2, acc);
      acc = madd(a3, x3, acc);
      v128.store(oa + o, acc);
      let acb = v128.load(ob + o);
      acb = madd(b0, x0, acb);
      acb = madd(b1, x1, acb);
      acb = madd(b2, x2, acb);
      acb = madd(b3, x3, acb);
      v128.store(ob + o, acb);
    }
    for (let o = dBytes; o < dEnd; o += 4) {
      const x4 = gather4(v0 + o, v1 + o, v2 + o, v3 + o);
      store<f32>(oa + o, load<f32>(oa + o) + hsum(f32x4.mul(wva, x4)));
      store<f32>(ob + o, load<f32>(ob + o) + hsum(f32x4.mul(wvb, x4)));
    }
  }
  for (; i < n; i++) {
    const vr = vb + <usize>i * rowKv;
    attentionValue1(load<f32>(wa + (<usize>i << 2)), vr, headDim, oa);
    attentionValue1(load<f32>(wb + (<usize>i << 2)), vr, headDim, ob);
  }
}

/** orow /= sum (the softmax's denominator, applied once to the value sums). */
@inline function attentionNormalize(orow: usize, headDim: i32, sum: f32): void {
  const dBytes = <usize>(headDim & ~3) << 2;
  const dEnd = <usize>headDim << 2;
  const inv = f32x4.splat(1 / sum);
  for (let o: usize = 0; o < dBytes; o += 16) v128.store(orow + o, f32x4.mul(v128.load(orow + o), inv));
  for (let o = dBytes; o < dEnd; o += 4) store<f32>(orow + o, load<f32>(orow + o) / sum);
}

/** [hsum(a0), hsum(a1), hsum(a2), hsum(a3)] of f32x4s: a 4 x 4 transpose-and-add. */
@inline function hsum4F(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const p01 = f32x4.add(i32x4.shuffle(a0, a1, 0, 4, 1, 5), i32x4.shuffle(a0, a1, 2, 6, 3, 7));
  const p23 = f32x4.add(i32x4.shuffle(a2, a3, 0, 4, 1, 5), i32x4.shuffle(a2, a3, 2, 6, 3, 7));
  return f32x4.add(i64x2.shuffle(p01, p23, 0, 2), i64x2.shuffle(p01, p23, 1, 3));
}

/**
 * exp(x) for x <= 0 (softmax weights), four lanes: Cephes' expf (x = n ln 2 + r, |r| <= ln 2 / 2,
 * a degree-7 polynomial, 2^n in the exponent bits), within 2 ulp of exp. Below -87 (exp < 2^-125)
 * it gives 0: no denormal weight ever reaches the value sums (each would cost x86 a microcode
 * assist), and such a weight is below the f32 rounding of any sum it joins.
 */
@inline function expNonPositive(x: v128): v128 {
  const xc = f32x4.max(x, floats(F_EXP_MIN));
  const n = f32x4.nearest(f32x4.mul(xc, floats(F_LOG2E)));
  let r = f32x4.sub(xc, f32x4.mul(n, floats(F_LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, floats(F_LN2_LO)));
  let p = floats(F_EXP_P0);
  p = f32x4.add(f32x4.mul(p, r), floats(F_EXP_P0 + 1));
  p = f32x4.add(f32x4.mul(p, r), floats(F_EXP_P0 + 2));
  p = f32x4.add(f32x4.mul(p, r), floats(F_EXP_P0 + 3));
  p = f32x4.add(f32x4.mul(p, r), floats(F_EXP_P0 + 4));
  p = f32x4.add(f32x4.mul(p, r), floats(F_EXP_P0 + 5));
  p = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), floats(F_ONE));
  const pow2n = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), lanes32(K_EXP_BIAS)), 23);
  return v128.and(f32x4.mul(p, pow2n), f32x4.gt(x, floats(F_EXP_MIN)));
}

/** softmax(x * scale) per row; in place allowed. */
export function softmax(x: usize, xStride: i32, y: usize, yStride: i32, n: i32, scale: f32, rowStart: i32, rowEnd: i32): void {
  for (let r = rowStart; r < rowEnd; r++) {
    const xr = x + (<usize>r * <usize>xStride << 2);
    const yr = y + (<usize>r * <usize>yStride << 2);
    let m: f32 = -Infinity;
    for (let i = 0; i < n; i++) m = max(m, load<f32>(xr + (<usize>i << 2)) * scale);
    let sum: f32 = 0;
    for (let i = 0; i < n; i++) {
      const e = Mathf.exp(load<f32>(xr + (<usize>i << 2)) * scale - m);
      store<f32>(yr + (<usize>i << 2), e);
      sum += e;
    }
    const inv: f32 = 1 / sum;
    for (let i = 0; i < n; i++) store<f32>(yr + (<usize>i << 2), load<f32>(yr + (<usize>i << 2)) * inv);
  }
}

@inline function gelu(x: f32): f32 {
  // ggml's tanh approximation, with its cut-offs.
  if (x <= -10) return 0;
  if (x >= 10) return x;
  return 0.5 * x * (1 + Mathf.tanh(0.7978845608028654 * x * (1 + 0.044715 * x * x)));
}

/** act(gate) * up per element, act = SiLU (0) or GELU tanh (1); out may alias gate or up. */
export function glu(
  act: i32, gate: usize, gateStride: i32, up: usize, upStride: i32, out: usize, outStride: i32,
  n: i32, rowStart: i32, rowEnd: i32,
): void {
  for (let r = rowStart; r < rowEnd; r++) {
    const g = gate + (<usize>r * <usize>gateStride << 2);
    const u = up + (<usize>r * <usize>upStride << 2);
    const o = out + (<usize>r * <usize>outStride << 2);
    for (let i = 0; i < n; i++) {
      const a = <usize>i << 2;
      const x = load<f32>(g + a);
      const v = act == 0 ? x / (1 + Mathf.exp(-x)) : gelu(x);
      store<f32>(o + a, v * load<f32>(u + a));
    }
  }
}

/**
 * op 0: (a + b) * s, 1: (a * b) * s, 2: a * s, 3: s * tanh(a / s) (softcap), 4: max(a, 0) (ReLU), per element; bStride
 * 0 broadcasts b's first row. out may alias a or b.
 */
export function elementwise(
  op: i32, a: usize, aStride: i32, b: usize, bStride: i32, out: usize, outStride: i32,
  n: i32, s: f32, rowStart: i32, rowEnd: i32,
): void {
  const sv = f32x4.splat(s);
  if (op == 3) {
    for (let r = rowStart; r < rowEnd; r++) {
      const ar = a + (<usize>r * <usize>aStride << 2);
      const orow = out + (<usize>r * <usize>outStride << 2);
      for (let i = 0; i < n; i++) store<f32>(orow + (<usize>i << 2), s * Mathf.tanh(load<f32>(ar + (<usize>i << 2)) / s));
    }
    return;
  }
  for (let r = rowStart; r < rowEnd; r++) {
    const ar = a + (<usize>r * <usize>aStride << 2);
    const br = b + (<usize>r * <usize>bStride << 2);
    const orow = out + (<usize>r * <usize>outStride << 2);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      let v = v128.load(ar + o);
      if (op == 4) {
        v128.store(orow + o, f32x4.max(v, f32x4.splat(0)));
        continue;
      }
      if (op == 0) v = f32x4.add(v, v128.load(br + o));
      else if (op == 1) v = f32x4.mul(v, v128.load(br + o));
      v128.store(orow + o, f32x4.mul(v, sv));
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      let v = load<f32>(ar + o);
      if (op == 4) {
        store<f32>(orow + o, v > 0 ? v : 0);
        continue;
      }
      if (op == 0) v += load<f32>(br + o);
      else if (op == 1) v *= load<f32>(br + o);
      store<f32>(orow + o, v * s);
    }
  }
}

/**
 * Embedding lookup: out row t (at out + t * outStride floats) = dequantized table row ids[t] times
 * scale; zeros for ids >= rows. Tokens [tokStart, tokEnd).
 */
export function embed(
  type: i32, table: usize, k: i32, rows: i32, ids: usize, out: usize, outStride: i32, scale: f32,
  tokStart: i32, tokEnd: i32,
): void {
  // 0 for the interleaved layouts' codes, whose rows are read by their own functions below.
  const rb = rowBytes(type, k);
  const sv = f32x4.splat(scale);
  for (let t = tokStart; t < tokEnd; t++) {
    const id = load<u32>(ids + (<usize>t << 2));
    const o = out + (<usize>t * <usize>outStride << 2);
    if (id >= <u32>rows) {
      memory.fill(o, 0, <usize>k << 2);
      continue;
    }
    if (type == T_Q4_KX4 || type == T_Q6_KX4) dequantKx4Row(type == T_Q4_KX4, table, k, id, o);
    else if (type == T_Q5_0X4 || type == T_Q8_0X4 || type == T_Q4_0X4 || type == T_IQ4_NLX4) dequantInterleavedRow(type, table, k, id, o);
    else dequantize(type, table + <usize>id * rb, o, k);
    if (scale != 1) {
      let i = 0;
      for (; i + 4 <= k; i += 4) v128.store(o + (<usize>i << 2), f32x4.mul(v128.load(o + (<usize>i << 2)), sv));
      for (; i < k; i++) store<f32>(o + (<usize>i << 2), load<f32>(o + (<usize>i << 2)) * scale);
    }
  }
}

/** Index of the largest value of each row (the first on ties) as u32 at out[r]. */
export function argmax(x: usize, xStride: i32, n: i32, out: usize, rowStart: i32, rowEnd: i32): void {
  for (let r = rowStart; r < rowEnd; r++) {
    const xr = x + (<usize>r * <usize>xStride << 2);
    let best = 0;
    let bv: f32 = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = load<f32>(xr + (<usize>i << 2));
      if (v > bv) {
        bv = v;
        best = i;
      }
    }
    store<u32>(out + (<usize>r << 2), <u32>best);
  }
}

// ---------------------------------------------------------------------------------------------
// State-space ops (Mamba2, LFM2). Channel and head ranges are independent (each owns its part of
// the state), so the pool splits them like rows.

/** Tokens per block of ssmConv's four-channel loop. */
const SSM_CONV_BLOCK: i32 = 32;

@inline function siluF32(v: f32): f32 {
  return v / (1 + Mathf.exp(-v));
}

/**
 * Causal depthwise convolution with a rolling state (ggml_ssm_conv, then the bias and SiLU llama.cpp
 * applies after it) of channels [chStart, chEnd): with the state's kernel - 1 past columns (state
 * [kernel - 1][channels], oldest first) before x's `tokens` rows,
 *   out[t][ch] = silu?(sum_j weight[ch * kernel + j] * column(t + j)[ch] + bias[ch])
 * (bias 0 = none); then the state keeps the last kernel - 1 columns. x and out rows at
 * `stride` floats; out must not overlap x or the state.
 */
export function ssmConv(
  x: usize, xStride: i32, out: usize, outStride: i32, tokens: i32, kernel: i32, channels: i32,
  weight: usize, bias: usize, silu: i32, state: usize, chStart: i32, chEnd: i32,
): void {
  const past = kernel - 1;
  const rowState = <usize>channels << 2;
  const rowX = <usize>xStride << 2;
  const rowOut = <usize>outStride << 2;
  const wRow = <usize>kernel << 2;
  let ch = chStart;
  // Four channels at a time, in blocks of tokens (their rows stay in L1 across the taps): the same
  // operations in the same order per channel as the scalar loop below, so any split of the
  // channels gives bitwise the same results.
  for (; ch + 4 <= chEnd; ch += 4) {
    const c = <usize>ch << 2;
    const w0 = weight + <usize>ch * wRow;
    for (let t0 = 0; t0 < tokens; t0 += SSM_CONV_BLOCK) {
      const t1 = min(tokens, t0 + SSM_CONV_BLOCK);
      for (let t = t0; t < t1; t++) v128.store(out + <usize>t * rowOut + c, f32x4.splat(0));
      for (let j = 0; j < kernel; j++) {
        let wv = f32x4.splat(load<f32>(w0 + (<usize>j << 2)));
        wv = f32x4.replace_lane(wv, 1, load<f32>(w0 + wRow + (<usize>j << 2)));
        wv = f32x4.replace_lane(wv, 2, load<f32>(w0 + 2 * wRow + (<usize>j << 2)));
        wv = f32x4.replace_lane(wv, 3, load<f32>(w0 + 3 * wRow + (<usize>j << 2)));
        for (let t = t0; t < t1; t++) {
          const col = t + j;
          const src = col < past ? state + <usize>col * rowState : x + <usize>(col - past) * rowX;
          const o = out + <usize>t * rowOut + c;
          v128.store(o, f32x4.add(v128.load(o), f32x4.mul(wv, v128.load(src + c))));
        }
      }
      const bv = bias ? v128.load(bias + c) : f32x4.splat(0);
      for (let t = t0; t < t1; t++) {
        const o = out + <usize>t * rowOut + c;
        const v = f32x4.add(v128.load(o), bv);
        if (silu) {
          store<f32>(o, siluF32(f32x4.extract_lane(v, 0)));
          store<f32>(o, siluF32(f32x4.extract_lane(v, 1)), 4);
          store<f32>(o, siluF32(f32x4.extract_lane(v, 2)), 8);
          store<f32>(o, siluF32(f32x4.extract_lane(v, 3)), 12);
        } else v128.store(o, v);
      }
    }
    // The last `past` columns, oldest first; column tokens + j >= j, so reading ahead is safe.
    for (let j = 0; j < past; j++) {
      const col = tokens + j;
      const src = col < past ? state + <usize>col * rowState : x + <usize>(col - past) * rowX;
      v128.store(state + <usize>j * rowState + c, v128.load(src + c));
    }
  }
  for (; ch < chEnd; ch++) {
    const c = <usize>ch << 2;
    const w = weight + <usize>ch * wRow;
    const b: f32 = bias ? load<f32>(bias + c) : 0;
    for (let t = 0; t < tokens; t++) {
      let sum: f32 = 0;
      for (let j = 0; j < kernel; j++) {
        const col = t + j;
        const src = col < past ? state + <usize>col * rowState : x + <usize>(col - past) * rowX;
        sum += load<f32>(w + (<usize>j << 2)) * load<f32>(src + c);
      }
      sum += b;
      store<f32>(out + <usize>t * rowOut + c, silu ? siluF32(sum) : sum);
    }
    for (let j = 0; j < past; j++) {
      const col = tokens + j;
      const src = col < past ? state + <usize>col * rowState : x + <usize>(col - past) * rowX;
      store<f32>(state + <usize>j * rowState + c, load<f32>(src + c));
    }
  }
}

/**
 * Mamba2's selective scan plus the D skip (ggml_ssm_scan with a scalar A per head) of heads
 * [hStart, hEnd) over `tokens` tokens of one sequence, token by token per head (a head's state,
 * headDim x stateSize floats, stays in cache across the tokens):
 *   delta = softplus(dt[t][h] + dtBias[h]) (identity above 20), decay = exp(delta * A[h])
 *   s[h][p][:] = s[h][p][:] * decay + B[t][g][:] * (x[t][h][p] * delta)
 *   y[t][h][p] = s[h][p][:] . C[t][g][:] + D[h] * x[t][h][p]
 * with g = h / headsPerGroup. delta and decay in f64 (once per head and token), the state and the
 * dot in f32 SIMD over the state dimension, as ggml's f32 CPU op.
 */
export function ssmScan(
  x: usize, xStride: i32, dt: usize, dtStride: i32, B: usize, bStride: i32, C: usize, cStride: i32,
  y: usize, yStride: i32, tokens: i32, headDim: i32, stateSize: i32, headsPerGroup: i32,
  A: usize, D: usize, dtBias: usize, state: usize, hStart: i32, hEnd: i32,
): void {
  const S = stateSize;
  const S4 = S & ~3;
  const rowS = <usize>S << 2;
  for (let h = hStart; h < hEnd; h++) {
    const hc = <usize>h << 2;
    const g = h / headsPerGroup;
    const a = <f64>load<f32>(A + hc);
    const dSkip = load<f32>(D + hc);
    const bias = <f64>load<f32>(dtBias + hc);
    const sHead = state + <usize>(h * headDim) * rowS;
    for (let t = 0; t < tokens; t++) {
      const v = <f64>load<f32>(dt + ((<usize>t * <usize>dtStride) << 2) + hc) + bias;
      const delta = v > 20 ? v : Math.log1p(Math.exp(v));
      const decay = f32x4.splat(<f32>Math.exp(delta * a));
      const deltaF = <f32>delta;
      const bt = B + ((<usize>t * <usize>bStride + <usize>(g * S)) << 2);
      const ct = C + ((<usize>t * <usize>cStride + <usize>(g * S)) << 2);
      const xt = x + ((<usize>t * <usize>xStride + <usize>(h * headDim)) << 2);
      const yt = y + ((<usize>t * <usize>yStride + <usize>(h * headDim)) << 2);
      for (let p = 0; p < headDim; p++) {
        const xv = load<f32>(xt + (<usize>p << 2));
        const xd = xv * deltaF;
        const xdv = f32x4.splat(xd);
        const sp = sHead + <usize>p * rowS;
        let acc0 = f32x4.splat(0);
        let acc1 = f32x4.splat(0);
        let k = 0;
        for (; k + 8 <= S; k += 8) {
          const o = <usize>k << 2;
          const s0 = f32x4.add(f32x4.mul(v128.load(sp + o), decay), f32x4.mul(v128.load(bt + o), xdv));
          const s1 = f32x4.add(f32x4.mul(v128.load(sp + o, 16), decay), f32x4.mul(v128.load(bt + o, 16), xdv));
          v128.store(sp + o, s0);
          v128.store(sp + o, s1, 16);
          acc0 = f32x4.add(acc0, f32x4.mul(s0, v128.load(ct + o)));
          acc1 = f32x4.add(acc1, f32x4.mul(s1, v128.load(ct + o, 16)));
        }
        for (; k < S4; k += 4) {
          const o = <usize>k << 2;
          const s0 = f32x4.add(f32x4.mul(v128.load(sp + o), decay), f32x4.mul(v128.load(bt + o), xdv));
          v128.store(sp + o, s0);
          acc0 = f32x4.add(acc0, f32x4.mul(s0, v128.load(ct + o)));
        }
        let sum = hsum(f32x4.add(acc0, acc1));
        const dk = f32x4.extract_lane(decay, 0);
        for (; k < S; k++) {
          const o = <usize>k << 2;
          const s0 = load<f32>(sp + o) * dk + load<f32>(bt + o) * xd;
          store<f32>(sp + o, s0);
          sum += s0 * load<f32>(ct + o);
        }
        store<f32>(yt + (<usize>p << 2), sum + dSkip * xv);
      }
    }
  }
}

/** Streams n bytes (n % 64 == 0) and returns a checksum: the benchmark's memory-read rate. */
export function readBandwidth(p: usize, n: usize): i32 {
  let a = i32x4.splat(0);
  let b = i32x4.splat(0);
  for (let i: usize = 0; i < n; i += 64) {
    a = i32x4.add(a, v128.load(p + i));
    b = i32x4.add(b, v128.load(p + i, 16));
    a = i32x4.add(a, v128.load(p + i, 32));
    b = i32x4.add(b, v128.load(p + i, 48));
  }
  return hsumI(i32x4.add(a, b));
}
