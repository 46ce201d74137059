/**
 * `backend: 'auto'` after a lost GPU device: when WebGPU will not start again (no adapter), the
 * reload on the next request lands on the CPU backend and says why.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.ts';
import { nodeGpu, nodeProbeOptions } from '../../src/node/webgpu.ts';
import { makeTestModel } from '../../src/testing/make-model.ts';
import { watchedGpu } from '../../src/testing/gpu.ts';

let engine: Engine | undefined;
afterAll(async () => {
  await engine?.unloadModel();
});

describe('engine fallback after a device loss', () => {
  it('reloads on the CPU when the GPU is gone for good', async () => {
    let device: GPUDevice | undefined;
    let gone = false;
    const flaky = watchedGpu(nodeGpu(), { onDevice: (d) => (device = d), available: () => !gone, asHardware: true });
    const bytes = makeTestModel({ arch: 'llama', embd: 64, layers: 2, heads: 4, kvHeads: 2, ff: 128, ctx: 512, seed: 11 });
    engine = new Engine({ gpu: flaky, runtime: 'test', probeOptions: nodeProbeOptions() });
    const info = await engine.loadModel({ kind: 'file', file: new Blob([bytes as Uint8Array<ArrayBuffer>]), name: 'm.gguf' }, { contextLength: 256 });
    expect(info.backend).toBe('webgpu');
    const request = { messages: [{ role: 'user' as const, content: 'Hello' }], temperature: 0, max_tokens: 6 };
    const before = await engine.chatCompletion(request);
    gone = true;
    device!.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const after = await engine.chatCompletion(request);
    expect(after.usage.completion_tokens).toBeGreaterThan(0);
    const status = await engine.status();
    expect(status).toMatchObject({ state: 'ready', model: { backend: 'cpu' } });
    expect(status.state === 'ready' && status.model.backendNotice).toMatch(/WebGPU unavailable: .*no GPU adapter.*running on the CPU/);
    // Greedy replies agree across the backends on this peaked model.
    expect(after.choices[0].message.content).toBe(before.choices[0].message.content);
  });
});
