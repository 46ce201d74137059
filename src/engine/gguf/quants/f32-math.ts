/**
 * The float32 arithmetic of ggml's reference quantizers (ggml-quants.c), replayed in JS.
 *
 * llama.cpp computes in `float` (x86-64 SSE: every operation rounded to f32, no FMA contraction, no
 * reassociation). A JS number is a double, so each C operation becomes `fr(a op b)`. That is exact
 * emulation, not an approximation: for +, -, *, / and sqrt of two f32 values, rounding the exact
 * double result to f32 gives the correctly rounded f32 result (double has more than 2*24+2 bits).
 * Leaving out one `fr` changes an output byte once in a few thousand blocks, so the order and
 * grouping of every expression below follows the C source (`a*b*c` is `(a*b)*c`).
 */

export const fr = Math.fround;

/** ggml's GROUP_MAX_EPS (1e-15f): below this a group is treated as all zero. */
export const GROUP_MAX_EPS = Math.fround(1e-15);

const SCRATCH_F32 = new Float32Array(1);
const SCRATCH_I32 = new Int32Array(SCRATCH_F32.buffer);

/**
 * ggml's `nearest_int(float)`: adds 1.5 * 2^23 in f32 and reads the mantissa, which rounds half to
 * even (not away from zero like `roundf`). `f` must already be an f32 value. ggml asserts
 * |f| <= 4194303 in debug builds only; outside that range release builds return whatever the
 * mantissa bits say, and so do we.
 */
export function nearestInt(f: number): number {
  const v = fr(f + 12582912);
  if (v >= 8388608 && v < 16777216) return v - 12582912;
  SCRATCH_F32[0] = v;
  return (SCRATCH_I32[0]! & 0x007fffff) - 0x00400000;
}

/** C `roundf`: half away from zero. Exact for f32 inputs (the +0.5 cannot round in double). */
export function roundAway(x: number): number {
  return x < 0 ? -Math.floor(0.5 - x) : Math.floor(x + 0.5);
}

/** 6-bit scale `j` of a Q4_K/Q5_K block (ggml's get_scale_min_k4); `s` is the offset of `scales[12]`. */
export function scaleK4(j: number, q: Uint8Array, s: number): number {
  return j < 4 ? q[s + j]! & 63 : (q[s + j + 4]! & 0xf) | ((q[s + j - 4]! >> 6) << 4);
}

/** 6-bit min `j` of a Q4_K/Q5_K block (the other half of get_scale_min_k4). */
export function minK4(j: number, q: Uint8Array, s: number): number {
  return j < 4 ? q[s + j + 4]! & 63 : (q[s + j + 4]! >> 4) | ((q[s + j]! >> 6) << 4);
}

/** Packs 8 six-bit scales and mins into the 12 `scales` bytes of a Q4_K/Q5_K block at `s`. */
export function packScalesK4(ls: Uint8Array, lm: Uint8Array, out: Uint8Array, s: number): void {
  for (let j = 0; j < 8; j++) {
    const sc = ls[j]!;
    const m = lm[j]!;
    if (j < 4) {
      out[s + j] = sc;
      out[s + j + 4] = m;
    } else {
      out[s + j + 4] = (sc & 0xf) | ((m & 0xf) << 4);
      out[s + j - 4]! |= (sc >> 4) << 6;
      out[s + j]! |= (m >> 4) << 6;
    }
  }
}

/**
 * ggml's make_qkx2_quants: picks a scale and a min for `n` values `x[xo..xo+n)` with
 * `x ~ scale * L + min`, L in [0, nmax], minimizing the weighted error (squared, or absolute when
 * `useMad`) over `nstep + 1` candidate scales. Writes L into `L[lo..lo+n)`, the negated min into
 * `theMin[0]`, and returns the scale. `laux` is scratch of at least `n` bytes.
 */
export function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  weights: Float32Array,
  L: Uint8Array,
  lo: number,
  laux: Uint8Array,
  theMin: Float32Array,
  rmin: number,
  rdelta: number,
  nstep: number,
  useMad: boolean,
): number {
  let min = x[xo]!;
  let max = min;
  let sumW = weights[0]!;
  let sumX = fr(sumW * min);
  for (let i = 1; i < n; i++) {
    const xi = x[xo + i]!;
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i]!;
    sumW = fr(sumW + w);
    sumX = fr(sumX + fr(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    theMin[0] = -min;
    return 0;
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i]!;
    const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(xi - min)))));
    L[lo + i] = l;
    let diff = fr(fr(fr(scale * l) + min) - xi);
    diff = useMad ? Math.abs(diff) : fr(diff * diff);
    bestError = fr(bestError + fr(weights[i]! * diff));
  }
  if (nstep < 1) {
    theMin[0] = -min;
    return scale;
  }
  for (let is = 0; is <= nstep; is++) {
    // `min` is the best candidate's so far: later steps search around it, not the data's min.
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i]!;
      const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(xi - min)))));
      laux[i] = l;
      const wl = fr(weights[i]! * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * xi));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        let diff = fr(fr(fr(thisScale * laux[i]!) + thisMin) - x[xo + i]!);
        diff = useMad ? Math.abs(diff) : fr(diff * diff);
        curError = fr(curError + fr(weights[i]! * diff));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = laux[i]!;
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  theMin[0] = -min;
  return scale;
}

/**
 * ggml's make_qx_quants with rmse_type 1, weights x^2 or the given `qw[qwo..qwo+n)` (importance
 * weights), as Q6_K's quantizers and the weighted Q4_0/Q5_0 call it: symmetric quants L in [0, 2*nmax) (stored offset by nmax), trying
 * 18 scales around nmax/max. Returns the scale; 0 (with L all 0) for an all-zero group.
 */
export function makeQxQuantsRmse1(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  L: Uint8Array,
  lo: number,
  qw?: Float32Array,
  qwo = 0,
): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i]!;
    const ax = Math.abs(xi);
    if (ax > amax) {
      amax = ax;
      max = xi;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  let iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i]!;
    const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * xi))));
    L[lo + i] = l + nmax;
    const w = qw ? qw[qwo + i]! : fr(xi * xi);
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  let scale = suml2 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  const tenth = fr(0.1);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(tenth * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i]!;
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * xi))));
      const w = qw ? qw[qwo + i]! : fr(xi * xi);
      sumlx = fr(sumlx + fr(fr(w * xi) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) {
        L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * x[xo + i]!))));
      }
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/**
 * ggml's make_q3_quants with do_rmse (Q3_K's reference quantizer): symmetric quants in [-nmax, nmax)
 * refined one element at a time for up to 5 passes. L gets the quants offset by nmax.
 */
export function makeQ3Quants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i]!;
    const ax = Math.abs(xi);
    if (ax > amax) {
      amax = ax;
      max = xi;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  const iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i]!;
    const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * xi))));
    L[lo + i] = l;
    const w = fr(xi * xi);
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i]!;
      const w = fr(xi * xi);
      const li = L[lo + i]!;
      let slx = fr(sumlx - fr(fr(w * xi) * li));
      if (slx > 0) {
        let sl2 = fr(suml2 - fr(fr(w * li) * li));
        const newL = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(fr(xi * sl2) / slx))));
        if (newL !== li) {
          slx = fr(slx + fr(fr(w * xi) * newL));
          sl2 = fr(sl2 + fr(fr(w * newL) * newL));
          if (sl2 > 0 && fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
            L[lo + i] = newL;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (let i = 0; i < n; i++) L[lo + i] = L[lo + i]! + nmax;
  return suml2 > 0 ? fr(sumlx / suml2) : 0;
}

/** ggml's best_index_int8: index of the table value nearest to `x` (ties to the upper one). */
export function bestIndexInt8(n: number, val: Int8Array, x: number): number {
  if (x <= val[0]!) return 0;
  if (x >= val[n - 1]!) return n - 1;
  let ml = 0;
  let mu = n - 1;
  while (mu - ml > 1) {
    const mav = (ml + mu) >> 1;
    if (x < val[mav]!) mu = mav;
    else ml = mav;
  }
  return fr(x - val[mu - 1]!) < fr(val[mu]! - x) ? mu - 1 : mu;
}
