import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebGpuBackend } from '../../src/engine/backend/webgpu/backend.ts';
import { bytesSource, readGguf } from '../../src/engine/gguf/index.ts';
import { Model } from '../../src/engine/model/model.ts';
import { Tokenizer } from '../../src/engine/tokenizer/index.ts';
import { argmax, klDivergence, topOneAgreement } from '../../src/testing/compare.ts';
import { acquireTestGpu, type TestGpu } from '../../src/testing/gpu.ts';
import { llamaRefLogits } from '../../src/testing/llama-ref.ts';
import { loadReferenceWeights, ReferenceSession, type ReferenceModel } from '../../src/testing/reference-forward.ts';

/**
 * The built-in demo model (tools/demo-model) as a golden fixture: llama.cpp reads the shipped file
 * and agrees with our engine on held-out text, and our greedy continuations equal the float64
 * reference's token for token.
 */
const MODEL = 'public/models/hearth-demo-kjv-q8_0.gguf';
const HELD_OUT = readFileSync('tools/demo-model/heldout-sample.txt', 'utf8');
const PROMPTS = ['In the beginning', 'And the LORD said unto Moses,', 'Blessed are the'];

let gpu: TestGpu;
let bytes: Uint8Array;
let tokenizer: Tokenizer;
let reference: ReferenceModel;

beforeAll(async () => {
  gpu = await acquireTestGpu();
  bytes = new Uint8Array(readFileSync(MODEL));
  const file = await readGguf(bytesSource(bytes));
  tokenizer = Tokenizer.fromGgufMetadata(file.metadata as ReadonlyMap<string, unknown>);
  reference = await loadReferenceWeights(file, bytesSource(bytes));
});
afterAll(() => gpu?.destroy());

async function loadOurs(): Promise<Model> {
  const backend = new WebGpuBackend(gpu.device, { kernelPaths: gpu.kernelPaths });
  return Model.load(backend, bytesSource(bytes), { contextLength: 256 });
}

describe('demo model', () => {
  it('is small enough to ship and is a llama model with a chat template', async () => {
    expect(bytes.byteLength).toBeLessThanOrEqual(16 * 1024 * 1024);
    expect(reference.config.architecture).toBe('llama');
    expect(reference.config.nCtxTrain).toBeGreaterThanOrEqual(256);
    const file = await readGguf(bytesSource(bytes));
    expect(typeof file.metadata.get('tokenizer.chat_template')).toBe('string');
  });

  it('agrees with llama.cpp teacher-forced on 256 held-out tokens', async () => {
    const ids = tokenizer.encode(HELD_OUT, { addSpecial: true }).slice(0, 256);
    expect(ids.length).toBe(256);
    const model = await loadOurs();
    const ours = await model.eval(ids, { logits: 'all' });
    model.destroy();
    const theirs = llamaRefLogits(MODEL, ids, { nCtx: 256, kvType: 'f32' });
    const vocab = reference.config.nVocab;
    const kl = klDivergence(theirs.logits, ours, vocab);
    const top1 = topOneAgreement(theirs.logits, ours, vocab);
    console.log(`[demo model] ours vs llama.cpp on 256 held-out tokens: KL ${kl.toExponential(2)}, top-1 ${(top1 * 100).toFixed(1)}%`);
    expect(top1).toBeGreaterThanOrEqual(0.95);
    expect(kl).toBeLessThanOrEqual(1e-2);
  });

  it.each(PROMPTS)('greedy continuation of %j equals the float64 reference for 64 tokens', async (prompt) => {
    const promptIds = tokenizer.encode(prompt, { addSpecial: true });
    const model = await loadOurs();
    const ours: number[] = [];
    let pending = promptIds;
    for (let i = 0; i < 64; i++) {
      const next = await model.next(pending, { temperature: 0, topK: 1, topP: 1, minP: 0 }, 0);
      ours.push(next);
      pending = [next];
    }
    model.destroy();

    const session = new ReferenceSession(reference, { nCtx: 256 });
    const exact: number[] = [];
    let logits = session.eval(promptIds);
    for (let i = 0; i < 64; i++) {
      const vocab = reference.config.nVocab;
      const next = argmax(logits, logits.length - vocab, vocab);
      exact.push(next);
      logits = session.eval([next]);
    }
    console.log(`[demo model] ${JSON.stringify(prompt)} -> ${JSON.stringify(tokenizer.decode(ours))}`);
    expect(ours).toEqual(exact);
  });
});
