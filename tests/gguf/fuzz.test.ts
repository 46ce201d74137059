/**
 * Robustness of the reader on hostile input: every truncation and thousands of seeded random
 * mutations of a small file that uses every GGUF feature must end in either a GgufFormatError or a
 * successful, self-consistent parse: never another exception, a hang, or a large allocation.
 */
import { describe, expect, it } from 'vitest';
import { GgufFormatError } from '../../src/engine/gguf/errors.ts';
import { readGguf, type ReadGgufOptions } from '../../src/engine/gguf/reader.ts';
import { bytesSource, type RangedSource } from '../../src/engine/gguf/source.ts';
import type { GgufFile } from '../../src/engine/gguf/types.ts';
import { countingSource, featureFile } from './fixtures.ts';
import { mulberry32 as rng } from '../../src/testing/random.ts';

const base = featureFile().bytes;


/** A successful parse must describe a file that fits in the source. */
function checkConsistent(g: GgufFile, size: number): void {
  expect(g.dataOffset).toBeLessThanOrEqual(size);
  for (const t of g.tensors) {
    expect(t.fileOffset + t.byteSize).toBeLessThanOrEqual(size);
    expect(t.offset % g.alignment).toBe(0);
    expect(t.shape.length).toBeGreaterThanOrEqual(1);
  }
}

type Outcome = 'ok' | 'format-error';

async function outcome(source: RangedSource, options?: ReadGgufOptions): Promise<Outcome> {
  try {
    checkConsistent(await readGguf(source, options), source.size);
    return 'ok';
  } catch (error) {
    if (error instanceof GgufFormatError) {
      expect(typeof error.detail.offset).toBe('number');
      expect(typeof error.detail.expected).toBe('string');
      return 'format-error';
    }
    throw new Error(`unexpected ${String((error as Error)?.name)}: ${(error as Error)?.message}`, { cause: error });
  }
}

const HUGE_U64 = [2n ** 64n - 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 53n, 2n ** 40n, 2n ** 32n, 2n ** 32n - 1n, 2n ** 31n, 1n << 30n, 65536n];

describe('reader robustness', () => {
  it('every truncation fails with GgufFormatError until the last tensor is complete', async () => {
    const g = await readGguf(bytesSource(base));
    const dataEnd = Math.max(...g.tensors.map((t) => t.fileOffset + t.byteSize));
    expect(dataEnd).toBeLessThanOrEqual(base.length);
    for (let n = 0; n <= base.length; n++) {
      const result = await outcome(bytesSource(base.subarray(0, n)));
      if (result !== (n >= dataEnd ? 'ok' : 'format-error')) expect.fail(`prefix of ${n} bytes: ${result}`);
    }
  });

  it('survives thousands of random byte flips and huge length fields', async () => {
    const next = rng(1234);
    const g = await readGguf(bytesSource(base));
    const header = g.dataOffset; // mutations of tensor data are always valid; aim at the header
    const counts: Record<Outcome, number> = { ok: 0, 'format-error': 0 };
    let slowest = 0;
    for (let i = 0; i < 4000; i++) {
      const bytes = base.slice();
      const view = new DataView(bytes.buffer);
      const kind = i % 4;
      const at = Math.floor(next() * (header - 8));
      if (kind === 0) {
        for (let k = 1 + Math.floor(next() * 3); k > 0; k--) bytes[Math.floor(next() * header)]! ^= 1 << Math.floor(next() * 8);
      } else if (kind === 1) {
        view.setBigUint64(at, HUGE_U64[Math.floor(next() * HUGE_U64.length)]!, true);
      } else if (kind === 2) {
        view.setUint32(at, Math.floor(next() * 2 ** 32), true);
      } else {
        // Small numbers in count/length/type fields reach deeper validation paths.
        view.setUint32(at, Math.floor(next() * 40), true);
      }
      const start = performance.now();
      counts[await outcome(bytesSource(bytes))]++;
      slowest = Math.max(slowest, performance.now() - start);
    }
    // Both outcomes occur: the mutations are neither all fatal nor all harmless.
    expect(counts['format-error']).toBeGreaterThan(2000);
    expect(counts.ok).toBeGreaterThan(20);
    expect(slowest).toBeLessThan(500);
  });

  it('mutated headers of a file claiming to be 1 TB read a bounded number of bytes', async () => {
    const next = rng(99);
    const g = await readGguf(bytesSource(base));
    const options = { maxHeaderBytes: 1 << 20, initialReadBytes: 4096 };
    for (let i = 0; i < 500; i++) {
      const bytes = base.slice(0, g.dataOffset);
      const view = new DataView(bytes.buffer);
      view.setBigUint64(Math.floor(next() * (bytes.length - 8)), HUGE_U64[Math.floor(next() * HUGE_U64.length)]!, true);
      const source = countingSource(bytes, 2 ** 40);
      await outcome(source, options);
      // The reader may read up to the header limit (zeros past the real header), never beyond it.
      expect(source.maxEnd).toBeLessThanOrEqual(options.maxHeaderBytes);
    }
  });
});
