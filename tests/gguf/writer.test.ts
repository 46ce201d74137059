import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GgmlType } from '../../src/engine/gguf/ggml-types.ts';
import { readGguf } from '../../src/engine/gguf/reader.ts';
import { bytesSource } from '../../src/engine/gguf/source.ts';
import { GgufValueType } from '../../src/engine/gguf/types.ts';
import { ggufChunks, inferGgufType, layoutGguf, writeGguf } from '../../src/engine/gguf/writer.ts';
import { writeGgufFile } from '../../src/node/gguf-file.ts';
import { featureFile } from './fixtures.ts';

const T = GgufValueType;
const dir = mkdtempSync(join(tmpdir(), 'hearth-writer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function concat(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c.slice());
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe('writeGguf', () => {
  it('read -> write with the stored types gives back the same bytes', async () => {
    const f = featureFile();
    const g = await readGguf(bytesSource(f.bytes));
    const again = writeGguf({
      metadata: g.metadata,
      metadataTypes: g.metadataTypes,
      tensors: g.tensors.map((t) => ({ ...t, data: f.bytes.subarray(t.fileOffset, t.fileOffset + t.byteSize) })),
    });
    expect(again).toEqual(f.bytes);
  });

  it('infers sensible types when none are given', async () => {
    const bytes = writeGguf({
      metadata: {
        u32: 7,
        i32: -7,
        f32: 0.25,
        big: 2 ** 40,
        u64: 5n,
        i64: -5n,
        flag: false,
        s: 'x',
        ints: [1, -2, 3],
        floats: [0.5, 2],
        wide: [1, 2 ** 40],
        strs: ['a', 'b'],
        bools: [true],
        empty: [],
        typed: Float64Array.of(1.5),
        nested: [[1, 2], ['a']],
      },
    });
    const g = await readGguf(bytesSource(bytes));
    const types = Object.fromEntries([...g.metadataTypes].map(([k, t]) => [k, t.type === T.ARRAY ? `arr:${t.elementType}` : t.type]));
    expect(types).toEqual({
      u32: T.UINT32,
      i32: T.INT32,
      f32: T.FLOAT32,
      big: T.UINT64,
      u64: T.UINT64,
      i64: T.INT64,
      flag: T.BOOL,
      s: T.STRING,
      ints: `arr:${T.INT32}`,
      floats: `arr:${T.FLOAT32}`,
      wide: `arr:${T.INT64}`,
      strs: `arr:${T.STRING}`,
      bools: `arr:${T.BOOL}`,
      empty: `arr:${T.STRING}`,
      typed: `arr:${T.FLOAT64}`,
      nested: `arr:${T.ARRAY}`,
    });
    expect(g.metadata.get('big')).toBe(2n ** 40n);
    expect(g.metadata.get('ints')).toEqual(Int32Array.of(1, -2, 3));
    expect(g.metadata.get('wide')).toEqual(BigInt64Array.of(1n, 2n ** 40n));
    expect(g.metadata.get('nested')).toEqual([Int32Array.of(1, 2), ['a']]);
    expect(inferGgufType(0.5)).toEqual({ type: T.FLOAT32 });
  });

  it('converts to declared types and rejects values that do not fit them', async () => {
    const bytes = writeGguf({
      metadata: { a: [1, 2, 255], b: 3, c: 9 },
      metadataTypes: { a: { type: T.ARRAY, elementType: T.UINT8 }, b: T.UINT16, c: { type: T.INT64 } },
    });
    const g = await readGguf(bytesSource(bytes));
    expect(g.metadata.get('a')).toEqual(Uint8Array.of(1, 2, 255));
    expect(g.metadataTypes.get('b')).toEqual({ type: T.UINT16 });
    expect(g.metadata.get('c')).toBe(9n);
    expect(() => writeGguf({ metadata: { a: 300 }, metadataTypes: { a: T.UINT8 } })).toThrow(/300 \(number\) is not a valid u8/);
    expect(() => writeGguf({ metadata: { a: 1.5 }, metadataTypes: { a: T.INT32 } })).toThrow(TypeError);
    expect(() => writeGguf({ metadata: { a: 'x' }, metadataTypes: { a: T.UINT32 } })).toThrow(TypeError);
    expect(() => writeGguf({ metadata: { a: -1n }, metadataTypes: { a: T.UINT64 } })).toThrow(TypeError);
    expect(() => writeGguf({ metadata: { a: [1, 'x'] as unknown as number[] } })).toThrow(/mixes number and string/);
    expect(() => writeGguf({ metadata: { 'general.alignment': 48 } })).toThrow(/power of two/);
    expect(() => writeGguf({ metadata: { 'general.alignment': 64 }, metadataTypes: { 'general.alignment': T.UINT64 } })).toThrow(/u32/);
  });

  it('lays tensors out contiguously, each padded to the alignment', async () => {
    const layout = layoutGguf({
      metadata: { 'general.alignment': 64 },
      tensors: [
        { name: 'a', type: GgmlType.F32, shape: [3] },
        { name: 'b', type: GgmlType.Q8_0, shape: [32, 3] },
        { name: 'c', type: GgmlType.F16, shape: [1] },
      ],
    });
    expect(layout.dataOffset % 64).toBe(0);
    expect(layout.header.length).toBe(layout.dataOffset);
    expect(layout.tensors.map((t) => [t.offset, t.byteSize])).toEqual([
      [0, 12],
      [64, 102],
      [192, 2],
    ]);
    expect(layout.fileSize).toBe(layout.dataOffset + 256);
  });

  it('rejects invalid tensors', () => {
    const one = (t: { name: string; type: GgmlType; shape: number[] }, data = new Uint8Array(4)) => () =>
      writeGguf({ metadata: {}, tensors: [{ ...t, data }] });
    expect(one({ name: 'x'.repeat(64), type: GgmlType.F32, shape: [1] })).toThrow(/1\.\.63 bytes/);
    expect(one({ name: '', type: GgmlType.F32, shape: [1] })).toThrow(RangeError);
    expect(one({ name: 'a', type: 4 as GgmlType, shape: [1] })).toThrow(/unknown ggml type 4/);
    expect(one({ name: 'a', type: GgmlType.F32, shape: [1, 0] })).toThrow(/positive integers/);
    expect(one({ name: 'a', type: GgmlType.F32, shape: [1, 1, 1, 1, 1] })).toThrow(/1\.\.4/);
    expect(one({ name: 'a', type: GgmlType.Q4_K, shape: [128] })).toThrow(/not a multiple of 256/);
    expect(one({ name: 'a', type: GgmlType.F32, shape: [2] })).toThrow(/needs 8 bytes of data, got 4/);
    const dup = { name: 'a', type: GgmlType.F32, shape: [1], data: new Uint8Array(4) };
    expect(() => writeGguf({ metadata: {}, tensors: [dup, dup] })).toThrow(/duplicate tensor name 'a'/);
  });

  it('streams the same bytes as writeGguf, to memory and to a file', async () => {
    const f = featureFile();
    const spec = { metadata: f.metadata, metadataTypes: f.metadataTypes, tensors: f.tensors };
    const layout = layoutGguf(spec);
    const provided: number[] = [];
    const streamed = await concat(
      ggufChunks(layout, (_t, i) => {
        provided.push(i);
        return f.tensors[i]!.data;
      }),
    );
    expect(streamed).toEqual(f.bytes);
    expect(provided).toEqual([0, 1, 2, 3, 4]);

    const path = join(dir, 'out.gguf');
    const written = await writeGgufFile(path, spec, async (_t, i) => f.tensors[i]!.data);
    expect(written.fileSize).toBe(f.bytes.length);
    expect(new Uint8Array(readFileSync(path))).toEqual(f.bytes);

    const bad = join(dir, 'bad.gguf');
    await expect(writeGgufFile(bad, spec, () => new Uint8Array(3))).rejects.toThrow(/needs \d+ bytes of data, got 3/);
    expect(existsSync(bad)).toBe(false);
    expect(existsSync(`${bad}.partial`)).toBe(false);
  });
});
