/**
 * Long waits in the engine (issue 19 item 7, issue 28 item 3): a load from a stalled server fails
 * after the stall timeout instead of holding the request queue for good, any load can be cancelled
 * (running or queued), a local copy reports progress and can be cancelled, and load progress says
 * what really happens on the CPU backend.
 */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { makeTestModel } from '../testing/make-model.ts';
import { makeTestGguf } from '../testing/store-fixtures.ts';
import type { DownloadProgress, LoadProgress } from './api.ts';
import { Engine } from './engine.ts';
import { ModelStore } from './store/index.ts';

const OPTIONS = { backend: 'cpu' as const, threads: 1 };
const URL_SOURCE = { kind: 'url' as const, urls: ['https://stalled.example/model.gguf'] };

/** A server that takes requests and never answers (until the request is aborted). */
const silentFetch = ((_: RequestInfo | URL, init?: RequestInit) =>
  new Promise<never>((_, reject) => init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')), { once: true }))) as typeof fetch;

describe('Engine waits', () => {
  it('fails a load from a server that stops answering after the stall timeout, and the queue moves on', async () => {
    const engine = new Engine({ gpu: undefined, runtime: 'test', fetch: silentFetch, stallTimeoutMs: 50 });
    const load = engine.loadModel(URL_SOURCE, OPTIONS);
    const chat = engine.chatCompletion({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 1 });
    await expect(load).rejects.toMatchObject({ name: 'NetworkStallError' });
    await expect(chat).rejects.toMatchObject({ name: 'NoModelLoadedError' });
  });

  it('cancels a stalled load and the loads queued behind it; the model in use stays loaded', async () => {
    const engine = new Engine({ gpu: undefined, runtime: 'test', fetch: silentFetch });
    const model = makeTestModel({ arch: 'llama', embd: 64, layers: 1, heads: 4, ff: 96, ctx: 256, seed: 1, name: 'Kept model' });
    await engine.loadModel({ kind: 'file', file: new Blob([model as Uint8Array<ArrayBuffer>]), name: 'kept.gguf' }, OPTIONS);
    const stalled = engine.loadModel(URL_SOURCE, OPTIONS);
    const queued = engine.loadModel({ kind: 'file', file: new Blob([model as Uint8Array<ArrayBuffer>]), name: 'queued.gguf' }, OPTIONS);
    await engine.cancelLoad();
    await expect(stalled).rejects.toMatchObject({ name: 'AbortError' });
    await expect(queued).rejects.toMatchObject({ name: 'AbortError' });
    const reply = await engine.chatCompletion({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 1, temperature: 0 });
    expect(reply.model).toBe('Kept model');
    await engine.unloadModel();
  }, 60_000);

  it('reports load progress with a rate, and on the CPU says the weights are prepared there, not uploaded', async () => {
    const engine = new Engine({ gpu: undefined, runtime: 'test' });
    const model = makeTestModel({ arch: 'llama', embd: 64, layers: 1, heads: 4, ff: 96, ctx: 256, seed: 2, name: 'Progress model' });
    const events: LoadProgress[] = [];
    await engine.loadModel({ kind: 'file', file: new Blob([model as Uint8Array<ArrayBuffer>]), name: 'p.gguf' }, OPTIONS, (p) => events.push(p));
    const weights = events.filter((p) => p.phase === 'uploading-weights');
    expect(weights.length).toBeGreaterThan(0);
    expect(weights.every((p) => p.backend === 'cpu' && typeof p.rate === 'number')).toBe(true);
    expect(weights.at(-1)!.loaded).toBe(weights.at(-1)!.total);
    await engine.unloadModel();
  }, 60_000);

  it('copies a local file with progress, cancels the copy by its id, and resumes it with the same file', async () => {
    const store = new ModelStore({ dbName: 'engine-waits', chunkBytes: 4096, storage: null, now: (() => { let t = 0; return () => (t += 1000); })() });
    const engine = new Engine({ gpu: undefined, runtime: 'test', store });
    const file = new File([makeTestGguf(60_000, 3)], 'copied.gguf');
    const events: DownloadProgress[] = [];
    const cancelled = engine.importModelFile([file], { copy: true }, (p) => {
      events.push(p);
      if (p.bytes > 20_000) void engine.cancelDownload(p.id);
    });
    await expect(cancelled).rejects.toMatchObject({ name: 'AbortError' });
    expect(events[0]).toMatchObject({ phase: 'downloading', total: file.size });
    const [partial] = await engine.listModels();
    expect(partial).toMatchObject({ id: events[0]!.id, state: 'partial' });
    expect(partial!.storedBytes).toBeGreaterThan(20_000);
    const copied = await engine.importModelFile([file], { copy: true });
    expect(copied).toMatchObject({ state: 'complete', storedBytes: file.size });
  });
});
