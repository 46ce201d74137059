import { describe, expect, it } from 'vitest';
import { GgmlType, byteSizeOf } from '../gguf/ggml-types.ts';
import { dominantQuantization, modelQuantization } from './quantization.ts';

const tensor = (type: GgmlType, shape: number[]) => ({ type, shape, byteSize: byteSizeOf(type, shape.reduce((a, b) => a * b, 1)) });

describe('dominantQuantization', () => {
  it('names the type holding most bytes of the matrices', () => {
    const tensors = [
      tensor(GgmlType.Q4_K, [256, 64]),
      tensor(GgmlType.Q4_K, [256, 64]),
      tensor(GgmlType.Q6_K, [256, 64]),
      tensor(GgmlType.F32, [256]),
    ];
    expect(dominantQuantization({ tensors })).toBe('Q4_K');
  });

  it('does not count a vector stored with a dimension of 1, however large', () => {
    // The store's old rule counted every tensor of two or more dimensions, so it named this file
    // F16 while the loaded model said Q8_0.
    const tensors = [tensor(GgmlType.Q8_0, [64, 64]), tensor(GgmlType.F16, [65536, 1]), tensor(GgmlType.F16, [1, 4096, 1])];
    expect(dominantQuantization({ tensors })).toBe('Q8_0');
  });

  it('is F32 when there is no matrix, as llama.cpp guesses', () => {
    // The store's old rule gave no quantization here.
    expect(dominantQuantization({ tensors: [tensor(GgmlType.F16, [4096]), tensor(GgmlType.F16, [4096, 1])] })).toBe('F32');
    expect(dominantQuantization({ tensors: [] })).toBe('F32');
  });

  it('takes the first type seen on a tie', () => {
    const tensors = [tensor(GgmlType.F16, [64, 32]), tensor(GgmlType.BF16, [64, 32])];
    expect(dominantQuantization({ tensors })).toBe('F16');
  });
});

describe('modelQuantization', () => {
  const q4km = [tensor(GgmlType.Q4_K, [256, 64]), tensor(GgmlType.Q6_K, [256, 4096])];
  it("takes llama.cpp's file type name where the file records one", () => {
    // Most bytes sit in the Q6_K output, yet the file is what llama-quantize called Q4_K_M.
    expect(dominantQuantization({ tensors: q4km })).toBe('Q6_K');
    expect(modelQuantization({ tensors: q4km, metadata: new Map([['general.file_type', 15]]) })).toBe('Q4_K_M');
    expect(modelQuantization({ tensors: q4km, metadata: new Map([['general.file_type', 1024 + 7]]) })).toBe('Q8_0');
  });
  it('falls back to the dominant type without a known file type', () => {
    expect(modelQuantization({ tensors: q4km, metadata: new Map() })).toBe('Q6_K');
    expect(modelQuantization({ tensors: q4km, metadata: new Map([['general.file_type', 999]]) })).toBe('Q6_K');
  });
});
