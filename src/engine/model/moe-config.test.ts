/**
 * Mixture-of-experts configuration (moe-config.ts) as llama.cpp reads it: which keys, which
 * defaults per architecture, the routing rules each graph passes to build_moe_ffn, the tensors an
 * MoE block must have, and named errors for impossible expert counts.
 */
import { describe, expect, it } from 'vitest';
import type { GgufFile } from '../gguf/types.ts';
import { headerOnlyGguf, smallModelMeta, type Meta } from '../../testing/header-gguf.ts';
import { readModelConfig } from './config.ts';
import { ModelConfigError } from './errors.ts';
import { modelTensors } from './tensors.ts';

/** The small model of header-gguf.ts with 8 experts, 2 used, and a logit scale (granite). */
function fileOf(arch: string, extra: Meta = {}): GgufFile {
  return headerOnlyGguf(smallModelMeta(arch, { [`${arch}.logit_scale`]: 8, [`${arch}.expert_count`]: 8, [`${arch}.expert_used_count`]: 2, ...extra }));
}

const shapes = (arch: string, extra = {}) => new Map(modelTensors(readModelConfig(fileOf(arch, extra))).map((t) => [t.name, t.shape]));

describe('mixture-of-experts config', () => {
  it('routing per architecture as llama.cpp graphs pass it: softmax; renormalized for llama, granite, qwen3moe; not for qwen2moe', () => {
    const rules = Object.fromEntries(['llama', 'granite', 'granitemoe', 'qwen2moe', 'qwen3moe'].map((a) => [a, readModelConfig(fileOf(a)).moe]));
    for (const moe of Object.values(rules)) expect(moe).toMatchObject({ nExpert: 8, nExpertUsed: 2, gating: 'softmax', weightsScale: 1 });
    expect(Object.fromEntries(Object.entries(rules).map(([a, m]) => [a, m!.normalize]))).toEqual({ llama: true, granite: true, granitemoe: true, qwen2moe: false, qwen3moe: true });
    // Dense llama and granite stay dense.
    expect(readModelConfig(fileOf('llama', { 'llama.expert_count': undefined })).moe).toBeUndefined();
    expect(readModelConfig(fileOf('granite', { 'granite.expert_count': 0 })).moe).toBeUndefined();
  });

  it('expert widths: feed_forward_length (llama, granitemoe); expert_feed_forward_length else n_ff / used (qwen*moe)', () => {
    expect(readModelConfig(fileOf('llama')).moe!.nFfExp).toBe(96);
    expect(readModelConfig(fileOf('granitemoe', { 'granitemoe.expert_feed_forward_length': 32 })).moe!.nFfExp).toBe(96);
    expect(readModelConfig(fileOf('qwen3moe')).moe!.nFfExp).toBe(48);
    expect(readModelConfig(fileOf('qwen3moe', { 'qwen3moe.expert_feed_forward_length': 32 })).moe!.nFfExp).toBe(32);
    expect(readModelConfig(fileOf('qwen3moe', { 'qwen3moe.expert_feed_forward_length': Uint32Array.of(32, 32) })).moe!.nFfExp).toBe(32);
  });

  it('shared experts: qwen2moe always (gated; width keyed, else n_ff), granitemoe only when keyed', () => {
    expect(readModelConfig(fileOf('qwen2moe')).moe).toMatchObject({ nFfShexp: 96, sharedGate: true });
    expect(readModelConfig(fileOf('qwen2moe', { 'qwen2moe.expert_shared_feed_forward_length': 40 })).moe).toMatchObject({ nFfShexp: 40, sharedGate: true });
    expect(readModelConfig(fileOf('granitemoe')).moe).toMatchObject({ nFfShexp: 0, sharedGate: false });
    expect(readModelConfig(fileOf('granitemoe', { 'granitemoe.expert_shared_feed_forward_length': 40 })).moe).toMatchObject({ nFfShexp: 40, sharedGate: false });
    expect(readModelConfig(fileOf('qwen3moe', { 'qwen3moe.expert_shared_feed_forward_length': 40 })).moe!.nFfShexp).toBe(0);
  });

  it('an MoE block has the router and 3-D expert tensors instead of the dense FFN', () => {
    const q2 = shapes('qwen2moe', { 'qwen2moe.expert_feed_forward_length': 32, 'qwen2moe.expert_shared_feed_forward_length': 40 });
    expect(q2.get('blk.1.ffn_gate_inp.weight')).toEqual([64, 8]);
    expect(q2.get('blk.1.ffn_gate_exps.weight')).toEqual([64, 32, 8]);
    expect(q2.get('blk.1.ffn_up_exps.weight')).toEqual([64, 32, 8]);
    expect(q2.get('blk.1.ffn_down_exps.weight')).toEqual([32, 64, 8]);
    expect(q2.get('blk.1.ffn_gate_inp_shexp.weight')).toEqual([64]);
    expect(q2.get('blk.1.ffn_down_shexp.weight')).toEqual([40, 64]);
    expect(q2.has('blk.1.ffn_up.weight')).toBe(false);
    const mixtral = shapes('llama');
    expect(mixtral.get('blk.0.ffn_gate_exps.weight')).toEqual([64, 96, 8]);
    expect(mixtral.has('blk.0.ffn_gate_shexp.weight')).toBe(false);
    expect(mixtral.has('blk.0.ffn_gate_inp_shexp.weight')).toBe(false);
    expect(mixtral.has('blk.0.ffn_gate.weight')).toBe(false);
  });

  it('olmoe: q/k norms over whole rows (n_embd wide), experts not renormalized, k as wide as n_embd', () => {
    const c = readModelConfig(fileOf('olmoe', { 'olmoe.attention.head_count_kv': 4 }));
    expect([c.qkNorm, c.qkNormOver, c.rope.type, c.moe!.normalize, c.moe!.nFfExp]).toEqual([true, 'row', 'neox', false, 96]);
    const s = new Map(modelTensors(c).map((t) => [t.name, t.shape]));
    expect([s.get('blk.0.attn_q_norm.weight'), s.get('blk.0.attn_k_norm.weight')]).toEqual([[64], [64]]);
    expect(() => readModelConfig(fileOf('olmoe', { 'olmoe.attention.head_count_kv': 2 }))).toThrow(/attn_k_norm is 64 wide/);
  });

  it('impossible expert counts are ModelConfigError naming the key', () => {
    const bad: Array<[string, Record<string, number | undefined>, RegExp]> = [
      ['qwen3moe', { 'qwen3moe.expert_used_count': 9 }, /qwen3moe\.expert_used_count/],
      ['llama', { 'llama.expert_used_count': undefined }, /llama\.expert_used_count/],
      ['llama', { 'llama.expert_used_count': 0 }, /llama\.expert_used_count/],
      ['qwen2moe', { 'qwen2moe.expert_count': 0 }, /qwen2moe\.expert_count/],
      ['granitemoe', { 'granitemoe.expert_count': undefined }, /granitemoe\.expert_count/],
      ['llama', { 'llama.expert_count': 100000 }, /llama\.expert_count/],
    ];
    for (const [arch, extra, key] of bad) {
      let error: unknown;
      try {
        readModelConfig(fileOf(arch, extra));
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(extra)).toBeInstanceOf(ModelConfigError);
      expect((error as Error).message).toMatch(key);
    }
    expect(() => readModelConfig(fileOf('qwen3moe', { 'qwen3moe.expert_used_count': Uint32Array.of(2, 3) }))).toThrow(/varies by layer/);
  });
});
