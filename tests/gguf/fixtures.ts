/**
 * Builders for GGUF test files: `Raw` writes arbitrary (also invalid) fields byte by byte, and
 * `featureFile()` is a small valid file that uses every value type, nested arrays, a non-default
 * alignment and several tensor types, for round-trip and fuzz tests.
 */
import { GgmlType, byteSizeOf } from '../../src/engine/gguf/ggml-types.ts';
import { GgufValueType, type GgufTypeInfo, type GgufValue } from '../../src/engine/gguf/types.ts';
import { writeGguf, type GgufTensorSpec } from '../../src/engine/gguf/writer.ts';
import type { RangedSource } from '../../src/engine/gguf/source.ts';

/** Little-endian field writer without any validation. */
export class Raw {
  private out: number[] = [];
  get length(): number {
    return this.out.length;
  }
  u8(v: number): this {
    this.out.push(v & 0xff);
    return this;
  }
  u32(v: number): this {
    for (let i = 0; i < 4; i++) this.out.push((v >>> (8 * i)) & 0xff);
    return this;
  }
  i32(v: number): this {
    return this.u32(v >>> 0);
  }
  u64(v: bigint | number): this {
    let b = BigInt.asUintN(64, BigInt(v));
    for (let i = 0; i < 8; i++) {
      this.out.push(Number(b & 0xffn));
      b >>= 8n;
    }
    return this;
  }
  f32(v: number): this {
    const b = new Uint8Array(new Float32Array([v]).buffer);
    this.out.push(...b);
    return this;
  }
  bytes(b: ArrayLike<number>): this {
    for (let i = 0; i < b.length; i++) this.out.push(b[i]!);
    return this;
  }
  /** Length-prefixed string; `length` overrides the stored length. */
  str(s: string | Uint8Array, length?: bigint | number): this {
    const b = typeof s === 'string' ? new TextEncoder().encode(s) : s;
    this.u64(length ?? b.length);
    return this.bytes(b);
  }
  /** Header: magic, version, tensor count, kv count. */
  header(nTensors: bigint | number, nKv: bigint | number, version = 3): this {
    return this.bytes([0x47, 0x47, 0x55, 0x46]).u32(version).u64(nTensors).u64(nKv);
  }
  /** A u32 key/value pair. */
  kvU32(key: string, v: number): this {
    return this.str(key).i32(GgufValueType.UINT32).u32(v);
  }
  /** A tensor info. */
  tensor(name: string, shape: Array<number | bigint>, type: number, offset: number | bigint): this {
    this.str(name).u32(shape.length);
    for (const d of shape) this.u64(d);
    return this.i32(type).u64(offset);
  }
  zeros(n: number): this {
    for (let i = 0; i < n; i++) this.out.push(0);
    return this;
  }
  padTo(alignment: number): this {
    return this.zeros((alignment - (this.out.length % alignment)) % alignment);
  }
  build(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

function seededBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

export interface FeatureFile {
  bytes: Uint8Array;
  metadata: Map<string, GgufValue>;
  metadataTypes: Map<string, GgufTypeInfo>;
  tensors: Array<GgufTensorSpec & { data: Uint8Array }>;
}

/** A small valid GGUF using every value type, nested arrays, alignment 64 and five tensor types. */
export function featureFile(): FeatureFile {
  const T = GgufValueType;
  const entries: Array<[string, GgufValue, GgufTypeInfo]> = [
    ['general.architecture', 'llama', { type: T.STRING }],
    ['general.alignment', 64, { type: T.UINT32 }],
    ['t.u8', 250, { type: T.UINT8 }],
    ['t.i8', -100, { type: T.INT8 }],
    ['t.u16', 65000, { type: T.UINT16 }],
    ['t.i16', -32000, { type: T.INT16 }],
    ['t.u32', 4000000000, { type: T.UINT32 }],
    ['t.i32', -2000000000, { type: T.INT32 }],
    ['t.f32', 0.5, { type: T.FLOAT32 }],
    ['t.bool', true, { type: T.BOOL }],
    ['t.str', 'héllo ✓ 🦙', { type: T.STRING }],
    ['t.empty', '', { type: T.STRING }],
    ['t.u64', 18446744073709551615n, { type: T.UINT64 }],
    ['t.i64', -9223372036854775808n, { type: T.INT64 }],
    ['t.f64', -1.25e-300, { type: T.FLOAT64 }],
    ['a.u8', Uint8Array.of(1, 2, 255), { type: T.ARRAY, elementType: T.UINT8 }],
    ['a.i8', Int8Array.of(-1, 2), { type: T.ARRAY, elementType: T.INT8 }],
    ['a.u16', Uint16Array.of(7, 65535), { type: T.ARRAY, elementType: T.UINT16 }],
    ['a.i16', Int16Array.of(-7), { type: T.ARRAY, elementType: T.INT16 }],
    ['a.u32', Uint32Array.of(1, 4294967295), { type: T.ARRAY, elementType: T.UINT32 }],
    ['a.i32', Int32Array.of(-5, 3, 0), { type: T.ARRAY, elementType: T.INT32 }],
    ['a.f32', Float32Array.of(1.5, -0, Infinity), { type: T.ARRAY, elementType: T.FLOAT32 }],
    ['a.f64', Float64Array.of(Math.PI), { type: T.ARRAY, elementType: T.FLOAT64 }],
    ['a.u64', BigUint64Array.of(1n, 2n ** 64n - 1n), { type: T.ARRAY, elementType: T.UINT64 }],
    ['a.i64', BigInt64Array.of(-(2n ** 63n)), { type: T.ARRAY, elementType: T.INT64 }],
    ['a.bool', [true, false, true], { type: T.ARRAY, elementType: T.BOOL }],
    ['a.str', ['a', '', 'Ω', '<0x0A>'], { type: T.ARRAY, elementType: T.STRING }],
    ['a.empty', new Int32Array(0), { type: T.ARRAY, elementType: T.INT32 }],
    [
      'a.nested',
      [Int32Array.of(1, 2), ['x', 'y'], [[true], new Float32Array(0)]],
      {
        type: T.ARRAY,
        elementType: T.ARRAY,
        elements: [
          { type: T.ARRAY, elementType: T.INT32 },
          { type: T.ARRAY, elementType: T.STRING },
          {
            type: T.ARRAY,
            elementType: T.ARRAY,
            elements: [
              { type: T.ARRAY, elementType: T.BOOL },
              { type: T.ARRAY, elementType: T.FLOAT32 },
            ],
          },
        ],
      },
    ],
  ];
  const metadata = new Map(entries.map(([k, v]) => [k, v]));
  const metadataTypes = new Map(entries.map(([k, , t]) => [k, t]));
  const specs: GgufTensorSpec[] = [
    { name: 'token_embd.weight', type: GgmlType.F32, shape: [8, 3] },
    { name: 'blk.0.attn_q.weight', type: GgmlType.Q8_0, shape: [64, 2] },
    { name: 'blk.0.ffn_down.weight', type: GgmlType.Q4_K, shape: [256, 1] },
    { name: 'output_norm.weight', type: GgmlType.F16, shape: [2, 3, 2] },
    { name: 'pos', type: GgmlType.I32, shape: [5] },
  ];
  const tensors = specs.map((t, i) => ({
    ...t,
    data: seededBytes(byteSizeOf(t.type, t.shape.reduce((a, b) => a * b, 1)), i + 1),
  }));
  const bytes = writeGguf({ metadata, metadataTypes, tensors });
  return { bytes, metadata, metadataTypes, tensors };
}

/** A source that records every read, over a real buffer prefix and zeros beyond it. */
export function countingSource(prefix: Uint8Array, size: number): RangedSource & { bytesRead: number; maxEnd: number; reads: number } {
  const source = {
    size,
    bytesRead: 0,
    maxEnd: 0,
    reads: 0,
    read(offset: number, length: number): Promise<Uint8Array> {
      if (offset < 0 || offset + length > size) throw new RangeError(`read outside the source: ${offset}+${length}`);
      source.bytesRead += length;
      source.reads++;
      source.maxEnd = Math.max(source.maxEnd, offset + length);
      const out = new Uint8Array(length);
      if (offset < prefix.length) out.set(prefix.subarray(offset, Math.min(prefix.length, offset + length)));
      return Promise.resolve(out);
    },
  };
  return source;
}
