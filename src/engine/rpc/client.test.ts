/**
 * The OpenAI-shaped client over an engine whose callbacks may arrive out of order with results,
 * as Comlink proxies do across a worker. The engine here is scripted (which chunks arrive before
 * and after the result); the real engine through the real worker is driven by e2e/engine-api.spec.ts.
 */
import { describe, expect, it } from 'vitest';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, EngineApi } from '../api.ts';
import { createHearthClient } from './client.ts';

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

/** An engine that streams `pieces`, resolving after `beforeResult` of them; the rest come late. */
function scriptedEngine(pieces: string[], beforeResult: number, options: { fail?: Error } = {}) {
  const aborted: string[] = [];
  const requests: ChatCompletionRequest[] = [];
  const engine = {
    async chatCompletion(request: ChatCompletionRequest, onChunk?: (c: ChatCompletionChunk) => void) {
      requests.push(request);
      for (const piece of pieces.slice(0, beforeResult)) {
        await tick();
        onChunk?.(chunk(piece));
      }
      setTimeout(() => {
        for (const piece of pieces.slice(beforeResult)) onChunk?.(chunk(piece));
        onChunk?.(chunk(undefined, 'stop'));
      }, 5);
      if (options.fail) throw options.fail;
      return completion(pieces.join(''));
    },
    async abort(id: string) {
      aborted.push(id);
    },
  } as unknown as EngineApi;
  return { engine, aborted, requests };
}

async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
  const out: ChatCompletionChunk[] = [];
  for await (const c of stream) out.push(c);
  return out;
}

describe('createHearthClient', () => {
  it.each([
    ['every chunk before the result', 3],
    ['the last chunks after the result', 1],
    ['every chunk after the result', 0],
  ])('streams the whole reply once with %s', async (_, before) => {
    const { engine } = scriptedEngine(['Hel', 'lo', ' world'], before);
    const stream = createHearthClient(engine).chat.completions.create({ messages: [{ role: 'user', content: 'hi' }], stream: true });
    const chunks = await collect(stream);
    const text = chunks.map((c) => c.choices[0].delta.content ?? '').join('');
    expect(text).toBe('Hello world');
    const last = chunks.at(-1)!;
    expect(last.choices[0].finish_reason).toBe('stop');
    expect(last.usage).toEqual(USAGE);
    expect(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null)).toBe(true);
    expect((await stream.completion).choices[0].message.content).toBe('Hello world');
    // Late chunks arriving after the iterator ended change nothing.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(chunks.map((c) => c.choices[0].delta.content ?? '').join('')).toBe('Hello world');
  });

  it('an AbortSignal reaches engine.abort with the request id, already aborted or later', async () => {
    const { engine, aborted, requests } = scriptedEngine(['a', 'b'], 2);
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
    const { engine } = scriptedEngine(['x'], 1, { fail: failure });
    const stream = createHearthClient(engine).chat.completions.create({ messages: [], stream: true });
    await expect(collect(stream)).rejects.toMatchObject({ name: 'ContextWindowExceededError' });
    await expect(stream.completion).rejects.toBe(failure);
  });

  it('without stream it returns the completion', async () => {
    const { engine, requests } = scriptedEngine(['o', 'k'], 2);
    const result = await createHearthClient(engine).chat.completions.create({ messages: [{ role: 'user', content: 'q' }], max_tokens: 4 });
    expect(result.choices[0].message.content).toBe('ok');
    expect(requests[0]).toMatchObject({ max_tokens: 4 });
    expect(requests[0]!.stream).toBeUndefined();
  });
});
