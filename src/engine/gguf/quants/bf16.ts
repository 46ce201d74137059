/**
 * BF16: one little-endian bfloat16 per element (2 bytes): the top half of an f32. Dequantize is
 * exact; quantize rounds to nearest even and quiets NaN, like ggml_fp32_to_bf16_row_ref.
 */
import { GgmlType } from '../ggml-types.ts';
import { checkDequantize, prepareQuantize, type QuantFormat } from './format.ts';
import { f32BitsToBf16 } from './half.ts';

export function dequantizeBf16(src: Uint8Array, dst: Float32Array, count: number): void {
  checkDequantize(bf16, src, dst, count);
  const out = new Uint32Array(dst.buffer, dst.byteOffset, count);
  if (src.byteOffset % 2 === 0) {
    const h = new Uint16Array(src.buffer, src.byteOffset, count);
    for (let i = 0; i < count; i++) out[i] = h[i]! << 16;
  } else {
    for (let i = 0, o = 0; i < count; i++, o += 2) out[i] = (src[o]! << 16) | (src[o + 1]! << 24);
  }
}

export function quantizeBf16(src: Float32Array, count = src.length, out?: Uint8Array): Uint8Array {
  const dst = prepareQuantize(bf16, src, count, out);
  const bits = new Uint32Array(src.buffer, src.byteOffset, count);
  for (let i = 0, o = 0; i < count; i++, o += 2) {
    const h = f32BitsToBf16(bits[i]!);
    dst[o] = h & 0xff;
    dst[o + 1] = h >> 8;
  }
  return dst;
}

export const bf16: QuantFormat = {
  type: GgmlType.BF16,
  name: 'BF16',
  blockSize: 1,
  typeSize: 2,
  dequantize: dequantizeBf16,
  quantize: quantizeBf16,
  matchesLlamaCpp: true,
};
