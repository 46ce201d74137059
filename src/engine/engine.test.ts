/**
 * The engine's model swap, in Node on the CPU backend with generated models: a load that fails
 * (not a GGUF, a truncated file, a model that does not fit) leaves the model in use loaded and
 * answering; a load that succeeds replaces it.
 */
import { describe, expect, it } from 'vitest';
import { makeTestModel } from '../testing/make-model.ts';
import { randomBytes } from '../testing/store-fixtures.ts';
import { Engine } from './engine.ts';
import { createHearthClient } from './rpc/client.ts';

const first = makeTestModel({ arch: 'llama', embd: 64, layers: 1, heads: 4, ff: 96, ctx: 256, seed: 1, name: 'First model' });
const second = makeTestModel({ arch: 'llama', embd: 64, layers: 1, heads: 4, ff: 96, ctx: 256, seed: 2, name: 'Second model' });
const file = (bytes: Uint8Array, name: string) => ({ kind: 'file' as const, file: new Blob([bytes as Uint8Array<ArrayBuffer>]), name });
const OPTIONS = { backend: 'cpu' as const, threads: 1 };

async function answers(engine: Engine): Promise<string> {
  const reply = await engine.chatCompletion({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, temperature: 0 });
  expect(reply.usage.completion_tokens).toBeGreaterThan(0);
  return reply.model;
}

describe('Engine.loadModel', () => {
  it('keeps the model in use when a load fails, and replaces it when one succeeds', async () => {
    const engine = new Engine({ gpu: undefined, runtime: 'test' });
    await engine.loadModel(file(first, 'first.gguf'), OPTIONS);
    const bad = [
      file(new TextEncoder().encode('not a model\n'.repeat(100)), 'notes.gguf'),
      file(randomBytes(65536, 7), 'noise.gguf'),
      file(second.subarray(0, Math.floor(second.length / 2)), 'truncated.gguf'),
    ];
    for (const source of bad) {
      await expect(engine.loadModel(source, OPTIONS)).rejects.toThrow();
      const status = await engine.status();
      expect(status.state === 'ready' && status.model.name).toBe('First model');
      expect(await answers(engine)).toBe('First model');
    }
    // Too large even alone: the first model is freed for the second try, then loaded again.
    const tooLarge = await engine.loadModel(file(second, 'second.gguf'), { ...OPTIONS, contextLength: 1 << 30 }).catch((e: unknown) => e);
    expect((tooLarge as Error).name).toBe('ModelTooLargeError');
    expect(await answers(engine)).toBe('First model');

    const info = await engine.loadModel(file(second, 'second.gguf'), OPTIONS);
    expect(info.name).toBe('Second model');
    expect(info.loadNotice).toBeUndefined();
    expect(await answers(engine)).toBe('Second model');
    await engine.unloadModel();
  }, 120_000);
});

describe('Engine.abort', () => {
  it('applies to the requests with that id in flight or queued at the time, never to a later one', async () => {
    const engine = new Engine({ gpu: undefined, runtime: 'test' });
    await engine.loadModel(file(first, 'first.gguf'), OPTIONS);
    const request = { messages: [{ role: 'user' as const, content: 'Hi' }], max_tokens: 3, temperature: 0, request_id: 'dup' };

    // Aborting a finished request, or an id nobody used, leaves the next request with that id alone.
    const done = await engine.chatCompletion(request);
    expect(done.choices[0].finish_reason).not.toBe('abort');
    await engine.abort('dup');
    await engine.abort('never-used');
    const next = await engine.chatCompletion(request);
    expect(next.choices[0].finish_reason).toBe(done.choices[0].finish_reason);
    expect(next.usage.completion_tokens).toBe(done.usage.completion_tokens);
    const unused = await engine.chatCompletion({ ...request, request_id: 'never-used' });
    expect(unused.choices[0].finish_reason).not.toBe('abort');

    // A queued request is aborted; one sent after the abort with the same id is not.
    const blocker = engine.chatCompletion({ ...request, request_id: 'other' });
    const queued = engine.chatCompletion(request);
    await engine.abort('dup');
    const later = engine.chatCompletion(request);
    await blocker;
    expect((await queued).choices[0].finish_reason).toBe('abort');
    expect((await queued).usage.completion_tokens).toBe(0);
    expect((await later).choices[0].finish_reason).toBe(done.choices[0].finish_reason);
    expect((await later).usage.completion_tokens).toBe(done.usage.completion_tokens);

    // The client forwards a signal aborted before the call after sending the request, so it still lands.
    const early = new AbortController();
    early.abort();
    const client = createHearthClient(engine);
    const viaClient = await client.chat.completions.create({ ...request, request_id: 'client', signal: early.signal });
    expect(viaClient.choices[0].finish_reason).toBe('abort');
    await engine.unloadModel();
  }, 120_000);
});
