/**
 * F16: one little-endian IEEE binary16 per element (2 bytes). Conversions are ggml's
 * (see half.ts): dequantize is exact, quantize rounds to nearest even like ggml_fp32_to_fp16_row.
 */
import { GgmlType } from '../ggml-types.ts';
import { checkDequantize, prepareQuantize, type QuantFormat } from './format.ts';
import { F16_TO_F32_BITS, f32BitsToF16 } from './half.ts';

export function dequantizeF16(src: Uint8Array, dst: Float32Array, count: number): void {
  checkDequantize(f16, src, dst, count);
  // Through the bit table and a u32 view, so NaN payloads come out as ggml's.
  const out = new Uint32Array(dst.buffer, dst.byteOffset, count);
  if (src.byteOffset % 2 === 0) {
    const h = new Uint16Array(src.buffer, src.byteOffset, count);
    for (let i = 0; i < count; i++) out[i] = F16_TO_F32_BITS[h[i]!]!;
  } else {
    for (let i = 0, o = 0; i < count; i++, o += 2) out[i] = F16_TO_F32_BITS[src[o]! | (src[o + 1]! << 8)]!;
  }
}

export function quantizeF16(src: Float32Array, count = src.length, out?: Uint8Array): Uint8Array {
  const dst = prepareQuantize(f16, src, count, out);
  const bits = new Uint32Array(src.buffer, src.byteOffset, count);
  for (let i = 0, o = 0; i < count; i++, o += 2) {
    const h = f32BitsToF16(bits[i]!);
    dst[o] = h & 0xff;
    dst[o + 1] = h >> 8;
  }
  return dst;
}

export const f16: QuantFormat = {
  type: GgmlType.F16,
  name: 'F16',
  blockSize: 1,
  typeSize: 2,
  dequantize: dequantizeF16,
  quantize: quantizeF16,
  matchesLlamaCpp: true,
};
