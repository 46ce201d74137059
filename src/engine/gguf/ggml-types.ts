/**
 * ggml tensor types as GGUF stores them: the numeric id in the file, the name llama.cpp prints,
 * and the block geometry (elements per block, bytes per block). Ids and sizes are llama.cpp's
 * (ggml.h `enum ggml_type`, ggml.c `type_traits`); ids 4, 5, 31-33 and 36-38 were removed upstream
 * and are rejected as unknown.
 */

export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  NVFP4 = 40,
  Q1_0 = 41,
  Q2_0 = 42,
}

export interface GgmlTypeInfo {
  type: GgmlType;
  /** The name llama.cpp uses in tools and logs, upper-case as in GGUF tooling ("Q4_K"). */
  name: string;
  /** Elements per block. */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

const TABLE: Array<[GgmlType, number, number]> = [
  [GgmlType.F32, 1, 4],
  [GgmlType.F16, 1, 2],
  [GgmlType.Q4_0, 32, 18],
  [GgmlType.Q4_1, 32, 20],
  [GgmlType.Q5_0, 32, 22],
  [GgmlType.Q5_1, 32, 24],
  [GgmlType.Q8_0, 32, 34],
  [GgmlType.Q8_1, 32, 36],
  [GgmlType.Q2_K, 256, 84],
  [GgmlType.Q3_K, 256, 110],
  [GgmlType.Q4_K, 256, 144],
  [GgmlType.Q5_K, 256, 176],
  [GgmlType.Q6_K, 256, 210],
  [GgmlType.Q8_K, 256, 292],
  [GgmlType.IQ2_XXS, 256, 66],
  [GgmlType.IQ2_XS, 256, 74],
  [GgmlType.IQ3_XXS, 256, 98],
  [GgmlType.IQ1_S, 256, 50],
  [GgmlType.IQ4_NL, 32, 18],
  [GgmlType.IQ3_S, 256, 110],
  [GgmlType.IQ2_S, 256, 82],
  [GgmlType.IQ4_XS, 256, 136],
  [GgmlType.I8, 1, 1],
  [GgmlType.I16, 1, 2],
  [GgmlType.I32, 1, 4],
  [GgmlType.I64, 1, 8],
  [GgmlType.F64, 1, 8],
  [GgmlType.IQ1_M, 256, 56],
  [GgmlType.BF16, 1, 2],
  [GgmlType.TQ1_0, 256, 54],
  [GgmlType.TQ2_0, 256, 66],
  [GgmlType.MXFP4, 32, 17],
  [GgmlType.NVFP4, 64, 36],
  [GgmlType.Q1_0, 128, 18],
  [GgmlType.Q2_0, 64, 18],
];

const BY_ID = new Map<number, GgmlTypeInfo>(
  TABLE.map(([type, blockSize, typeSize]) => [type, { type, name: GgmlType[type], blockSize, typeSize }]),
);
const BY_NAME = new Map<string, GgmlTypeInfo>([...BY_ID.values()].map((info) => [info.name, info]));

/** Type info for a numeric id from a file, or undefined for unknown or removed ids. */
export function ggmlTypeInfo(id: number): GgmlTypeInfo | undefined {
  return BY_ID.get(id);
}

/** Type info by name ("Q4_K", case-insensitive). */
export function ggmlTypeByName(name: string): GgmlTypeInfo | undefined {
  return BY_NAME.get(name.toUpperCase());
}

export function ggmlTypeName(type: GgmlType): string {
  return BY_ID.get(type)?.name ?? `unknown(${type})`;
}

/**
 * Bytes taken by `elements` values of `type`, or throws when the count is not a whole number of
 * blocks. Uses BigInt-safe arithmetic bounds: callers validate sizes against the file first.
 */
export function byteSizeOf(type: GgmlType, elements: number): number {
  const info = BY_ID.get(type);
  if (!info) throw new Error(`unknown ggml type ${type}`);
  if (elements % info.blockSize !== 0) {
    throw new Error(`${info.name}: ${elements} elements is not a multiple of the block size ${info.blockSize}`);
  }
  return (elements / info.blockSize) * info.typeSize;
}
