/**
 * `general.file_type`: llama.cpp's name for a file's quantization mix (llama.h `llama_ftype`), as
 * `llama-quantize` wrote it. "Q4_K_M" is a recipe (most matrices Q4_K, some Q6_K), which no count of
 * tensor types can recover: small models with large vocabularies hold most bytes in a Q6_K output.
 */
import type { GgufValue } from './types.ts';

const LLAMA_FTYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 7: 'Q8_0', 8: 'Q5_0', 9: 'Q5_1', 10: 'Q2_K', 11: 'Q3_K_S', 12: 'Q3_K_M',
  13: 'Q3_K_L', 14: 'Q4_K_S', 15: 'Q4_K_M', 16: 'Q5_K_S', 17: 'Q5_K_M', 18: 'Q6_K', 19: 'IQ2_XXS', 20: 'IQ2_XS',
  21: 'Q2_K_S', 22: 'IQ3_XS', 23: 'IQ3_XXS', 24: 'IQ1_S', 25: 'IQ4_NL', 26: 'IQ3_S', 27: 'IQ3_M', 28: 'IQ2_S',
  29: 'IQ2_M', 30: 'IQ4_XS', 31: 'IQ1_M', 32: 'BF16', 36: 'TQ1_0', 37: 'TQ2_0', 38: 'MXFP4_MOE',
};

/** The file type's name, or undefined when the file records none or one llama.cpp does not know. */
export function fileTypeName(metadata: ReadonlyMap<string, GgufValue>): string | undefined {
  const value = metadata.get('general.file_type');
  const id = typeof value === 'bigint' ? Number(value) : value;
  // Files converted without quantizing may set the "guessed" flag (1024); the rest is the type.
  return typeof id === 'number' ? LLAMA_FTYPE_NAMES[id & ~1024] : undefined;
}
