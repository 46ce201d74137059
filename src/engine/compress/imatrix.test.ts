/**
 * Reading llama-imatrix's files: the GGUF format (in_sum2 / counts per expert, with its three
 * metadata keys) and the legacy .dat, into the weights llama-quantize passes on.
 */
import { describe, expect, it } from 'vitest';
import { GgmlType } from '../gguf/ggml-types.ts';
import { bytesSource } from '../gguf/source.ts';
import { writeGguf } from '../gguf/writer.ts';
import { ImatrixFormatError } from './errors.ts';
import { readImatrix } from './imatrix.ts';

const f32 = (v: number[]) => new Uint8Array(new Float32Array(v).buffer);

function ggufImatrix(keys = true, counts: number[] = [4, 0]): Uint8Array {
  return writeGguf({
    metadata: keys ? { 'general.type': 'imatrix', 'imatrix.datasets': ['wiki.txt'], 'imatrix.chunk_count': 2, 'imatrix.chunk_size': 512 } : { 'general.type': 'imatrix' },
    tensors: [
      // Two experts of ne0 = 3: the second saw no token, so its weights are 1.
      { name: 'blk.0.ffn_down_exps.weight.in_sum2', type: GgmlType.F32, shape: [3, 2], data: f32([2, 4, 6, 8, 8, 8]) },
      { name: 'blk.0.ffn_down_exps.weight.counts', type: GgmlType.F32, shape: [1, 2], data: f32(counts) },
    ],
  });
}

describe('readImatrix', () => {
  it('GGUF: sums divided by the rounded count per expert, 1 where the count is 0', async () => {
    const m = await readImatrix(bytesSource(ggufImatrix()));
    expect([...m.keys()]).toEqual(['blk.0.ffn_down_exps.weight']);
    expect([...m.get('blk.0.ffn_down_exps.weight')!]).toEqual([0.5, 1, 1.5, 1, 1, 1]);
    const rounded = await readImatrix(bytesSource(ggufImatrix(true, [3.6, 1])));
    expect(Array.from(rounded.get('blk.0.ffn_down_exps.weight')!.subarray(0, 3))).toEqual([0.5, 1, 1.5]);
  });

  it('GGUF without the imatrix keys is rejected, as llama-quantize does', async () => {
    await expect(readImatrix(bytesSource(ggufImatrix(false)))).rejects.toBeInstanceOf(ImatrixFormatError);
  });

  it('legacy .dat: values divided by ncall; trailing chunk count and dataset allowed', async () => {
    const parts: number[] = [];
    const i32 = (v: number) => parts.push(...new Uint8Array(new Int32Array([v]).buffer));
    const str = (s: string) => {
      const b = new TextEncoder().encode(s);
      i32(b.length);
      parts.push(...b);
    };
    i32(2);
    str('blk.0.attn_q.weight');
    i32(4); // ncall
    i32(2);
    parts.push(...f32([8, 2]));
    str('output.weight');
    i32(0);
    i32(1);
    parts.push(...f32([3]));
    i32(10);
    str('calibration.txt');
    const m = await readImatrix(bytesSource(new Uint8Array(parts)));
    expect([...m.get('blk.0.attn_q.weight')!]).toEqual([2, 0.5]);
    expect([...m.get('output.weight')!]).toEqual([3]);
  });

  it('a truncated legacy file is a named error', async () => {
    await expect(readImatrix(bytesSource(new Uint8Array([1, 0, 0, 0, 50, 0, 0, 0, 65])))).rejects.toBeInstanceOf(ImatrixFormatError);
  });
});
