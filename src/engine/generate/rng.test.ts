import { describe, expect, it } from 'vitest';
import { SeededRandom } from './rng.ts';

describe('seeded random numbers', () => {
  it('repeat exactly for the same seed and differ between seeds', () => {
    const a = new SeededRandom(42);
    const b = new SeededRandom(42);
    const c = new SeededRandom(43);
    const xs = Array.from({ length: 100 }, () => a.nextU32());
    expect(Array.from({ length: 100 }, () => b.nextU32())).toEqual(xs);
    expect(Array.from({ length: 100 }, () => c.nextU32())).not.toEqual(xs);
  });

  it('gives floats in [0, 1) that are exact f32 values and roughly uniform', () => {
    const r = new SeededRandom(7);
    const buckets = new Array(10).fill(0);
    for (let i = 0; i < 20000; i++) {
      const u = r.nextFloat();
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
      expect(Math.fround(u)).toBe(u);
      buckets[Math.floor(u * 10)]++;
    }
    for (const n of buckets) expect(Math.abs(n - 2000)).toBeLessThan(200);
  });
});
