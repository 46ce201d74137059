/**
 * Test inputs for the quant format tests: seeded random rows in distributions that reach the
 * quantizers' corner cases (ties, all-zero and constant groups, one-signed groups, outliers,
 * values near ggml's 1e-15 "all zero" threshold).
 */
import { mulberry32 } from './random.ts';

export { mulberry32 as rng } from './random.ts';

/** Seed for a test run: QUANT_SEED from the environment, else fresh. */
export function testSeed(): number {
  const env = process.env.QUANT_SEED;
  return env ? Number(env) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
}

function gaussian(next: () => number): number {
  const u = 1 - next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
}

export type Distribution = (next: () => number, i: number) => number;

/** Named value generators; `i` is the index in the row (for block-structured patterns). */
export const DISTRIBUTIONS: Record<string, Distribution> = {
  uniform: (next) => next() * 2 - 1,
  gaussian: (next) => gaussian(next),
  outliers: (next) => gaussian(next) * (next() < 0.02 ? 60 : 0.5),
  // Every other 32-value group is zero; the rest gaussian.
  zeroBlocks: (next, i) => ((i >> 5) % 2 === 0 ? 0 : gaussian(next)),
  // Whole 256-value super-blocks of zeros next to live ones.
  zeroSuperBlocks: (next, i) => ((i >> 8) % 2 === 1 ? 0 : gaussian(next) * 0.1),
  tiny: (next) => gaussian(next) * 1e-6,
  // Straddles ggml's GROUP_MAX_EPS (1e-15): some groups count as all zero, some do not.
  nearEps: (next) => gaussian(next) * 1e-15,
  positive: (next) => 0.5 + next(),
  negative: (next) => -0.5 - next(),
  // Small integers times a power of two: x / d often lands exactly on .5 (rounding ties).
  ties: (next) => (Math.floor(next() * 33) - 16) * 0.125,
  // Constant 16-value groups (max == min paths).
  constant: (_next, i) => ((i >> 4) % 3) - 1,
  sparse: (next) => (next() < 0.05 ? gaussian(next) : 0),
  large: (next) => gaussian(next) * 300,
  // Magnitudes from 2^-40 to 2^12: f16 scales that underflow to subnormals or zero.
  logUniform: (next) => (next() < 0.5 ? -1 : 1) * 2 ** (next() * 52 - 40),
  // One tiny-range group after another, at a random scale per 32 values.
  scaledBlocks: (next, i) => gaussian(next) * 2 ** (((Math.imul(i >> 5, 0x9e3779b1) >>> 27) % 32) - 24),
};

/**
 * `rows` rows of `nPerRow` values, cycling through the distributions row by row, as float32.
 */
export function mixedRows(seed: number, rows: number, nPerRow: number): Float32Array {
  const next = mulberry32(seed);
  const names = Object.keys(DISTRIBUTIONS);
  const out = new Float32Array(rows * nPerRow);
  for (let r = 0; r < rows; r++) {
    const dist = DISTRIBUTIONS[names[r % names.length]!]!;
    for (let i = 0; i < nPerRow; i++) out[r * nPerRow + i] = dist(next, i);
  }
  return out;
}

/** Index of the first differing element of two equal-length arrays, or -1. */
export function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}
