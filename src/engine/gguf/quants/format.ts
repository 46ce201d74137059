/**
 * The shape every block format module exports. A format turns `count` elements (a whole number of
 * blocks) to and from their GGUF bytes. Offsets are expressed with `subarray`: dequantize reads
 * from `src[0]` and writes `dst[0..count)`, so `fmt.dequantize(bytes.subarray(rowOffset), out.subarray(k * row), k)`
 * decodes one row in place with no copy. Neither function allocates per element.
 */
import type { GgmlType } from '../ggml-types.ts';

export interface QuantFormat {
  readonly type: GgmlType;
  /** llama.cpp's name ("Q4_K"). */
  readonly name: string;
  /** Elements per block. */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
  /**
   * Decodes the first `count` elements encoded at the start of `src` into `dst[0..count)`, giving
   * exactly the float32 values of llama.cpp's `dequantize_row_*` (bit for bit, for finite inputs).
   * `src` may start at any byte offset. Throws a RangeError when `count` is not a whole number of
   * blocks or either array is too short.
   */
  dequantize(src: Uint8Array, dst: Float32Array, count: number): void;
  /**
   * Encodes `src[0..count)` (default: all of `src`) into `dst` (default: a new array of the exact
   * size) and returns the bytes written, `dst.subarray(0, bytes)`. Absent for formats we only read.
   */
  quantize?(src: Float32Array, count?: number, dst?: Uint8Array): Uint8Array;
  /**
   * True when `quantize` reproduces llama.cpp's quantizer without an importance matrix byte for
   * byte: `ggml_quantize_chunk`, which is what `llama-quantize` runs. For every type but IQ4_NL that
   * is `quantize_row_*_ref`; IQ4_NL's chunk quantizer searches 15 scales where its `_ref` tries one.
   */
  readonly matchesLlamaCpp: boolean;
}

/** Argument checks shared by the formats; returns the number of blocks. */
export function checkDequantize(
  fmt: Pick<QuantFormat, 'name' | 'blockSize' | 'typeSize'>,
  src: Uint8Array,
  dst: Float32Array,
  count: number,
): number {
  const blocks = checkCount(fmt, count);
  if (src.length < blocks * fmt.typeSize) {
    throw new RangeError(`${fmt.name}: ${count} elements need ${blocks * fmt.typeSize} bytes, got ${src.length}`);
  }
  if (dst.length < count) throw new RangeError(`${fmt.name}: output holds ${dst.length} floats, needs ${count}`);
  return blocks;
}

/** Checks a quantize call's arguments and returns the output array to fill, exactly sized. */
export function prepareQuantize(
  fmt: Pick<QuantFormat, 'name' | 'blockSize' | 'typeSize'>,
  src: Float32Array,
  count: number,
  dst: Uint8Array | undefined,
): Uint8Array {
  const blocks = checkCount(fmt, count);
  if (src.length < count) throw new RangeError(`${fmt.name}: input holds ${src.length} floats, needs ${count}`);
  const bytes = blocks * fmt.typeSize;
  if (!dst) return new Uint8Array(bytes);
  if (dst.length < bytes) throw new RangeError(`${fmt.name}: output holds ${dst.length} bytes, needs ${bytes}`);
  return dst.subarray(0, bytes);
}

function checkCount(fmt: Pick<QuantFormat, 'name' | 'blockSize'>, count: number): number {
  if (!Number.isSafeInteger(count) || count < 0 || count % fmt.blockSize !== 0) {
    throw new RangeError(`${fmt.name}: ${count} elements is not a whole number of ${fmt.blockSize}-element blocks`);
  }
  return count / fmt.blockSize;
}
