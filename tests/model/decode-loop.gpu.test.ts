/**
 * The token loop on the device (src/engine/model/decode-loop.ts) against the step-by-step loop
 * (src/engine/model/token-loop.ts's StepByStepLoop over Model.next): the same token ids,
 * greedy and seeded with penalties, for every architecture the generator makes, on WebGPU
 * (SwiftShader here) and on the CPU backend. Then what it costs: after warm-up a decode step
 * creates no GPU object, uses one command encoder and one submit, and records exactly its plan's
 * dispatches; and a loop ended early leaves the cache holding only the steps a step-by-step loop
 * would have run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuBackend } from '../../src/engine/backend/cpu/backend.ts';
import type { Backend } from '../../src/engine/backend/ops.ts';
import { WebGpuBackend } from '../../src/engine/backend/webgpu/backend.ts';
import { KernelCache } from '../../src/engine/backend/webgpu/kernel.ts';
import { countGpuObjects } from '../../src/bench/gpu-objects.ts';
import { StepByStepLoop, type DecodeLoop, type DecodeLoopOptions } from '../../src/engine/model/token-loop.ts';
import { SeededRandom } from '../../src/engine/generate/rng.ts';
import { Model } from '../../src/engine/model/model.ts';
import { GREEDY, NO_PENALTIES, type PenaltyParams, type SamplingParams } from '../../src/engine/sampling/index.ts';
import { acquireTestGpu, type TestGpu } from '../../src/testing/gpu.ts';
import { editedTestModel, gemma3Edit } from '../../src/testing/edit-model.ts';
import { makeTestModel, type TestArch } from '../../src/testing/make-model.ts';

let gpu: TestGpu;
let kernels: KernelCache;
beforeAll(async () => {
  gpu = await acquireTestGpu();
  kernels = new KernelCache(gpu.device);
});
afterAll(() => gpu?.destroy());

// Flat logits (outputScale), so seeded sampling varies and the comparison says something.
const DIMS = { embd: 64, layers: 2, heads: 4, kvHeads: 2, ff: 96, seed: 11, outputScale: 1.5 } as const;
const MODELS: Array<{ label: string; bytes: () => Uint8Array }> = [
  ...(['llama', 'mistral', 'qwen2', 'qwen3', 'phi3', 'gemma', 'gemma2', 'granite'] as TestArch[]).map((arch) => ({
    label: arch,
    bytes: () => makeTestModel({ arch, ...DIMS, ...(arch === 'gemma2' || arch === 'mistral' ? { slidingWindow: 8 } : {}) }),
  })),
  { label: 'gemma3', bytes: () => editedTestModel({ arch: 'gemma2', ...DIMS, slidingWindow: 8 }, gemma3Edit(DIMS.layers, DIMS.embd / DIMS.heads, 8)) },
];

const SEEDED: SamplingParams = { temperature: 0.9, topK: 20, topP: 0.95, minP: 0.02 };
const PENALIZED: PenaltyParams = { repetition: 1.3, frequency: 0.2, presence: 0.3, lastN: 64 };
const PROMPT = [1, 5, 9, 2, 7, 5, 3, 9, 11, 4, 5, 6];
const STEPS = 14;

function options(sampling: SamplingParams, penalties: PenaltyParams, cached: readonly number[], prompt: readonly number[], maxSteps = STEPS): DecodeLoopOptions {
  const rng = new SeededRandom(1234);
  return { prompt, cached, sampling, penalties, random: () => rng.nextFloat(), maxSteps };
}

async function take(loop: DecodeLoop, n: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) ids.push(await loop.next());
  await loop.finish();
  return ids;
}

/** Step by step, then on the device, from the same cached prefix: ids and cache positions. */
async function compareLoops(model: Model, sampling: SamplingParams, penalties: PenaltyParams): Promise<void> {
  // A cached prefix as a chat's second turn has it: its tokens count for the penalties.
  const cached = [3, 3, 8, 1];
  model.reset();
  await model.eval(cached, { logits: 'none' });
  const stepped = await take(new StepByStepLoop(model, options(sampling, penalties, cached, PROMPT)), STEPS);
  expect(model.position).toBe(cached.length + PROMPT.length + STEPS - 1);
  model.truncate(cached.length);
  const looped = await take(model.decodeLoop(options(sampling, penalties, cached, PROMPT)), STEPS);
  expect(looped).toEqual(stepped);
  // Seeded with penalties, not a degenerate run (one token over and over; greedy small random
  // models can be), so the comparison says something.
  if (sampling.temperature > 0) expect(new Set(stepped).size).toBeGreaterThan(2);
  expect(model.position).toBe(cached.length + PROMPT.length + STEPS - 1);
}

function gpuBackend(): Backend {
  return new WebGpuBackend(gpu.device, { kernels, kernelPaths: gpu.kernelPaths });
}

describe.each([
  { backend: 'webgpu', make: async () => gpuBackend() },
  { backend: 'cpu', make: async (): Promise<Backend> => CpuBackend.create({ relaxed: false }) },
])("the device loop gives the step-by-step loop's tokens ($backend)", ({ make }) => {
  it.each(MODELS)('$label: greedy, and seeded with penalties', async ({ bytes }) => {
    const file = bytes();
    const source = { size: file.byteLength, read: async (o: number, l: number) => file.subarray(o, o + l) };
    const model = await Model.load(await make(), source, { contextLength: 96, batch: 8 });
    try {
      await compareLoops(model, GREEDY, NO_PENALTIES);
      await compareLoops(model, SEEDED, PENALIZED);
    } finally {
      model.destroy();
    }
  });
});

describe('a decode step on WebGPU after warm-up', () => {
  it("creates no GPU object, uses one encoder and one submit, and records its plan's dispatches", async () => {
    const file = makeTestModel({ arch: 'qwen2', ...DIMS, layers: 3 });
    const source = { size: file.byteLength, read: async (o: number, l: number) => file.subarray(o, o + l) };
    // A device of its own, so the counts see only this model's work.
    const own = await acquireTestGpu();
    const counter = countGpuObjects(own.device);
    const backend = new WebGpuBackend(own.device, { kernelPaths: own.kernelPaths });
    const model = await Model.load(backend, source, { contextLength: 128, batch: 8 });
    try {
      for (const [sampling, penalties] of [
        [GREEDY, NO_PENALTIES],
        [SEEDED, PENALIZED],
      ] as const) {
        model.reset();
        const stats = { steps: 0, hostMs: 0, submitMs: 0 };
        const loop = model.decodeLoop({ ...options(sampling, penalties, [], PROMPT, 40), stats });
        for (let i = 0; i < 6; i++) await loop.next();
        const before = counter.snapshot();
        const dispatches = backend.counters.dispatches;
        const steps = stats.steps;
        const tokens = 20;
        for (let i = 0; i < tokens; i++) await loop.next();
        const after = counter.snapshot();
        // The loop's host-cost stats (what `hearth bench` reads) count the steps it recorded.
        expect(stats.steps - steps).toBe(tokens);
        expect(stats.hostMs).toBeGreaterThan(0);
        await loop.finish();
        const plan = model.decodePlan(true, sampling, penalties.repetition === 1 ? undefined : penalties);
        expect(plan?.valid).toBe(true);
        expect({ objects: after.objects - before.objects, byKind: after.byKind }).toMatchObject({ objects: 0 });
        expect(after.submits - before.submits).toBe(tokens);
        expect(after.commandEncoders - before.commandEncoders).toBe(tokens);
        expect((backend.counters.dispatches - dispatches) / tokens).toBe(plan!.dispatches);
        // Model.next replays a plan of its own: also nothing created per token.
        model.reset();
        let t = await model.next(PROMPT, GREEDY, 0);
        t = await model.next([t], GREEDY, 0);
        const beforeNext = counter.snapshot();
        for (let i = 0; i < 5; i++) t = await model.next([t], GREEDY, 0);
        const afterNext = counter.snapshot();
        expect(afterNext.objects - beforeNext.objects).toBe(0);
        expect(afterNext.submits - beforeNext.submits).toBe(5);
      }
    } finally {
      model.destroy();
      own.destroy();
    }
  });

  it('ended early, leaves the cache as the step-by-step loop would: a later loop continues exactly', async () => {
    const file = makeTestModel({ arch: 'llama', ...DIMS });
    const source = { size: file.byteLength, read: async (o: number, l: number) => file.subarray(o, o + l) };
    const model = await Model.load(gpuBackend(), source, { contextLength: 96, batch: 8 });
    try {
      const whole = await take(model.decodeLoop(options(GREEDY, PENALIZED, [], PROMPT, 12)), 12);
      model.reset();
      // Take 4 (steps ran ahead and are discarded), then continue from the 4th token.
      const first = await take(model.decodeLoop(options(GREEDY, PENALIZED, [], PROMPT, 12)), 4);
      expect(first).toEqual(whole.slice(0, 4));
      const cached = [...PROMPT, ...first.slice(0, 3)];
      expect(model.position).toBe(cached.length);
      const rest = await take(model.decodeLoop(options(GREEDY, PENALIZED, cached, [first[3]!], 8)), 8);
      expect(rest).toEqual(whole.slice(4));
      // Ended before any token was taken: nothing of the prompt stays.
      model.reset();
      await model.decodeLoop(options(GREEDY, NO_PENALTIES, [], PROMPT)).finish();
      expect(model.position).toBe(0);
    } finally {
      model.destroy();
    }
  });
});
