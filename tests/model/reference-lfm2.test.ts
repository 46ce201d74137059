/**
 * The float64 lfm2 reference (src/testing/reference-lfm2.ts) against llama.cpp's CPU logits (f32
 * KV cache) on generated F32 files (src/testing/make-model.ts) of two shapes, different mixes of
 * short-convolution and attention layers; its own consistency (a prompt fed whole, token by token
 * or in uneven pieces gives the same logits); a negative control (dropping the conv columns and
 * the KV cache between tokens lands far above the bar); and the
 * engine still refusing lfm2 files by name until it has a forward for them.
 * Every comparison prints its figures ("[reference-lfm2] ...") for the issue notes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGguf } from '../../src/engine/gguf/reader.ts';
import { bytesSource } from '../../src/engine/gguf/source.ts';
import { readModelConfig } from '../../src/engine/model/config.ts';
import { UnsupportedModelError } from '../../src/engine/model/errors.ts';
import { klDivergence, maxAbsDiff, topOneAgreement } from '../../src/testing/compare.ts';
import { llamaRefLogits } from '../../src/testing/llama-ref.ts';
import { makeTestModel, type TestModelOptions } from '../../src/testing/make-model.ts';
import { Lfm2ReferenceSession, loadLfm2Reference, referenceLfm2Forward, type Lfm2ReferenceModel } from '../../src/testing/reference-lfm2.ts';

const TIMEOUT = 120_000;
const N_TOKENS = 64;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hearth-ref-lfm2-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Deterministic token ids in [0, nVocab). */
function randomTokens(n: number, nVocab: number, seed: number): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(s % nVocab);
  }
  return out;
}

const SHAPES: Array<{ label: string; options: TestModelOptions }> = [
  { label: 'embd 64, 4 layers (attention at 1, 3), 4 heads / 2 kv, conv 3', options: { arch: 'lfm2', embd: 64, layers: 4, heads: 4, kvHeads: 2, ff: 96, seed: 21 } },
  {
    label: 'embd 48, 5 layers (attention at 2), 6 heads / 3 kv of 8, conv 4, tied',
    options: { arch: 'lfm2', embd: 48, layers: 5, heads: 6, kvHeads: 3, ff: 80, attnLayers: [2], shortConv: 4, tiedEmbeddings: true, seed: 22 },
  },
];

async function generate(name: string, options: TestModelOptions): Promise<{ path: string; model: Lfm2ReferenceModel; bytes: Uint8Array }> {
  const bytes = makeTestModel(options);
  const path = join(dir, `${name}.gguf`);
  writeFileSync(path, bytes);
  return { path, model: await loadLfm2Reference(path), bytes };
}

describe('lfm2 float64 reference', () => {
  it.each(SHAPES.map((s, i) => [i, s.label] as const))('shape %i (%s): matches llama.cpp at every position', { timeout: TIMEOUT }, async (i, label) => {
    const { path, model } = await generate(`shape${i}`, SHAPES[i]!.options);
    const tokens = randomTokens(N_TOKENS, model.config.nVocab, 100 + i);
    const ref = llamaRefLogits(path, tokens, { threads: 2, kvType: 'f32' });
    expect(ref.nVocab).toBe(model.config.nVocab);
    const ours = referenceLfm2Forward(model, tokens);
    // KL(llama.cpp || reference): P is llama.cpp's distribution.
    const kl = klDivergence(ref.logits, ours, ref.nVocab);
    const top1 = topOneAgreement(ref.logits, ours, ref.nVocab);
    const maxAbs = maxAbsDiff(ref.logits, ours);
    console.log(`[reference-lfm2] ${label}: ${tokens.length} positions, mean KL ${kl.toExponential(2)}, top-1 ${(top1 * 100).toFixed(1)}%, max |dlogit| ${maxAbs.toExponential(2)}`);
    expect(kl).toBeLessThanOrEqual(1e-5);
    expect(top1).toBeGreaterThanOrEqual(0.99);

    // Negative control: a fresh state for every token (conv columns and KV cache dropped) is far off.
    const stateless = new Float64Array(ours.length);
    tokens.forEach((id, t) => stateless.set(referenceLfm2Forward(model, [id]), t * ref.nVocab));
    const klStateless = klDivergence(ref.logits, stateless, ref.nVocab);
    console.log(`[reference-lfm2] ${label}: without any state (conv columns, KV cache), mean KL ${klStateless.toExponential(2)}`);
    expect(klStateless).toBeGreaterThan(1e-2);
  });

  it('a prompt fed whole, token by token or in uneven pieces gives the same logits', { timeout: TIMEOUT }, async () => {
    const { model } = await generate('split', SHAPES[1]!.options);
    const V = model.config.nVocab;
    const tokens = randomTokens(23, V, 7);
    const whole = referenceLfm2Forward(model, tokens);
    const one = new Lfm2ReferenceSession(model);
    const byToken = new Float64Array(whole.length);
    tokens.forEach((id, t) => byToken.set(one.eval([id]), t * V));
    const pieces = new Lfm2ReferenceSession(model);
    const byPieces = new Float64Array(whole.length);
    let at = 0;
    for (const len of [5, 1, 9, 8]) {
      byPieces.set(pieces.eval(tokens.slice(at, at + len)), at * V);
      at += len;
    }
    expect(at).toBe(tokens.length);
    expect(maxAbsDiff(byToken, whole)).toBeLessThanOrEqual(1e-12);
    expect(maxAbsDiff(byPieces, whole)).toBeLessThanOrEqual(1e-12);
    // And llama.cpp agrees when it splits the prompt into batches of 5, carrying its own state.
    const path = join(dir, 'split.gguf');
    const split = llamaRefLogits(path, tokens, { threads: 2, batch: 5, kvType: 'f32' });
    expect(klDivergence(split.logits, whole, V)).toBeLessThanOrEqual(1e-5);
  });

  it('the engine still refuses lfm2 by name (UnsupportedModelError): it has no hybrid forward yet', async () => {
    const file = await readGguf(bytesSource(makeTestModel(SHAPES[0]!.options)));
    let caught: unknown;
    try {
      readModelConfig(file);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(UnsupportedModelError);
    expect((caught as Error).name).toBe('UnsupportedModelError');
    expect((caught as Error).message).toMatch(/architecture 'lfm2' is not supported/);
  });
});
