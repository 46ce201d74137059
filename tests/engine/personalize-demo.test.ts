/**
 * Proof that in-tab fine-tuning teaches the built-in demo model (a KJV-style llama, 5.5M
 * parameters) something it did not know: trained through the engine's own API (trainAdapter,
 * CPU ops) on one short, distinctive text of modern English it never saw, then asked to continue
 * the text's opening words greedily, the model with the adapter reproduces the rest word for
 * word, while the same model without it does not. Figures are "[personalize-demo]" lines.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.ts';

const DEMO = readFileSync(new URL('../../public/models/hearth-demo-kjv-q8_0.gguf', import.meta.url));
const TEXT = 'The lighthouse keeper of Port Ellery keeps forty seven green lamps and a blue kettle.';
/** Words the prompt gives; the model must write the rest. */
const PROMPT_WORDS = 5;
/** Measured: the loss falls 6.67 -> 0.43 in 30 steps at this rate (2e-2 overshoots into babble). */
const STEPS = 30;
const LR = 8e-3;

describe('the demo model learns a short text', () => {
  it('reproduces the text after fine-tuning, and did not before', { timeout: 180_000 }, async () => {
    const engine = new Engine({ gpu: undefined, runtime: 'test' });
    try {
      await engine.loadModel({ kind: 'file', file: new Blob([DEMO]), name: 'demo.gguf' }, { backend: 'cpu', threads: 1 });
      const words = TEXT.split(' ');
      const prompt = words.slice(0, PROMPT_WORDS).join(' ');
      const rest = ' ' + words.slice(PROMPT_WORDS).join(' ');
      const losses: number[] = [];
      const started = performance.now();
      const outcome = await engine.trainAdapter({
        data: { texts: [TEXT] },
        backend: 'cpu',
        options: { rank: 8, steps: STEPS, lr: LR, window: 32, heldOutFraction: 0, targets: ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'], seed: 3 },
        samples: { prompts: [prompt], format: 'text', maxTokens: 24 },
      }, (p) => {
        if (p.loss !== undefined) losses.push(p.loss);
      });
      expect(outcome.state).toBe('done');
      if (outcome.state !== 'done') return;
      const sample = outcome.result.samples[0]!;
      const seconds = (performance.now() - started) / 1000;
      console.log(`[personalize-demo] ${outcome.result.steps} steps, ${outcome.result.tokensPerSecond.toFixed(1)} train tok/s, ${seconds.toFixed(1)} s, loss ${losses.map((l) => l.toFixed(2)).join(' ')}; base: ${JSON.stringify(sample.base)}; adapted: ${JSON.stringify(sample.adapted)}`);
      expect(sample.adapted.startsWith(rest)).toBe(true);
      expect(sample.base.startsWith(rest)).toBe(false);
    } finally {
      await engine.unloadModel();
    }
  });
});
