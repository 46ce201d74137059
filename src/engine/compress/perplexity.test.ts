/**
 * Perplexity with llama-perplexity's windows, from Hearth's CPU backend, against the same windows
 * evaluated by llama.cpp (llama-ref logits, one window per call from an empty cache): within 1e-4
 * relative. KL and top-1 of a quantized model against its F32 original are sane.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CpuBackend } from '../backend/cpu/backend.ts';
import { readGguf } from '../gguf/reader.ts';
import { bytesSource } from '../gguf/source.ts';
import { Model } from '../model/model.ts';
import { llamaRefLogits } from '../../testing/llama-ref.ts';
import { makeTestModel } from '../../testing/make-model.ts';
import { QuantizeError } from './errors.ts';
import { EvalTotals, perplexityWindows } from './perplexity.ts';
import { planQuantize, quantizeChunks } from './quantize.ts';

const dir = mkdtempSync(join(tmpdir(), 'hearth-ppl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const N_CTX = 32;
const BOS = 1;

function textTokens(n: number, nVocab: number): number[] {
  let s = 99;
  return Array.from({ length: n }, () => 3 + ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % (nVocab - 3)));
}

async function ourLogits(model: Uint8Array, windows: ReturnType<typeof perplexityWindows>): Promise<{ logits: Float32Array[]; nVocab: number }> {
  const backend = await CpuBackend.create({ relaxed: false });
  const m = await Model.load(backend, bytesSource(model), { contextLength: N_CTX, batch: N_CTX });
  const logits: Float32Array[] = [];
  for (const w of windows) {
    m.reset();
    logits.push(await m.eval(w.tokens, { logits: 'all' }));
  }
  const nVocab = m.config.nVocab;
  m.destroy();
  return { logits, nVocab };
}

describe('perplexity as llama-perplexity computes it', { timeout: 120_000 }, () => {
  it('windows: BOS first, n_chunk = floor(n / n_ctx), at least 2 * n_ctx tokens', () => {
    const w = perplexityWindows([5, 6, 7, 8, 9, 10, 11, 12, 13], 4, BOS);
    expect(w.map((x) => x.tokens)).toEqual([[BOS, 6, 7, 8], [BOS, 10, 11, 12]]);
    expect(w[1]!.original).toEqual([9, 10, 11, 12]);
    expect(() => perplexityWindows([1, 2, 3, 4, 5, 6, 7], 4, BOS)).toThrow(QuantizeError);
  });

  it('equals llama.cpp within 1e-4 relative on a generated model; KL and top-1 against the original', async () => {
    const model = makeTestModel({ arch: 'llama', embd: 256, layers: 2, heads: 4, kvHeads: 2, ff: 256, seed: 11, outputScale: 3 });
    const path = join(dir, 'model.gguf');
    writeFileSync(path, model);
    const nVocab = 323;
    const windows = perplexityWindows(textTokens(3 * N_CTX + 5, nVocab), N_CTX, BOS);
    expect(windows).toHaveLength(3);

    const ours = await ourLogits(model, windows);
    expect(ours.nVocab).toBe(nVocab);
    const hearth = new EvalTotals();
    const llama = new EvalTotals();
    windows.forEach((w, i) => {
      hearth.addWindow(w, ours.logits[i]!, nVocab);
      llama.addWindow(w, llamaRefLogits(path, w.tokens, { nCtx: N_CTX }).logits, nVocab);
    });
    expect(hearth.count).toBe(3 * (N_CTX / 2 - 1));
    expect(Math.abs(hearth.perplexity - llama.perplexity) / llama.perplexity).toBeLessThan(1e-4);

    // A Q4_0 copy against the F32 original: a small positive KL, most top-1 tokens agree.
    const source = bytesSource(model);
    const file = await readGguf(source);
    const parts: Uint8Array[] = [];
    for await (const c of quantizeChunks(source, file, planQuantize(file, 'Q4_0'))) parts.push(c.slice());
    const q = await ourLogits(new Uint8Array(Buffer.concat(parts)), windows);
    const cmp = new EvalTotals();
    windows.forEach((w, i) => cmp.addWindow(w, q.logits[i]!, nVocab, EvalTotals.scoredRows(ours.logits[i]!, N_CTX, nVocab)));
    expect(cmp.meanKl).toBeGreaterThan(0);
    expect(cmp.meanKl).toBeLessThan(0.5);
    expect(cmp.top1Agreement).toBeGreaterThan(0.5);
    // The original against itself: no divergence, full agreement.
    const self = new EvalTotals();
    windows.forEach((w, i) => self.addWindow(w, ours.logits[i]!, nVocab, EvalTotals.scoredRows(ours.logits[i]!, N_CTX, nVocab)));
    expect(self.meanKl).toBeLessThan(1e-12);
    expect(self.top1Agreement).toBe(1);
  });
});
