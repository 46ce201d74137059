/**
 * F32: one little-endian IEEE float32 per element (4 bytes). Dequantize and quantize are byte
 * copies, so NaN payloads survive.
 */
import { GgmlType } from '../ggml-types.ts';
import { checkDequantize, prepareQuantize, type QuantFormat } from './format.ts';

export function dequantizeF32(src: Uint8Array, dst: Float32Array, count: number): void {
  checkDequantize(f32, src, dst, count);
  new Uint8Array(dst.buffer, dst.byteOffset, count * 4).set(src.subarray(0, count * 4));
}

export function quantizeF32(src: Float32Array, count = src.length, out?: Uint8Array): Uint8Array {
  const dst = prepareQuantize(f32, src, count, out);
  dst.set(new Uint8Array(src.buffer, src.byteOffset, count * 4));
  return dst;
}

export const f32: QuantFormat = {
  type: GgmlType.F32,
  name: 'F32',
  blockSize: 1,
  typeSize: 4,
  dequantize: dequantizeF32,
  quantize: quantizeF32,
  matchesLlamaCpp: true,
};
