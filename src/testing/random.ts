/** Reproducible random numbers for tests: one generator, and per-run seeds that are printed. */

/** mulberry32: small, fast, good enough for test data; uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed that differs per run (fresh random data) but is printed so a failure can be replayed. */
export function freshSeed(label: string): number {
  const fromEnv = process.env.HEARTH_TEST_SEED;
  const seed = fromEnv ? Number(fromEnv) : Math.floor(Math.random() * 2 ** 31);
  console.log(`[seed] ${label}: HEARTH_TEST_SEED=${seed}`);
  return seed;
}

/** `n` token ids below `vocab` from a fixed linear congruential sequence: the same prompt in every parity test (per seed). */
export function tokensFor(n: number, vocab: number, seed = 4242): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % vocab;
  });
}

/** n values drawn uniformly from [-scale, scale) with `next` (a generator such as mulberry32's). */
export function uniformValues(next: () => number, n: number, scale = 1): Float64Array {
  return Float64Array.from({ length: n }, () => (next() * 2 - 1) * scale);
}
