/**
 * Our reader and writer against llama.cpp's own GGUF reader (gguf_init_from_file through
 * tools/llama-ref): every ggml-vocab-*.gguf in llama.cpp's tree parses to exactly what llama.cpp
 * reads and writes back byte for byte, and files we write read back identically in llama.cpp.
 */
import { readFileSync, readdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ggmlTypeInfo, ggmlTypeName } from '../../src/engine/gguf/ggml-types.ts';
import { readGguf } from '../../src/engine/gguf/reader.ts';
import { bytesSource } from '../../src/engine/gguf/source.ts';
import { GgufValueType, ggufValueTypeName, type GgufFile, type GgufValue } from '../../src/engine/gguf/types.ts';
import { writeGguf } from '../../src/engine/gguf/writer.ts';
import { nodeFileSource } from '../../src/node/file-source.ts';
import { llamaCppSourceDir, llamaRefMeta, llamaRefTypes, type LlamaRefMeta, type LlamaRefScalar } from '../../src/testing/llama-ref.ts';
import { featureFile } from './fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hearth-compat-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** One scalar of ours against llama-ref's JSON form of it; returns a mismatch description or ''. */
function scalarMismatch(ours: unknown, ref: LlamaRefScalar, type: GgufValueType): string {
  if (typeof ref === 'object') {
    // llama-ref gives raw bytes for strings that are not valid UTF-8 or contain NUL.
    const text = utf8.decode(Buffer.from(ref.bytesBase64, 'base64'));
    return typeof ours === 'string' && ours.split('\0')[0] === text ? '' : `${JSON.stringify(ours)} vs bytes ${JSON.stringify(text)}`;
  }
  if (type === GgufValueType.FLOAT32 || type === GgufValueType.FLOAT64) {
    const r = typeof ref === 'string' ? Number(ref) : (ref as number);
    const same = Number.isNaN(r) ? Number.isNaN(ours as number) : (type === GgufValueType.FLOAT32 ? Math.fround(r) : r) === ours;
    return same ? '' : `${String(ours)} vs ${String(ref)}`;
  }
  if (typeof ours === 'bigint') return BigInt(ref as number | string) === ours ? '' : `${ours} vs ${String(ref)}`;
  return ours === ref ? '' : `${JSON.stringify(ours)} vs ${JSON.stringify(ref)}`;
}

/** Asserts that our parse equals llama.cpp's: keys, types, every value, tensor infos, layout. */
function expectSameAsLlama(ours: GgufFile, ref: LlamaRefMeta, label: string): void {
  expect(ours.version, label).toBe(ref.version);
  expect(ours.alignment, label).toBe(ref.alignment);
  expect(ours.dataOffset, label).toBe(ref.dataOffset);
  expect([...ours.metadata.keys()], label).toEqual(ref.kv.map((kv) => kv.key));
  for (const kv of ref.kv) {
    const type = ours.metadataTypes.get(kv.key)!;
    const where = `${label}: ${kv.key}`;
    expect(ggufValueTypeName(type.type), where).toBe(kv.type);
    const value = ours.metadata.get(kv.key) as GgufValue;
    if (kv.type !== 'arr') {
      expect(scalarMismatch(value, kv.value as LlamaRefScalar, type.type), where).toBe('');
      continue;
    }
    expect(ggufValueTypeName(type.elementType!), where).toBe(kv.arrayType);
    const refArray = kv.value as LlamaRefScalar[];
    const ourArray = value as ArrayLike<unknown>;
    expect(ourArray.length, where).toBe(refArray.length);
    for (let i = 0; i < refArray.length; i++) {
      const mismatch = scalarMismatch(ourArray[i], refArray[i]!, type.elementType!);
      if (mismatch) expect.fail(`${where}[${i}]: ${mismatch}`);
    }
  }
  expect(
    ours.tensors.map((t) => ({
      name: t.name,
      type: ggmlTypeName(t.type).toLowerCase(),
      typeId: t.type,
      ne: [...t.shape, 1, 1, 1].slice(0, 4),
      offset: t.offset,
      size: t.byteSize,
    })),
    label,
  ).toEqual(ref.tensors.map((t) => ({ name: t.name, type: t.type.toLowerCase(), typeId: t.typeId, ne: t.ne, offset: t.offset, size: t.size })));
}

const modelsDir = join(llamaCppSourceDir(), 'models');
const vocabFiles = readdirSync(modelsDir)
  .filter((f) => /^ggml-vocab-.*\.gguf$/.test(f))
  .sort();

describe('GGUF compatibility with llama.cpp', () => {
  it('the reader knows exactly the tensor types and block geometry of this llama.cpp', () => {
    const ref = llamaRefTypes();
    expect(ref.length).toBeGreaterThan(30);
    for (const t of ref) {
      expect(ggmlTypeInfo(t.id), t.name).toMatchObject({ blockSize: t.blockSize, typeSize: t.typeSize, name: t.name.toUpperCase() });
    }
    // Ids llama.cpp no longer has (removed types) are unknown to the reader too.
    const known = new Set(ref.map((t) => t.id));
    for (let id = 0; id < 64; id++) if (!known.has(id)) expect(ggmlTypeInfo(id), `id ${id}`).toBeUndefined();
  });

  it('finds llama.cpp vocab files to test with', () => {
    expect(vocabFiles.length).toBeGreaterThanOrEqual(15);
  });

  it.each(vocabFiles)('%s: parses like llama.cpp and writes back byte for byte', { timeout: 60_000 }, async (name) => {
    const path = join(modelsDir, name);
    const source = await nodeFileSource(path);
    let ours: GgufFile;
    try {
      ours = await readGguf(source);
    } finally {
      await source.close();
    }
    expect(ours.invalidUtf8Keys).toEqual([]);
    expectSameAsLlama(ours, llamaRefMeta(path), name);

    const written = writeGguf({ metadata: ours.metadata, metadataTypes: ours.metadataTypes, version: ours.version });
    const original = new Uint8Array(readFileSync(path));
    expect(written.length).toBe(original.length);
    expect(Buffer.compare(written, original)).toBe(0);
  });

  it('llama.cpp reads files we write (every scalar and array type, tensors of five types) identically', { timeout: 60_000 }, async () => {
    const f = featureFile();
    // llama.cpp does not accept arrays of arrays (gguf.cpp: "invalid GGUF type"), so leave them out.
    f.metadata.delete('a.nested');
    f.metadataTypes.delete('a.nested');
    const bytes = writeGguf({ metadata: f.metadata, metadataTypes: f.metadataTypes, tensors: f.tensors });
    const path = join(tmp, 'written.gguf');
    writeFileSync(path, bytes);
    const ours = await readGguf(bytesSource(bytes));
    expect(ours.tensors).toHaveLength(5);
    expectSameAsLlama(ours, llamaRefMeta(path), 'written.gguf');
  });

  it('llama.cpp rejects nested arrays, which GGUF allows and we read', async () => {
    const path = join(tmp, 'nested.gguf');
    writeFileSync(path, featureFile().bytes);
    expect(() => llamaRefMeta(path)).toThrow(/invalid GGUF type/);
  });
});
