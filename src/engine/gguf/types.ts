/**
 * The in-memory shape of a parsed GGUF file. Layout on disk (ggml's gguf.h): magic "GGUF", u32
 * version, i64 tensor count, i64 metadata count, the key/value pairs, the tensor infos, padding to
 * the alignment, then the tensor data. All little-endian.
 */
import type { GgmlType } from './ggml-types.ts';

/** Value types as stored in the file (gguf.h `enum gguf_type`, stored as i32). */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** Bytes of one stored scalar of each fixed-size type. */
export const GGUF_SCALAR_SIZE: Readonly<Partial<Record<GgufValueType, number>>> = {
  [GgufValueType.UINT8]: 1,
  [GgufValueType.INT8]: 1,
  [GgufValueType.UINT16]: 2,
  [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4,
  [GgufValueType.INT32]: 4,
  [GgufValueType.FLOAT32]: 4,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT64]: 8,
  [GgufValueType.INT64]: 8,
  [GgufValueType.FLOAT64]: 8,
};

/** Lower-case names as gguf.cpp's `gguf_type_name` prints them. */
export function ggufValueTypeName(type: GgufValueType): string {
  const names: Record<number, string> = {
    0: 'u8', 1: 'i8', 2: 'u16', 3: 'i16', 4: 'u32', 5: 'i32', 6: 'f32', 7: 'bool', 8: 'str', 9: 'arr',
    10: 'u64', 11: 'i64', 12: 'f64',
  };
  return names[type] ?? `unknown(${type})`;
}

/**
 * Numeric arrays are typed arrays of the stored element type, so a 250k-entry `scores` array is
 * one allocation and the writer knows what to write back.
 */
export type GgufNumericArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array;

export type GgufArray = GgufNumericArray | boolean[] | string[] | GgufArray[];

/**
 * A metadata value: u8..i32, f32, f64 scalars are numbers, u64/i64 are bigints, bool is boolean,
 * strings are decoded UTF-8, arrays as {@link GgufArray}.
 */
export type GgufValue = number | bigint | boolean | string | GgufArray;

/**
 * The stored type of a value. For arrays, `elementType` is the element type; for arrays of arrays,
 * `elements` holds each inner array's own type (inner arrays may differ in element type).
 */
export interface GgufTypeInfo {
  type: GgufValueType;
  elementType?: GgufValueType;
  elements?: GgufTypeInfo[];
}

export interface GgufTensorInfo {
  name: string;
  type: GgmlType;
  /** Dimensions in GGUF order: ne0 (the contiguous, row-length dimension) first. */
  shape: number[];
  /** Offset of the data from the start of the data section. */
  offset: number;
  /** Offset of the data from the start of the file (dataOffset + offset). */
  fileOffset: number;
  byteSize: number;
  elementCount: number;
}

export interface GgufFile {
  version: 2 | 3;
  /** Key/value pairs in file order. */
  metadata: Map<string, GgufValue>;
  /** The stored type of every key, so a writer can write the same bytes back. */
  metadataTypes: Map<string, GgufTypeInfo>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute offset of the tensor data section (aligned when the file has tensors). */
  dataOffset: number;
  fileSize: number;
  /**
   * Keys with a string (or string array element) that was not valid UTF-8. Such bytes are decoded
   * with U+FFFD replacement (the WHATWG decoder), so the value is not byte-exact: llama.cpp keeps
   * raw bytes, but every consumer here works on JS strings, and no known model stores non-UTF-8
   * text in metadata. Empty for well-formed files.
   */
  invalidUtf8Keys: string[];
}

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_NAME is 64 including the NUL terminator. */
export const GGUF_MAX_TENSOR_NAME_BYTES = 63;
export const GGUF_MAX_DIMS = 4;
