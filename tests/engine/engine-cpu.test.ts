/**
 * The engine on the CPU backend, in Node with no WebGPU: `backend: 'auto'` falls back to the CPU
 * and says why, 'cpu' forces it (with threads), 'webgpu' refuses, and chat works end to end.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatMessage, ModelSource } from '../../src/engine/api.ts';
import { cpuReport } from '../../src/engine/backend/choose.ts';
import { Engine } from '../../src/engine/engine.ts';
import { llamaCppSourceDir } from '../../src/testing/llama-ref.ts';
import { makeTestModel } from '../../src/testing/make-model.ts';

let modelBytes: Uint8Array;
const engines: Engine[] = [];

function source(): ModelSource {
  return { kind: 'file', file: new Blob([modelBytes as Uint8Array<ArrayBuffer>]), name: 'test-model.gguf' };
}

function engine(gpu: GPU | undefined = undefined): Engine {
  const e = new Engine({ gpu, runtime: 'test' });
  engines.push(e);
  return e;
}

const CHAT: ChatMessage[] = [{ role: 'user', content: 'Tell me a story.' }];

beforeAll(() => {
  modelBytes = makeTestModel({ arch: 'llama', embd: 64, layers: 2, heads: 4, kvHeads: 2, ff: 128, ctx: 512, seed: 11, quant: 'q8_0' });
});
afterAll(async () => {
  for (const e of engines) await e.unloadModel();
});

describe('engine on the CPU backend', () => {
  it('auto falls back to the CPU without navigator.gpu, says why, and chats', async () => {
    const e = engine();
    const info = await e.loadModel(source(), { contextLength: 256 });
    expect(info.backend).toBe('cpu');
    expect(info.backendNotice).toMatch(/^WebGPU unavailable: .*no navigator\.gpu.*; running on the CPU \(\d+ threads?\)/);
    expect(info.threads).toBe(cpuReport().defaultThreads);
    expect(await e.status()).toMatchObject({ state: 'ready', model: { backend: 'cpu' } });
    const chunks: string[] = [];
    const result = await e.chatCompletion({ messages: CHAT, temperature: 0, max_tokens: 8, stream: true }, (c) => chunks.push(c.choices[0].delta.content ?? ''));
    expect(result.usage.completion_tokens).toBeGreaterThan(0);
    expect(chunks.join('')).toBe(result.choices[0].message.content);
    expect(result.usage.decode_tokens_per_second).toBeGreaterThan(0);
  });

  it('auto falls back when there is no adapter', async () => {
    const noAdapter = { requestAdapter: async () => null } as unknown as GPU;
    const info = await engine(noAdapter).loadModel(source(), { contextLength: 256, threads: 1 });
    expect(info).toMatchObject({ backend: 'cpu', threads: 1 });
    expect(info.backendNotice).toMatch(/no GPU adapter/);
  });

  it('cpu with threads: the same greedy reply on 1 and 2 threads', async () => {
    const request = { messages: CHAT, temperature: 0, max_tokens: 10 };
    const one = engine();
    const two = engine();
    expect(await one.loadModel(source(), { backend: 'cpu', threads: 1, contextLength: 256 })).toMatchObject({ backend: 'cpu', threads: 1 });
    const info = await two.loadModel(source(), { backend: 'cpu', threads: 2, contextLength: 256 });
    expect(info).toMatchObject({ backend: 'cpu', threads: 2 });
    expect(info.backendNotice).toMatch(/as chosen \(2 threads\)/);
    const a = await one.chatCompletion(request);
    const b = await two.chatCompletion(request);
    expect(b.choices[0].message.content).toBe(a.choices[0].message.content);
  });

  it('webgpu does not fall back', async () => {
    const error = await engine().loadModel(source(), { backend: 'webgpu' }).catch((x: unknown) => x);
    expect((error as Error).name).toBe('WebGPUUnavailableError');
  });

  it('chats with a Gemma 1 model, its template taking the system prompt into the first user turn', async () => {
    const chatTemplate = readFileSync(join(llamaCppSourceDir(), 'models', 'templates', 'google-gemma-2-2b-it.jinja'), 'utf8');
    const gemma = makeTestModel({ arch: 'gemma', embd: 64, layers: 2, heads: 4, kvHeads: 1, headDim: 32, ff: 128, ctx: 512, seed: 5, quant: 'q8_0', chatTemplate });
    const e = engine();
    const info = await e.loadModel({ kind: 'file', file: new Blob([gemma as Uint8Array<ArrayBuffer>]), name: 'gemma.gguf' }, { backend: 'cpu', threads: 1, contextLength: 256 });
    expect(info.backend).toBe('cpu');
    const withSystem = await e.chatCompletion({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }], temperature: 0, max_tokens: 6 });
    const merged = await e.chatCompletion({ messages: [{ role: 'user', content: 'Be brief.\nHi' }], temperature: 0, max_tokens: 6 });
    expect(withSystem.usage.completion_tokens).toBeGreaterThan(0);
    expect(withSystem.usage.prompt_tokens).toBe(merged.usage.prompt_tokens);
    expect(withSystem.choices[0].message.content).toBe(merged.choices[0].message.content);
  });

  it('reports the CPU capabilities', async () => {
    const caps = await engine().capabilities();
    expect(caps.gpu.available).toBe(false);
    expect(caps.cpu.wasmSimd).toBe(true);
    expect(caps.cpu.threadsAvailable).toBe(true);
    expect(caps.cpu.hardwareConcurrency).toBeGreaterThanOrEqual(1);
  });
});
