/**
 * The Compare page's engine calls (Node, CPU backend, a generated F32 model in a fake IndexedDB):
 * `quantizeModel` writes into the store the same bytes as the streamed quantizer writes to a file,
 * reports progress and stops on `cancelDownload` leaving nothing; `evaluateModels` scores the
 * reference as a direct perplexity computation does, and a version against itself with no
 * divergence; bad requests are refused by name.
 */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { makeTestModel } from '../testing/make-model.ts';
import { EvalTotals, perplexityWindows } from './compress/perplexity.ts';
import { planQuantize, quantizeChunks } from './compress/quantize.ts';
import { Engine } from './engine.ts';
import { readGguf } from './gguf/reader.ts';
import { bytesSource } from './gguf/source.ts';
import { Model } from './model/model.ts';
import { ModelStore } from './store/model-store.ts';
import { Tokenizer } from './tokenizer/index.ts';
import { CpuBackend } from './backend/cpu/backend.ts';

const model = makeTestModel({ arch: 'llama', embd: 64, layers: 2, heads: 4, ff: 96, ctx: 256, seed: 7, name: 'Tiny' });
const TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(12);

async function concat(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c.slice());
  return new Uint8Array(Buffer.concat(parts));
}

async function setup(name: string) {
  const store = new ModelStore({ dbName: name, chunkBytes: 4096, storage: null, locks: null });
  const engine = new Engine({ gpu: undefined, runtime: 'test', store });
  const original = await engine.importModelFile([new File([model as Uint8Array<ArrayBuffer>], 'tiny-f32.gguf')], { copy: true });
  return { store, engine, original };
}

describe('quantize and compare in the engine', { timeout: 120_000 }, () => {
  it('quantizes a stored model into the store, streamed, with the quantizer bytes', async () => {
    const { engine, original } = await setup('compare-quantize');
    const events: number[] = [];
    const q = await engine.quantizeModel({ source: { kind: 'cached', id: original.id }, type: 'Q4_0' }, (p) => events.push(p.bytes));
    expect(q.id).toBe(`${original.id}:Q4_0`);
    expect(q.name).toBe('tiny-f32 Q4_0');
    expect(q.quantization).toBe('Q4_0');
    expect(q.state).toBe('complete');
    const source = bytesSource(model);
    const file = await readGguf(source);
    const want = await concat(quantizeChunks(source, file, planQuantize(file, 'Q4_0')));
    const got = new Uint8Array(await (await engine.exportModel(q.id)).arrayBuffer());
    expect(got.length).toBe(want.length);
    expect(Buffer.compare(Buffer.from(got), Buffer.from(want))).toBe(0);
    expect(events.length).toBeGreaterThan(2);
    expect(events.at(-1)).toBe(want.length);
    expect(events.every((b, i) => i === 0 || b >= events[i - 1]!)).toBe(true);
    expect(q.size).toBeLessThan(model.length / 4);
  });

  it('cancel stops a quantization and deletes what it wrote', async () => {
    const { engine, original } = await setup('compare-cancel');
    const id = 'cancelled-q8';
    let cancelled = false;
    const run = engine.quantizeModel({ source: { kind: 'cached', id: original.id }, type: 'Q8_0', id }, () => {
      if (!cancelled) void engine.cancelDownload(id);
      cancelled = true;
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect((await engine.listModels()).map((m) => m.id)).not.toContain(id);
  });

  it('evaluates versions: the reference as a direct perplexity, KL and top-1 against it', async () => {
    const { engine, original } = await setup('compare-eval');
    const q4 = await engine.quantizeModel({ source: { kind: 'cached', id: original.id }, type: 'Q4_0' });
    const q8 = await engine.quantizeModel({ source: { kind: 'file', file: new Blob([model as Uint8Array<ArrayBuffer>]), name: 'tiny.gguf' }, type: 'Q8_0', id: 'q8' });
    const progress: number[] = [];
    const result = await engine.evaluateModels({ ids: [original.id, q8.id, q4.id], text: TEXT, context_length: 16, max_windows: 4, decode_tokens: 4 }, (p) => progress.push(p.model));
    expect(result.models.map((m) => m.id)).toEqual([original.id, 'q8', q4.id]);
    expect(progress).toContain(2);
    const [ref, m8, m4] = result.models;
    expect(result.windows).toBe(4);
    expect(result.scored).toBe(4 * 7);

    // The reference's perplexity, computed directly on the same windows.
    const file = await readGguf(bytesSource(model));
    const tokenizer = Tokenizer.fromGgufMetadata(file.metadata);
    const tokens = tokenizer.encode(new TextEncoder().encode(TEXT), { addSpecial: true });
    const bos = tokenizer.vocab.flags.addBos ? (tokenizer.vocab.special.bos ?? undefined) : undefined;
    const windows = perplexityWindows(tokens, 16, bos).slice(0, 4);
    const direct = await Model.load(await CpuBackend.create(), bytesSource(model), { contextLength: 256 });
    const totals = new EvalTotals();
    for (const w of windows) {
      direct.reset();
      totals.addWindow(w, await direct.eval(w.tokens, { logits: 'all' }), direct.config.nVocab);
    }
    direct.destroy();
    expect(result.tokens).toBe(tokens.length);
    expect(Math.abs(ref!.perplexity - totals.perplexity) / totals.perplexity).toBeLessThan(1e-4);
    expect(ref!.kl).toBe(0);
    expect(ref!.compression).toBe(1);

    expect(m8!.bytes).toBeLessThan(ref!.bytes);
    expect(m4!.bytes).toBeLessThan(m8!.bytes);
    expect(m4!.compression).toBeCloseTo(ref!.bytes / m4!.bytes, 12);
    for (const m of [m8!, m4!]) {
      expect(Number.isFinite(m.perplexity)).toBe(true);
      expect(m.kl).toBeGreaterThan(0);
      expect(m.top1).toBeGreaterThan(0.5);
      expect(m.prefill_tokens_per_second).toBeGreaterThan(0);
      expect(m.decode_tokens_per_second).toBeGreaterThan(0);
    }
    expect(m4!.kl).toBeGreaterThan(m8!.kl);

    // A version against itself: nothing diverges.
    const self = await engine.evaluateModels({ ids: [q4.id, q4.id], text: TEXT, context_length: 16, max_windows: 2 });
    expect(self.models[1]!.kl).toBeLessThan(1e-9);
    expect(self.models[1]!.top1).toBe(1);
  });

  it('a producer failing mid-way surfaces its own error and leaves nothing stored', async () => {
    const { store } = await setup('compare-producer');
    class Broken extends Error {
      override name = 'Broken';
    }
    async function* chunks() {
      yield new Uint8Array(5000);
      throw new Broken('the quantizer failed');
    }
    await expect(store.storeGenerated({ id: 'broken', name: 'broken', fileName: 'broken.gguf', size: 12_000 }, chunks())).rejects.toThrow(Broken);
    expect((await store.list()).map((m) => m.id)).not.toContain('broken');
  });

  it('refuses bad requests by name', async () => {
    const { engine, original } = await setup('compare-invalid');
    const source = { kind: 'cached' as const, id: original.id };
    await expect(engine.quantizeModel({ source, type: 'Q3_K' as 'Q4_0' })).rejects.toMatchObject({ name: 'InvalidRequestError', detail: { param: 'type' } });
    await expect(engine.evaluateModels({ ids: [], text: TEXT })).rejects.toMatchObject({ name: 'InvalidRequestError', detail: { param: 'ids' } });
    await expect(engine.evaluateModels({ ids: [original.id], text: TEXT, context_length: 2 })).rejects.toMatchObject({ detail: { param: 'context_length' } });
    await expect(engine.evaluateModels({ ids: [original.id], text: TEXT, temperature: 1 } as never)).rejects.toMatchObject({ detail: { param: 'temperature' } });
    await expect(engine.evaluateModels({ ids: [original.id], text: 'too short', context_length: 64 })).rejects.toMatchObject({ name: 'QuantizeError' });
    await expect(engine.evaluateModels({ ids: ['nope'], text: TEXT })).rejects.toMatchObject({ name: 'ModelNotFoundError' });
  });
});
