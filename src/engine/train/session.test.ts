/**
 * A training run as the Personalize page drives it, on a small generated model: the estimate adds
 * up and is near the time a run takes; a run paused and resumed from its checkpoint bytes ends
 * with the same adapter, byte for byte, as one that ran through; cancel ends it between steps;
 * bad options, other data and foreign bytes are refused by name. Through the Engine (CPU backend):
 * the worker answers other calls while a run trains, a second run is refused, samples come with
 * and without the adapter.
 */
import { describe, expect, it } from 'vitest';
import { readGguf } from '../gguf/reader.ts';
import { bytesSource } from '../gguf/source.ts';
import { readLoraFile } from '../model/lora/adapter-file.ts';
import { readModelConfig } from '../model/config.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { makeTestModel } from '../../testing/make-model.ts';
import { Engine } from '../engine.ts';
import { remoteEngine } from '../rpc/remote-engine.ts';
import { StreamHost } from '../rpc/stream-host.ts';
import { loadTrainingBase } from './base.ts';
import { CpuTrainOps } from './cpu-ops.ts';
import { CheckpointFormatError, TrainingDataError, UnsupportedTrainingError } from './errors.ts';
import { TrainingRun, TrainingStateError, estimateTraining, readRunCheckpoint, trainOpsFor, resolveTrainingOptions, type TrainingHost, type TrainingOutcome, type TrainingProgress, type TrainingRequest } from './session.ts';

const TEMPLATE = '{% for m in messages %}<|{{ m.role }}|>{{ m.content }}<|end|>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}';
const MODEL = makeTestModel({ arch: 'llama', embd: 32, layers: 2, heads: 4, kvHeads: 2, ff: 64, ctx: 128, seed: 5, chatTemplate: TEMPLATE, name: 'Tiny' });
const TEXT = 'the keeper rang the bell eleven times in the fog and wrote the ships in green ink. '.repeat(8);
const CHAT = [
  { role: 'user', content: 'who rang the bell' },
  { role: 'assistant', content: 'the keeper rang it eleven times' },
];

async function host(): Promise<TrainingHost> {
  const file = await readGguf(bytesSource(MODEL));
  const metadata = file.metadata as ReadonlyMap<string, unknown>;
  return { base: await loadTrainingBase(bytesSource(MODEL), file), metadata, tokenizer: Tokenizer.fromGgufMetadata(metadata), backend: 'cpu' };
}

const REQUEST: TrainingRequest = { data: { texts: [TEXT], conversations: [CHAT] }, options: { rank: 2, steps: 6, window: 16, evalEvery: 2, heldOutFraction: 0.2, lr: 5e-3, targets: ['attn_q', 'attn_v', 'ffn_down'] } };

async function runThrough(h: TrainingHost, request: TrainingRequest, during?: (p: TrainingProgress, run: TrainingRun) => void): Promise<{ outcome: TrainingOutcome; events: TrainingProgress[] }> {
  const run = new TrainingRun(h, request);
  const events: TrainingProgress[] = [];
  const outcome = await run.run((p) => {
    events.push(p);
    during?.(p, run);
  });
  return { outcome, events };
}

describe('training session', { timeout: 60_000 }, () => {
  it('estimates time and memory from one measured step, near what the run takes', async () => {
    const h = await host();
    const e = await estimateTraining(h, REQUEST);
    expect(e.steps).toBe(6);
    expect(e.trainWindows + e.heldOutWindows).toBeGreaterThan(5);
    expect(e.heldOutWindows).toBeGreaterThan(0);
    // rank 2 on q, v (32 -> 32, 32 -> 16) and ffn_down (64 -> 32), two layers: 2 * (2 * (in + out)) each.
    expect(e.parameters).toBe(2 * 2 * (32 + 32 + (32 + 16) + (64 + 32)));
    expect(e.memory.adapter).toBe(e.parameters * 4);
    expect(e.memory.optimizer).toBe(e.parameters * 8);
    expect(e.memory.base).toBe(h.base.bytes);
    expect(e.memory.activations).toBeGreaterThan(0);
    expect(e.memory.total).toBe(e.memory.base + e.memory.adapter + e.memory.optimizer + e.memory.gradients + e.memory.activations + e.memory.ops);
    expect(e.secondsPerStep).toBeGreaterThan(0);
    expect(e.seconds).toBeGreaterThanOrEqual(6 * e.secondsPerStep);
    expect(e.trainTokens).toBe(6 * 16);
    const t0 = performance.now();
    const { outcome } = await runThrough(h, REQUEST);
    const actual = (performance.now() - t0) / 1000;
    console.log(`[session] estimate ${e.seconds.toFixed(3)} s, actual ${actual.toFixed(3)} s, ${e.tokensPerSecond.toFixed(0)} tokens/s estimated`);
    expect(outcome.state).toBe('done');
    // The first step (the probe) pays for warm-up; a shared machine is noisy: within 10x either way.
    expect(actual / e.seconds).toBeGreaterThan(0.1);
    expect(actual / e.seconds).toBeLessThan(10);
  });

  it('reports steps, held-out loss and checkpoints, and ends with before/after figures and an adapter file', async () => {
    const h = await host();
    const { outcome, events } = await runThrough(h, REQUEST);
    const steps = events.filter((p) => p.phase === 'training' && p.loss !== undefined);
    expect(new Set(steps.map((p) => p.step))).toEqual(new Set([1, 2, 3, 4, 5, 6]));
    expect(events.find((p) => p.step === 0 && p.heldOutLoss !== undefined)).toBeDefined();
    expect(events.filter((p) => p.heldOutLoss !== undefined && p.step > 0).map((p) => p.step)).toEqual([2, 4, 6]);
    expect(events.filter((p) => p.checkpoint).map((p) => p.step)).toEqual([2, 4, 6]);
    expect(steps.every((p) => p.tokensPerSecond! > 0 && p.secondsLeft! >= 0)).toBe(true);
    if (outcome.state !== 'done') throw new Error(outcome.state);
    const r = outcome.result;
    expect(r.steps).toBe(6);
    expect(r.heldOut!.before.loss).toBe(events.find((p) => p.step === 0 && p.heldOutLoss !== undefined)!.heldOutLoss);
    expect(r.heldOut!.after.perplexity).toBeCloseTo(Math.exp(r.heldOut!.after.loss), 6);
    expect(r.heldOut!.after.loss).not.toBe(r.heldOut!.before.loss);
    const info = readLoraFile(await readGguf(bytesSource(r.adapter)), readModelConfig(await readGguf(bytesSource(MODEL))));
    expect(info.targets.length).toBe(6);
    expect(info.alpha).toBe(4);
  });

  it('paused and resumed from the checkpoint bytes, ends with the same adapter as a run straight through', async () => {
    const h = await host();
    const straight = await runThrough(h, REQUEST);
    const first = await runThrough(h, REQUEST, (p, run) => p.step === 3 && p.phase === 'training' && run.pause());
    expect(first.outcome.state).toBe('paused');
    if (first.outcome.state !== 'paused') return;
    expect(first.outcome.step).toBe(3);
    // A fresh host, as after a reload: nothing carries over but the bytes.
    const second = await runThrough(await host(), { ...REQUEST, options: {}, resume: first.outcome.checkpoint });
    expect(second.events.filter((p) => p.loss !== undefined).map((p) => p.step)[0]).toBe(4);
    if (straight.outcome.state !== 'done' || second.outcome.state !== 'done') throw new Error('not done');
    expect(second.outcome.result.adapter).toEqual(straight.outcome.result.adapter);
    expect(second.outcome.result.heldOut).toEqual(straight.outcome.result.heldOut);
    // The same from a progress checkpoint (the one a reload without a pause resumes from).
    const fromProgress = first.events.find((p) => p.checkpoint)!;
    expect(fromProgress.step).toBe(2);
    const third = await runThrough(h, { ...REQUEST, resume: fromProgress.checkpoint! });
    if (third.outcome.state !== 'done') throw new Error('not done');
    expect(third.outcome.result.adapter).toEqual(straight.outcome.result.adapter);
  });

  it("samples a long text's held-out part (a check costs a few steps, not an epoch)", async () => {
    const e = await estimateTraining(await host(), { data: { texts: [TEXT.repeat(12)] }, options: { rank: 1, steps: 1, window: 8, heldOutFraction: 0.5, targets: ['attn_q'] } });
    expect(e.trainWindows).toBeGreaterThan(100);
    expect(e.heldOutWindows).toBe(32);
  });

  it('cancels between steps', async () => {
    const { outcome, events } = await runThrough(await host(), REQUEST, (p, run) => p.step === 2 && p.loss !== undefined && run.cancel());
    expect(outcome).toEqual({ state: 'cancelled', step: 2 });
    expect(events.some((p) => p.step > 2)).toBe(false);
  });

  it('refuses bad options, other data and foreign bytes by name', async () => {
    const h = await host();
    const param = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(TrainingDataError);
        return ((e as TrainingDataError).detail as { param: string }).param;
      }
      throw new Error('not refused');
    };
    expect(param(() => resolveTrainingOptions({ rank: 0 }))).toBe('rank');
    expect(param(() => resolveTrainingOptions({ steps: 2.5 }))).toBe('steps');
    expect(param(() => resolveTrainingOptions({ lr: -1 }))).toBe('lr');
    expect(param(() => resolveTrainingOptions({ heldOutFraction: 1 }))).toBe('heldOutFraction');
    expect(param(() => resolveTrainingOptions({ window: 1 }))).toBe('window');
    expect(param(() => resolveTrainingOptions({ targets: ['token_embd' as 'attn_q'] }))).toBe('targets');
    expect(param(() => resolveTrainingOptions({ speed: 2 } as never))).toBe('speed');
    expect(param(() => new TrainingRun(h, { data: { texts: ['   '] } }))).toBe('data');
    expect(() => new TrainingRun(h, { data: { conversations: [[{ role: 'user', content: 'hi' }]] } })).toThrow(TrainingDataError);
    expect(param(() => new TrainingRun(h, { ...REQUEST, backend: 'tpu' as 'cpu' }))).toBe('backend');
    // WebGPU asked for where the engine has none: refused by name, not trained on the CPU instead.
    await expect(estimateTraining(h, { ...REQUEST, backend: 'webgpu' })).rejects.toMatchObject({ name: 'WebGPUUnavailableError' });
    const paused = await runThrough(h, REQUEST, (p, run) => p.step === 1 && run.pause());
    if (paused.outcome.state !== 'paused') throw new Error('not paused');
    const { checkpoint } = paused.outcome;
    expect(() => new TrainingRun(h, { data: { texts: [TEXT + ' more'] }, resume: checkpoint })).toThrow(CheckpointFormatError);
    expect(() => readRunCheckpoint(new Uint8Array(40))).toThrow(CheckpointFormatError);
    expect(() => new TrainingRun(h, { ...REQUEST, resume: MODEL.subarray(0, 100) })).toThrow(CheckpointFormatError);
  });
});

describe('training through the engine', { timeout: 120_000 }, () => {
  const blob = (b: Uint8Array) => new Blob([b as Uint8Array<ArrayBuffer>]);

  it('answers other calls while it trains, refuses a second run, pauses, resumes, samples with and without the adapter', async () => {
    const engine = new Engine({ gpu: undefined, runtime: 'test' });
    await engine.loadModel({ kind: 'file', file: blob(MODEL), name: 'tiny.gguf' }, { backend: 'cpu', threads: 1 });
    const request: TrainingRequest = { ...REQUEST, options: { ...REQUEST.options, steps: 12 }, samples: { prompts: ['the keeper', 'in the fog'], format: 'text', maxTokens: 6 } };
    const estimate = await engine.estimateTraining(request);
    expect(estimate.backend).toBe('cpu');
    expect(estimate.backendNotice).toMatch(/CPU/);
    // The engine's CPU ops (wasm kernels) hold their own copy of the base: the estimate counts it.
    expect(estimate.memory.ops).toBeGreaterThanOrEqual(estimate.memory.base);
    let answeredAt: number | undefined;
    const steps: number[] = [];
    const first = engine.trainAdapter(request, (p) => {
      if (p.loss !== undefined) steps.push(p.step);
    });
    await expect(engine.trainAdapter(request)).rejects.toThrow(TrainingStateError);
    // Another call is answered between steps, long before the run could have ended.
    await engine.countTokens([{ role: 'user', content: 'hello' }]);
    answeredAt = steps.length;
    expect(answeredAt).toBeLessThan(12);
    while (steps.length < 3) await new Promise((r) => setTimeout(r, 5));
    const paused = await engine.pauseTraining();
    expect(paused).toBeDefined();
    expect(await first).toMatchObject({ state: 'paused', step: paused!.step });
    await expect(engine.pauseTraining()).rejects.toThrow(TrainingStateError);
    const done = await engine.trainAdapter({ ...request, resume: paused!.checkpoint });
    if (done.state !== 'done') throw new Error(done.state);
    expect(done.result.steps).toBe(12);
    expect(done.result.samples.map((s) => s.prompt)).toEqual(['the keeper', 'in the fog']);
    expect(done.result.samples.some((s) => s.base !== s.adapted || s.base.length > 0)).toBe(true);
    // The sampling adapter was unloaded again: the adapter list is as before.
    await expect(engine.unloadAdapter('training-sample-1')).rejects.toThrow(/names no loaded adapter/);
    // Cancel: ends the run, nothing kept.
    const cancelled = engine.trainAdapter(request);
    await engine.cancelTraining();
    expect((await cancelled).state).toBe('cancelled');
  });

  it('crosses the worker boundary as a pull stream: every step reported before the outcome, checkpoints as bytes', async () => {
    const engine = new Engine({ gpu: undefined, runtime: 'test' });
    await engine.loadModel({ kind: 'file', file: blob(MODEL), name: 'tiny.gguf' }, { backend: 'cpu', threads: 1 });
    const remote = remoteEngine({ engine, streams: new StreamHost(engine) });
    const events: TrainingProgress[] = [];
    const outcome = await remote.trainAdapter({ ...REQUEST, options: { ...REQUEST.options, steps: 4 } }, (p) => events.push(p));
    expect(outcome.state).toBe('done');
    expect(events.filter((p) => p.loss !== undefined).map((p) => p.step)).toEqual([1, 2, 2, 3, 4, 4]);
    expect(events.filter((p) => p.checkpoint).every((p) => p.checkpoint instanceof Uint8Array)).toBe(true);
    expect(events.at(-1)!.step).toBe(4);
  });

  it('refuses a model it cannot train by name', async () => {
    const engine = new Engine({ gpu: undefined, runtime: 'test' });
    const gemma = makeTestModel({ arch: 'gemma2', embd: 32, layers: 1, heads: 2, ff: 64, ctx: 64 });
    await engine.loadModel({ kind: 'file', file: blob(gemma), name: 'g.gguf' }, { backend: 'cpu', threads: 1 });
    await expect(engine.estimateTraining({ data: { texts: [TEXT] } })).rejects.toThrow(UnsupportedTrainingError);
  });
});

describe('trainOpsFor on the CPU', () => {
  it("takes the host's CPU ops where it has them (destroyed with the run), else the plain CpuTrainOps", async () => {
    const mine = new CpuTrainOps('f32');
    let destroyed = 0;
    const chosen = await trainOpsFor({ backend: 'cpu', cpuOps: async () => ({ ops: mine, destroy: () => destroyed++ }) }, 'auto');
    expect(chosen.backend).toBe('cpu');
    expect(chosen.ops).toBe(mine);
    chosen.destroy();
    expect(destroyed).toBe(1);
    const plain = await trainOpsFor({ backend: 'cpu' }, 'cpu');
    expect(plain.ops).toBeInstanceOf(CpuTrainOps);
    expect(plain.ops).not.toBe(mine);
  });
});
