import { describe, expect, it } from 'vitest';
import { freshSeed, randomFloats } from '../../../../testing/gpu.ts';
import { useOpHarness } from '../../../../testing/op-harness.ts';
import { encodeRegionCopy, encodeRegionZero } from './region.ts';

const h = useOpHarness();

describe('region.wgsl: copies and clears of float regions', () => {
  it.each([1, 255, 257, 70_000])('copies %i floats between buffers and within one, and clears them', async (floats) => {
    const seed = freshSeed(`region ${floats}`);
    const source = randomFloats(floats + 10, seed);
    const from = h.upload(source);
    const to = h.poisoned(floats + 20);
    const both = h.upload(Float32Array.from(randomFloats(2 * floats + 8, seed + 1)));
    const before = await h.readF32(both, 2 * floats + 8);
    encodeRegionCopy(h.recorder, h.kernels, { buffer: from, offset: 3, floats }, { buffer: to, offset: 7, floats });
    // Within one buffer: the first `floats` values to the region after a gap of 5.
    encodeRegionCopy(h.recorder, h.kernels, { buffer: both, offset: 0, floats }, { buffer: both, offset: floats + 5, floats });
    await h.submit();
    const copied = await h.readF32(to, floats + 20);
    expect(Array.from(copied.subarray(7, 7 + floats))).toEqual(Array.from(source.subarray(3, 3 + floats)));
    expect(copied.subarray(0, 7).every(Number.isNaN)).toBe(true);
    expect(copied.subarray(7 + floats).every(Number.isNaN)).toBe(true);
    const after = await h.readF32(both, 2 * floats + 8);
    const expected = Float32Array.from(before);
    expected.copyWithin(floats + 5, 0, floats);
    expect(Array.from(after)).toEqual(Array.from(expected));

    encodeRegionZero(h.recorder, h.kernels, { buffer: to, offset: 8, floats: floats - 1 });
    await h.submit();
    const cleared = await h.readF32(to, floats + 20);
    expect(cleared[7]).toBe(source[3]);
    expect(cleared.subarray(8, 7 + floats).every((v) => v === 0)).toBe(true);
    expect(cleared.subarray(7 + floats).every(Number.isNaN)).toBe(true);
  });

  it('refuses overlapping regions of one buffer and regions of different sizes', () => {
    const b = h.poisoned(64);
    expect(() => encodeRegionCopy(h.recorder, h.kernels, { buffer: b, offset: 0, floats: 10 }, { buffer: b, offset: 5, floats: 10 })).toThrow(/overlapping/);
    expect(() => encodeRegionCopy(h.recorder, h.kernels, { buffer: b, offset: 0, floats: 10 }, { buffer: h.poisoned(4), offset: 0, floats: 4 })).toThrow(RangeError);
  });
});
