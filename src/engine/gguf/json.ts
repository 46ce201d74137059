/**
 * GGUF metadata as plain JSON (for `hearth inspect --json`, logs and the UI): typed arrays become
 * arrays, u64/i64 values become numbers when exactly representable and decimal strings otherwise,
 * and non-finite floats become "NaN", "Infinity" or "-Infinity" (JSON has no such numbers). Given
 * the stored types, f32 values are written as the shortest decimal that reads back as the same f32
 * (1e-5, not 0.000009999999747378752).
 */
import { GgufValueType, type GgufTypeInfo, type GgufValue } from './types.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Shortest decimal that rounds to the same float32. */
export function shortestFloat32(v: number): number {
  for (let digits = 1; digits < 9; digits++) {
    const candidate = Number(v.toPrecision(digits));
    if (Math.fround(candidate) === v) return candidate;
  }
  return Number(v.toPrecision(9));
}

function scalarToJson(v: unknown, f32: boolean): JsonValue {
  if (typeof v === 'bigint') {
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v.toString();
  }
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v);
    return f32 ? shortestFloat32(v) : v;
  }
  return v as JsonValue;
}

export function ggufValueToJson(value: GgufValue, type?: GgufTypeInfo): JsonValue {
  if (Array.isArray(value) || ArrayBuffer.isView(value)) {
    const items = value as ArrayLike<unknown>;
    const f32 = value instanceof Float32Array || type?.elementType === GgufValueType.FLOAT32;
    const out: JsonValue[] = new Array<JsonValue>(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      out[i] =
        Array.isArray(item) || ArrayBuffer.isView(item) ? ggufValueToJson(item as GgufValue, type?.elements?.[i]) : scalarToJson(item, f32);
    }
    return out;
  }
  return scalarToJson(value, type?.type === GgufValueType.FLOAT32);
}

export function ggufMetadataToJson(metadata: Map<string, GgufValue>, types?: Map<string, GgufTypeInfo>): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  // defineProperty, not assignment: a key named "__proto__" in an untrusted file stays a key.
  for (const [key, value] of metadata) {
    Object.defineProperty(out, key, { value: ggufValueToJson(value, types?.get(key)), enumerable: true, writable: true, configurable: true });
  }
  return out;
}
