/**
 * GGUF writer (v3 by default, little-endian). The header (metadata and tensor infos, padded to the
 * alignment) is built in memory; tensor data is appended after it, each tensor padded to the
 * alignment, in the order given, so tensor offsets are contiguous the way llama.cpp requires. For
 * big files, {@link layoutGguf} + {@link ggufChunks} stream the data one tensor at a time
 * (src/node/gguf-file.ts writes such a stream to disk).
 *
 * Values are written with their type from `metadataTypes` when given (so a file read with
 * {@link readGguf} writes back byte for byte), else with an inferred type: integers as u32 (i32 if
 * negative, u64/i64 if beyond 32 bits), other numbers as f32, bigints as u64/i64, number arrays as
 * i32 when all 32-bit integers (i64 when wider, f32 otherwise), typed arrays as their element type. Mistakes in the input are
 * programmer errors (TypeError/RangeError), not GgufFormatError.
 */
import { ggmlTypeInfo, type GgmlType } from './ggml-types.ts';
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_DIMS,
  GGUF_MAX_TENSOR_NAME_BYTES,
  GgufValueType,
  ggufValueTypeName,
  type GgufTensorInfo,
  type GgufTypeInfo,
  type GgufValue,
} from './types.ts';

/**
 * What the writer accepts as a value: anything the reader returns, plus plain number and bigint
 * arrays (written with a declared element type, or i32/f32/u64/i64 as inferred).
 */
export type GgufInputValue = GgufValue | number[] | bigint[] | GgufInputValue[];

export interface GgufTensorSpec {
  name: string;
  type: GgmlType;
  /** GGUF order, ne0 first. */
  shape: number[];
}

export interface GgufWriteSpec {
  /** Written in iteration order. */
  metadata: Map<string, GgufInputValue> | Record<string, GgufInputValue>;
  /** Stored types for some or all keys; a bare type is shorthand for `{ type }`. */
  metadataTypes?: Map<string, GgufTypeInfo | GgufValueType> | Record<string, GgufTypeInfo | GgufValueType>;
  tensors?: GgufTensorSpec[];
  /** Default 3. Version 2 has the same layout (for rewriting old files byte for byte). */
  version?: 2 | 3;
}

export interface GgufLayout {
  /** Everything before the tensor data, including the padding that aligns the data section. */
  header: Uint8Array<ArrayBuffer>;
  tensors: GgufTensorInfo[];
  alignment: number;
  dataOffset: number;
  /** Total file size: header, each tensor's data and its padding. */
  fileSize: number;
}

const encoder = new TextEncoder();

/** Bytes of zero padding after `size` bytes to reach a multiple of `alignment`. */
export function ggufPadding(size: number, alignment: number): number {
  return (alignment - (size % alignment)) % alignment;
}

/** Growable little-endian byte buffer. */
class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): number {
    const at = this.length;
    if (at + n > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < at + n) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.buf.subarray(0, at));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    this.length += n;
    return at;
  }
  // Each setter reserves before touching `view`/`buf`: a reserve that grows replaces them.
  u8(v: number): void {
    const at = this.reserve(1);
    this.buf[at] = v;
  }
  i8(v: number): void {
    const at = this.reserve(1);
    this.view.setInt8(at, v);
  }
  u16(v: number): void {
    const at = this.reserve(2);
    this.view.setUint16(at, v, true);
  }
  i16(v: number): void {
    const at = this.reserve(2);
    this.view.setInt16(at, v, true);
  }
  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }
  i32(v: number): void {
    const at = this.reserve(4);
    this.view.setInt32(at, v, true);
  }
  f32(v: number): void {
    const at = this.reserve(4);
    this.view.setFloat32(at, v, true);
  }
  f64(v: number): void {
    const at = this.reserve(8);
    this.view.setFloat64(at, v, true);
  }
  u64(v: bigint): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, v, true);
  }
  i64(v: bigint): void {
    const at = this.reserve(8);
    this.view.setBigInt64(at, v, true);
  }
  bytes(b: Uint8Array): void {
    const at = this.reserve(b.length);
    this.buf.set(b, at);
  }
  string(s: string): void {
    const b = encoder.encode(s);
    this.u64(BigInt(b.length));
    this.bytes(b);
  }
  zeros(n: number): void {
    const at = this.reserve(n);
    this.buf.fill(0, at, this.length);
  }
  result(): Uint8Array<ArrayBuffer> {
    return this.buf.slice(0, this.length);
  }
}

const TYPED_ARRAY_TYPES: Array<[abstract new (...args: never[]) => ArrayBufferView, GgufValueType]> = [
  [Uint8Array, GgufValueType.UINT8],
  [Int8Array, GgufValueType.INT8],
  [Uint16Array, GgufValueType.UINT16],
  [Int16Array, GgufValueType.INT16],
  [Uint32Array, GgufValueType.UINT32],
  [Int32Array, GgufValueType.INT32],
  [Float32Array, GgufValueType.FLOAT32],
  [Float64Array, GgufValueType.FLOAT64],
  [BigUint64Array, GgufValueType.UINT64],
  [BigInt64Array, GgufValueType.INT64],
];

function typedArrayType(value: unknown): GgufValueType | undefined {
  for (const [ctor, type] of TYPED_ARRAY_TYPES) if (value instanceof ctor) return type;
  return undefined;
}

function inferScalar(value: unknown, key: string): GgufValueType {
  switch (typeof value) {
    case 'string':
      return GgufValueType.STRING;
    case 'boolean':
      return GgufValueType.BOOL;
    case 'bigint':
      return value < 0n ? GgufValueType.INT64 : GgufValueType.UINT64;
    case 'number':
      if (!Number.isInteger(value)) return GgufValueType.FLOAT32;
      if (value >= 0) return value <= 0xffffffff ? GgufValueType.UINT32 : GgufValueType.UINT64;
      return value >= -0x80000000 ? GgufValueType.INT32 : GgufValueType.INT64;
    default:
      throw new TypeError(`GGUF writer: key '${key}' has a value of type ${typeof value} that GGUF cannot store`);
  }
}

/** The type a value is written with when none is given. */
export function inferGgufType(value: GgufInputValue, key = '?'): GgufTypeInfo {
  const typed = typedArrayType(value);
  if (typed !== undefined) return { type: GgufValueType.ARRAY, elementType: typed };
  if (!Array.isArray(value)) return { type: inferScalar(value, key) };
  if (value.length === 0) return { type: GgufValueType.ARRAY, elementType: GgufValueType.STRING };
  if (value.every((v) => Array.isArray(v) || typedArrayType(v) !== undefined)) {
    return { type: GgufValueType.ARRAY, elementType: GgufValueType.ARRAY, elements: (value as GgufInputValue[]).map((v) => inferGgufType(v, key)) };
  }
  const kinds = new Set((value as unknown[]).map((v) => typeof v));
  if (kinds.size !== 1) throw new TypeError(`GGUF writer: array '${key}' mixes ${[...kinds].join(' and ')} values`);
  const first = value[0];
  if (typeof first === 'number') {
    const numbers = value as unknown as number[];
    if (numbers.every((v) => Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff)) {
      return { type: GgufValueType.ARRAY, elementType: GgufValueType.INT32 };
    }
    // Integers beyond 32 bits stay exact as i64 rather than being rounded to f32.
    const wide = numbers.every((v) => Number.isSafeInteger(v));
    return { type: GgufValueType.ARRAY, elementType: wide ? GgufValueType.INT64 : GgufValueType.FLOAT32 };
  }
  if (typeof first === 'bigint') {
    const signed = (value as unknown as bigint[]).some((v) => v < 0n);
    return { type: GgufValueType.ARRAY, elementType: signed ? GgufValueType.INT64 : GgufValueType.UINT64 };
  }
  return { type: GgufValueType.ARRAY, elementType: inferScalar(first, key) };
}

const INT_RANGES: Partial<Record<GgufValueType, [number, number]>> = {
  [GgufValueType.UINT8]: [0, 0xff],
  [GgufValueType.INT8]: [-0x80, 0x7f],
  [GgufValueType.UINT16]: [0, 0xffff],
  [GgufValueType.INT16]: [-0x8000, 0x7fff],
  [GgufValueType.UINT32]: [0, 0xffffffff],
  [GgufValueType.INT32]: [-0x80000000, 0x7fffffff],
};

function writeScalar(w: ByteWriter, type: GgufValueType, value: unknown, key: string): void {
  const bad = (): never => {
    throw new TypeError(`GGUF writer: key '${key}': ${String(value)} (${typeof value}) is not a valid ${ggufValueTypeName(type)}`);
  };
  switch (type) {
    case GgufValueType.STRING:
      if (typeof value !== 'string') bad();
      w.string(value as string);
      return;
    case GgufValueType.BOOL:
      if (typeof value !== 'boolean') bad();
      w.u8(value ? 1 : 0);
      return;
    case GgufValueType.FLOAT32:
    case GgufValueType.FLOAT64:
      if (typeof value !== 'number') bad();
      if (type === GgufValueType.FLOAT32) w.f32(value as number);
      else w.f64(value as number);
      return;
    case GgufValueType.UINT64:
    case GgufValueType.INT64: {
      let big: bigint;
      if (typeof value === 'bigint') big = value;
      else if (typeof value === 'number' && Number.isSafeInteger(value)) big = BigInt(value);
      else return bad();
      if (type === GgufValueType.UINT64 ? big < 0n || big >= 1n << 64n : big < -(1n << 63n) || big >= 1n << 63n) bad();
      if (type === GgufValueType.UINT64) w.u64(big);
      else w.i64(big);
      return;
    }
    default: {
      const range = INT_RANGES[type];
      if (!range) throw new TypeError(`GGUF writer: key '${key}': ${type} is not a scalar GGUF type`);
      const n = typeof value === 'bigint' ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < range[0] || n > range[1]) bad();
      const v = n as number;
      if (type === GgufValueType.UINT8) w.u8(v);
      else if (type === GgufValueType.INT8) w.i8(v);
      else if (type === GgufValueType.UINT16) w.u16(v);
      else if (type === GgufValueType.INT16) w.i16(v);
      else if (type === GgufValueType.UINT32) w.u32(v);
      else w.i32(v);
    }
  }
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Array body: element type, count, elements (the ARRAY tag itself is written by the caller). */
function writeArray(w: ByteWriter, info: GgufTypeInfo, value: unknown, key: string): void {
  const elementType = info.elementType;
  if (elementType === undefined || elementType < 0 || elementType > GgufValueType.FLOAT64) {
    throw new TypeError(`GGUF writer: array '${key}' has no valid element type`);
  }
  const typed = typedArrayType(value);
  if (typed === undefined && !Array.isArray(value)) {
    throw new TypeError(`GGUF writer: key '${key}' is declared an array but holds ${typeof value}`);
  }
  const items = value as ArrayLike<unknown>;
  w.i32(elementType);
  w.u64(BigInt(items.length));
  if (typed !== undefined && typed === elementType && LITTLE_ENDIAN_HOST) {
    // Same element type: copy the bytes as they are.
    const view = value as ArrayBufferView;
    w.bytes(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
    return;
  }
  if (elementType === GgufValueType.ARRAY) {
    for (let i = 0; i < items.length; i++) {
      const inner = info.elements?.[i] ?? inferGgufType(items[i] as GgufInputValue, key);
      if (inner.type !== GgufValueType.ARRAY) throw new TypeError(`GGUF writer: element ${i} of nested array '${key}' is not an array`);
      writeArray(w, inner, items[i], key);
    }
    return;
  }
  for (let i = 0; i < items.length; i++) writeScalar(w, elementType, items[i], key);
}

function normalizeType(t: GgufTypeInfo | GgufValueType | undefined): GgufTypeInfo | undefined {
  return typeof t === 'number' ? { type: t } : t;
}

function asMap<V>(m: Map<string, V> | Record<string, V> | undefined): Map<string, V> {
  if (m === undefined) return new Map();
  return m instanceof Map ? m : new Map(Object.entries(m));
}

function checkTensor(t: GgufTensorSpec, names: Set<string>): { elementCount: number; byteSize: number } {
  const nameBytes = encoder.encode(t.name).length;
  if (nameBytes === 0 || nameBytes > GGUF_MAX_TENSOR_NAME_BYTES) {
    throw new RangeError(`GGUF writer: tensor name '${t.name}' must be 1..${GGUF_MAX_TENSOR_NAME_BYTES} bytes`);
  }
  if (names.has(t.name)) throw new RangeError(`GGUF writer: duplicate tensor name '${t.name}'`);
  names.add(t.name);
  const info = ggmlTypeInfo(t.type);
  if (!info) throw new RangeError(`GGUF writer: tensor '${t.name}' has unknown ggml type ${t.type}`);
  if (t.shape.length < 1 || t.shape.length > GGUF_MAX_DIMS || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 1)) {
    throw new RangeError(`GGUF writer: tensor '${t.name}' shape [${t.shape}] must be 1..4 positive integers`);
  }
  const elementCount = t.shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(elementCount)) throw new RangeError(`GGUF writer: tensor '${t.name}' has too many elements`);
  if (t.shape[0]! % info.blockSize !== 0) {
    throw new RangeError(`GGUF writer: tensor '${t.name}' (${info.name}) row of ${t.shape[0]} is not a multiple of ${info.blockSize}`);
  }
  return { elementCount, byteSize: (elementCount / info.blockSize) * info.typeSize };
}

/** Builds the header and computes where every tensor's data goes. */
export function layoutGguf(spec: GgufWriteSpec): GgufLayout {
  const metadata = asMap(spec.metadata);
  const types = asMap(spec.metadataTypes);
  const version = spec.version ?? 3;
  const tensors = spec.tensors ?? [];

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (metadata.has('general.alignment')) {
    const a = metadata.get('general.alignment');
    const declared = normalizeType(types.get('general.alignment'));
    if (typeof a !== 'number' || !Number.isInteger(a) || a <= 0 || a > 2 ** 31 || (a & (a - 1)) !== 0) {
      throw new RangeError(`GGUF writer: general.alignment must be a power of two, got ${String(a)}`);
    }
    if (declared && declared.type !== GgufValueType.UINT32) throw new TypeError('GGUF writer: general.alignment must be stored as u32');
    types.set('general.alignment', { type: GgufValueType.UINT32 });
    alignment = a;
  }

  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(version);
  w.u64(BigInt(tensors.length));
  w.u64(BigInt(metadata.size));
  for (const [key, value] of metadata) {
    if (key.length === 0) throw new RangeError('GGUF writer: empty metadata key');
    const info = normalizeType(types.get(key)) ?? inferGgufType(value, key);
    w.string(key);
    w.i32(info.type);
    if (info.type === GgufValueType.ARRAY) writeArray(w, info, value, key);
    else writeScalar(w, info.type, value, key);
  }

  const names = new Set<string>();
  const infos: GgufTensorInfo[] = [];
  let offset = 0;
  for (const t of tensors) {
    const { elementCount, byteSize } = checkTensor(t, names);
    w.string(t.name);
    w.u32(t.shape.length);
    for (const d of t.shape) w.u64(BigInt(d));
    w.i32(t.type);
    w.u64(BigInt(offset));
    infos.push({ name: t.name, type: t.type, shape: [...t.shape], offset, fileOffset: 0, byteSize, elementCount });
    offset += byteSize + ggufPadding(byteSize, alignment);
  }
  // Like gguf-py, a file without tensors ends right after its metadata (llama.cpp's writer pads it;
  // readers accept both). With tensors, the data section starts aligned.
  if (tensors.length > 0) w.zeros(ggufPadding(w.length, alignment));
  const dataOffset = w.length;
  for (const t of infos) t.fileOffset = dataOffset + t.offset;
  return { header: w.result(), tensors: infos, alignment, dataOffset, fileSize: dataOffset + offset };
}

/** Provides each tensor's bytes, in layout order; called once per tensor, just before it is written. */
export type TensorDataProvider = (tensor: GgufTensorInfo, index: number) => Uint8Array | Promise<Uint8Array>;

/**
 * The file as a stream of chunks: the header, then each tensor's data and padding. Only one
 * tensor's data is held at a time. Throws if a provider returns the wrong number of bytes.
 */
export async function* ggufChunks(layout: GgufLayout, data: TensorDataProvider): AsyncGenerator<Uint8Array> {
  yield layout.header;
  for (let i = 0; i < layout.tensors.length; i++) {
    const t = layout.tensors[i]!;
    const bytes = await data(t, i);
    if (bytes.length !== t.byteSize) {
      throw new RangeError(`GGUF writer: tensor '${t.name}' needs ${t.byteSize} bytes of data, got ${bytes.length}`);
    }
    yield bytes;
    const pad = ggufPadding(t.byteSize, layout.alignment);
    if (pad > 0) yield new Uint8Array(pad);
  }
}

/** Provides one tensor's data as a sequence of pieces (rows in slabs), so no tensor is held whole. */
export type TensorPiecesProvider = (tensor: GgufTensorInfo, index: number) => AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/**
 * Like {@link ggufChunks}, but each tensor's data arrives in pieces: memory stays bounded by the
 * largest piece, whatever the tensor's size. Throws if a tensor's pieces do not add up to its size.
 */
export async function* ggufPieceChunks(layout: GgufLayout, data: TensorPiecesProvider): AsyncGenerator<Uint8Array> {
  yield layout.header;
  for (let i = 0; i < layout.tensors.length; i++) {
    const t = layout.tensors[i]!;
    let written = 0;
    for await (const piece of data(t, i)) {
      written += piece.length;
      if (written > t.byteSize) break;
      yield piece;
    }
    if (written !== t.byteSize) {
      throw new RangeError(`GGUF writer: tensor '${t.name}' needs ${t.byteSize} bytes of data, got ${written}${written > t.byteSize ? ' or more' : ''}`);
    }
    const pad = ggufPadding(t.byteSize, layout.alignment);
    if (pad > 0) yield new Uint8Array(pad);
  }
}

/** A whole GGUF file in memory (small files, tests). */
export function writeGguf(spec: GgufWriteSpec & { tensors?: Array<GgufTensorSpec & { data: Uint8Array }> }): Uint8Array<ArrayBuffer> {
  const layout = layoutGguf(spec);
  const out = new Uint8Array(layout.fileSize);
  out.set(layout.header, 0);
  layout.tensors.forEach((t, i) => {
    const data = spec.tensors![i]!.data;
    if (data.length !== t.byteSize) {
      throw new RangeError(`GGUF writer: tensor '${t.name}' needs ${t.byteSize} bytes of data, got ${data.length}`);
    }
    out.set(data, t.fileOffset);
  });
  return out;
}

