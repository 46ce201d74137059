/**
 * The `hearth quantize` and `hearth eval` commands end to end on a small generated model (the
 * byte-level checks against llama.cpp live in src/engine/compress).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { QuantizeError } from '../../engine/compress/errors.ts';
import { fileTypeName } from '../../engine/gguf/file-type.ts';
import { readGguf } from '../../engine/gguf/reader.ts';
import { bytesSource } from '../../engine/gguf/source.ts';
import { makeTestModel } from '../../testing/make-model.ts';
import { evalCommand } from './eval.ts';
import { quantizeCommand } from './quantize.ts';

const dir = mkdtempSync(join(tmpdir(), 'hearth-cli-quantize-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('hearth quantize / eval', { timeout: 60_000 }, () => {
  it('writes a Q4_K_M file that records its mix, and eval reports perplexity, KL and speed', async () => {
    const input = join(dir, 'in.gguf');
    const output = join(dir, 'out.gguf');
    writeFileSync(input, makeTestModel({ arch: 'llama', embd: 256, layers: 2, heads: 4, ff: 256 }));
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await quantizeCommand.run([input, output, 'q4_k_m'])).toBe(0);
      const file = await readGguf(bytesSource(new Uint8Array(readFileSync(output))));
      expect(fileTypeName(file.metadata)).toBe('Q4_K_M');
      expect(String(out.mock.calls.at(-1)?.[0])).toMatch(/Q4_K_M, .* -> .*x\)/);

      const text = join(dir, 'text.txt');
      writeFileSync(text, 'the quick brown fox jumps over the lazy dog and then the dog sleeps. '.repeat(20));
      out.mockClear();
      expect(await evalCommand.run([output, '--reference', input, '--text', text, '--ctx', '32', '--backend', 'cpu', '--json'])).toBe(0);
      const result = JSON.parse(String(out.mock.calls.map((c) => c[0]).join(''))) as Record<string, number>;
      expect(result.perplexity).toBeGreaterThan(1);
      expect(result.meanKl).toBeGreaterThan(0);
      expect(result.top1Agreement).toBeGreaterThan(0);
      expect(result.top1Agreement).toBeLessThanOrEqual(1);
      expect(result.compression).toBeGreaterThan(3);

      writeFileSync(text, 'too short');
      await expect(evalCommand.run([output, '--text', text, '--ctx', '32', '--backend', 'cpu'])).rejects.toBeInstanceOf(QuantizeError);
      await expect(quantizeCommand.run([input, output, 'q3_k_xl'])).rejects.toBeInstanceOf(QuantizeError);
    } finally {
      vi.restoreAllMocks();
    }
  });
});
