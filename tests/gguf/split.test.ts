import { describe, expect, it } from 'vitest';
import { GgmlType } from '../../src/engine/gguf/ggml-types.ts';
import { GgufFormatError } from '../../src/engine/gguf/errors.ts';
import { bytesSource, type RangedSource } from '../../src/engine/gguf/source.ts';
import { expandSplitUrls, openGgufModel, splitFileNames, splitPartName } from '../../src/engine/gguf/split.ts';
import { GgufValueType } from '../../src/engine/gguf/types.ts';
import { writeGguf } from '../../src/engine/gguf/writer.ts';

const T = GgufValueType;

/** Part `no` of a split model; tensor data bytes are the part number, so the source is checkable. */
function part(no: number, count: number, tensorNames: string[], totalTensors?: number, extra: Record<string, string> = {}): RangedSource {
  const metadata: Record<string, string | number> = { ...(no === 0 ? { 'general.architecture': 'llama' } : {}), ...extra };
  metadata['split.no'] = no;
  metadata['split.count'] = count;
  if (totalTensors !== undefined) metadata['split.tensors.count'] = totalTensors;
  const bytes = writeGguf({
    metadata,
    metadataTypes: { 'split.no': T.UINT16, 'split.count': T.UINT16, 'split.tensors.count': T.INT32 },
    tensors: tensorNames.map((name) => ({ name, type: GgmlType.F32, shape: [4], data: new Uint8Array(16).fill(no + 1) })),
  });
  return bytesSource(bytes, splitPartName('model', no, count));
}

describe('split models', () => {
  it('derives part names like llama.cpp', () => {
    expect(splitPartName('dir/qwen', 0, 3)).toBe('dir/qwen-00001-of-00003.gguf');
    expect(splitFileNames('https://h/x/m-Q4_K-00002-of-00003.gguf')).toEqual([
      'https://h/x/m-Q4_K-00001-of-00003.gguf',
      'https://h/x/m-Q4_K-00002-of-00003.gguf',
      'https://h/x/m-Q4_K-00003-of-00003.gguf',
    ]);
    expect(splitFileNames('model.gguf')).toBeUndefined();
    expect(splitFileNames('m-00004-of-00003.gguf')).toBeUndefined();
    expect(splitFileNames('m-00000-of-00003.gguf')).toBeUndefined();
  });

  it('expands one part\'s URL to all parts, keeping its query, and leaves other lists alone', () => {
    expect(expandSplitUrls(['https://h/x/m-00002-of-00003.gguf?download=true#f'])).toEqual([
      'https://h/x/m-00001-of-00003.gguf?download=true#f',
      'https://h/x/m-00002-of-00003.gguf?download=true#f',
      'https://h/x/m-00003-of-00003.gguf?download=true#f',
    ]);
    expect(expandSplitUrls(['https://h/x/m-00001-of-00002.gguf'])).toEqual(['https://h/x/m-00001-of-00002.gguf', 'https://h/x/m-00002-of-00002.gguf']);
    expect(expandSplitUrls(['https://h/x/m-00001-of-00001.gguf'])).toEqual(['https://h/x/m-00001-of-00001.gguf']);
    expect(expandSplitUrls(['https://h/x/model.gguf?x=m-00001-of-00002.gguf'])).toEqual(['https://h/x/model.gguf?x=m-00001-of-00002.gguf']);
    expect(expandSplitUrls(['a/m-00001-of-00002.gguf', 'b/m-00002-of-00002.gguf'])).toEqual(['a/m-00001-of-00002.gguf', 'b/m-00002-of-00002.gguf']);
    expect(expandSplitUrls([])).toEqual([]);
  });

  it('presents all parts as one model, in split order, with each tensor on its own source', async () => {
    const parts = [part(0, 3, ['a', 'b'], 5), part(1, 3, ['c']), part(2, 3, ['d', 'e'])];
    const model = await openGgufModel([parts[2]!, parts[0]!, parts[1]!]);
    expect(model.metadata.get('general.architecture')).toBe('llama');
    expect(model.tensors.map((t) => [t.name, t.part])).toEqual([
      ['a', 0],
      ['b', 0],
      ['c', 1],
      ['d', 2],
      ['e', 2],
    ]);
    expect(model.sources).toEqual(parts);
    for (const t of model.tensors) {
      const bytes = await t.source.read(t.fileOffset, t.byteSize);
      expect(bytes.every((b) => b === t.part + 1)).toBe(true);
    }
    expect(model.tensorsByName.get('d')!.source).toBe(parts[2]);
    expect(model.fileSize).toBe(parts.reduce((n, p) => n + p.size, 0));
  });

  it('opens a plain file as a one-part model', async () => {
    const bytes = writeGguf({ metadata: { x: 1 }, tensors: [{ name: 'w', type: GgmlType.F32, shape: [1], data: new Uint8Array(4) }] });
    const model = await openGgufModel([bytesSource(bytes)]);
    expect(model.parts).toHaveLength(1);
    expect(model.tensors[0]!.part).toBe(0);
  });

  it('rejects missing, repeated, foreign and inconsistent parts', async () => {
    const fails = async (sources: RangedSource[], message: RegExp) => {
      const error = await openGgufModel(sources).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(GgufFormatError);
      expect((error as Error).message).toMatch(message);
    };
    await fails([part(0, 3, ['a'], 3), part(1, 3, ['b'])], /says the model has 3 parts, but 2 were given/);
    await fails([part(0, 2, ['a'], 2), part(0, 2, ['b'])], /part 0 given twice/);
    await fails([part(0, 2, ['a'], 3), part(1, 2, ['b'])], /hold 2 tensors but split.tensors.count is 3/);
    await fails([part(0, 2, ['a'], 2), part(1, 2, ['a'])], /tensor 'a' appears in more than one part/);
    await fails([part(0, 2, ['a']), part(1, 2, ['b'])], /first part has no split.tensors.count/);
    const plain = bytesSource(writeGguf({ metadata: { x: 1 } }), 'plain.gguf');
    await fails([part(0, 2, ['a'], 1), plain], /plain.gguf is not part of a split model/);
    await fails([part(0, 2, ['a'], 1)], /says the model has 2 parts, but 1 were given/);
  });
});
