/**
 * Which ops a training run through the Engine takes, and that WebGPU's train as the CPU's do: with
 * a (stand-in) hardware adapter, `auto` trains on WebGPU and its losses, held-out losses and
 * adapter equal the CPU run's; on the software adapter (SwiftShader, as it is) `auto` stays on the
 * CPU although the model runs on WebGPU; a device lost mid-run ends it with
 * TrainingDeviceLostError carrying the last step's checkpoint, which resumes on the CPU to the same
 * adapter. Differences are printed as "[train backend]" lines.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { nodeGpu, nodeProbeOptions } from '../../node/webgpu.ts';
import { watchedGpu } from '../../testing/gpu.ts';
import { makeTestModel } from '../../testing/make-model.ts';
import { Engine } from '../engine.ts';
import { readCheckpoint } from './checkpoint.ts';
import { readRunCheckpoint, type TrainingOutcome, type TrainingProgress, type TrainingRequest } from './session.ts';

const MODEL = makeTestModel({ arch: 'llama', embd: 32, layers: 2, heads: 4, kvHeads: 2, ff: 64, ctx: 64, seed: 5, name: 'Tiny' });
const file = () => ({ kind: 'file' as const, file: new Blob([MODEL as Uint8Array<ArrayBuffer>]), name: 'tiny.gguf' });
const TEXT = 'the keeper rang the bell eleven times in the fog and wrote the ships in green ink. '.repeat(6);
const REQUEST: TrainingRequest = { data: { texts: [TEXT] }, options: { rank: 2, steps: 4, window: 12, evalEvery: 2, heldOutFraction: 0.2, lr: 5e-3, targets: ['attn_q', 'attn_v', 'ffn_down'] } };

const engines: Engine[] = [];
afterAll(async () => {
  for (const e of engines) await e.unloadModel();
});

interface Trace {
  outcome: TrainingOutcome;
  events: TrainingProgress[];
  losses: number[];
  heldOut: number[];
  /** The adapter's A and B arrays of the last progress checkpoint. */
  adapter: Float32Array[];
}

async function train(engine: Engine, request: TrainingRequest, during?: (p: TrainingProgress) => void): Promise<Trace> {
  const events: TrainingProgress[] = [];
  const outcome = await engine.trainAdapter(request, (p) => {
    events.push(p);
    during?.(p);
  });
  return trace(outcome, events);
}

function trace(outcome: TrainingOutcome, events: TrainingProgress[]): Trace {
  const last = events.filter((e) => e.checkpoint).at(-1)?.checkpoint;
  const adapter = last ? readCheckpoint(readRunCheckpoint(last).trainer).adapter.targets.flatMap((t) => [t.a, t.b]) : [];
  const losses = events.filter((e) => e.loss !== undefined && e.heldOutLoss === undefined).map((e) => e.loss!);
  return { outcome, events, losses, heldOut: events.filter((e) => e.heldOutLoss !== undefined).map((e) => e.heldOutLoss!), adapter };
}

function worstRel(a: readonly number[], b: readonly number[]): number {
  expect(a.length).toBe(b.length);
  return Math.max(0, ...a.map((x, i) => Math.abs(x - b[i]!) / Math.abs(b[i]!)));
}

function worstAbs(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  a.forEach((t, k) => {
    expect(t.length).toBe(b[k]!.length);
    for (let i = 0; i < t.length; i++) worst = Math.max(worst, Math.abs(t[i]! - b[k]![i]!));
  });
  return worst;
}

describe('training backend through the engine', { timeout: 180_000 }, () => {
  let reference: Trace;

  it('auto trains on WebGPU on a hardware adapter, with the CPU run\'s losses and adapter', async () => {
    const cpu = new Engine({ gpu: undefined, runtime: 'test' });
    engines.push(cpu);
    await cpu.loadModel(file(), { backend: 'cpu', threads: 1, contextLength: 64 });
    reference = await train(cpu, REQUEST);
    expect(reference.outcome.state).toBe('done');
    expect(reference.events.every((e) => e.backend === 'cpu')).toBe(true);
    expect(reference.losses.length).toBe(4);

    const gpu = new Engine({ gpu: watchedGpu(nodeGpu(), { asHardware: true }), runtime: 'test', probeOptions: nodeProbeOptions() });
    engines.push(gpu);
    expect((await gpu.loadModel(file(), { contextLength: 64 })).backend).toBe('webgpu');
    const estimate = await gpu.estimateTraining(REQUEST);
    expect(estimate.backend).toBe('webgpu');
    expect(estimate.backendNotice).toMatch(/GPU/);
    expect((await gpu.estimateTraining({ ...REQUEST, backend: 'cpu' })).backend).toBe('cpu');

    const run = await train(gpu, REQUEST);
    expect(run.outcome.state).toBe('done');
    expect(run.outcome.state === 'done' && run.outcome.result.backend).toBe('webgpu');
    expect(run.events.every((e) => e.backend === 'webgpu')).toBe(true);
    const lossRel = worstRel(run.losses, reference.losses);
    const heldRel = worstRel(run.heldOut, reference.heldOut);
    const adapterAbs = worstAbs(run.adapter, reference.adapter);
    console.log(`[train backend] webgpu vs cpu over ${run.losses.length} steps: loss rel ${lossRel.toExponential(2)}, held-out rel ${heldRel.toExponential(2)}, adapter abs ${adapterAbs.toExponential(2)}`);
    expect(lossRel).toBeLessThan(1e-5);
    expect(heldRel).toBeLessThan(1e-5);
    expect(adapterAbs).toBeLessThan(1e-5);
    // The adapter did move (B starts at zero): the comparison is not of two untouched adapters.
    expect(Math.max(...run.adapter.map((t) => Math.max(...Array.from(t, Math.abs))))).toBeGreaterThan(1e-3);
  });

  it('a device lost mid-run ends it by name with a checkpoint that resumes on the CPU to the same adapter', async () => {
    let device: GPUDevice | undefined;
    const gpu = new Engine({ gpu: watchedGpu(nodeGpu(), { asHardware: true, onDevice: (d) => (device = d) }), runtime: 'test', probeOptions: nodeProbeOptions() });
    engines.push(gpu);
    expect((await gpu.loadModel(file(), { contextLength: 64 })).backend).toBe('webgpu');
    const lost = await gpu
      .trainAdapter(REQUEST, (p) => {
        if (p.phase === 'training' && p.step === 1) device!.destroy();
      })
      .then(
        () => undefined,
        (e: Error & { detail?: { step?: number; checkpoint?: Uint8Array } }) => e,
      );
    expect(lost?.name).toBe('TrainingDeviceLostError');
    expect(lost?.detail?.step).toBeGreaterThanOrEqual(1);
    const events: TrainingProgress[] = [];
    const outcome = await gpu.trainAdapter({ ...REQUEST, backend: 'cpu', resume: lost!.detail!.checkpoint! }, (p) => events.push(p));
    expect(outcome.state).toBe('done');
    expect(events.every((e) => e.backend === 'cpu')).toBe(true);
    const resumed = trace(outcome, events);
    const adapterAbs = worstAbs(resumed.adapter, reference.adapter);
    console.log(`[train backend] lost at step ${lost!.detail!.step}, resumed on the CPU: adapter abs ${adapterAbs.toExponential(2)} from the CPU run's`);
    expect(adapterAbs).toBeLessThan(1e-5);
  });

  it('auto stays on the CPU on a software adapter, though the model runs on WebGPU', async () => {
    const soft = new Engine({ gpu: nodeGpu(), runtime: 'test', probeOptions: nodeProbeOptions() });
    engines.push(soft);
    expect((await soft.loadModel(file(), { backend: 'webgpu', contextLength: 64 })).backend).toBe('webgpu');
    const estimate = await soft.estimateTraining(REQUEST);
    expect(estimate.backend).toBe('cpu');
    expect(estimate.backendNotice).toMatch(/software renderer/);
    expect((await soft.estimateTraining({ ...REQUEST, backend: 'webgpu' })).backend).toBe('webgpu');
  });
});
