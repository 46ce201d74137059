/**
 * The engine keeps its GPU device (and the pipelines compiled on it) across model loads: switching
 * models or reloading with other options creates no new device, a failed load leaves the device
 * usable, and only unloading gives it back.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.ts';
import { nodeGpu, nodeProbeOptions } from '../../src/node/webgpu.ts';
import { watchedGpu } from '../../src/testing/gpu.ts';
import { makeTestModel } from '../../src/testing/make-model.ts';

let engine: Engine | undefined;
afterAll(async () => {
  await engine?.unloadModel();
});

const fileOf = (bytes: Uint8Array, name: string) => ({ kind: 'file' as const, file: new Blob([bytes as Uint8Array<ArrayBuffer>]), name });

describe('the engine GPU device across loads', () => {
  it('reuses one device for every load until unload', async () => {
    const devices: GPUDevice[] = [];
    engine = new Engine({ gpu: watchedGpu(nodeGpu(), { onDevice: (d) => devices.push(d) }), runtime: 'test', probeOptions: nodeProbeOptions() });
    const llama = makeTestModel({ arch: 'llama', embd: 64, layers: 2, heads: 4, kvHeads: 2, ff: 128, ctx: 512, seed: 11 });
    const qwen = makeTestModel({ arch: 'qwen2', embd: 64, layers: 1, heads: 4, kvHeads: 2, ff: 96, ctx: 512, seed: 12 });
    const request = { messages: [{ role: 'user' as const, content: 'Hello' }], temperature: 0, max_tokens: 6 };

    expect((await engine.loadModel(fileOf(llama, 'a.gguf'), { contextLength: 256, backend: 'webgpu' })).backend).toBe('webgpu');
    const first = await engine.chatCompletion(request);
    await engine.loadModel(fileOf(qwen, 'b.gguf'), { contextLength: 128, backend: 'webgpu' });
    expect((await engine.chatCompletion(request)).usage.completion_tokens).toBeGreaterThan(0);

    // A corrupt file fails to load and loses nothing: the next load runs on the same device.
    const corrupt = llama.slice(0, 4096);
    await expect(engine.loadModel(fileOf(corrupt, 'c.gguf'), { backend: 'webgpu' })).rejects.toThrow();
    await engine.loadModel(fileOf(llama, 'a.gguf'), { contextLength: 256, backend: 'webgpu' });
    const again = await engine.chatCompletion(request);
    expect(again.choices[0].message.content).toBe(first.choices[0].message.content);
    expect(devices).toHaveLength(1);

    await engine.unloadModel();
    await devices[0]!.lost; // unloading gives the device back
    await engine.loadModel(fileOf(llama, 'a.gguf'), { contextLength: 256, backend: 'webgpu' });
    expect(devices).toHaveLength(2);
    expect((await engine.chatCompletion(request)).choices[0].message.content).toBe(first.choices[0].message.content);
  });
});
