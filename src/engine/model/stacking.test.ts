/**
 * What the loader stacks (stacking.ts): q|k|v and gate|up where the formats match in every block,
 * v apart in the blocks where Q4_K_M keeps it in Q6_K, nothing where per-head q/k norms need q and
 * k in buffers of their own.
 */
import { describe, expect, it } from 'vitest';
import { GgmlType } from '../gguf/ggml-types.ts';
import { readGguf } from '../gguf/reader.ts';
import { bytesSource } from '../gguf/source.ts';
import { makeTestModel, type TestModelOptions } from '../../testing/make-model.ts';
import { readModelConfig } from './config.ts';
import { stackedLoad } from './stacking.ts';

async function stackedOf(options: TestModelOptions) {
  const file = await readGguf(bytesSource(makeTestModel(options)));
  const config = readModelConfig(file);
  const types = new Map(file.tensors.map((t) => [t.name, t.type]));
  const { config: loaded, blocks } = stackedLoad(config, file.tensors);
  return { file: config, config: loaded, blocks, types };
}

const small = { embd: 64, layers: 8, heads: 4, kvHeads: 2, ff: 96, seed: 5 } as const;
const partsOf = (blocks: ReturnType<typeof stackedLoad>['blocks'], il: number, field: string) => blocks[il]!.find((b) => b.field === field)?.parts;

describe('stackedLoad', () => {
  it('one format: q|k|v and gate|up each one matrix in every block', async () => {
    const s = await stackedOf({ arch: 'llama', ...small });
    expect([s.config.tensors.fusedQkv, s.config.fusedGateUp]).toEqual([true, true]);
    for (let il = 0; il < small.layers; il++) {
      expect(partsOf(s.blocks, il, 'qkv')).toEqual(['q', 'k', 'v']);
      expect(partsOf(s.blocks, il, 'ffnUp')).toEqual(['ffnGate', 'ffnUp']);
      expect(s.blocks[il]!.map((b) => b.field)).not.toContain('ffnGate');
      expect(s.blocks[il]!.map((b) => b.field)).not.toContain('q');
    }
  });

  it('Q4_K_M: v apart in the blocks that keep it in another format', async () => {
    // K-quants need rows of 256.
    const s = await stackedOf({ arch: 'llama', ...small, embd: 256, quant: 'q4_k_m' });
    let apart = 0;
    for (let il = 0; il < small.layers; il++) {
      const vType = s.types.get(`blk.${il}.attn_v.weight`);
      const together = vType === s.types.get(`blk.${il}.attn_q.weight`);
      expect(partsOf(s.blocks, il, 'qkv')).toEqual(together ? ['q', 'k', 'v'] : ['q', 'k']);
      expect(partsOf(s.blocks, il, 'v')).toEqual(together ? undefined : ['v']);
      if (!together) apart++;
    }
    expect(apart).toBeGreaterThan(0);
    expect(s.types.get('blk.0.attn_v.weight')).toBe(GgmlType.Q6_K);
    expect(s.types.get('blk.0.attn_q.weight')).toBe(GgmlType.Q4_K);
  });

  it('biases stack with their matrices', async () => {
    const s = await stackedOf({ arch: 'qwen2', ...small });
    expect(s.config.tensors.qkvBias).toBe(true);
    expect(partsOf(s.blocks, 0, 'qkvBias')).toEqual(['qBias', 'kBias', 'vBias']);
    expect(s.blocks[0]!.map((b) => b.field)).not.toContain('qBias');
  });

  it('per-head q/k norms keep q, k, v apart; gate|up still stack', async () => {
    const s = await stackedOf({ arch: 'qwen3', ...small });
    expect(s.config.qkNorm).toBe(true);
    expect(s.config.tensors.fusedQkv).toBe(false);
    expect(partsOf(s.blocks, 0, 'q')).toEqual(['q']);
    expect(partsOf(s.blocks, 0, 'ffnUp')).toEqual(['ffnGate', 'ffnUp']);
  });

  it('a file that fuses already (phi3) loads as it is', async () => {
    const s = await stackedOf({ arch: 'phi3', ...small, kvHeads: 4 });
    for (const block of s.blocks) for (const { field, parts } of block) expect(parts).toEqual([field]);
  });
});
