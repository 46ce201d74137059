/**
 * GGUF reader for untrusted files. It reads the header (metadata and tensor infos, never the tensor
 * data) through a {@link RangedSource} in growing windows, and checks every count and length
 * against the bytes that remain before allocating anything for it, the way ggml's gguf.cpp does.
 * Anything wrong with the file is a {@link GgufFormatError} naming the offset and what was expected.
 *
 * Parsing is synchronous on the buffered window; the only awaits are window refills, so a
 * 250k-entry token array costs a handful of reads, not 250k promise round trips.
 */
import { GgmlType, ggmlTypeInfo } from './ggml-types.ts';
import { GgufFormatError, type GgufFormatErrorDetail } from './errors.ts';
import type { RangedSource } from './source.ts';
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_DIMS,
  GGUF_MAX_TENSOR_NAME_BYTES,
  GGUF_SCALAR_SIZE,
  GgufValueType,
  ggufValueTypeName,
  type GgufArray,
  type GgufFile,
  type GgufTensorInfo,
  type GgufTypeInfo,
  type GgufValue,
} from './types.ts';

export interface ReadGgufOptions {
  /**
   * Most bytes the header (everything before the tensor data) may take. Real models have headers
   * of a few MiB up to a few tens of MiB (a 256k-token vocabulary with merges); the limit bounds the
   * memory a hostile file can make the reader allocate. Default 256 MiB.
   */
  maxHeaderBytes?: number;
  /** Longest metadata key in bytes. Default 65535. */
  maxKeyBytes?: number;
  /** Most elements of one metadata array. Default 2^30, as gguf.cpp. */
  maxArrayLength?: number;
  /** Deepest nesting of arrays of arrays (1 = no arrays inside arrays). Default 4. */
  maxArrayDepth?: number;
  /**
   * Most memory the decoded metadata may take, as estimated by {@link decodedCost} (JS strings and
   * arrays cost far more than their encoded bytes: an empty nested array is 12 bytes in the file
   * and hundreds in memory). Real models take a few tens of MiB (a 262k-token vocabulary with its
   * scores and types, 280k merges). Default 256 MiB.
   */
  maxMetadataBytes?: number;
  /** First read size in bytes; later reads double up to 4 MiB. Default 64 KiB. */
  initialReadBytes?: number;
}

const DEFAULTS = {
  maxHeaderBytes: 256 * 1024 * 1024,
  maxKeyBytes: 65535,
  maxArrayLength: 2 ** 30,
  maxArrayDepth: 4,
  maxMetadataBytes: 256 * 1024 * 1024,
  initialReadBytes: 64 * 1024,
};
const MAX_READ_BYTES = 4 * 1024 * 1024;

/** Smallest possible encodings, used to bound counts by the bytes that remain. */
const MIN_KV_BYTES = 8 + 1 + 4 + 1; // key length, 1-byte key, value type, 1-byte value
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8; // name length, 1-byte name, n_dims, 1 dim, type, offset
const MIN_STRING_BYTES = 8;
const MIN_ARRAY_BYTES = 4 + 8; // element type + count

/**
 * Estimated heap bytes of decoded metadata values, charged before they are allocated: a string
 * (header and array slot) plus its bytes; an array value (a JS array or typed array with its
 * buffer, and its type info) plus its elements; a boolean array slot. Measured on V8, rounded up.
 */
const decodedCost = { string: 32, array: 256, bool: 8 } as const;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Lossy = new TextDecoder('utf-8', { ignoreBOM: true });

function pow2(n: number): boolean {
  return n > 0 && Number.isInteger(n) && (n & (n - 1)) === 0 && n <= 2 ** 31;
}

/** Windowed little-endian reader over a source, with positions as absolute file offsets. */
class Cursor {
  private buf = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  /** File offset of buf[0]. */
  private start = 0;
  /** Absolute position of the next byte to parse. */
  pos = 0;
  private readSize: number;

  constructor(
    private readonly source: RangedSource,
    readonly fileSize: number,
    /** Parsing may not go past this offset (min of file size and the header limit). */
    readonly limit: number,
    private readonly maxHeaderBytes: number,
    initialReadBytes: number,
  ) {
    this.readSize = initialReadBytes;
  }

  /** Bytes that may still be parsed as header. */
  remaining(): number {
    return this.limit - this.pos;
  }

  /** Bytes buffered from `pos` on. */
  available(): number {
    return this.start + this.buf.length - this.pos;
  }

  /** Text for error messages about `n` bytes not fitting in what remains. */
  remainingText(): string {
    return this.limit < this.fileSize
      ? `the ${this.remaining()} bytes left under the ${this.maxHeaderBytes}-byte header limit`
      : `the remaining ${this.remaining()} bytes`;
  }

  /** Makes `n` bytes from `pos` available, reading a window from the source when needed. */
  async need(n: number, what: string): Promise<void> {
    if (this.available() >= n) return;
    if (n > this.remaining()) {
      const end = this.limit < this.fileSize ? `the ${this.maxHeaderBytes}-byte header limit` : 'the end of the file';
      throw new GgufFormatError(
        `GGUF: ${what} at offset ${this.pos} needs ${n} bytes but ${end} is ${this.remaining()} bytes away`,
        { offset: this.pos, expected: `${n} more bytes for ${what}`, actual: this.remaining() },
      );
    }
    const keep = this.buf.subarray(this.pos - this.start);
    const total = Math.min(this.remaining(), Math.max(n, this.readSize));
    const fresh = await this.source.read(this.pos + keep.length, total - keep.length);
    const next = new Uint8Array(total);
    next.set(keep, 0);
    next.set(fresh, keep.length);
    this.buf = next;
    this.view = new DataView(next.buffer);
    this.start = this.pos;
    this.readSize = Math.min(this.readSize * 2, MAX_READ_BYTES);
  }

  private at(): number {
    return this.pos - this.start;
  }
  u8(): number {
    return this.buf[this.pos++ - this.start]!;
  }
  u16(): number {
    const v = this.view.getUint16(this.at(), true);
    this.pos += 2;
    return v;
  }
  i16(): number {
    const v = this.view.getInt16(this.at(), true);
    this.pos += 2;
    return v;
  }
  u32(): number {
    const v = this.view.getUint32(this.at(), true);
    this.pos += 4;
    return v;
  }
  i32(): number {
    const v = this.view.getInt32(this.at(), true);
    this.pos += 4;
    return v;
  }
  i8(): number {
    return (this.u8() << 24) >> 24;
  }
  f32(): number {
    const v = this.view.getFloat32(this.at(), true);
    this.pos += 4;
    return v;
  }
  f64(): number {
    const v = this.view.getFloat64(this.at(), true);
    this.pos += 8;
    return v;
  }
  u64(): bigint {
    const v = this.view.getBigUint64(this.at(), true);
    this.pos += 8;
    return v;
  }
  i64(): bigint {
    const v = this.view.getBigInt64(this.at(), true);
    this.pos += 8;
    return v;
  }
  /**
   * A u64 as a number when below 2^53, else -1 (the caller reports the bigint). Avoids BigInt in
   * the per-string hot loop.
   */
  /** The u64 at absolute offset `abs` (buffered), without moving; for error messages. */
  u64At(abs: number): bigint {
    return this.view.getBigUint64(abs - this.start, true);
  }
  u64Small(): number {
    const lo = this.view.getUint32(this.at(), true);
    const hi = this.view.getUint32(this.at() + 4, true);
    this.pos += 8;
    return hi < 0x200000 ? hi * 0x100000000 + lo : -1;
  }
  /** Copy of `n` buffered bytes into a fresh, 0-aligned buffer (for typed arrays). */
  copy(n: number): Uint8Array<ArrayBuffer> {
    const out = this.buf.slice(this.at(), this.at() + n);
    this.pos += n;
    return out;
  }
  /** Decodes `n` buffered bytes as UTF-8; `lossy` is set when U+FFFD replacement was needed. */
  text(n: number): { text: string; lossy: boolean } {
    const a = this.at();
    const bytes = this.buf;
    this.pos += n;
    // Most tokens are short ASCII: building them directly is several times faster than a
    // TextDecoder call per string.
    if (n <= 32) {
      let ascii = true;
      for (let i = a; i < a + n; i++) {
        if (bytes[i]! >= 0x80) {
          ascii = false;
          break;
        }
      }
      if (ascii) return { text: String.fromCharCode.apply(null, bytes.subarray(a, a + n) as unknown as number[]), lossy: false };
    }
    const view = bytes.subarray(a, a + n);
    try {
      return { text: utf8Strict.decode(view), lossy: false };
    } catch {
      return { text: utf8Lossy.decode(view), lossy: true };
    }
  }
}

function fail(message: string, detail: GgufFormatErrorDetail): never {
  throw new GgufFormatError(message, detail);
}

function swapBytes(bytes: Uint8Array, size: number): void {
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

interface ParseState {
  c: Cursor;
  options: typeof DEFAULTS;
  /** Set when any string of the current key needed replacement characters. */
  lossy: boolean;
  /** Estimated heap bytes of the metadata decoded so far ({@link decodedCost}). */
  decoded: number;
}

/**
 * Counts `bytes` of decoded metadata against the limit before they are allocated, so a file of
 * millions of tiny values fails here rather than after taking gigabytes.
 */
function chargeDecoded(s: ParseState, bytes: number, at: number, key: string): void {
  s.decoded += bytes;
  const limit = s.options.maxMetadataBytes;
  if (s.decoded > limit) {
    fail(`GGUF: metadata decoded up to key '${key}' at offset ${at} would take about ${s.decoded} bytes of memory, over the limit of ${limit}`, {
      offset: at,
      expected: `metadata that decodes to at most ${limit} bytes`,
      actual: s.decoded,
      key,
    });
  }
}

/**
 * The next string when its length and bytes are already buffered and its length is plausible;
 * undefined (position unchanged) when the slow path must refill or report an error.
 */
function readBufferedString(s: ParseState, maxBytes: number): string | undefined {
  const { c } = s;
  if (c.available() < 8) return undefined;
  const at = c.pos;
  const length = c.u64Small();
  if (length < 0 || length > maxBytes || c.available() < length) {
    c.pos = at;
    return undefined;
  }
  const { text, lossy } = c.text(length);
  if (lossy) s.lossy = true;
  return text;
}

/** A length-prefixed string whose length must fit in `maxBytes` and in the remaining header. */
async function readString(s: ParseState, what: string, maxBytes: number, keyOrTensor: { key?: string; tensor?: string }): Promise<string> {
  const { c } = s;
  if (c.available() < 8) await c.need(8, `length of ${what}`);
  const at = c.pos;
  const length = c.u64Small();
  if (length < 0 || length > maxBytes || length > c.remaining()) {
    const shown = length < 0 ? c.u64At(at).toString() : String(length);
    const limit = length >= 0 && length <= c.remaining() ? `the limit of ${maxBytes} bytes` : c.remainingText();
    fail(`GGUF: ${what} length ${shown} at offset ${at} exceeds ${limit}`, {
      offset: at,
      expected: `a string length of at most ${Math.min(maxBytes, c.remaining())} bytes`,
      actual: shown,
      ...keyOrTensor,
    });
  }
  if (c.available() < length) await c.need(length, what);
  const { text, lossy } = c.text(length);
  if (lossy) s.lossy = true;
  return text;
}

async function readValueType(s: ParseState, what: string, key: string): Promise<GgufValueType> {
  const { c } = s;
  if (c.available() < 4) await c.need(4, what);
  const at = c.pos;
  const type = c.i32();
  if (type < 0 || type > GgufValueType.FLOAT64) {
    fail(`GGUF: key '${key}' has unknown value type ${type} at offset ${at}`, {
      offset: at,
      expected: 'a GGUF value type 0..12',
      actual: type,
      key,
    });
  }
  return type;
}

/** One scalar of a fixed-size type; the caller has made its bytes available. */
function scalar(s: ParseState, type: GgufValueType, key: string): number | bigint | boolean {
  const { c } = s;
  switch (type) {
    case GgufValueType.UINT8:
      return c.u8();
    case GgufValueType.INT8:
      return c.i8();
    case GgufValueType.UINT16:
      return c.u16();
    case GgufValueType.INT16:
      return c.i16();
    case GgufValueType.UINT32:
      return c.u32();
    case GgufValueType.INT32:
      return c.i32();
    case GgufValueType.FLOAT32:
      return c.f32();
    case GgufValueType.FLOAT64:
      return c.f64();
    case GgufValueType.UINT64:
      return c.u64();
    case GgufValueType.INT64:
      return c.i64();
    case GgufValueType.BOOL: {
      const at = c.pos;
      const b = c.u8();
      if (b > 1) fail(`GGUF: key '${key}' has bool byte ${b} at offset ${at}`, { offset: at, expected: 'bool 0 or 1', actual: b, key });
      return b === 1;
    }
    default:
      throw new Error(`not a fixed-size GGUF type: ${type}`);
  }
}

function typedArray(type: GgufValueType, bytes: Uint8Array<ArrayBuffer>): GgufArray {
  const size = GGUF_SCALAR_SIZE[type]!;
  if (!LITTLE_ENDIAN_HOST && size > 1) swapBytes(bytes, size);
  const b = bytes.buffer;
  switch (type) {
    case GgufValueType.UINT8:
      return new Uint8Array(b);
    case GgufValueType.INT8:
      return new Int8Array(b);
    case GgufValueType.UINT16:
      return new Uint16Array(b);
    case GgufValueType.INT16:
      return new Int16Array(b);
    case GgufValueType.UINT32:
      return new Uint32Array(b);
    case GgufValueType.INT32:
      return new Int32Array(b);
    case GgufValueType.FLOAT32:
      return new Float32Array(b);
    case GgufValueType.FLOAT64:
      return new Float64Array(b);
    case GgufValueType.UINT64:
      return new BigUint64Array(b);
    case GgufValueType.INT64:
      return new BigInt64Array(b);
    default:
      throw new Error(`not a numeric GGUF type: ${type}`);
  }
}

/** An array value: element type, u64 count, elements. Returns the value and its type info. */
async function readArray(s: ParseState, key: string, depth: number, overheadCharged = false): Promise<{ value: GgufArray; info: GgufTypeInfo }> {
  const { c, options } = s;
  const elementType = await readValueType(s, `element type of array '${key}'`, key);
  if (c.available() < 8) await c.need(8, `length of array '${key}'`);
  const at = c.pos;
  const count = c.u64Small();
  const minBytes =
    elementType === GgufValueType.STRING
      ? MIN_STRING_BYTES
      : elementType === GgufValueType.ARRAY
        ? MIN_ARRAY_BYTES
        : GGUF_SCALAR_SIZE[elementType]!;
  if (count < 0 || count > options.maxArrayLength || count * minBytes > c.remaining()) {
    const shown = count < 0 ? c.u64At(at).toString() : String(count);
    const why =
      count >= 0 && count > options.maxArrayLength
        ? `the limit of ${options.maxArrayLength} elements`
        : `what ${c.remainingText()} can hold (${minBytes} bytes per ${ggufValueTypeName(elementType)} at least)`;
    fail(`GGUF: array '${key}' length ${shown} at offset ${at} exceeds ${why}`, {
      offset: at,
      expected: `at most ${Math.min(options.maxArrayLength, Math.floor(c.remaining() / minBytes))} elements`,
      actual: shown,
      key,
    });
  }
  const perElement =
    elementType === GgufValueType.STRING
      ? decodedCost.string
      : elementType === GgufValueType.ARRAY
        ? decodedCost.array
        : elementType === GgufValueType.BOOL
          ? decodedCost.bool
          : GGUF_SCALAR_SIZE[elementType]!;
  // An array inside an array had its overhead charged with its parent's elements.
  chargeDecoded(s, (overheadCharged ? 0 : decodedCost.array) + count * perElement, at, key);

  switch (elementType) {
    case GgufValueType.STRING: {
      const out: string[] = new Array<string>(count);
      const before = c.pos;
      for (let i = 0; i < count; i++) {
        // Synchronous unless the window must be refilled: an await per string would dominate.
        out[i] = readBufferedString(s, c.remaining()) ?? (await readString(s, `string ${i} of array '${key}'`, c.remaining(), { key }));
      }
      // The strings' own bytes (their headers were charged above); a UTF-8 byte is at most one
      // UTF-16 unit, so the encoded length bounds the decoded one.
      chargeDecoded(s, c.pos - before - 8 * count, before, key);
      return { value: out, info: { type: GgufValueType.ARRAY, elementType } };
    }
    case GgufValueType.BOOL: {
      await c.need(count, `array '${key}'`);
      const out: boolean[] = new Array<boolean>(count);
      for (let i = 0; i < count; i++) out[i] = scalar(s, elementType, key) as boolean;
      return { value: out, info: { type: GgufValueType.ARRAY, elementType } };
    }
    case GgufValueType.ARRAY: {
      if (depth >= options.maxArrayDepth) {
        fail(`GGUF: array '${key}' at offset ${at} nests arrays deeper than ${options.maxArrayDepth} levels`, {
          offset: at,
          expected: `arrays nested at most ${options.maxArrayDepth} deep`,
          key,
        });
      }
      const out: GgufArray[] = new Array<GgufArray>(count);
      const elements: GgufTypeInfo[] = new Array<GgufTypeInfo>(count);
      for (let i = 0; i < count; i++) {
        const inner = await readArray(s, key, depth + 1, true);
        out[i] = inner.value;
        elements[i] = inner.info;
      }
      return { value: out, info: { type: GgufValueType.ARRAY, elementType, elements } };
    }
    default: {
      const bytes = count * GGUF_SCALAR_SIZE[elementType]!;
      await c.need(bytes, `array '${key}'`);
      return { value: typedArray(elementType, c.copy(bytes)), info: { type: GgufValueType.ARRAY, elementType } };
    }
  }
}

async function readKeyValues(
  s: ParseState,
  count: number,
): Promise<Pick<GgufFile, 'metadata' | 'metadataTypes' | 'invalidUtf8Keys'> & { keyOffsets: Map<string, number> }> {
  const { c, options } = s;
  const keyOffsets = new Map<string, number>();
  const metadata = new Map<string, GgufValue>();
  const metadataTypes = new Map<string, GgufTypeInfo>();
  const invalidUtf8Keys: string[] = [];
  for (let i = 0; i < count; i++) {
    const keyAt = c.pos;
    s.lossy = false;
    const key = await readString(s, `key ${i}`, options.maxKeyBytes, {});
    if (s.lossy) fail(`GGUF: key ${i} at offset ${keyAt} is not valid UTF-8`, { offset: keyAt, expected: 'a UTF-8 key' });
    if (key.length === 0) fail(`GGUF: key ${i} at offset ${keyAt} is empty`, { offset: keyAt, expected: 'a non-empty key' });
    if (metadata.has(key)) {
      fail(`GGUF: duplicate key '${key}' at offset ${keyAt}`, { offset: keyAt, expected: 'unique keys', key });
    }
    const type = await readValueType(s, `value type of '${key}'`, key);
    let value: GgufValue;
    let info: GgufTypeInfo;
    if (type === GgufValueType.STRING) {
      value = await readString(s, `string value of '${key}'`, c.remaining(), { key });
      chargeDecoded(s, decodedCost.string + value.length, keyAt, key);
      info = { type };
    } else if (type === GgufValueType.ARRAY) {
      ({ value, info } = await readArray(s, key, 1));
    } else {
      const size = GGUF_SCALAR_SIZE[type]!;
      if (c.available() < size) await c.need(size, `value of '${key}'`);
      value = scalar(s, type, key);
      info = { type };
    }
    if (s.lossy) invalidUtf8Keys.push(key);
    metadata.set(key, value);
    metadataTypes.set(key, info);
    keyOffsets.set(key, keyAt);
  }
  return { metadata, metadataTypes, invalidUtf8Keys, keyOffsets };
}

/** A u64/i64 count or offset field as a number, or a failure naming `what`. */
function bigToNumber(value: bigint, max: number): number {
  return value >= 0n && value <= BigInt(max) ? Number(value) : -1;
}

async function readTensorInfo(s: ParseState, index: number, alignment: number, names: Set<string>): Promise<GgufTensorInfo & { offsetAt: number }> {
  const { c } = s;
  const nameAt = c.pos;
  s.lossy = false;
  const name = await readString(s, `name of tensor ${index}`, GGUF_MAX_TENSOR_NAME_BYTES, { tensor: `#${index}` });
  if (s.lossy) fail(`GGUF: name of tensor ${index} at offset ${nameAt} is not valid UTF-8`, { offset: nameAt, expected: 'a UTF-8 tensor name' });
  if (name.length === 0) fail(`GGUF: tensor ${index} at offset ${nameAt} has an empty name`, { offset: nameAt, expected: 'a non-empty tensor name' });
  if (names.has(name)) fail(`GGUF: duplicate tensor name '${name}' at offset ${nameAt}`, { offset: nameAt, expected: 'unique tensor names', tensor: name });
  names.add(name);

  await c.need(4, `dimension count of tensor '${name}'`);
  const dimsAt = c.pos;
  const nDims = c.u32();
  if (nDims < 1 || nDims > GGUF_MAX_DIMS) {
    fail(`GGUF: tensor '${name}' has ${nDims} dimensions at offset ${dimsAt}`, {
      offset: dimsAt,
      expected: `1..${GGUF_MAX_DIMS} dimensions`,
      actual: nDims,
      tensor: name,
    });
  }
  await c.need(8 * nDims + 4 + 8, `shape, type and offset of tensor '${name}'`);
  const shape: number[] = [];
  let elements = 1n;
  for (let d = 0; d < nDims; d++) {
    const at = c.pos;
    const dim = c.i64();
    if (dim < 1n) {
      fail(`GGUF: tensor '${name}' dimension ${d} is ${dim} at offset ${at}`, { offset: at, expected: 'a dimension >= 1', actual: dim.toString(), tensor: name });
    }
    elements *= dim;
    if (elements > BigInt(Number.MAX_SAFE_INTEGER)) {
      fail(`GGUF: tensor '${name}' has more than 2^53 elements (dimension ${d} is ${dim} at offset ${at})`, {
        offset: at,
        expected: 'an element count below 2^53',
        actual: dim.toString(),
        tensor: name,
      });
    }
    shape.push(Number(dim));
  }
  const elementCount = Number(elements);

  const typeAt = c.pos;
  const typeId = c.i32();
  const info = ggmlTypeInfo(typeId);
  if (!info) {
    fail(`GGUF: tensor '${name}' has unknown or removed ggml type ${typeId} at offset ${typeAt}`, {
      offset: typeAt,
      expected: 'a ggml type id this reader knows',
      actual: typeId,
      tensor: name,
    });
  }
  if (shape[0]! % info.blockSize !== 0) {
    fail(`GGUF: tensor '${name}' of type ${info.name} has rows of ${shape[0]} elements, not a multiple of the block size ${info.blockSize}`, {
      offset: dimsAt + 4,
      expected: `ne0 a multiple of ${info.blockSize}`,
      actual: shape[0]!,
      tensor: name,
    });
  }
  const byteSize = (elementCount / info.blockSize) * info.typeSize;

  const offsetAt = c.pos;
  const rawOffset = c.u64();
  const offset = bigToNumber(rawOffset, Number.MAX_SAFE_INTEGER);
  if (offset < 0 || offset > c.fileSize) {
    fail(`GGUF: tensor '${name}' data offset ${rawOffset} at offset ${offsetAt} is past the end of the ${c.fileSize}-byte file`, {
      offset: offsetAt,
      expected: 'a data offset inside the file',
      actual: rawOffset.toString(),
      tensor: name,
    });
  }
  if (offset % alignment !== 0) {
    fail(`GGUF: tensor '${name}' data offset ${offset} at offset ${offsetAt} is not a multiple of the alignment ${alignment}`, {
      offset: offsetAt,
      expected: `a multiple of ${alignment}`,
      actual: offset,
      tensor: name,
    });
  }
  return { name, type: info.type as GgmlType, shape, offset, fileOffset: 0, byteSize, elementCount, offsetAt };
}

/**
 * Parses the header of a GGUF file (v2 or v3, little-endian). Reads only the header bytes, in
 * windows, however large the file.
 */
export async function readGguf(source: RangedSource, options: ReadGgufOptions = {}): Promise<GgufFile> {
  const opts = { ...DEFAULTS, ...options };
  const fileSize = source.size;
  if (!Number.isSafeInteger(fileSize) || fileSize < 0) throw new TypeError(`source size ${fileSize} is not a byte count`);
  const c = new Cursor(source, fileSize, Math.min(fileSize, opts.maxHeaderBytes), opts.maxHeaderBytes, opts.initialReadBytes);
  const s: ParseState = { c, options: opts, lossy: false, decoded: 0 };
  const named = (message: string) => (source.name ? `${message} (${source.name})` : message);
  try {
    if (fileSize < 4) fail(`GGUF: file of ${fileSize} bytes is too small for the magic`, { offset: 0, expected: "magic 'GGUF'", actual: fileSize });
    await c.need(Math.min(24, c.remaining()), 'header');
    const magic = c.u32();
    if (magic !== GGUF_MAGIC) {
      const shown = [0, 8, 16, 24].map((shift) => {
        const ch = (magic >>> shift) & 0xff;
        return ch >= 0x20 && ch < 0x7f ? String.fromCharCode(ch) : `\\x${ch.toString(16).padStart(2, '0')}`;
      });
      fail(`GGUF: invalid magic '${shown.join('')}' at offset 0, expected 'GGUF' (not a GGUF file)`, {
        offset: 0,
        expected: "magic 'GGUF'",
        actual: shown.join(''),
      });
    }
    await c.need(4, 'version');
    const version = c.u32();
    if (version !== 2 && version !== 3) {
      const swapped = ((version & 0xff) << 24) | ((version >>> 8) & 0xff) << 16 | ((version >>> 16) & 0xff) << 8 | (version >>> 24);
      const why =
        version === 1
          ? 'GGUF v1 files are no longer supported (re-convert the model with a current llama.cpp)'
          : swapped === 2 || swapped === 3
            ? 'this looks like a big-endian GGUF file, which is not supported'
            : 'only versions 2 and 3 exist';
      fail(`GGUF: unsupported version ${version} at offset 4: ${why}`, { offset: 4, expected: 'version 2 or 3', actual: version });
    }
    await c.need(16, 'tensor and metadata counts');
    const tensorCountRaw = c.i64();
    const kvCountRaw = c.i64();
    // The counts are checked together: each tensor info and each key/value pair has a minimum
    // encoded size, so a count the remaining bytes cannot hold is rejected before any allocation.
    const budget = BigInt(c.remaining());
    if (tensorCountRaw < 0n || tensorCountRaw * BigInt(MIN_TENSOR_INFO_BYTES) > budget) {
      fail(`GGUF: tensor count ${tensorCountRaw} at offset 8 exceeds what ${c.remainingText()} can hold`, {
        offset: 8,
        expected: `at most ${budget / BigInt(MIN_TENSOR_INFO_BYTES)} tensors`,
        actual: tensorCountRaw.toString(),
      });
    }
    if (kvCountRaw < 0n || kvCountRaw * BigInt(MIN_KV_BYTES) + tensorCountRaw * BigInt(MIN_TENSOR_INFO_BYTES) > budget) {
      fail(`GGUF: metadata count ${kvCountRaw} at offset 16 exceeds what ${c.remainingText()} can hold`, {
        offset: 16,
        expected: `at most ${(budget - tensorCountRaw * BigInt(MIN_TENSOR_INFO_BYTES)) / BigInt(MIN_KV_BYTES)} key/value pairs`,
        actual: kvCountRaw.toString(),
      });
    }
    const tensorCount = Number(tensorCountRaw);
    const kvCount = Number(kvCountRaw);

    const { metadata, metadataTypes, invalidUtf8Keys, keyOffsets } = await readKeyValues(s, kvCount);

    let alignment = GGUF_DEFAULT_ALIGNMENT;
    const alignmentType = metadataTypes.get('general.alignment');
    if (alignmentType) {
      const value = metadata.get('general.alignment');
      if (alignmentType.type !== GgufValueType.UINT32 || typeof value !== 'number' || !pow2(value)) {
        fail(`GGUF: general.alignment must be a u32 power of two, got ${ggufValueTypeName(alignmentType.type)} ${String(value)}`, {
          offset: keyOffsets.get('general.alignment')!,
          expected: 'general.alignment: u32 power of two',
          actual: String(value),
          key: 'general.alignment',
        });
      }
      alignment = value;
    }

    const tensorsAt = c.pos;
    if (tensorCount * MIN_TENSOR_INFO_BYTES > c.remaining()) {
      fail(`GGUF: ${tensorCount} tensor infos at offset ${tensorsAt} do not fit in ${c.remainingText()}`, {
        offset: tensorsAt,
        expected: `at most ${Math.floor(c.remaining() / MIN_TENSOR_INFO_BYTES)} tensor infos`,
        actual: tensorCount,
      });
    }
    const names = new Set<string>();
    const infos: Array<GgufTensorInfo & { offsetAt: number }> = [];
    for (let i = 0; i < tensorCount; i++) infos.push(await readTensorInfo(s, i, alignment, names));

    const headerEnd = c.pos;
    const dataOffset = tensorCount > 0 ? Math.ceil(headerEnd / alignment) * alignment : headerEnd;
    if (dataOffset > fileSize) {
      fail(`GGUF: the data section would start at offset ${dataOffset}, past the end of the ${fileSize}-byte file`, {
        offset: headerEnd,
        expected: `padding to a multiple of ${alignment} inside the file`,
        actual: fileSize,
      });
    }
    for (const t of infos) {
      t.fileOffset = dataOffset + t.offset;
      if (t.fileOffset + t.byteSize > fileSize) {
        fail(
          `GGUF: tensor '${t.name}' data [${t.fileOffset}, ${t.fileOffset + t.byteSize}) extends past the end of the ${fileSize}-byte file` +
            ' (truncated download?)',
          { offset: t.offsetAt, expected: `${t.byteSize} bytes of data inside the file`, actual: t.offset, tensor: t.name },
        );
      }
    }
    const byOffset = [...infos].sort((a, b) => a.offset - b.offset || a.byteSize - b.byteSize);
    for (let i = 1; i < byOffset.length; i++) {
      const prev = byOffset[i - 1]!;
      const t = byOffset[i]!;
      if (t.offset < prev.offset + prev.byteSize) {
        fail(`GGUF: tensor '${t.name}' data at ${t.offset} overlaps tensor '${prev.name}' [${prev.offset}, ${prev.offset + prev.byteSize})`, {
          offset: t.offsetAt,
          expected: `a data offset of at least ${prev.offset + prev.byteSize}`,
          actual: t.offset,
          tensor: t.name,
        });
      }
    }
    const tensors: GgufTensorInfo[] = infos.map(({ offsetAt: _, ...t }) => t);
    return { version, metadata, metadataTypes, tensors, alignment, dataOffset, fileSize, invalidUtf8Keys };
  } catch (error) {
    if (error instanceof GgufFormatError && source.name && error.detail.source === undefined) {
      throw new GgufFormatError(named(error.message), { ...error.detail, source: source.name });
    }
    throw error;
  }
}
