/**
 * The memory plan counts weights as the backend will hold them: a backend that widens a type (the
 * CPU backend converts types it has no kernel for to F32) must be planned at the widened size, or
 * a model that does not fit fails late with a RangeError instead of ModelTooLargeError.
 */
import { describe, expect, it } from 'vitest';
import { cpuWeightBytes } from '../backend/cpu/backend.ts';
import { GgmlType } from '../gguf/ggml-types.ts';
import { readGguf } from '../gguf/reader.ts';
import { bytesSource } from '../gguf/source.ts';
import { makeTestModel } from '../../testing/make-model.ts';
import { readModelConfig } from './config.ts';
import { ModelTooLargeError, planMemory } from './loader.ts';

describe('planMemory', () => {
  it('counts converted weight types at the size the CPU backend holds them', async () => {
    const bytes = makeTestModel({ arch: 'llama', embd: 256, layers: 1, heads: 4, kvHeads: 2, ff: 512, quant: 'q3_k', seed: 3 });
    const file = await readGguf(bytesSource(bytes));
    const tensors = file.tensors;
    const config = readModelConfig(file);
    const limits = { maxBufferBytes: 1 << 30, memoryBudgetBytes: 1 << 30 };
    const options = { contextLength: 256, batch: 8 };
    const asInFile = planMemory(config, tensors, { limits }, options);
    const onCpu = planMemory(config, tensors, { limits, weightBytes: cpuWeightBytes }, options);
    const q3 = tensors.filter((t) => t.type === GgmlType.Q3_K);
    expect(q3.length).toBeGreaterThan(0);
    const widening = q3.reduce((a, t) => a + 4 * t.elementCount - t.byteSize, 0);
    expect(onCpu.weightBytes - asInFile.weightBytes).toBe(widening);
    // A budget that holds the file's bytes but not the widened ones is refused up front.
    const tight = { ...limits, memoryBudgetBytes: asInFile.totalBytes };
    expect(() => planMemory(config, tensors, { limits: tight }, options)).not.toThrow();
    expect(() => planMemory(config, tensors, { limits: tight, weightBytes: cpuWeightBytes }, options)).toThrow(ModelTooLargeError);
  });
});
