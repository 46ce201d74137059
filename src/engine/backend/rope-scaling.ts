/**
 * ggml_rope_yarn_corr_dims, in f32 as ggml computes it (the floor and ceil below are sensitive to
 * rounding): the first and last rotated pair between which YaRN's ramp blends interpolated into
 * extrapolated frequencies. One copy for the WebGPU rope (kernels/rope.ts), the CPU rope and the
 * float64 reference forward.
 */
function yarnCorrDim(nRot: number, origCtx: number, beta: number, base: number): number {
  const f = Math.fround;
  return f(f(nRot * f(Math.log(f(origCtx / f(beta * 2 * f(Math.PI)))))) / f(2 * f(Math.log(base))));
}

export function yarnCorrDims(nRot: number, origCtx: number, freqBase: number, betaFast: number, betaSlow: number): [number, number] {
  const start = Math.floor(yarnCorrDim(nRot, origCtx, betaFast, freqBase));
  const end = Math.ceil(yarnCorrDim(nRot, origCtx, betaSlow, freqBase));
  return [Math.max(0, start), Math.min(nRot - 1, end)];
}
