/**
 * The pull streams across a real MessageChannel with Comlink, as between the page and the engine's
 * worker: what a reporting call reports arrives in order and before its result, and the worker
 * keeps nothing of a call once its end was pulled (Comlink callback proxies kept a port pair
 * open per call until someone released them).
 */
import * as Comlink from 'comlink';
import { afterAll, describe, expect, it } from 'vitest';
import type { EngineApi, LoadProgress, ModelInfo, ModelSource } from '../api.ts';
import { installErrorTransfer } from './errors.ts';
import type { WorkerApi } from './protocol.ts';
import { remoteEngine } from './remote-engine.ts';
import { StreamHost } from './stream-host.ts';

const INFO = { name: 'm' } as ModelInfo;
const progress = (loaded: number): LoadProgress => ({ phase: 'uploading-weights', loaded, total: 3 });

/** An engine whose load reports three steps (the last one right before it returns), or fails after them. */
const engine = {
  async loadModel(source: ModelSource, _options: unknown, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo> {
    for (let i = 1; i <= 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      onProgress?.(progress(i));
    }
    if (source.kind === 'url') throw Object.assign(new Error('no such model'), { name: 'UnsupportedModelError' });
    return INFO;
  },
} as unknown as EngineApi;

installErrorTransfer();
const channel = new MessageChannel();
const host = new StreamHost(engine);
Comlink.expose({ engine, streams: host } satisfies WorkerApi, channel.port1);
const remote = remoteEngine(Comlink.wrap<WorkerApi>(channel.port2));
afterAll(() => (channel.port1.close(), channel.port2.close()));

describe('pull streams across the worker', () => {
  it('deliver every event in order before the result, then forget the call', async () => {
    const seen: Array<LoadProgress | ModelInfo> = [];
    const info = await remote.loadModel({ kind: 'cached', id: 'm' }, {}, (p) => seen.push(p));
    seen.push(info);
    expect(seen).toEqual([progress(1), progress(2), progress(3), INFO]);
    expect(host.openStreams).toBe(0);
  });

  it('deliver the events before a failure, then the named error, then forget the call', async () => {
    const seen: LoadProgress[] = [];
    const error = await remote.loadModel({ kind: 'url', urls: ['x'] }, {}, (p) => seen.push(p)).catch((e: unknown) => e);
    expect(seen).toEqual([progress(1), progress(2), progress(3)]);
    expect(error).toMatchObject({ name: 'UnsupportedModelError', message: 'no such model' });
    expect(host.openStreams).toBe(0);
  });

  it('run a call without a callback to its result', async () => {
    expect(await remote.loadModel({ kind: 'cached', id: 'm' })).toEqual(INFO);
    expect(host.openStreams).toBe(0);
  });

  it('refuse a pull of a stream that ended', async () => {
    await expect(host.pull(12345)).rejects.toThrow(/No open stream/);
  });
});
