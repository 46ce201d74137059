/**
 * `hearth prune` end to end on a generated model built so the right choice is known: layer 2's
 * attn_output and ffn_down are zero (the block passes the stream through: block influence 0) and a
 * quarter of every layer's FFN channels have zero up rows (importance 0). Measured importances must
 * pick exactly those, so the pruned model's logits equal the original's; `hearth eval` then runs
 * on the smaller file.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { readGguf } from '../../engine/gguf/reader.ts';
import { bytesSource } from '../../engine/gguf/source.ts';
import { PruneError } from '../../engine/compress/errors.ts';
import { maxAbsDiff } from '../../testing/compare.ts';
import { makeTestModel } from '../../testing/make-model.ts';
import { loadReferenceModel, referenceForward } from '../../testing/reference-forward.ts';
import { UsageError, commandNeedsGpu } from '../command.ts';
import { evalCommand } from './eval.ts';
import { pruneCommand } from './prune.ts';

const dir = mkdtempSync(join(tmpdir(), 'hearth-cli-prune-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function zero(bytes: Uint8Array, name: string, rows?: readonly number[]): Promise<void> {
  const t = (await readGguf(bytesSource(bytes))).tensors.find((x) => x.name === name)!;
  if (!rows) return void bytes.fill(0, t.fileOffset, t.fileOffset + t.byteSize);
  const rowBytes = t.byteSize / t.shape[1]!;
  for (const r of rows) bytes.fill(0, t.fileOffset + r * rowBytes, t.fileOffset + (r + 1) * rowBytes);
}

async function logits(bytes: Uint8Array, tokens: number[]): Promise<Float64Array> {
  return referenceForward(await loadReferenceModel(bytesSource(bytes)), tokens, { nCtx: 64 });
}

describe('hearth prune', { timeout: 120_000 }, () => {
  it('finds the pass-through layer and the dead channels, and the result equals the original', async () => {
    const model = makeTestModel({ arch: 'llama', embd: 64, layers: 4, heads: 4, kvHeads: 2, ff: 96, seed: 41 });
    await zero(model, 'blk.2.attn_output.weight');
    await zero(model, 'blk.2.ffn_down.weight');
    const dead = Array.from({ length: 24 }, (_, i) => (i * 5 + 3) % 96);
    for (const il of [0, 1, 2, 3]) await zero(model, `blk.${il}.ffn_up.weight`, dead);
    const input = join(dir, 'in.gguf');
    const output = join(dir, 'out.gguf');
    const text = join(dir, 'calib.txt');
    writeFileSync(input, model);
    writeFileSync(text, 'the quick brown fox jumps over the lazy dog and then the dog sleeps. '.repeat(12));

    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await pruneCommand.run([input, output, '--text', text, '--drop-layers', '1', '--ffn-keep', '0.75', '--ctx', '64', '--backend', 'cpu'])).toBe(0);
      const printed = out.mock.calls.map((c) => String(c[0])).join('');
      expect(printed).toMatch(/layer 2: \S+ {2}dropped/);
      expect(printed).toMatch(/layer 0: 96 -> 72 channels, keeping 100\.0% of the importance/);
      expect(printed).toMatch(/3 layers \(dropped 2\), FFN width 72/);

      const pruned = new Uint8Array(readFileSync(output));
      expect(pruned.length).toBeLessThan(model.length);
      const tokens = [1, 5, 9, 17, 33, 2, 40, 7, 11, 60];
      expect(maxAbsDiff(await logits(pruned, tokens), await logits(model, tokens))).toBeLessThanOrEqual(1e-9);

      out.mockClear();
      expect(await evalCommand.run([output, '--reference', input, '--text', text, '--ctx', '32', '--backend', 'cpu', '--json'])).toBe(0);
      const result = JSON.parse(out.mock.calls.map((c) => String(c[0])).join('')) as Record<string, number>;
      expect(result.perplexity).toBeGreaterThan(1);
      expect(result.meanKl).toBeLessThanOrEqual(1e-5);
      expect(result.top1Agreement).toBeGreaterThanOrEqual(0.99);
      expect(result.compression).toBeGreaterThan(1);

      // The loss metric: dropping the pass-through layer leaves the loss as it is.
      out.mockClear();
      expect(await pruneCommand.run([input, output, '--text', text, '--drop-layers', '1', '--metric', 'loss', '--ctx', '64', '--backend', 'cpu'])).toBe(0);
      const byLoss = out.mock.calls.map((c) => String(c[0])).join('');
      expect(byLoss).toMatch(/mean loss \d+\.\d+ nats/);
      expect(byLoss).toMatch(/layer 2: [+-]0\.0000/);
      expect(byLoss.match(/layer \d: [+-]\d+\.\d+/g)).toHaveLength(4);

      // Explicit layers need no text (and no GPU); bad requests are named errors.
      expect(commandNeedsGpu(pruneCommand, [input, output, '--layers', '0,3'])).toBe(false);
      expect(commandNeedsGpu(pruneCommand, [input, output, '--text', text, '--ffn-keep', '0.5'])).toBe(true);
      expect(await pruneCommand.run([input, output, '--layers', '0,3'])).toBe(0);
      expect((await readGguf(bytesSource(new Uint8Array(readFileSync(output))))).metadata.get('llama.block_count')).toBe(2);
      await expect(pruneCommand.run([input, output, '--layers', '0,1,2,3'])).rejects.toBeInstanceOf(PruneError);
      await expect(pruneCommand.run([input, output, '--ffn-keep', '0.5'])).rejects.toBeInstanceOf(UsageError);
      await expect(pruneCommand.run([input, output, '--text', text, '--ffn-keep', '1.5'])).rejects.toBeInstanceOf(UsageError);
      await expect(pruneCommand.run([input, output])).rejects.toBeInstanceOf(UsageError);
      await expect(pruneCommand.run([input, output, '--text', text, '--drop-layers', '1', '--metric', 'magic'])).rejects.toBeInstanceOf(UsageError);
    } finally {
      vi.restoreAllMocks();
    }
  });
});
