/**
 * Registry of the block formats we can decode (and mostly encode) on the CPU. Each module holds
 * one format with its byte layout; see format.ts for the calling convention.
 */
import { GgmlType, ggmlTypeName } from '../ggml-types.ts';
import { bf16 } from './bf16.ts';
import { f16 } from './f16.ts';
import { f32 } from './f32.ts';
import type { QuantFormat } from './format.ts';
import { iq4_NL } from './iq4_nl.ts';
import { iq4_XS } from './iq4_xs.ts';
import { q2_K } from './q2_k.ts';
import { q3_K } from './q3_k.ts';
import { q4_0 } from './q4_0.ts';
import { q4_1 } from './q4_1.ts';
import { q4_K } from './q4_k.ts';
import { q5_0 } from './q5_0.ts';
import { q5_1 } from './q5_1.ts';
import { q5_K } from './q5_k.ts';
import { q6_K } from './q6_k.ts';
import { q8_0 } from './q8_0.ts';

export type { QuantFormat } from './format.ts';
export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './half.ts';

/** Every supported format, in ggml type id order. */
export const QUANT_FORMATS: readonly QuantFormat[] = [
  f32, f16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_K, q3_K, q4_K, q5_K, q6_K, iq4_NL, iq4_XS, bf16,
];

const BY_TYPE = new Map<GgmlType, QuantFormat>(QUANT_FORMATS.map((f) => [f.type, f]));

/** The format for `type`, or undefined when we cannot decode it. */
export function quantFormat(type: GgmlType): QuantFormat | undefined {
  return BY_TYPE.get(type);
}

/** The format for `type`; throws naming the type and the supported ones when we cannot decode it. */
export function requireQuantFormat(type: GgmlType): QuantFormat {
  const fmt = BY_TYPE.get(type);
  if (!fmt) {
    throw new Error(
      `ggml type ${ggmlTypeName(type)} (${type}) is not supported; supported: ${QUANT_FORMATS.map((f) => f.name).join(', ')}`,
    );
  }
  return fmt;
}
