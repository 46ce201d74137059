/**
 * Typed access to GGUF metadata. `getX` throws {@link GgufMetadataError} when the key is missing or
 * has another type; `findX` returns undefined when missing and throws only on a wrong type. Numeric
 * getters accept any numeric stored type (a file may store a count as u32 or u64 or i32).
 */
import { HearthError } from '../errors.ts';
import { GgufValueType, ggufValueTypeName, type GgufArray, type GgufNumericArray, type GgufTypeInfo, type GgufValue } from './types.ts';

/** A required metadata key is missing, or holds a value of the wrong type or range. */
export class GgufMetadataError extends HearthError {
  override name = 'GgufMetadataError';
}

export interface GgufMetadataHolder {
  metadata: Map<string, GgufValue>;
  metadataTypes: Map<string, GgufTypeInfo>;
}

function typeText(holder: GgufMetadataHolder, key: string): string {
  const info = holder.metadataTypes.get(key);
  if (!info) return 'missing';
  return info.type === GgufValueType.ARRAY ? `array of ${ggufValueTypeName(info.elementType!)}` : ggufValueTypeName(info.type);
}

function wrongType(holder: GgufMetadataHolder, key: string, expected: string): never {
  const found = typeText(holder, key);
  const message =
    found === 'missing' ? `GGUF metadata: required key '${key}' is missing` : `GGUF metadata: key '${key}' is ${found}, expected ${expected}`;
  throw new GgufMetadataError(message, { key, expected, actual: found });
}

export function hasKey(holder: GgufMetadataHolder, key: string): boolean {
  return holder.metadata.has(key);
}

export function findString(holder: GgufMetadataHolder, key: string): string | undefined {
  const value = holder.metadata.get(key);
  if (value === undefined) return undefined;
  if (typeof value !== 'string') wrongType(holder, key, 'a string');
  return value;
}

export function getString(holder: GgufMetadataHolder, key: string): string {
  return findString(holder, key) ?? wrongType(holder, key, 'a string');
}

/** Any numeric scalar as a number; u64/i64 values must be exactly representable (below 2^53). */
export function findNumber(holder: GgufMetadataHolder, key: string): number | undefined {
  const value = holder.metadata.get(key);
  if (value === undefined) return undefined;
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') {
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new GgufMetadataError(`GGUF metadata: key '${key}' value ${value} is too large for a number`, {
        key,
        expected: 'a value below 2^53',
        actual: value.toString(),
      });
    }
    return Number(value);
  }
  return wrongType(holder, key, 'a number');
}

export function getNumber(holder: GgufMetadataHolder, key: string): number {
  return findNumber(holder, key) ?? wrongType(holder, key, 'a number');
}

/** A numeric scalar that must be a whole number (counts, lengths, token ids). */
export function findInteger(holder: GgufMetadataHolder, key: string): number | undefined {
  const value = findNumber(holder, key);
  if (value !== undefined && !Number.isInteger(value)) {
    throw new GgufMetadataError(`GGUF metadata: key '${key}' is ${value}, expected an integer`, { key, expected: 'an integer', actual: value });
  }
  return value;
}

export function getInteger(holder: GgufMetadataHolder, key: string): number {
  return findInteger(holder, key) ?? wrongType(holder, key, 'an integer');
}

export function findBoolean(holder: GgufMetadataHolder, key: string): boolean | undefined {
  const value = holder.metadata.get(key);
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') wrongType(holder, key, 'a bool');
  return value;
}

export function getBoolean(holder: GgufMetadataHolder, key: string): boolean {
  return findBoolean(holder, key) ?? wrongType(holder, key, 'a bool');
}

function arrayOf(holder: GgufMetadataHolder, key: string, elementTypes: GgufValueType[]): GgufArray | undefined {
  const value = holder.metadata.get(key);
  if (value === undefined) return undefined;
  const info = holder.metadataTypes.get(key);
  if (info?.type !== GgufValueType.ARRAY || !elementTypes.includes(info.elementType!)) return undefined;
  return value as GgufArray;
}

export function findStringArray(holder: GgufMetadataHolder, key: string): string[] | undefined {
  if (!holder.metadata.has(key)) return undefined;
  return (arrayOf(holder, key, [GgufValueType.STRING]) as string[] | undefined) ?? wrongType(holder, key, 'an array of str');
}

export function getStringArray(holder: GgufMetadataHolder, key: string): string[] {
  return findStringArray(holder, key) ?? wrongType(holder, key, 'an array of str');
}

const NUMERIC_TYPES = [
  GgufValueType.UINT8,
  GgufValueType.INT8,
  GgufValueType.UINT16,
  GgufValueType.INT16,
  GgufValueType.UINT32,
  GgufValueType.INT32,
  GgufValueType.FLOAT32,
  GgufValueType.FLOAT64,
  GgufValueType.UINT64,
  GgufValueType.INT64,
];

/** A numeric array as stored (Int32Array for i32, Float32Array for f32, BigUint64Array for u64...). */
export function findNumericArray(holder: GgufMetadataHolder, key: string): GgufNumericArray | undefined {
  if (!holder.metadata.has(key)) return undefined;
  return (arrayOf(holder, key, NUMERIC_TYPES) as GgufNumericArray | undefined) ?? wrongType(holder, key, 'a numeric array');
}

export function getNumericArray(holder: GgufMetadataHolder, key: string): GgufNumericArray {
  return findNumericArray(holder, key) ?? wrongType(holder, key, 'a numeric array');
}

/** A numeric array as plain numbers (u64/i64 elements must be below 2^53). */
export function findNumbers(holder: GgufMetadataHolder, key: string): number[] | undefined {
  const array = findNumericArray(holder, key);
  if (array === undefined) return undefined;
  const out: number[] = new Array<number>(array.length);
  for (let i = 0; i < array.length; i++) {
    const v = array[i]!;
    if (typeof v === 'bigint' && (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER))) {
      throw new GgufMetadataError(`GGUF metadata: key '${key}' element ${i} (${v}) is too large for a number`, { key, expected: 'values below 2^53' });
    }
    out[i] = Number(v);
  }
  return out;
}

export function getNumbers(holder: GgufMetadataHolder, key: string): number[] {
  return findNumbers(holder, key) ?? wrongType(holder, key, 'a numeric array');
}

export function findBooleanArray(holder: GgufMetadataHolder, key: string): boolean[] | undefined {
  if (!holder.metadata.has(key)) return undefined;
  return (arrayOf(holder, key, [GgufValueType.BOOL]) as boolean[] | undefined) ?? wrongType(holder, key, 'an array of bool');
}

/**
 * The architecture-scoped key, as llama-arch.cpp spells them: `archKey(file, 'context_length')` is
 * `'llama.context_length'` for a llama model.
 */
export function archKey(holder: GgufMetadataHolder, suffix: string): string {
  return `${getString(holder, 'general.architecture')}.${suffix}`;
}
