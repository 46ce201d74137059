/**
 * The memory plan counts weights as the backend will hold them: a backend that widens a type (as
 * the CPU backend once converted types it had no kernel for to F32) must be planned at the widened size, or
 * a model that does not fit fails late with a RangeError instead of ModelTooLargeError.
 */
import { describe, expect, it } from 'vitest';
import { cpuWeightBytes } from '../backend/cpu/backend.ts';
import { GgmlType, byteSizeOf } from '../gguf/ggml-types.ts';
import { readGguf } from '../gguf/reader.ts';
import { bytesSource } from '../gguf/source.ts';
import { makeTestModel } from '../../testing/make-model.ts';
import { readModelConfig } from './config.ts';
import { ModelTooLargeError, planLoad, planMemory } from './loader.ts';
import { UnsupportedModelError } from './errors.ts';
import { assembleGgufModel } from '../gguf/split.ts';

describe('planMemory', () => {
  it("counts weights at the size the backend says it holds them (a backend that widens Q3_K)", async () => {
    const bytes = makeTestModel({ arch: 'llama', embd: 256, layers: 1, heads: 4, kvHeads: 2, ff: 512, quant: 'q3_k', seed: 3 });
    const file = await readGguf(bytesSource(bytes));
    const tensors = file.tensors;
    const config = readModelConfig(file);
    const limits = { maxBufferBytes: 1 << 30, memoryBudgetBytes: 1 << 30 };
    const options = { contextLength: 256, batch: 8 };
    const widensQ3 = (type: GgmlType, shape: readonly number[]) => (type === GgmlType.Q3_K ? 4 * shape.reduce((a, b) => a * b, 1) : byteSizeOf(type, shape.reduce((a, b) => a * b, 1)));
    const asInFile = planMemory(config, tensors, { limits }, options);
    const widened = planMemory(config, tensors, { limits, weightBytes: widensQ3 }, options);
    const q3 = tensors.filter((t) => t.type === GgmlType.Q3_K);
    expect(q3.length).toBeGreaterThan(0);
    const widening = q3.reduce((a, t) => a + 4 * t.elementCount - t.byteSize, 0);
    expect(widened.weightBytes - asInFile.weightBytes).toBe(widening);
    // A budget that holds the file's bytes but not the widened ones is refused up front.
    const tight = { ...limits, memoryBudgetBytes: asInFile.totalBytes };
    expect(() => planMemory(config, tensors, { limits: tight }, options)).not.toThrow();
    expect(() => planMemory(config, tensors, { limits: tight, weightBytes: widensQ3 }, options)).toThrow(ModelTooLargeError);
    // The CPU backend holds Q3_K at its file bytes.
    expect(planMemory(config, tensors, { limits, weightBytes: cpuWeightBytes }, options).weightBytes).toBe(asInFile.weightBytes);
  });
});

/**
 * The scratch is sized from the layer-tensor table's reads and writes; these are the widths the
 * forward pass uses, written out: x, cur, q | k | v (or the fused qkv), attn, gate (twice as wide
 * when gate and up are fused), up, ffh, logits, and three id buffers.
 */
describe('planMemory scratch', () => {
  const planned = async (arch: 'llama' | 'phi3') => {
    const bytes = makeTestModel({ arch, embd: 64, layers: 2, heads: 4, kvHeads: arch === 'phi3' ? 4 : 2, ff: 96, seed: 5 });
    const file = await readGguf(bytesSource(bytes));
    const config = readModelConfig(file);
    const limits = { maxBufferBytes: 1 << 30, memoryBudgetBytes: 1 << 30 };
    return { config, plan: planMemory(config, file.tensors, { limits }, { contextLength: 256, batch: 4 }) };
  };

  it('separate q, k, v and gate, up', async () => {
    const { config: c, plan } = await planned('llama');
    expect([c.tensors.fusedQkv, c.fusedGateUp]).toEqual([false, false]);
    const widths = [c.nEmbd, c.nEmbd, c.qDim, c.kvDimK, c.kvDimV, c.nHead * c.headDimV, 96, 96, 96, c.nVocab];
    expect(plan.scratchBytes).toBe(4 * (4 * widths.reduce((a, b) => a + b, 0) + 3 * 4));
  });

  it('fused qkv and gate-up', async () => {
    const { config: c, plan } = await planned('phi3');
    expect([c.tensors.fusedQkv, c.fusedGateUp]).toEqual([true, true]);
    const widths = [c.nEmbd, c.nEmbd, c.qDim + c.kvDimK + c.kvDimV, c.nHead * c.headDimV, 2 * 96, 96, c.nVocab];
    expect(plan.scratchBytes).toBe(4 * (4 * widths.reduce((a, b) => a + b, 0) + 3 * 4));
  });
});

/**
 * Mixture-of-experts blocks: the scratch holds the router logits, one expert's gathered rows, the
 * gate, up and GLU (as wide as the shared expert's, or every chosen expert's of a token), the
 * chosen experts' outputs and the FFN's output; no dense FFN buffers. WebGPU has no moeFfn yet: a plan for it is refused by name.
 */
describe('planMemory for mixture-of-experts', () => {
  it('sizes the MoE scratch and refuses a backend without the op', async () => {
    const bytes = makeTestModel({ arch: 'qwen2moe', embd: 64, layers: 2, heads: 4, kvHeads: 4, ff: 96, experts: 6, expertsUsed: 2, expertFf: 32, sharedFf: 80, seed: 5 });
    const file = await readGguf(bytesSource(bytes));
    const c = readModelConfig(file);
    const limits = { maxBufferBytes: 1 << 30, memoryBudgetBytes: 1 << 30 };
    const plan = planMemory(c, file.tensors, { limits }, { contextLength: 256, batch: 4 });
    // x, cur, moeOut; q, k, v; attn; router logits; gathered x; gate, up, h (max(80, 2 x 32));
    // the 2 chosen experts' outputs; logits.
    const widths = [c.nEmbd, c.nEmbd, c.nEmbd, c.qDim, c.kvDimK, c.kvDimV, c.nHead * c.headDimV, 6, c.nEmbd, 80, 80, 80, 2 * c.nEmbd, c.nVocab];
    expect(plan.scratchBytes).toBe(4 * (4 * widths.reduce((a, b) => a + b, 0) + 3 * 4));
    const model = assembleGgufModel([{ file, source: bytesSource(bytes) }]);
    expect(planLoad(model, { kind: 'webgpu', limits, supportsWeight: () => true }).config.moe?.nExpert).toBe(6);
    expect(planLoad(model, { kind: 'cpu', limits, supportsWeight: () => true, weightBytes: cpuWeightBytes }).config.moe?.nExpert).toBe(6);
  });
});
