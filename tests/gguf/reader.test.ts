import { describe, expect, it } from 'vitest';
import { GgmlType } from '../../src/engine/gguf/ggml-types.ts';
import { GgufFormatError } from '../../src/engine/gguf/errors.ts';
import { readGguf, type ReadGgufOptions } from '../../src/engine/gguf/reader.ts';
import { bytesSource } from '../../src/engine/gguf/source.ts';
import { GgufValueType } from '../../src/engine/gguf/types.ts';
import { layoutGguf } from '../../src/engine/gguf/writer.ts';
import {
  GgufMetadataError,
  archKey,
  findNumber,
  findString,
  getBoolean,
  getInteger,
  getNumber,
  getNumbers,
  getNumericArray,
  getString,
  getStringArray,
} from '../../src/engine/gguf/metadata.ts';
import { Raw, countingSource, featureFile } from './fixtures.ts';

const T = GgufValueType;

async function parseError(bytes: Uint8Array, options?: ReadGgufOptions): Promise<GgufFormatError> {
  try {
    await readGguf(bytesSource(bytes), options);
  } catch (error) {
    expect(error).toBeInstanceOf(GgufFormatError);
    return error as GgufFormatError;
  }
  throw new Error('expected the file to be rejected');
}

/** A file with one u32 key and the given tensor infos (data zero-filled to `dataBytes`). */
function withTensors(infos: (r: Raw) => void, count: number, dataBytes: number): Uint8Array {
  const r = new Raw().header(count, 1).kvU32('general.alignment', 32);
  infos(r);
  return r.padTo(32).zeros(dataBytes).build();
}

describe('readGguf on a valid file', () => {
  it('reads every value type, nested arrays, alignment and tensor infos', async () => {
    const f = featureFile();
    const g = await readGguf(bytesSource(f.bytes));
    expect(g.version).toBe(3);
    expect(g.alignment).toBe(64);
    expect(g.fileSize).toBe(f.bytes.length);
    expect(g.dataOffset % 64).toBe(0);
    expect([...g.metadata.keys()]).toEqual([...f.metadata.keys()]);
    for (const [key, value] of f.metadata) {
      expect(g.metadata.get(key), key).toEqual(value);
      expect(g.metadataTypes.get(key), key).toEqual(f.metadataTypes.get(key));
    }
    // Exact classes, not just equal contents: consumers rely on Float32Array scores and i32 types.
    expect(g.metadata.get('a.f32')).toBeInstanceOf(Float32Array);
    expect(g.metadata.get('a.u64')).toBeInstanceOf(BigUint64Array);
    expect(g.metadata.get('t.u64')).toBe(18446744073709551615n);
    expect(g.metadata.get('t.f32')).toBe(0.5);
    expect(g.invalidUtf8Keys).toEqual([]);

    expect(g.tensors.map((t) => t.name)).toEqual(f.tensors.map((t) => t.name));
    let expectedOffset = 0;
    for (const [i, t] of g.tensors.entries()) {
      const spec = f.tensors[i]!;
      expect(t.type).toBe(spec.type);
      expect(t.shape).toEqual(spec.shape);
      expect(t.byteSize).toBe(spec.data.length);
      expect(t.elementCount).toBe(spec.shape.reduce((a, b) => a * b, 1));
      expect(t.offset).toBe(expectedOffset);
      expect(t.fileOffset).toBe(g.dataOffset + t.offset);
      expect(f.bytes.subarray(t.fileOffset, t.fileOffset + t.byteSize)).toEqual(spec.data);
      expectedOffset += Math.ceil(t.byteSize / 64) * 64;
    }
  });

  it('reads a v2 file and an empty file (no tensors, no metadata)', async () => {
    const v2 = new Raw().header(0, 1, 2).kvU32('a', 1).build();
    expect((await readGguf(bytesSource(v2))).version).toBe(2);
    const empty = await readGguf(bytesSource(new Raw().header(0, 0).build()));
    expect(empty.metadata.size).toBe(0);
    expect(empty.tensors).toEqual([]);
    expect(empty.dataOffset).toBe(24);
  });

  it('keeps a leading BOM and replaces invalid UTF-8, listing the key', async () => {
    const bytes = new Raw()
      .header(0, 2)
      .str('bom')
      .i32(T.STRING)
      .str(Uint8Array.of(0xef, 0xbb, 0xbf, 0x41))
      .str('bad')
      .i32(T.ARRAY)
      .i32(T.STRING)
      .u64(2)
      .str('ok')
      .str(Uint8Array.of(0x61, 0xff, 0x62))
      .build();
    const g = await readGguf(bytesSource(bytes));
    expect(g.metadata.get('bom')).toBe('\ufeffA');
    expect(g.metadata.get('bad')).toEqual(['ok', 'a\ufffdb']);
    expect(g.invalidUtf8Keys).toEqual(['bad']);
  });

  it('reads only the header of an 8 GB file', async () => {
    const tensors = Array.from({ length: 16 }, (_, i) => ({ name: `blk.${i}.w`, type: GgmlType.F32, shape: [32768, 4096] }));
    const layout = layoutGguf({ metadata: { 'general.architecture': 'llama' }, tensors });
    expect(layout.fileSize).toBeGreaterThan(8e9);
    const source = countingSource(layout.header, layout.fileSize);
    const g = await readGguf(source, { initialReadBytes: 4096 });
    expect(g.tensors).toHaveLength(16);
    expect(g.tensors[15]!.fileOffset + g.tensors[15]!.byteSize).toBe(layout.fileSize);
    expect(source.maxEnd).toBeLessThanOrEqual(layout.header.length + 4096);
    expect(source.bytesRead).toBeLessThanOrEqual(layout.header.length + 4096);
  });

  it('reads a large real-world tokenizer (262k tokens, 280k merges, scores, types) within the metadata limit', async () => {
    const n = 262_144;
    const tokens = Array.from({ length: n }, (_, i) => `▁token${i}`);
    const merges = Array.from({ length: 280_000 }, (_, i) => `▁tok en${i}`);
    const layout = layoutGguf({
      metadata: { 'tokenizer.ggml.tokens': tokens, 'tokenizer.ggml.merges': merges, 'tokenizer.ggml.scores': new Float32Array(n), 'tokenizer.ggml.token_type': new Int32Array(n) },
      tensors: [],
    });
    const g = await readGguf(bytesSource(layout.header));
    expect((g.metadata.get('tokenizer.ggml.tokens') as string[]).length).toBe(n);
    expect((g.metadata.get('tokenizer.ggml.merges') as string[]).length).toBe(280_000);
  });

  it('reads a 300k-string array in a few large reads', async () => {
    const tokens = Array.from({ length: 300_000 }, (_, i) => `tok${i}`);
    const layout = layoutGguf({ metadata: { 'tokenizer.ggml.tokens': tokens }, tensors: [{ name: 'w', type: GgmlType.F32, shape: [1 << 20, 1024] }] });
    const source = countingSource(layout.header, layout.fileSize);
    const start = performance.now();
    const g = await readGguf(source);
    const ms = performance.now() - start;
    expect(g.metadata.get('tokenizer.ggml.tokens')).toEqual(tokens);
    expect(source.reads).toBeLessThan(12);
    expect(source.maxEnd).toBeLessThanOrEqual(layout.header.length + 4 * 1024 * 1024);
    expect(ms).toBeLessThan(3000);
  });
});

describe('readGguf rejects malformed files with GgufFormatError', () => {
  it('bad magic, and files too short for one', async () => {
    const e = await parseError(Uint8Array.from([0x47, 0x47, 0x4d, 0x4c, 3, 0, 0, 0]));
    expect(e.message).toMatch(/invalid magic 'GGML' at offset 0/);
    expect(e.detail).toMatchObject({ offset: 0, expected: "magic 'GGUF'" });
    expect((await parseError(Uint8Array.of(0x47, 0x47))).message).toMatch(/too small/);
    expect((await parseError(new Uint8Array(0))).detail.offset).toBe(0);
  });

  it('v1, unknown versions and big-endian files', async () => {
    const v = (n: number) => new Raw().header(0, 0, n).build();
    expect((await parseError(v(1))).message).toMatch(/version 1 .*v1 files are no longer supported/);
    expect((await parseError(v(4))).message).toMatch(/unsupported version 4/);
    expect((await parseError(v(0x03000000))).message).toMatch(/big-endian/);
    expect((await parseError(v(1))).detail).toMatchObject({ offset: 4, expected: 'version 2 or 3' });
  });

  it('a tensor count of 2^60 fails at once, naming the offset and the remaining bytes', async () => {
    const bytes = new Raw().header(2n ** 60n, 0).zeros(120).build();
    const e = await parseError(bytes);
    expect(e.message).toBe('GGUF: tensor count 1152921504606846976 at offset 8 exceeds what the remaining 120 bytes can hold');
    expect(e.detail).toMatchObject({ offset: 8, actual: '1152921504606846976' });
    expect(e.name).toBe('GgufFormatError');
  });

  it('negative and huge metadata counts', async () => {
    expect((await parseError(new Raw().header(0, -1n).build())).detail.offset).toBe(16);
    expect((await parseError(new Raw().header(0, 2n ** 62n).zeros(64).build())).message).toMatch(/metadata count 4611686018427387904 at offset 16 exceeds/);
    expect((await parseError(new Raw().header(-5n, 0).build())).message).toMatch(/tensor count -5/);
  });

  it('a 2^40-byte string fails without allocating it', async () => {
    const bytes = new Raw().header(0, 1).str('k').i32(T.STRING).u64(2n ** 40n).zeros(16).build();
    const e = await parseError(bytes);
    expect(e.message).toMatch(/string value of 'k' length 1099511627776 at offset 37 exceeds the remaining 16 bytes/);
    expect(e.detail.key).toBe('k');
    // A length beyond 2^53 is reported exactly too.
    const huge = new Raw().header(0, 1).str('k').i32(T.STRING).u64(2n ** 64n - 1n).build();
    expect((await parseError(huge)).message).toMatch(/length 18446744073709551615/);
  });

  it('keys: empty, too long, duplicate, invalid UTF-8', async () => {
    expect((await parseError(new Raw().header(0, 1).kvU32('', 1).build())).message).toMatch(/key 0 at offset 24 is empty/);
    const long = 'k'.repeat(100);
    expect((await parseError(new Raw().header(0, 1).kvU32(long, 1).build(), { maxKeyBytes: 64 })).message).toMatch(/exceeds the limit of 64 bytes/);
    const dup = new Raw().header(0, 2).kvU32('a', 1).kvU32('a', 2).build();
    const e = await parseError(dup);
    expect(e.message).toMatch(/duplicate key 'a' at offset 41/);
    const bad = new Raw().header(0, 1).str(Uint8Array.of(0xc0)).i32(T.UINT8).u8(1).build();
    expect((await parseError(bad)).message).toMatch(/not valid UTF-8/);
  });

  it('value types: unknown type, bad bool, arrays too long or too deep', async () => {
    const unknown = new Raw().header(0, 1).str('k').i32(13).u32(0).build();
    expect((await parseError(unknown)).message).toMatch(/key 'k' has unknown value type 13 at offset 33/);
    const bool = new Raw().header(0, 1).str('k').i32(T.BOOL).u8(2).build();
    expect((await parseError(bool)).detail).toMatchObject({ offset: 37, expected: 'bool 0 or 1', actual: 2 });
    const longArray = new Raw().header(0, 1).str('k').i32(T.ARRAY).i32(T.UINT32).u64(2n ** 40n).zeros(40).build();
    expect((await parseError(longArray)).message).toMatch(/array 'k' length 1099511627776 at offset 41 exceeds the limit/);
    const strings = new Raw().header(0, 1).str('k').i32(T.ARRAY).i32(T.STRING).u64(100).zeros(40).build();
    expect((await parseError(strings)).message).toMatch(/array 'k' length 100 .* exceeds what the remaining 40 bytes can hold/);
    const limited = new Raw().header(0, 1).str('k').i32(T.ARRAY).i32(T.UINT8).u64(10).zeros(10).build();
    expect((await parseError(limited, { maxArrayLength: 5 })).message).toMatch(/exceeds the limit of 5 elements/);
    const deep = new Raw().header(0, 1).str('k');
    deep.i32(T.ARRAY);
    for (let i = 0; i < 5; i++) deep.i32(T.ARRAY).u64(1);
    deep.i32(T.UINT8).u64(0);
    expect((await parseError(deep.build())).message).toMatch(/nests arrays deeper than 4 levels/);
    const arrayOfArrayType = new Raw().header(0, 1).str('k').i32(T.ARRAY).i32(-1).u64(0).build();
    expect((await parseError(arrayOfArrayType)).message).toMatch(/unknown value type -1/);
  });

  it('millions of empty nested arrays fail on their count, before any is decoded', async () => {
    // 2M empty u8 arrays in one key: 24 MB of file, gigabytes of JS arrays if decoded.
    const count = 2_000_000;
    const head = new Raw().header(0, 1).str('k').i32(T.ARRAY).i32(T.ARRAY).u64(count).build();
    const bytes = new Uint8Array(head.length + count * 12);
    bytes.set(head);
    const view = new DataView(bytes.buffer);
    for (let i = 0, at = head.length; i < count; i++, at += 12) view.setInt32(at, T.UINT8, true);
    const error = await parseError(bytes);
    expect(error.message).toMatch(/metadata decoded up to key 'k' at offset \d+ would take about \d+ bytes of memory, over the limit of 268435456/);
    expect(error.detail).toMatchObject({ key: 'k', expected: 'metadata that decodes to at most 268435456 bytes' });
  });

  it('bounds the decoded size of strings and arrays over all keys, with the limit as an option', async () => {
    const many = new Raw().header(0, 3);
    for (const key of ['a', 'b', 'c']) {
      many.str(key).i32(T.ARRAY).i32(T.STRING).u64(1000);
      for (let i = 0; i < 1000; i++) many.str('tok');
    }
    const file = many.build();
    await expect(readGguf(bytesSource(file))).resolves.toBeDefined();
    // 3 x 1000 strings of 3 bytes: about 3 x (256 + 1000 x 35) bytes decoded; the third key passes 80 000.
    const error = await parseError(file, { maxMetadataBytes: 80_000 });
    expect(error.detail.key).toBe('c');
  });

  it('general.alignment must be a u32 power of two', async () => {
    const notPow2 = new Raw().header(0, 1).kvU32('general.alignment', 48).build();
    expect((await parseError(notPow2)).message).toMatch(/general.alignment must be a u32 power of two, got u32 48/);
    const zero = new Raw().header(0, 1).kvU32('general.alignment', 0).build();
    expect((await parseError(zero)).detail.offset).toBe(24);
    const wrongType = new Raw().header(0, 1).str('general.alignment').i32(T.UINT64).u64(32).build();
    expect((await parseError(wrongType)).message).toMatch(/got u64 32/);
  });

  it('tensor names: too long, empty, duplicate', async () => {
    const long = withTensors((r) => r.tensor('x'.repeat(64), [32], GgmlType.F32, 0), 1, 128);
    expect((await parseError(long)).message).toMatch(/name of tensor 0 length 64 at offset 57 exceeds the limit of 63 bytes/);
    const ok = withTensors((r) => r.tensor('x'.repeat(63), [32], GgmlType.F32, 0), 1, 128);
    expect((await readGguf(bytesSource(ok))).tensors[0]!.name).toHaveLength(63);
    const empty = withTensors((r) => r.tensor('', [32], GgmlType.F32, 0), 1, 128);
    expect((await parseError(empty)).message).toMatch(/empty name/);
    const dup = withTensors((r) => r.tensor('a', [8], GgmlType.F32, 0).tensor('a', [8], GgmlType.F32, 32), 2, 64);
    expect((await parseError(dup)).message).toMatch(/duplicate tensor name 'a'/);
  });

  it('tensor shapes: dimension counts, zero or negative dims, 2^53 elements, block multiples', async () => {
    const one = (shape: Array<number | bigint>, type: number = GgmlType.F32, offset = 0) =>
      withTensors((r) => r.tensor('w', shape, type, offset), 1, 256);
    expect((await parseError(one([]))).message).toMatch(/tensor 'w' has 0 dimensions/);
    expect((await parseError(one([1, 1, 1, 1, 1]))).detail).toMatchObject({ expected: '1..4 dimensions', actual: 5 });
    expect((await parseError(one([4, 0]))).message).toMatch(/dimension 1 is 0/);
    expect((await parseError(one([-4n]))).message).toMatch(/dimension 0 is -4/);
    expect((await parseError(one([2n ** 30n, 2n ** 30n, 2n ** 30n]))).message).toMatch(/more than 2\^53 elements/);
    expect((await parseError(one([32], 4))).message).toMatch(/unknown or removed ggml type 4/);
    expect((await parseError(one([32], 99))).detail).toMatchObject({ actual: 99, tensor: 'w' });
    expect((await parseError(one([100, 2], GgmlType.Q4_K))).message).toMatch(/Q4_K has rows of 100 elements, not a multiple of the block size 256/);
  });

  it('tensor data: unaligned, past the end of the file, overlapping', async () => {
    const unaligned = withTensors((r) => r.tensor('w', [8], GgmlType.F32, 16), 1, 64);
    expect((await parseError(unaligned)).message).toMatch(/data offset 16 .* is not a multiple of the alignment 32/);
    const past = withTensors((r) => r.tensor('w', [64], GgmlType.F32, 0), 1, 255);
    const e = await parseError(past);
    expect(e.message).toMatch(/tensor 'w' data \[\d+, \d+\) extends past the end of the \d+-byte file/);
    expect(e.detail.tensor).toBe('w');
    const farOffset = withTensors((r) => r.tensor('w', [8], GgmlType.F32, 2n ** 62n), 1, 64);
    expect((await parseError(farOffset)).message).toMatch(/past the end/);
    const overlap = withTensors((r) => r.tensor('a', [16], GgmlType.F32, 0).tensor('b', [8], GgmlType.F32, 32), 2, 128);
    expect((await parseError(overlap)).message).toMatch(/tensor 'b' data at 32 overlaps tensor 'a' \[0, 64\)/);
    // Out-of-order but disjoint tensors are fine.
    const reordered = withTensors((r) => r.tensor('a', [8], GgmlType.F32, 32).tensor('b', [8], GgmlType.F32, 0), 2, 64);
    expect((await readGguf(bytesSource(reordered))).tensors.map((t) => t.offset)).toEqual([32, 0]);
  });

  it('a header beyond maxHeaderBytes', async () => {
    const bytes = new Raw().header(0, 1).str('k').i32(T.STRING).str('x'.repeat(1000)).build();
    const e = await parseError(bytes, { maxHeaderBytes: 512 });
    expect(e.message).toMatch(/header limit/);
  });

  it('names the source in messages', async () => {
    await expect(readGguf(bytesSource(Uint8Array.of(1, 2, 3, 4, 5), 'model.gguf'))).rejects.toThrow(/\(model\.gguf\)$/);
  });
});

describe('typed metadata getters', () => {
  it('return typed values and throw GgufMetadataError on wrong or missing keys', async () => {
    const g = await readGguf(bytesSource(featureFile().bytes));
    expect(getString(g, 'general.architecture')).toBe('llama');
    expect(archKey(g, 'context_length')).toBe('llama.context_length');
    expect(getNumber(g, 't.f32')).toBe(0.5);
    expect(getInteger(g, 't.i16')).toBe(-32000);
    expect(getBoolean(g, 't.bool')).toBe(true);
    expect(getStringArray(g, 'a.str')).toEqual(['a', '', 'Ω', '<0x0A>']);
    expect(getNumericArray(g, 'a.i32')).toEqual(Int32Array.of(-5, 3, 0));
    expect(getNumbers(g, 'a.i32')).toEqual([-5, 3, 0]);
    expect(() => getNumbers(g, 'a.u64')).toThrow(/too large/);
    expect(findString(g, 'nope')).toBeUndefined();
    expect(findNumber(g, 'nope')).toBeUndefined();
    expect(() => getString(g, 'nope')).toThrow(GgufMetadataError);
    expect(() => getString(g, 'nope')).toThrow("GGUF metadata: required key 'nope' is missing");
    expect(() => getString(g, 't.u32')).toThrow("GGUF metadata: key 't.u32' is u32, expected a string");
    expect(() => getNumber(g, 't.u64')).toThrow(/too large for a number/);
    expect(() => getInteger(g, 't.f32')).toThrow(/expected an integer/);
    expect(() => getStringArray(g, 'a.i32')).toThrow("GGUF metadata: key 'a.i32' is array of i32, expected an array of str");
    expect(() => getNumericArray(g, 'a.str')).toThrow(GgufMetadataError);
  });
});
