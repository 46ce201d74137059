/**
 * The OpenAI-shaped client over a scripted engine, in the same thread and through the worker's
 * transport (the pull streams of stream-host.ts and remote-engine.ts over a MessageChannel, as in
 * the browser). The script decides how the engine's chunks are spaced against the page's pulls;
 * the real engine through the real worker is driven by e2e/engine-api.spec.ts.
 */
import * as Comlink from 'comlink';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, EngineApi } from '../api.ts';
import { createHearthClient } from './client.ts';
import { installErrorTransfer } from './errors.ts';
import type { WorkerApi } from './protocol.ts';
import { remoteEngine } from './remote-engine.ts';
import { StreamHost } from './stream-host.ts';

const USAGE = {
  prompt_tokens: 5,
  completion_tokens: 3,
  total_tokens: 8,
  cached_prompt_tokens: 0,
  dropped_messages: 0,
  time_to_first_token_ms: 1,
  prefill_tokens_per_second: 1,
  decode_tokens_per_second: 1,
};

function chunk(content: string | undefined, finish: ChatCompletionChunk['choices'][0]['finish_reason'] = null): ChatCompletionChunk {
  return {
    id: 'c',
    object: 'chat.completion.chunk',
    created: 0,
    model: 'm',
    choices: [{ index: 0, delta: content === undefined ? {} : { content }, finish_reason: finish }],
    ...(finish ? { usage: USAGE } : {}),
  };
}

function completion(content: string, finish: 'stop' | 'abort' = 'stop'): ChatCompletion {
  return {
    id: 'c',
    object: 'chat.completion',
    created: 0,
    model: 'm',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finish }],
    usage: USAGE,
  };
}

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * An engine that streams `pieces` and a final chunk, waiting `gap` before each piece (`'none'`:
 * all in one burst). After it has returned it tries one more chunk, which must go nowhere.
 */
function scriptedEngine(pieces: string[], gap: 'none' | 'tick' | number = 'tick', options: { fail?: Error } = {}) {
  const aborted: string[] = [];
  const requests: ChatCompletionRequest[] = [];
  const engine = {
    async chatCompletion(request: ChatCompletionRequest, onChunk?: (c: ChatCompletionChunk) => void) {
      requests.push(request);
      for (const piece of pieces) {
        if (gap === 'tick') await tick();
        else if (gap !== 'none') await sleep(gap);
        onChunk?.(chunk(piece));
      }
      if (options.fail) throw options.fail;
      onChunk?.(chunk(undefined, 'stop'));
      setTimeout(() => onChunk?.(chunk(' late')), 5);
      return completion(pieces.join(''));
    },
    async abort(id: string) {
      aborted.push(id);
    },
  } as unknown as EngineApi;
  return { engine, aborted, requests };
}

/** `engine` served as the worker serves it, on one end of a channel; the page's view of it on the other. */
const channels: MessageChannel[] = [];
function acrossWorker(engine: EngineApi): EngineApi {
  installErrorTransfer();
  const channel = new MessageChannel();
  channels.push(channel);
  const api: WorkerApi = { engine, streams: new StreamHost(engine) };
  Comlink.expose(api, channel.port1);
  return remoteEngine(Comlink.wrap<WorkerApi>(channel.port2));
}
afterAll(() => channels.forEach((c) => (c.port1.close(), c.port2.close())));

async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
  const out: ChatCompletionChunk[] = [];
  for await (const c of stream) out.push(c);
  return out;
}

describe('createHearthClient', () => {
  it.each([
    ['every chunk in one burst', 'none'],
    ['chunks a tick apart', 'tick'],
    ['chunks slower than the pulls', 3],
  ] as const)('streams the whole reply once, in order, through the worker with %s', async (_, gap) => {
    const { engine } = scriptedEngine(['Hel', 'lo', ' world'], gap);
    const stream = createHearthClient(acrossWorker(engine)).chat.completions.create({ messages: [{ role: 'user', content: 'hi' }], stream: true });
    const chunks = await collect(stream);
    const text = chunks.map((c) => c.choices[0].delta.content ?? '').join('');
    expect(text).toBe('Hello world');
    const last = chunks.at(-1)!;
    expect(last.choices[0].finish_reason).toBe('stop');
    expect(last.usage).toEqual(USAGE);
    expect(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null)).toBe(true);
    expect((await stream.completion).choices[0].message.content).toBe('Hello world');
    // A chunk the engine reports after it returned changes nothing.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(chunks.map((c) => c.choices[0].delta.content ?? '').join('')).toBe('Hello world');
  });

  it('an AbortSignal reaches engine.abort with the request id, already aborted or later', async () => {
    const { engine, aborted, requests } = scriptedEngine(['a', 'b']);
    const client = createHearthClient(engine);
    const early = new AbortController();
    early.abort();
    await client.chat.completions.create({ messages: [], signal: early.signal });
    const late = new AbortController();
    const stream = client.chat.completions.create({ messages: [], stream: true, signal: late.signal, request_id: 'mine' });
    late.abort();
    await collect(stream);
    expect(requests.map((r) => r.request_id)).toEqual([aborted[0], 'mine']);
    expect(aborted[1]).toBe('mine');
    expect(new Set(requests.map((r) => r.request_id)).size).toBe(2);
  });

  it('a failure ends the iterator with the engine error and rejects the completion', async () => {
    const failure = Object.assign(new Error('too long'), { name: 'ContextWindowExceededError' });
    const { engine } = scriptedEngine(['x'], 'tick', { fail: failure });
    const stream = createHearthClient(engine).chat.completions.create({ messages: [], stream: true });
    await expect(collect(stream)).rejects.toMatchObject({ name: 'ContextWindowExceededError' });
    await expect(stream.completion).rejects.toBe(failure);
  });

  it('through the worker, a failure ends the iterator after the chunks before it, with the error named', async () => {
    const failure = Object.assign(new Error('too long'), { name: 'ContextWindowExceededError' });
    const { engine } = scriptedEngine(['x', 'y'], 'tick', { fail: failure });
    const stream = createHearthClient(acrossWorker(engine)).chat.completions.create({ messages: [], stream: true });
    const seen: string[] = [];
    const error = await (async () => {
      for await (const c of stream) seen.push(c.choices[0].delta.content ?? '');
    })().catch((e: unknown) => e);
    expect(seen).toEqual(['x', 'y']);
    expect(error).toMatchObject({ name: 'ContextWindowExceededError', message: 'too long' });
    await expect(stream.completion).rejects.toMatchObject({ name: 'ContextWindowExceededError' });
  });

  it('without stream it returns the completion', async () => {
    const { engine, requests } = scriptedEngine(['o', 'k']);
    const result = await createHearthClient(engine).chat.completions.create({ messages: [{ role: 'user', content: 'q' }], max_tokens: 4 });
    expect(result.choices[0].message.content).toBe('ok');
    expect(requests[0]).toMatchObject({ max_tokens: 4 });
    expect(requests[0]!.stream).toBeUndefined();
  });
});
