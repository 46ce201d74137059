import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GgufSourceError } from '../../src/engine/gguf/errors.ts';
import { readGguf } from '../../src/engine/gguf/reader.ts';
import { blobSource, bytesSource, httpRangeSource } from '../../src/engine/gguf/source.ts';
import { nodeFileSource } from '../../src/node/file-source.ts';
import { featureFile } from './fixtures.ts';

const file = new Uint8Array(featureFile().bytes);
const dir = mkdtempSync(join(tmpdir(), 'hearth-source-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A fake server over `bytes`: honours Range unless told to misbehave; records requests. */
function fakeFetch(bytes: Uint8Array, behaviour: 'ok' | 'ignore-range' | 'wrong-range' | 'no-total' | 'short' = 'ok') {
  const requests: string[] = [];
  const impl = async (_url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const range = new Headers(init?.headers).get('Range') ?? '';
    requests.push(range);
    const m = /^bytes=(\d+)-(\d+)$/.exec(range);
    if (!m || behaviour === 'ignore-range') return new Response(bytes.slice(), { status: 200 });
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), bytes.length - 1);
    const shownStart = behaviour === 'wrong-range' ? start + 1 : start;
    const total = behaviour === 'no-total' ? '*' : String(bytes.length);
    const body = bytes.slice(start, behaviour === 'short' ? end : end + 1);
    return new Response(body, { status: 206, headers: { 'Content-Range': `bytes ${shownStart}-${end}/${total}` } });
  };
  return { fetch: impl as typeof fetch, requests };
}

describe('sources', () => {
  it('bytesSource, blobSource and nodeFileSource read the same bytes and check ranges', async () => {
    const path = join(dir, 'model.gguf');
    writeFileSync(path, file);
    const node = await nodeFileSource(path);
    try {
      const sources = [bytesSource(file), blobSource(new Blob([file])), blobSource(new File([file], 'x.gguf')), node];
      expect(sources[2]!.name).toBe('x.gguf');
      expect(node.name).toBe('model.gguf');
      for (const s of sources) {
        expect(s.size).toBe(file.length);
        expect(await s.read(5, 17)).toEqual(file.slice(5, 22));
        expect(await s.read(file.length, 0)).toEqual(new Uint8Array(0));
        await expect(s.read(file.length - 2, 3)).rejects.toThrow(GgufSourceError);
        await expect(s.read(-1, 3)).rejects.toThrow(GgufSourceError);
        expect((await readGguf(s)).tensors).toHaveLength(5);
      }
    } finally {
      await node.close();
    }
  });

  it('nodeFileSource reports a file that shrank as a short read', async () => {
    const path = join(dir, 'shrinks.gguf');
    writeFileSync(path, file);
    const s = await nodeFileSource(path);
    try {
      writeFileSync(path, file.subarray(0, 100));
      await expect(s.read(90, 20)).rejects.toThrow(/short read .* 10 of 20 bytes at offset 90/);
    } finally {
      await s.close();
    }
  });

  it('httpRangeSource learns the size, sends exact Range requests and parses a model', async () => {
    const server = fakeFetch(file);
    const s = await httpRangeSource('https://example.test/m.gguf', undefined, { fetch: server.fetch });
    expect(s.size).toBe(file.length);
    expect(server.requests).toEqual(['bytes=0-0']);
    expect(await s.read(10, 6)).toEqual(file.slice(10, 16));
    expect(server.requests[1]).toBe('bytes=10-15');
    const g = await readGguf(s);
    expect(g.metadata.get('general.architecture')).toBe('llama');
    // One window covers this small header.
    expect(server.requests).toHaveLength(3);
  });

  it('httpRangeSource rejects servers that ignore Range, answer the wrong range, or change size', async () => {
    const url = 'https://example.test/m.gguf';
    await expect(httpRangeSource(url, undefined, { fetch: fakeFetch(file, 'ignore-range').fetch })).rejects.toThrow(
      /expected 206 Partial Content .* got 200 .*does not support Range requests/,
    );
    const wrong = await httpRangeSource(url, file.length, { fetch: fakeFetch(file, 'wrong-range').fetch });
    await expect(wrong.read(4, 4)).rejects.toThrow(/Content-Range 'bytes 5-7\/\d+' does not match the requested bytes 4-7/);
    await expect(httpRangeSource(url, undefined, { fetch: fakeFetch(file, 'no-total').fetch })).rejects.toThrow(/did not report the file size/);
    const changed = await httpRangeSource(url, file.length + 1, { fetch: fakeFetch(file).fetch });
    await expect(changed.read(0, 4)).rejects.toThrow(/now \d+ bytes, expected \d+/);
    const short = await httpRangeSource(url, file.length, { fetch: fakeFetch(file, 'short').fetch });
    await expect(short.read(0, 8)).rejects.toThrow(GgufSourceError);
  });
});
