import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatCompletionChunk, ChatCompletionRequest, ChatMessage, ModelSource } from '../../src/engine/api.ts';
import { Engine } from '../../src/engine/engine.ts';
import { makeTestModel } from '../../src/testing/make-model.ts';
import { nodeGpu, nodeProbeOptions } from '../../src/node/webgpu.ts';

/**
 * The engine API end to end in Node on real WebGPU (Dawn), with a small generated model whose
 * outputs are peaked, so greedy runs are stable. ChatML is the template (the model has none of
 * its own, so the engine's documented fallback is exercised too).
 */
let modelBytes: Uint8Array;
const engines: Engine[] = [];

function source(): ModelSource {
  return { kind: 'file', file: new Blob([modelBytes as Uint8Array<ArrayBuffer>]), name: 'test-model.gguf' };
}

async function freshEngine(contextLength = 256, gpu: GPU = nodeGpu()): Promise<Engine> {
  const engine = new Engine({ gpu, runtime: 'test', probeOptions: nodeProbeOptions() });
  engines.push(engine);
  await engine.loadModel(source(), { contextLength, backend: 'webgpu' });
  return engine;
}

const CHAT: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Tell me a story.' },
];
const GREEDY: Partial<ChatCompletionRequest> = { temperature: 0, max_tokens: 10 };

beforeAll(() => {
  modelBytes = makeTestModel({ arch: 'llama', embd: 64, layers: 2, heads: 4, kvHeads: 2, ff: 128, ctx: 512, seed: 11 });
});
afterAll(async () => {
  for (const engine of engines) await engine.unloadModel();
});

describe('engine API (Node, WebGPU)', () => {
  it('reports no model before one is loaded', async () => {
    const engine = new Engine({ gpu: nodeGpu(), runtime: 'test', probeOptions: nodeProbeOptions() });
    expect(await engine.status()).toEqual({ state: 'idle' });
    const error = await engine.chatCompletion({ messages: CHAT }).catch((e: unknown) => e);
    expect((error as Error).name).toBe('NoModelLoadedError');
  });

  it('loads a model with progress and describes it', async () => {
    const engine = new Engine({ gpu: nodeGpu(), runtime: 'test', probeOptions: nodeProbeOptions() });
    engines.push(engine);
    const phases = new Set<string>();
    const info = await engine.loadModel(source(), { contextLength: 128, backend: 'webgpu' }, (p) => phases.add(p.phase));
    expect(phases.has('uploading-weights')).toBe(true);
    expect(info).toMatchObject({ architecture: 'llama', contextLength: 128, backend: 'webgpu', hasChatTemplate: false });
    expect(info.templateFallback).toMatch(/ChatML/);
    expect(info.parameterCount).toBeGreaterThan(10_000);
    expect(await engine.status()).toMatchObject({ state: 'ready', busy: false });
  });

  it('auto runs on the CPU when the only WebGPU adapter is a software renderer, and says so', async () => {
    const engine = new Engine({ gpu: nodeGpu(), runtime: 'test', probeOptions: nodeProbeOptions() });
    engines.push(engine);
    const report = await engine.probe();
    expect(report.available && report.kernelPaths.software, 'the test adapter is SwiftShader').toBe(true);
    const info = await engine.loadModel(source(), { contextLength: 128 });
    expect(info.backend).toBe('cpu');
    expect(info.backendNotice).toMatch(/software renderer \(google swiftshader\).*running on the CPU/);
    // After a forced WebGPU load (which uses the software adapter), auto still prefers the CPU.
    expect((await engine.loadModel(source(), { contextLength: 128, backend: 'webgpu' })).backend).toBe('webgpu');
    expect((await engine.loadModel(source(), { contextLength: 128 })).backend).toBe('cpu');
  });

  it('streams a completion whose chunks add up to the result', async () => {
    const engine = await freshEngine();
    const chunks: ChatCompletionChunk[] = [];
    const result = await engine.chatCompletion({ messages: CHAT, ...GREEDY, stream: true }, (c) => chunks.push(c));
    expect(result.choices[0].message.content?.length).toBeGreaterThan(0);
    expect(chunks.map((c) => c.choices[0].delta.content ?? '').join('')).toBe(result.choices[0].message.content);
    expect(result.usage.completion_tokens).toBeGreaterThan(0);
    expect(result.usage.decode_tokens_per_second).toBeGreaterThan(0);
    expect(chunks.at(-1)!.choices[0].finish_reason).toBe(result.choices[0].finish_reason);
  });

  it('reproduces seeded sampling across engines', async () => {
    const request = { messages: CHAT, temperature: 0.9, top_k: 20, seed: 1234, max_tokens: 12 };
    const a = await (await freshEngine()).chatCompletion(request);
    const b = await (await freshEngine()).chatCompletion(request);
    expect(b.choices[0].message.content).toBe(a.choices[0].message.content);
  });

  it('after an abort at a random point, the next request equals a fresh engine', async () => {
    const engine = await freshEngine();
    const stopAfter = 1 + Math.floor(Math.random() * 6);
    let seen = 0;
    const aborted = await engine.chatCompletion({ messages: CHAT, ...GREEDY, max_tokens: 30, request_id: 'r1' }, () => {
      if (++seen === stopAfter) void engine.abort('r1');
    });
    expect(aborted.choices[0].finish_reason).toBe('abort');
    expect(aborted.usage.completion_tokens).toBeLessThanOrEqual(stopAfter + 1);
    const next: ChatMessage[] = [...CHAT, { role: 'assistant', content: aborted.choices[0].message.content ?? '' }, { role: 'user', content: 'Go on.' }];
    const afterAbort = await engine.chatCompletion({ messages: next, ...GREEDY });
    const fresh = await (await freshEngine()).chatCompletion({ messages: next, ...GREEDY });
    expect(afterAbort.choices[0].message.content).toBe(fresh.choices[0].message.content);
    // The second request reused the cache: only the new tokens were evaluated.
    expect(afterAbort.usage.cached_prompt_tokens).toBeGreaterThan(0);
  });

  it('reuses the KV cache on the second turn', async () => {
    const engine = await freshEngine();
    const first = await engine.chatCompletion({ messages: CHAT, ...GREEDY });
    const second = await engine.chatCompletion({
      messages: [...CHAT, { role: 'assistant', content: first.choices[0].message.content }, { role: 'user', content: 'And then?' }],
      ...GREEDY,
    });
    expect(second.usage.cached_prompt_tokens).toBeGreaterThanOrEqual(first.usage.prompt_tokens);
  });

  it('applies the context overflow policies', async () => {
    const engine = await freshEngine(192);
    const long: ChatMessage[] = [{ role: 'system', content: 'Rules.' }];
    for (let i = 0; i < 8; i++) long.push({ role: 'user', content: `question ${i} padding padding` }, { role: 'assistant', content: `answer ${i} padding` });
    long.push({ role: 'user', content: 'last?' });
    const error = await engine.chatCompletion({ messages: long, ...GREEDY, context_overflow: 'error' }).catch((e: unknown) => e);
    expect((error as Error).name).toBe('ContextWindowExceededError');
    const dropped = await engine.chatCompletion({ messages: long, ...GREEDY, max_tokens: 4 });
    expect(dropped.usage.dropped_messages).toBeGreaterThan(0);
    expect(dropped.usage.prompt_tokens).toBeLessThan(192);
  });

  it('queues concurrent requests instead of interleaving them', async () => {
    const engine = await freshEngine();
    const order: string[] = [];
    const a = engine.chatCompletion({ messages: CHAT, ...GREEDY }, () => order.push('a'));
    const b = engine.chatCompletion({ messages: [{ role: 'user', content: 'Other.' }], ...GREEDY }, () => order.push('b'));
    await Promise.all([a, b]);
    expect(order.join('')).toMatch(/^a+b+$/);
  });

  it('recovers from a lost device on the next request', async () => {
    let device: GPUDevice | undefined;
    const real = nodeGpu();
    // A GPU whose devices the test can reach, to destroy one as a driver reset would.
    const spying = {
      requestAdapter: async (options?: GPURequestAdapterOptions) => {
        const adapter = await real.requestAdapter(options);
        if (!adapter) return adapter;
        return new Proxy(adapter, {
          get(target, prop) {
            if (prop === 'requestDevice') {
              return async (descriptor?: GPUDeviceDescriptor) => (device = await target.requestDevice(descriptor));
            }
            const value = Reflect.get(target, prop, target) as unknown;
            return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
          },
        });
      },
      getPreferredCanvasFormat: () => real.getPreferredCanvasFormat(),
      wgslLanguageFeatures: real.wgslLanguageFeatures,
    } as unknown as GPU;
    const engine = await freshEngine(256, spying);
    const before = await engine.chatCompletion({ messages: CHAT, ...GREEDY });
    device!.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const after = await engine.chatCompletion({ messages: CHAT, ...GREEDY });
    expect(after.choices[0].message.content).toBe(before.choices[0].message.content);
    expect(await engine.status()).toMatchObject({ state: 'ready' });
  });
});
