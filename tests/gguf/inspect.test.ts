import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GgmlType } from '../../src/engine/gguf/ggml-types.ts';
import { ggufMetadataToJson } from '../../src/engine/gguf/json.ts';
import { readGguf } from '../../src/engine/gguf/reader.ts';
import { GgufValueType } from '../../src/engine/gguf/types.ts';
import { writeGguf } from '../../src/engine/gguf/writer.ts';
import { nodeFileSource } from '../../src/node/file-source.ts';
import { splitPartName } from '../../src/engine/gguf/split.ts';
import { llamaCppSourceDir } from '../../src/testing/llama-ref.ts';
import { featureFile } from './fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hearth-inspect-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function hearth(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/hearth.js', ...args], { encoding: 'utf8', timeout: 60_000, maxBuffer: 256 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('hearth inspect', () => {
  it('--json on a vocab file gives version, architecture, full metadata and tensors', { timeout: 60_000 }, async () => {
    const path = join(llamaCppSourceDir(), 'models', 'ggml-vocab-llama-spm.gguf');
    const r = hearth('inspect', path, '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(Object.keys(json)).toEqual(['version', 'architecture', 'metadata', 'tensors']);
    expect(json.version).toBe(3);
    expect(json.architecture).toBe('llama');
    expect(json.tensors).toEqual([]);
    const source = await nodeFileSource(path);
    const g = await readGguf(source).finally(() => source.close());
    expect(json.metadata).toEqual(ggufMetadataToJson(g.metadata, g.metadataTypes));
    expect(json.metadata['tokenizer.ggml.tokens']).toHaveLength(32000);
    expect(json.metadata['tokenizer.ggml.tokens'][3]).toBe('<0x00>');
    expect(json.metadata['llama.attention.layer_norm_rms_epsilon']).toBe(0.00001);
  });

  it('human output and --json on a file with tensors, big integers and non-finite floats', { timeout: 60_000 }, () => {
    const path = join(tmp, 'features.gguf');
    writeFileSync(path, featureFile().bytes);
    const json = JSON.parse(hearth('inspect', path, '--json').stdout);
    expect(json.metadata['t.u64']).toBe('18446744073709551615');
    expect(json.metadata['a.u64']).toEqual([1, '18446744073709551615']);
    expect(json.metadata['a.f32']).toEqual([1.5, 0, 'Infinity']);
    expect(json.metadata['a.nested']).toEqual([[1, 2], ['x', 'y'], [[true], []]]);
    expect(json.tensors[2]).toEqual({ name: 'blk.0.ffn_down.weight', type: 'Q4_K', shape: [256, 1], offset: 320 });
    expect(json.tensors.map((t: { type: string }) => t.type)).toEqual(['F32', 'Q8_0', 'Q4_K', 'F16', 'I32']);

    const r = hearth('inspect', path);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/architecture:\s+llama/);
    expect(r.stdout).toMatch(/parameters:\s+425 \(425\) in 5 tensors, 420 B/);
    expect(r.stdout).toMatch(/chat template:\s+absent/);
    expect(r.stdout).toMatch(/quantization mix:\n/);
    expect(r.stdout).toMatch(/\n {2}Q4_K\s+1 tensors\s+144 B/);
    expect(r.stdout).toMatch(/\n {2}blk\.0\.attn_q\.weight\s+Q8_0\s+\[64, 2\]\s+128\s+136 B/);
  });

  it('opens every part of a split model from the first part', { timeout: 60_000 }, () => {
    const types = { 'split.no': GgufValueType.UINT16, 'split.count': GgufValueType.UINT16, 'split.tensors.count': GgufValueType.INT32 };
    for (let no = 0; no < 2; no++) {
      const bytes = writeGguf({
        metadata: { ...(no === 0 ? { 'general.architecture': 'qwen2', 'split.tensors.count': 2 } : {}), 'split.no': no, 'split.count': 2 },
        metadataTypes: types,
        tensors: [{ name: `t${no}`, type: GgmlType.F32, shape: [4], data: new Uint8Array(16) }],
      });
      writeFileSync(join(tmp, splitPartName('m', no, 2)), bytes);
    }
    const json = JSON.parse(hearth('inspect', join(tmp, 'm-00001-of-00002.gguf'), '--json').stdout);
    expect(json.architecture).toBe('qwen2');
    expect(json.tensors.map((t: { name: string }) => t.name)).toEqual(['t0', 't1']);
  });

  it('reports a malformed file with exit code 1 and usage errors with 2', { timeout: 60_000 }, () => {
    const path = join(tmp, 'bad.gguf');
    writeFileSync(path, new Uint8Array([0x47, 0x47, 0x55, 0x46, 1, 0, 0, 0]));
    const r = hearth('inspect', path);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/GgufFormatError: GGUF: unsupported version 1 at offset 4/);
    expect(hearth('inspect').status).toBe(2);
    expect(hearth('inspect', path, '--bogus').status).toBe(2);
  });
});
