/**
 * Bounded fuzzing of everything a model file goes through before its weights are uploaded
 * (tests/gguf/model-fuzz.ts): a fixed set of a few hundred mutated generated models, each of which
 * must load and format a prompt or fail with one of the engine's named errors.
 */
import { describe, expect, it } from 'vitest';
import { ATTACK_CLASSES, runFuzz } from './model-fuzz.ts';

describe('model load path under mutated files', () => {
  it('ends every case in a successful load or a named error', async () => {
    const { results, summary } = await runFuzz();
    const unnamed = results.filter((r) => r.outcome === 'unnamed').map((r) => `${r.attack}: ${r.what}: ${r.error}`);
    expect(unnamed).toEqual([]);
    // Every class ran, and the cases are neither all harmless nor all fatal.
    for (const attack of ATTACK_CLASSES) expect(summary.get(attack)!.tried, attack).toBeGreaterThan(8);
    expect(results.filter((r) => r.outcome === 'ok').length).toBeGreaterThan(20);
    expect(results.filter((r) => r.outcome !== 'ok').length).toBeGreaterThan(results.length / 2);
  }, 120_000);
});
