/**
 * After the engine reloads the model (a lost GPU device, the engine moving to another tab), the
 * app attaches its adapters again from where they came from, under the same ids: the ones that
 * load keep their switch and scale, the others are marked dropped with the reason, and one the
 * engine still has is left as it is.
 */
import { describe, expect, it } from 'vitest';
import type { AdapterInfo, AdapterSource } from '../engine/api.ts';
import { reattachAll, type AttachedAdapter } from './useAdapters.ts';

const info = (id: string, bytes = 100): AdapterInfo => ({ id, name: `${id}.gguf`, architecture: 'llama', alpha: 16, targets: ['blk.0.attn_q.weight'], rank: 8, bytes });
const named = (name: string, message: string) => Object.assign(new Error(message), { name });

describe('reattachAll', () => {
  it('loads each adapter again under its id, keeps switch and scale, marks the ones that fail as dropped', async () => {
    const list: AttachedAdapter[] = [
      { info: info('style'), source: { kind: 'cached', id: 'file:style.gguf:4096' }, active: true, scale: 1.5 },
      { info: info('tone'), source: { kind: 'file', file: new Blob(['x']), name: 'tone.gguf' }, active: false, scale: 0.5, dropped: 'earlier failure' },
      { info: info('gone'), source: { kind: 'cached', id: 'deleted' }, active: true, scale: 1 },
      { info: info('kept'), source: { kind: 'cached', id: 'kept' }, active: true, scale: 2 },
    ];
    const calls: Array<[AdapterSource, string]> = [];
    const load = async (source: AdapterSource, id: string) => {
      calls.push([source, id]);
      if (source.kind === 'cached' && source.id === 'deleted') throw named('ModelNotFoundError', 'No cached model "deleted".');
      if (id === 'kept') throw named('InvalidRequestError', "Invalid request: 'id' kept names an adapter already loaded.");
      return info(id, 200);
    };
    const again = await reattachAll(list, load);
    expect(calls.map(([source, id]) => [source.kind, id])).toEqual([['cached', 'style'], ['file', 'tone'], ['cached', 'gone'], ['cached', 'kept']]);
    expect(again[0]).toMatchObject({ active: true, scale: 1.5, info: { id: 'style', bytes: 200 } });
    expect(again[0]!.dropped).toBeUndefined();
    // A dropped one that loads now is back.
    expect(again[1]).toMatchObject({ active: false, scale: 0.5, info: { id: 'tone' } });
    expect(again[1]!.dropped).toBeUndefined();
    expect(again[2]!.dropped).toMatch(/deleted/);
    expect(again[3]).toBe(list[3]);
  });
});
