/**
 * One engine for all tabs, in Node: each "tab" is a `shareEngine` with a BroadcastChannel of its
 * own (Node 20's, which reaches the other instances as a browser's reaches other tabs) and one
 * shared fake of Web Locks (Node has none). The engines are fakes that say which tab runs them;
 * the real engine in two real pages is driven by e2e/tabs.spec.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, EngineApi, LoadModelOptions, ModelInfo, ModelSource } from '../../api.ts';
import { createHearthClient } from '../client.ts';
import { installErrorTransfer } from '../errors.ts';
import type { LockManagerLike } from './election.ts';
import { CHANNEL } from './protocol.ts';
import { shareEngine, type SharedEngine, type TabShareState } from './share-engine.ts';

/** Web Locks' exclusive mode as the tabs use it: grant in request order, `ifAvailable`, `signal`. */
class FakeLocks implements LockManagerLike {
  private held = new Set<string>();
  private queue: Array<{ name: string; grant: () => void }> = [];

  request(name: string, options: { ifAvailable?: boolean; signal?: AbortSignal }, callback: (lock: unknown) => unknown): Promise<unknown> {
    const run = async (lock: unknown) => {
      try {
        return await callback(lock);
      } finally {
        if (lock !== null) {
          this.held.delete(name);
          this.grantNext(name);
        }
      }
    };
    if (!this.held.has(name)) {
      this.held.add(name);
      return run({ name });
    }
    if (options.ifAvailable) return run(null);
    return new Promise((resolve, reject) => {
      const entry = { name, grant: () => resolve(run({ name })) };
      this.queue.push(entry);
      options.signal?.addEventListener('abort', () => {
        this.queue = this.queue.filter((e) => e !== entry);
        reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
      });
    });
  }

  private grantNext(name: string) {
    const next = this.queue.find((e) => e.name === name);
    if (!next) return;
    this.queue = this.queue.filter((e) => e !== next);
    this.held.add(name);
    next.grant();
  }
}

const info = (name: string, tab: string): ModelInfo =>
  ({ name: `${name} in ${tab}`, architecture: 'llama', parameterCount: 1, quantization: 'Q8_0', fileSize: 1, contextLength: 64, trainedContextLength: 64, hasChatTemplate: false, backend: 'cpu' }) as ModelInfo;

/**
 * A fake engine in tab `tab`: answers which tab runs it, loads instantly, and streams "tab:" and
 * three pieces; with `gate`, each piece waits for it (so a test can act mid-reply).
 */
function fakeEngine(tab: string, gate?: () => Promise<void>) {
  const loads: Array<{ source: ModelSource; options?: LoadModelOptions | undefined }> = [];
  const aborted = new Set<string>();
  const requests: ChatCompletionRequest[] = [];
  let model: ModelInfo | undefined;
  const chunk = (content: string | undefined, finish: 'stop' | 'abort' | null): ChatCompletionChunk => ({
    id: 'c',
    object: 'chat.completion.chunk',
    created: 0,
    model: model?.name ?? '',
    choices: [{ index: 0, delta: content === undefined ? {} : { content }, finish_reason: finish }],
  });
  const engine = {
    info: async () => ({ name: 'hearth', version: '0', runtime: `engine of ${tab}` }),
    status: async () => (model ? { state: 'ready', model, busy: false } : { state: 'idle' }),
    async loadModel(source: ModelSource, options?: LoadModelOptions) {
      loads.push({ source, options });
      model = info(source.kind === 'cached' ? source.id : 'file', tab);
      return model;
    },
    async unloadModel() {
      model = undefined;
    },
    async abort(id: string) {
      aborted.add(id);
    },
    async chatCompletion(request: ChatCompletionRequest, onChunk?: (c: ChatCompletionChunk) => void): Promise<ChatCompletion> {
      requests.push(request);
      let text = '';
      let finish: 'stop' | 'abort' = 'stop';
      for (const piece of [`${tab}:`, 'a', 'b', 'c']) {
        if (gate) await gate();
        if (aborted.has(request.request_id!)) {
          finish = 'abort';
          break;
        }
        text += piece;
        onChunk?.(chunk(piece, null));
      }
      onChunk?.(chunk(undefined, finish));
      return { id: 'c', object: 'chat.completion', created: 0, model: model?.name ?? '', choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: finish }] } as ChatCompletion;
    },
  } as unknown as EngineApi;
  return { engine, loads, aborted, requests };
}

interface Tab {
  id: string;
  shared: SharedEngine;
  channel: BroadcastChannel;
  started: number;
  engines: Array<ReturnType<typeof fakeEngine>>;
  states: TabShareState[];
  close(): void;
}

let open: Tab[] = [];
afterEach(() => {
  for (const tab of open) tab.close();
  open = [];
});

function openTab(id: string, locks: LockManagerLike | undefined, gate?: () => Promise<void>): Tab {
  installErrorTransfer();
  const channel = new BroadcastChannel(CHANNEL);
  const tab: Tab = {
    id,
    channel,
    started: 0,
    engines: [],
    states: [],
    shared: undefined as unknown as SharedEngine,
    close() {
      tab.shared.close();
      channel.close();
      open = open.filter((t) => t !== tab);
    },
  };
  tab.shared = shareEngine({
    startEngine: () => {
      tab.started++;
      const fake = fakeEngine(id, gate);
      tab.engines.push(fake);
      return fake.engine;
    },
    locks,
    channel: channel as unknown as Parameters<typeof shareEngine>[0]['channel'],
    tabId: id,
  });
  tab.shared.subscribe((state) => tab.states.push(state));
  open.push(tab);
  return tab;
}

/** Resolves when `tab`'s state satisfies `test` (states arrive by message, not on a clock). */
function until(tab: Tab, test: (state: TabShareState) => boolean): Promise<TabShareState> {
  if (test(tab.shared.state())) return Promise.resolve(tab.shared.state());
  return new Promise((resolve) => {
    const stop = tab.shared.subscribe((state) => {
      if (!test(state)) return;
      stop();
      resolve(state);
    });
  });
}

async function chatText(shared: SharedEngine, options: { signal?: AbortSignal } = {}): Promise<{ text: string; chunks: number; finish: string | null }> {
  const stream = createHearthClient(shared.engine).chat.completions.create({ messages: [{ role: 'user', content: 'hi' }], stream: true, ...options });
  let text = '';
  let chunks = 0;
  let finish: string | null = null;
  for await (const c of stream) {
    chunks++;
    text += c.choices[0].delta.content ?? '';
    finish = c.choices[0].finish_reason ?? finish;
  }
  return { text, chunks, finish };
}

/** Waits (a macrotask at a time, so channel messages get delivered) until `test()` holds. */
async function waitFor(test: () => boolean): Promise<void> {
  while (!test()) await new Promise((resolve) => setTimeout(resolve, 1));
}

const DEMO: ModelSource = { kind: 'cached', id: 'demo' };

/**
 * Tab A opens and owns the engine (A's engine waits on `gate` before each piece it streams), loads
 * `load` if given, then tab B opens and follows it, having heard of A's model.
 */
async function ownerAndFollower(options: { load?: ModelSource; gate?: () => Promise<void> } = {}) {
  const locks = new FakeLocks();
  const a = openTab('A', locks, options.gate);
  await until(a, (s) => s.role === 'owner');
  if (options.load) await a.shared.engine.loadModel(options.load, { backend: 'cpu' });
  const b = openTab('B', locks);
  await until(b, (s) => s.role === 'follower' && s.model.state === (options.load ? 'ready' : 'none'));
  return { locks, a, b };
}

describe('one engine for all tabs', () => {
  it('the first tab owns the engine; a second tab starts none and runs its requests on the first', async () => {
    const { a, b } = await ownerAndFollower({ load: DEMO });
    expect(a.started).toBe(1);
    expect(b.started).toBe(0);
    expect((await b.shared.engine.info()).runtime).toBe('engine of A');
    // B hears what A has loaded, with what it needs to load it again.
    expect(b.shared.state().model).toMatchObject({ state: 'ready', source: DEMO, options: { backend: 'cpu' }, info: { name: 'demo in A' } });
    const reply = await chatText(b.shared);
    expect(reply).toEqual({ text: 'A:abc', chunks: 5, finish: 'stop' });
  });

  it("a follower's abort reaches the owner's engine and ends its request there", async () => {
    const gates: Array<() => void> = [];
    const { a, b } = await ownerAndFollower({ gate: () => new Promise<void>((resolve) => gates.push(resolve)) });
    const controller = new AbortController();
    const reply = chatText(b.shared, { signal: controller.signal });
    // Let the first piece through, then abort while the engine waits before the second.
    await waitFor(() => gates.length > 0);
    gates.shift()!();
    await waitFor(() => gates.length > 0);
    controller.abort();
    // The abort crosses to A's engine before it goes on.
    await waitFor(() => a.engines[0]!.aborted.size === 1);
    gates.shift()!();
    expect(await reply).toEqual({ text: 'A:', chunks: 2, finish: 'abort' });
  });

  it('when the owner closes, the follower starts its own engine, loads the same model again and answers', async () => {
    const { a, b } = await ownerAndFollower({ load: DEMO });
    a.close();

    const state = await until(b, (s) => s.role === 'owner' && s.model.state === 'ready');
    expect(state.moves).toBe(1);
    expect(b.started).toBe(1);
    expect(b.engines[0]!.loads).toEqual([{ source: DEMO, options: { backend: 'cpu' } }]);
    expect(state.model).toMatchObject({ state: 'ready', info: { name: 'demo in B' } });
    expect(await chatText(b.shared)).toEqual({ text: 'B:abc', chunks: 5, finish: 'stop' });
  });

  it('a request in flight when the owner closes fails with EngineMovedError, and the next one runs on the new owner', async () => {
    const { a, b } = await ownerAndFollower({ gate: () => new Promise<void>(() => undefined) }); // A never finishes a reply
    const inFlight = chatText(b.shared);
    // The request reached A's engine (which streams nothing, as if busy) before A goes away.
    await waitFor(() => a.engines[0]!.requests.length === 1);
    a.close();
    await expect(inFlight).rejects.toMatchObject({ name: 'EngineMovedError', message: expect.stringMatching(/send it again/) });
    expect(await chatText(b.shared)).toEqual({ text: 'B:abc', chunks: 5, finish: 'stop' });
  });

  it("a follower that leaves mid-reply has its request aborted in the owner's engine", async () => {
    const gates: Array<() => void> = [];
    const { a, b } = await ownerAndFollower({ gate: () => new Promise<void>((resolve) => gates.push(resolve)) });
    const reply = chatText(b.shared);
    reply.catch(() => undefined);
    await waitFor(() => a.engines[0]!.requests.length === 1);
    b.close();
    await waitFor(() => a.engines[0]!.aborted.size === 1);
    expect([...a.engines[0]!.aborted]).toEqual([a.engines[0]!.requests[0]!.request_id]);
    await expect(reply).rejects.toMatchObject({ name: 'EngineMovedError' });
  });

  it('with three tabs, the second takes over and the third moves to it', async () => {
    const { locks, a, b } = await ownerAndFollower({ load: DEMO });
    const c = openTab('C', locks);
    await until(c, (s) => s.role === 'follower');
    expect((await c.shared.engine.info()).runtime).toBe('engine of A');
    a.close();

    await until(c, (s) => s.moves === 1 && s.model.state === 'ready');
    expect(c.shared.state().role).toBe('follower');
    expect((await c.shared.engine.info()).runtime).toBe('engine of B');
    expect(c.started).toBe(0);
    expect(b.engines).toHaveLength(1);
    expect(b.engines[0]!.loads).toHaveLength(1);
    expect(c.shared.state().model).toMatchObject({ state: 'ready', info: { name: 'demo in B' } });
  });

  it("a model loaded from a follower is the owner's, and every tab hears of it", async () => {
    const { a, b } = await ownerAndFollower();
    const loaded = await b.shared.engine.loadModel({ kind: 'cached', id: 'other' });
    expect(loaded.name).toBe('other in A');
    expect(a.engines[0]!.loads).toEqual([{ source: { kind: 'cached', id: 'other' } }]);
    expect(a.shared.state().model).toMatchObject({ state: 'ready', info: { name: 'other in A' } });
    await until(b, (s) => s.model.state === 'ready');
  });

  it('without Web Locks every tab runs its own engine, as before', async () => {
    const a = openTab('A', undefined);
    const b = openTab('B', undefined);
    expect(a.shared.state().role).toBe('alone');
    expect([a.started, b.started]).toEqual([1, 1]);
    expect((await b.shared.engine.info()).runtime).toBe('engine of B');
  });
});
