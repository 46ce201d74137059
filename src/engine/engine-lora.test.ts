/**
 * LoRA adapters through the engine API (Node, CPU backend, generated models): `loadAdapter`, then
 * requests that pick adapters by id with their scales. Switching adapters between requests never
 * reloads the base model; the KV prefix is reused only by a request with the same adapters;
 * unknown ids and malformed choices are refused by name; an adapter for another base is refused
 * with AdapterMismatchError. An adapter kept in the model store (IndexedDB) loads by its store id.
 */
import 'fake-indexeddb/auto';
import { describe, expect, it, vi } from 'vitest';
import { ModelStore } from './store/model-store.ts';
import { readGguf } from './gguf/reader.ts';
import { bytesSource } from './gguf/source.ts';
import { readModelConfig } from './model/config.ts';
import { writeLoraGguf } from './model/lora/adapter-data.ts';
import { Model } from './model/model.ts';
import { makeRandomLora } from '../testing/make-lora.ts';
import { makeTestModel } from '../testing/make-model.ts';
import { Engine } from './engine.ts';
import { CpuBackend } from './backend/cpu/backend.ts';
import { ChatSession } from './generate/chat-session.ts';
import { DeviceLostError } from './errors.ts';

const bytes = makeTestModel({ arch: 'llama', embd: 64, layers: 2, heads: 4, ff: 96, ctx: 256, seed: 4, name: 'Base' });
const blob = (b: Uint8Array) => new Blob([b as Uint8Array<ArrayBuffer>]);
const OPTIONS = { backend: 'cpu' as const, threads: 1 };
const MESSAGES = [{ role: 'user' as const, content: 'Tell me something about the sea' }];

async function adapterBytes(seed: number, arch: 'llama' | 'qwen2' = 'llama') {
  const base = arch === 'llama' ? bytes : makeTestModel({ arch, embd: 64, layers: 2, heads: 4, ff: 96, seed: 1 });
  const config = readModelConfig(await readGguf(bytesSource(base)));
  return writeLoraGguf(makeRandomLora(config, { rank: 8, targets: ['attn_q', 'attn_v', 'ffn_down', 'output'], seed, gain: 1 }));
}

describe('Engine LoRA adapters', () => {
  it('loads adapters, applies them per request, keeps the base loaded, reuses the KV prefix only for the same adapters', async () => {
    const engine = new Engine({ gpu: undefined, runtime: 'test' });
    await engine.loadModel({ kind: 'file', file: blob(bytes), name: 'base.gguf' }, OPTIONS);
    const loads = vi.spyOn(Model, 'load');
    try {
      const a = await engine.loadAdapter({ kind: 'file', file: blob(await adapterBytes(1)), name: 'style.gguf' });
      expect(a.id).toBe('style');
      expect(a.rank).toBe(8);
      expect(a.targets).toContain('blk.1.ffn_down.weight');
      expect(a.targets).toContain('output.weight');
      const b = await engine.loadAdapter({ kind: 'file', file: blob(await adapterBytes(2)), name: 'style.gguf' });
      expect(b.id).toBe('style-2');

      const ask = (adapters?: Array<{ id: string; scale?: number }>) =>
        engine.chatCompletion({ messages: MESSAGES, max_tokens: 8, temperature: 0, ...(adapters ? { adapters } : {}) });
      const base1 = await ask();
      const withA = await ask([{ id: 'style' }]);
      const withA2 = await ask([{ id: 'style', scale: 1 }]);
      const withBoth = await ask([{ id: 'style', scale: 0.5 }, { id: 'style-2', scale: 1.5 }]);
      const base2 = await ask();
      const text = (r: typeof base1) => r.choices[0].message.content;
      expect(text(withA)).not.toBe(text(base1));
      expect(text(withBoth)).not.toBe(text(withA));
      expect(text(withA2)).toBe(text(withA));
      expect(text(base2)).toBe(text(base1));
      // Same adapters (scale 1 spelled or not): the prompt's prefix comes from the cache; other adapters: evaluated again.
      expect(withA2.usage.cached_prompt_tokens).toBeGreaterThan(0);
      expect(withA.usage.cached_prompt_tokens).toBe(0);
      expect(withBoth.usage.cached_prompt_tokens).toBe(0);
      expect(base2.usage.cached_prompt_tokens).toBe(0);
      expect(loads).not.toHaveBeenCalled();

      // Unknown ids and malformed choices are refused by name.
      const unknown = await ask([{ id: 'nope' }]).catch((e: unknown) => e as Error);
      expect((unknown as Error).name).toBe('InvalidRequestError');
      expect((unknown as Error).message).toMatch(/'adapters\[0\]\.id' names no loaded adapter \(loaded: 'style', 'style-2'\)/);
      for (const [bad, message] of [
        [[{ id: 'style', scale: Number.NaN }], /adapters\[0\]\.scale/],
        [[{ id: 'style', weight: 1 }], /adapters\[0\]\.weight' is not supported/],
        [[{ id: 'style' }, { id: 'style' }], /adapters\[1\]\.id' names an adapter already in the list/],
        ['style', /'adapters' must be an array/],
      ] as const) {
        const e = await engine.chatCompletion({ messages: MESSAGES, adapters: bad as never }).catch((x: unknown) => x as Error);
        expect((e as Error).name).toBe('InvalidRequestError');
        expect((e as Error).message).toMatch(message);
      }
      // An adapter made for another architecture.
      const other = await engine.loadAdapter({ kind: 'file', file: blob(await adapterBytes(3, 'qwen2')), name: 'q.gguf' }).catch((e: unknown) => e as Error);
      expect((other as Error).name).toBe('AdapterMismatchError');
      // Not a GGUF at all.
      const junk = await engine.loadAdapter({ kind: 'file', file: blob(new TextEncoder().encode('hello')), name: 'j.gguf' }).catch((e: unknown) => e as Error);
      expect((junk as Error).name).toBe('GgufFormatError');
      expect(text(await ask([{ id: 'style' }]))).toBe(text(withA));
    } finally {
      loads.mockRestore();
      await engine.unloadModel();
    }
  }, 120_000);

  it('loads an adapter kept in the model store, with the same effect as from its file', async () => {
    const store = new ModelStore({ dbName: 'engine-lora-store', storage: null });
    const engine = new Engine({ gpu: undefined, runtime: 'test', store });
    await engine.loadModel({ kind: 'file', file: blob(bytes), name: 'base.gguf' }, OPTIONS);
    try {
      const adapter = await adapterBytes(1);
      const stored = await engine.importModelFile([new File([adapter as Uint8Array<ArrayBuffer>], 'style.gguf')], { copy: true });
      expect(stored.storedBytes).toBe(adapter.length);
      const fromStore = await engine.loadAdapter({ kind: 'cached', id: stored.id }, { id: 'kept' });
      const fromFile = await engine.loadAdapter({ kind: 'file', file: blob(adapter), name: 'style.gguf' }, { id: 'picked' });
      expect(fromStore.targets).toEqual(fromFile.targets);
      const ask = (id: string) => engine.chatCompletion({ messages: MESSAGES, max_tokens: 8, temperature: 0, adapters: [{ id, scale: 0.8 }] });
      const a = await ask('kept');
      const b = await ask('picked');
      expect(a.choices[0].message.content).toBe(b.choices[0].message.content);
      const base = await engine.chatCompletion({ messages: MESSAGES, max_tokens: 8, temperature: 0 });
      expect(base.choices[0].message.content).not.toBe(a.choices[0].message.content);
    } finally {
      await engine.unloadModel();
    }
  }, 120_000);

  it('unloads an adapter by id: requests can no longer name it, its memory goes back where the backend can free it', async () => {
    const engine = new Engine({ gpu: undefined, runtime: 'test' });
    await engine.loadModel({ kind: 'file', file: blob(bytes), name: 'base.gguf' }, OPTIONS);
    try {
      const first = await engine.loadAdapter({ kind: 'file', file: blob(await adapterBytes(1)), name: 'a.gguf' });
      const last = await engine.loadAdapter({ kind: 'file', file: blob(await adapterBytes(2)), name: 'b.gguf' });
      const ask = (adapters?: Array<{ id: string; scale?: number }>) => engine.chatCompletion({ messages: MESSAGES, max_tokens: 6, temperature: 0, ...(adapters ? { adapters } : {}) });
      const base = (await ask()).choices[0].message.content;
      const withFirst = (await ask([{ id: first.id }])).choices[0].message.content;
      expect(withFirst).not.toBe(base);
      // The CPU backend's bump allocator frees only the latest allocations: the first adapter's bytes stay (0 freed), the last one's go back.
      expect((await engine.unloadAdapter(first.id)).freedBytes).toBe(0);
      const freed = await engine.unloadAdapter(last.id);
      expect(freed.freedBytes).toBeGreaterThanOrEqual(last.bytes);
      const gone = await ask([{ id: first.id }]).catch((e: unknown) => e as Error);
      expect((gone as Error).name).toBe('InvalidRequestError');
      // The request after the unload (it was in use) does not reuse the adapted KV prefix: the base reply again.
      expect((await ask()).choices[0].message.content).toBe(base);
      const unknown = await engine.unloadAdapter('nope').catch((e: unknown) => e as Error);
      expect((unknown as Error).name).toBe('InvalidRequestError');
      expect((unknown as Error).message).toMatch(/names no loaded adapter \(loaded: none\)/);
      // Loaded again after the free: the same effect as before (the freed memory is reused, not corrupt).
      const again = await engine.loadAdapter({ kind: 'file', file: blob(await adapterBytes(1)), name: 'a.gguf' });
      expect((await ask([{ id: again.id }])).choices[0].message.content).toBe(withFirst);
    } finally {
      await engine.unloadModel();
    }
  }, 120_000);

  it('refuses an adapter larger than the memory the backend has left, by name, and loads nothing', async () => {
    const engine = new Engine({ gpu: undefined, runtime: 'test' });
    await engine.loadModel({ kind: 'file', file: blob(bytes), name: 'base.gguf' }, OPTIONS);
    const left = vi.spyOn(CpuBackend.prototype, 'memoryLeft').mockReturnValue(10_000);
    try {
      const error = await engine.loadAdapter({ kind: 'file', file: blob(await adapterBytes(1)), name: 'big.gguf' }).catch((e: unknown) => e as Error);
      expect((error as Error).name).toBe('AdapterTooLargeError');
      expect((error as Error).message).toMatch(/needs \d+ bytes .* has 10000 bytes left/);
      const named = await engine.chatCompletion({ messages: MESSAGES, max_tokens: 2, adapters: [{ id: 'big' }] }).catch((e: unknown) => e as Error);
      expect((named as Error).name).toBe('InvalidRequestError');
    } finally {
      left.mockRestore();
      await engine.unloadModel();
    }
  }, 120_000);

  it('after a device loss, the next request reloads the model with its adapters, under the same ids, from where they came from', async () => {
    const store = new ModelStore({ dbName: 'engine-lora-lost', storage: null });
    const engine = new Engine({ gpu: undefined, runtime: 'test', store });
    await engine.loadModel({ kind: 'file', file: blob(bytes), name: 'base.gguf' }, OPTIONS);
    try {
      const stored = await engine.importModelFile([new File([(await adapterBytes(1)) as Uint8Array<ArrayBuffer>], 'style.gguf')], { copy: true });
      const fromStore = await engine.loadAdapter({ kind: 'cached', id: stored.id });
      const fromFile = await engine.loadAdapter({ kind: 'file', file: blob(await adapterBytes(2)), name: 'tone.gguf' });
      const ask = () => engine.chatCompletion({ messages: MESSAGES, max_tokens: 6, temperature: 0, adapters: [{ id: fromStore.id, scale: 0.7 }, { id: fromFile.id, scale: 1.2 }] });
      const before = (await ask()).choices[0].message.content;
      const loads = vi.spyOn(Model, 'load');
      const lost = vi.spyOn(ChatSession.prototype, 'complete').mockRejectedValueOnce(new DeviceLostError('GPU device lost (simulated)'));
      const failed = await ask().catch((e: unknown) => e as Error);
      expect((failed as Error).name).toBe('DeviceLostError');
      lost.mockRestore();
      // The next request names the same ids: the model is loaded again, with both adapters.
      expect((await ask()).choices[0].message.content).toBe(before);
      expect(loads).toHaveBeenCalledTimes(1);
      loads.mockRestore();
    } finally {
      await engine.unloadModel();
    }
  }, 120_000);
});
