/**
 * The float64 mamba2 reference (src/testing/reference-mamba2.ts) against llama.cpp's CPU logits
 * on generated F32 files (src/testing/make-model.ts) of two shapes, one with B/C groups; its own
 * consistency (a prompt fed whole, token by token or in uneven pieces gives the same logits); a
 * negative control (dropping the recurrent state between tokens lands far above the bar); and the
 * engine still refusing mamba2 files by name until it has a forward for them.
 * Every comparison prints its figures ("[reference-mamba2] ...") for the issue notes.
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
import { Mamba2ReferenceSession, loadMamba2Reference, referenceMamba2Forward, type Mamba2ReferenceModel } from '../../src/testing/reference-mamba2.ts';

const TIMEOUT = 120_000;
const N_TOKENS = 64;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hearth-ref-mamba2-'));
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
  // d_inner 128 in 8 heads of 16, one group, d_state 16, conv 4 (Mamba2's defaults, scaled down).
  { label: 'embd 64, 2 layers, 8 heads x 16, state 16, 1 group, conv 4', options: { arch: 'mamba2', embd: 64, layers: 2, heads: 8, ff: 0, seed: 11 } },
  // Three groups of B/C over 6 heads of 16, d_state 8, conv 3, tied embeddings.
  {
    label: 'embd 48, 3 layers, 6 heads x 16, state 8, 3 groups, conv 3, tied',
    options: { arch: 'mamba2', embd: 48, layers: 3, heads: 6, ff: 0, ssmInner: 96, ssmState: 8, ssmGroups: 3, ssmConv: 3, tiedEmbeddings: true, seed: 12 },
  },
];

async function generate(name: string, options: TestModelOptions): Promise<{ path: string; model: Mamba2ReferenceModel; bytes: Uint8Array }> {
  const bytes = makeTestModel(options);
  const path = join(dir, `${name}.gguf`);
  writeFileSync(path, bytes);
  return { path, model: await loadMamba2Reference(path), bytes };
}

describe('mamba2 float64 reference', () => {
  it.each(SHAPES.map((s, i) => [i, s.label] as const))('shape %i (%s): matches llama.cpp at every position', { timeout: TIMEOUT }, async (i, label) => {
    const { path, model } = await generate(`shape${i}`, SHAPES[i]!.options);
    const tokens = randomTokens(N_TOKENS, model.config.nVocab, 100 + i);
    const ref = llamaRefLogits(path, tokens, { threads: 2 });
    expect(ref.nVocab).toBe(model.config.nVocab);
    const ours = referenceMamba2Forward(model, tokens);
    // KL(llama.cpp || reference): P is llama.cpp's distribution.
    const kl = klDivergence(ref.logits, ours, ref.nVocab);
    const top1 = topOneAgreement(ref.logits, ours, ref.nVocab);
    const maxAbs = maxAbsDiff(ref.logits, ours);
    console.log(`[reference-mamba2] ${label}: ${tokens.length} positions, mean KL ${kl.toExponential(2)}, top-1 ${(top1 * 100).toFixed(1)}%, max |dlogit| ${maxAbs.toExponential(2)}`);
    expect(kl).toBeLessThanOrEqual(1e-5);
    expect(top1).toBeGreaterThanOrEqual(0.99);

    // Negative control: a fresh state for every token (the conv and scan states dropped) is far off.
    const stateless = new Float64Array(ours.length);
    tokens.forEach((id, t) => stateless.set(referenceMamba2Forward(model, [id]), t * ref.nVocab));
    const klStateless = klDivergence(ref.logits, stateless, ref.nVocab);
    console.log(`[reference-mamba2] ${label}: without the recurrent state, mean KL ${klStateless.toExponential(2)}`);
    expect(klStateless).toBeGreaterThan(1e-2);
  });

  it('a prompt fed whole, token by token or in uneven pieces gives the same logits', { timeout: TIMEOUT }, async () => {
    const { model } = await generate('split', SHAPES[1]!.options);
    const V = model.config.nVocab;
    const tokens = randomTokens(23, V, 7);
    const whole = referenceMamba2Forward(model, tokens);
    const one = new Mamba2ReferenceSession(model);
    const byToken = new Float64Array(whole.length);
    tokens.forEach((id, t) => byToken.set(one.eval([id]), t * V));
    const pieces = new Mamba2ReferenceSession(model);
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
    const split = llamaRefLogits(path, tokens, { threads: 2, batch: 5 });
    expect(klDivergence(split.logits, whole, V)).toBeLessThanOrEqual(1e-5);
  });

  it('the engine still refuses mamba2 by name (UnsupportedModelError): it has no state-space forward yet', async () => {
    const file = await readGguf(bytesSource(makeTestModel(SHAPES[0]!.options)));
    let caught: unknown;
    try {
      readModelConfig(file);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(UnsupportedModelError);
    expect((caught as Error).name).toBe('UnsupportedModelError');
    expect((caught as Error).message).toMatch(/architecture 'mamba2' is not supported/);
  });
});
