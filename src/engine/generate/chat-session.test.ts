import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { bytesSource, readGguf } from '../gguf/index.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { llamaCppSourceDir } from '../../testing/llama-ref.ts';
import { mulberry32 } from '../../testing/random.ts';
import { recentTokenCounts, type SamplingParams, type TokenPenalties } from '../sampling/index.ts';
import type { ChatCompletionChunk, ChatMessage } from '../api.ts';
import { ChatSession, ContextWindowExceededError, type SessionModel } from './chat-session.ts';

/**
 * A stand-in for a loaded model: it "generates" a scripted reply and records what it was asked to
 * evaluate, so the loop's bookkeeping (prefix reuse, context limits, stop conditions) is checked
 * exactly. Real models are exercised by the engine tests.
 */
class ScriptedModel implements SessionModel {
  position = 0;
  evaluated: number[][] = [];
  uniforms: number[] = [];
  /** The penalties each step handed to the sampler. */
  penalties: Array<TokenPenalties | undefined> = [];
  private step = 0;

  constructor(
    readonly contextLength: number,
    private readonly reply: number[],
  ) {}

  async next(tokens: readonly number[], _sampling: SamplingParams, u: number, penalties?: TokenPenalties): Promise<number> {
    this.uniforms.push(u);
    this.penalties.push(penalties);
    return this.advance(tokens);
  }

  private advance(tokens: readonly number[]): number {
    if (this.position + tokens.length > this.contextLength) throw new Error('context overflow in the model');
    this.evaluated.push([...tokens]);
    this.position += tokens.length;
    return this.reply[Math.min(this.step++, this.reply.length - 1)]!;
  }

  truncate(n: number): number {
    if (n > this.position) throw new Error(`truncate(${n}) past position ${this.position}`);
    this.position = n;
    return n;
  }

  restart(): void {
    this.step = 0;
  }
}

let tokenizer: Tokenizer;
let metadata: Map<string, unknown>;
let imEnd: number;

beforeAll(async () => {
  const bytes = readFileSync(`${llamaCppSourceDir()}/models/ggml-vocab-qwen2.gguf`);
  const file = await readGguf(bytesSource(new Uint8Array(bytes)));
  metadata = file.metadata as Map<string, unknown>;
  tokenizer = Tokenizer.fromGgufMetadata(metadata);
  imEnd = tokenizer.encode('<|im_end|>', { parseSpecial: true })[0]!;
});

function session(contextLength: number, replyText: string, end = true): { s: ChatSession; model: ScriptedModel; reply: number[] } {
  const reply = [...tokenizer.encode(replyText), ...(end ? [imEnd] : [])];
  const model = new ScriptedModel(contextLength, reply);
  return { s: new ChatSession(model, tokenizer, metadata, { modelName: 'test' }), model, reply };
}

const USER: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Say hello.' },
];

describe('ChatSession', () => {
  it('streams the reply in pieces that add up to the content, and stops at the end-of-turn token', async () => {
    const { s, model, reply } = session(512, 'Hello there, 世界! 👋');
    const chunks: ChatCompletionChunk[] = [];
    const result = await s.complete({ messages: USER, seed: 1 }, (c) => chunks.push(c), () => false);
    expect(result.choices[0].message.content).toBe('Hello there, 世界! 👋');
    expect(result.choices[0].finish_reason).toBe('stop');
    const streamed = chunks.map((c) => c.choices[0].delta.content ?? '').join('');
    expect(streamed).toBe(result.choices[0].message.content);
    expect(chunks[0]!.choices[0].delta.role).toBe('assistant');
    expect(chunks.at(-1)!.usage).toEqual(result.usage);
    expect(result.usage.completion_tokens).toBe(reply.length - 1);
    expect(result.usage.prompt_tokens).toBe(s.promptTokens(USER).length);
    // The whole prompt was evaluated in one step, then one token per step.
    expect(model.evaluated[0]).toEqual(s.promptTokens(USER));
    expect(model.evaluated.slice(1).every((t) => t.length === 1)).toBe(true);
  });

  it('reuses the cached prefix on the next turn: only the new tokens are evaluated', async () => {
    const { s, model } = session(1024, 'Hello!');
    const first = await s.complete({ messages: USER }, undefined, () => false);
    model.restart();
    model.evaluated = [];
    const second: ChatMessage[] = [...USER, { role: 'assistant', content: first.choices[0].message.content ?? '' }, { role: 'user', content: 'Again.' }];
    const result = await s.complete({ messages: second }, undefined, () => false);
    const prompt = s.promptTokens(second);
    expect(result.usage.cached_prompt_tokens).toBeGreaterThanOrEqual(first.usage.prompt_tokens);
    expect(model.evaluated[0]!.length).toBe(prompt.length - result.usage.cached_prompt_tokens);
    expect(model.evaluated[0]).toEqual(prompt.slice(result.usage.cached_prompt_tokens));
  });

  it('honours stop strings, also when split across tokens, and drops them', async () => {
    const { s } = session(512, 'one two STOP three');
    const result = await s.complete({ messages: USER, stop: ['STOP'] }, undefined, () => false);
    expect(result.choices[0].message.content).toBe('one two ');
    expect(result.choices[0].finish_reason).toBe('stop');
  });

  it('stops at max_tokens with finish_reason length', async () => {
    const { s } = session(512, 'a b c d e f g h i j');
    const result = await s.complete({ messages: USER, max_tokens: 3 }, undefined, () => false);
    expect(result.usage.completion_tokens).toBe(3);
    expect(result.choices[0].finish_reason).toBe('length');
  });

  it('aborts within one token and leaves a consistent cache for the next request', async () => {
    const { s, model } = session(512, 'a b c d e f g h i j k l m n o p');
    let steps = 0;
    const result = await s.complete({ messages: USER }, () => steps++, () => steps >= 3);
    expect(result.choices[0].finish_reason).toBe('abort');
    expect(result.usage.completion_tokens).toBe(3);
    // The cache holds exactly what the session believes: a repeat of the request reuses all but one prompt token.
    model.restart();
    model.evaluated = [];
    const again = await s.complete({ messages: USER }, undefined, () => false);
    expect(again.usage.cached_prompt_tokens).toBe(again.usage.prompt_tokens - 1);
    expect(model.evaluated[0]!.length).toBe(1);
  });

  it('sees an abort that arrives as a task while a synchronous model generates', async () => {
    // The scripted model, like the CPU backend, answers without ever waiting on a task; an abort
    // from the page arrives as a message (a task), here a timer after the first chunk.
    const { s } = session(4096, 'a b c d e f g h i j k l m n o p q r s t u v w x y z', false);
    let abort = false;
    let chunks = 0;
    let chunksAtAbort = -1;
    const result = await s.complete({ messages: USER, max_tokens: 2000 }, () => {
      if (++chunks === 1) setTimeout(() => {
        abort = true;
        chunksAtAbort = chunks;
      }, 0);
    }, () => abort);
    expect(result.choices[0].finish_reason).toBe('abort');
    expect(chunksAtAbort).toBeGreaterThan(0);
    // At most one step between the abort and the end (+1 for the final chunk with the finish reason).
    expect(chunks - chunksAtAbort).toBeLessThanOrEqual(2);
  });

  it('drops the oldest turns to fit the context, keeping the system prompt', async () => {
    const history: ChatMessage[] = [{ role: 'system', content: 'System rules.' }];
    for (let i = 0; i < 12; i++) {
      history.push({ role: 'user', content: `Question number ${i} with some padding words to take space.` });
      history.push({ role: 'assistant', content: `Answer number ${i}, also with some padding words.` });
    }
    history.push({ role: 'user', content: 'Final question?' });
    const contextLength = Math.floor(session(4096, 'x').s.promptTokens(history).length / 2);
    const { s } = session(contextLength, 'ok');
    const result = await s.complete({ messages: history }, undefined, () => false);
    expect(result.usage.dropped_messages).toBeGreaterThan(0);
    expect(result.usage.dropped_messages % 2).toBe(0); // whole turns
    expect(result.usage.prompt_tokens).toBeLessThan(contextLength);
    const kept = s.fitMessages(history, 'drop-oldest-turns').messages;
    expect(kept[0]).toEqual(history[0]);
    expect(kept.at(-1)).toEqual(history.at(-1));
  });

  it('throws ContextWindowExceededError under the error policy, or when even the last message cannot fit', async () => {
    const long: ChatMessage[] = [{ role: 'user', content: 'word '.repeat(400) }];
    const { s } = session(64, 'ok');
    await expect(s.complete({ messages: long, context_overflow: 'error' }, undefined, () => false)).rejects.toBeInstanceOf(ContextWindowExceededError);
    const error = await s.complete({ messages: long }, undefined, () => false).catch((e: unknown) => e);
    expect((error as Error).name).toBe('ContextWindowExceededError');
    expect((error as ContextWindowExceededError).detail).toMatchObject({ contextLength: 64 });
  });

  it('ends with finish_reason length when the context window fills up', async () => {
    const prompt = session(4096, 'x').s.promptTokens(USER).length;
    const { s } = session(prompt + 5, 'a b c d e f g h i j k l m n o p q r s t');
    const result = await s.complete({ messages: USER }, undefined, () => false);
    expect(result.choices[0].finish_reason).toBe('length');
    expect(result.usage.completion_tokens).toBe(6);
  });

  it('draws the same random numbers for the same seed', async () => {
    const a = session(512, 'a b c');
    await a.s.complete({ messages: USER, seed: 42 }, undefined, () => false);
    const b = session(512, 'a b c');
    await b.s.complete({ messages: USER, seed: 42 }, undefined, () => false);
    const c = session(512, 'a b c');
    await c.s.complete({ messages: USER, seed: 43 }, undefined, () => false);
    expect(b.model.uniforms).toEqual(a.model.uniforms);
    expect(c.model.uniforms).not.toEqual(a.model.uniforms);
  });

  it('hands the sampler penalties over the last 64 tokens only when they are asked for', async () => {
    const plain = session(512, 'a b c');
    await plain.s.complete({ messages: USER }, undefined, () => false);
    expect(plain.model.penalties.every((p) => p === undefined)).toBe(true);
    const penalized = session(512, 'a b c');
    const result = await penalized.s.complete({ messages: USER, repetition_penalty: 1.3, temperature: 0 }, undefined, () => false);
    expect(result.choices[0].message.content).toBe('a b c');
    const { evaluated, penalties } = penalized.model;
    expect(penalties.length).toBe(evaluated.length);
    for (let step = 0; step < evaluated.length; step++) {
      expect(penalties[step]?.params).toMatchObject({ repetition: 1.3, frequency: 0, presence: 0, lastN: 64 });
      expect(penalties[step]?.counts).toEqual(recentTokenCounts(evaluated.slice(0, step + 1).flat(), 64));
    }
  });

  it("continues plain text with prompt_format 'text': no template, the messages' contents joined", async () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'In the beginning' },
      { role: 'assistant', content: ' God created' },
      { role: 'user', content: ' <|im_start|>' },
    ];
    const { s, model } = session(512, ' the heaven');
    const result = await s.complete({ messages, prompt_format: 'text', seed: 1 }, undefined, () => false);
    const expected = tokenizer.encode('In the beginning God created <|im_start|>', { addSpecial: true, parseSpecial: false });
    expect(model.evaluated[0]).toEqual(expected);
    expect(expected).not.toContain(tokenizer.encode('<|im_start|>', { parseSpecial: true })[0]);
    expect(result.usage.prompt_tokens).toBe(expected.length);
    expect(result.choices[0].message.content).toBe(' the heaven');
    expect(s.countTokens(messages, 'text')).toBe(expected.length);
  });

  it('says which limit ended a reply, and reports the context in use on every chunk', async () => {
    const byMax = await session(512, 'a b c d e f g h i j').s.complete({ messages: USER, max_tokens: 3 }, undefined, () => false);
    expect(byMax.usage.length_limit).toBe('max_tokens');
    const prompt = session(4096, 'x').s.promptTokens(USER).length;
    const chunks: ChatCompletionChunk[] = [];
    const full = await session(prompt + 5, 'a b c d e f g h i j k l m n o p q r s t').s.complete({ messages: USER, max_tokens: 512 }, (c) => chunks.push(c), () => false);
    expect(full.usage.length_limit).toBe('context_window');
    const used = chunks.map((c) => c.context?.used);
    expect(used[0]).toBe(prompt + 1);
    expect(full.usage.completion_tokens).toBe(6);
    expect(used.at(-1)).toBe(prompt + 5);
    expect(used.every((u, i) => u !== undefined && u <= prompt + 5 && (i === 0 || u >= used[i - 1]!))).toBe(true);
    expect(chunks.every((c) => c.context?.total === prompt + 5)).toBe(true);
    const stopped = await session(512, 'ok').s.complete({ messages: USER }, undefined, () => false);
    expect(stopped.usage.length_limit).toBeUndefined();
  });

  it('measures what the next request would take of the context window, after dropping the oldest turns', () => {
    const history: ChatMessage[] = [{ role: 'system', content: 'System rules.' }];
    for (let i = 0; i < 6; i++) {
      history.push({ role: 'user', content: `Question number ${i} with some padding words to take space.` });
      history.push({ role: 'assistant', content: `Answer number ${i}, also with some padding words.` });
    }
    history.push({ role: 'user', content: 'Final question?' });
    const all = session(4096, 'x').s.promptTokens(history).length;
    const { s } = session(Math.floor(all / 2), 'ok');
    const measure = s.measure(history);
    expect(measure).toMatchObject({ prompt_tokens: all, fits: true, context_length: Math.floor(all / 2) });
    expect(measure.fitted_tokens).toBeLessThan(Math.floor(all / 2));
    expect(measure.fitted_tokens).toBe(s.fitMessages(history, 'drop-oldest-turns').tokens.length);
    expect(measure.dropped_messages).toBeGreaterThan(0);
    expect(session(64, 'ok').s.measure([{ role: 'user', content: 'word '.repeat(400) }])).toMatchObject({ fits: false, dropped_messages: 0 });
  });

  it('fits like the reference rule (drop the oldest turn, render again, repeat) on random conversations', () => {
    const next = mulberry32(2024);
    const pick = <T,>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
    const words = ['alpha', 'beta', 'gamma', 'delta', 'a longer sentence with several words', '12345', 'ok', '?'];
    const roles: ChatMessage['role'][] = ['system', 'user', 'user', 'assistant', 'assistant'];
    const outcome = (fit: () => { messages: ChatMessage[]; tokens: number[]; dropped: number }) => {
      try {
        return fit();
      } catch (error) {
        if (!(error instanceof ContextWindowExceededError)) throw error;
        return { error: error.message, detail: error.detail };
      }
    };
    // One session (building one is slow); the window is set per conversation.
    const model = new ScriptedModel(0, [imEnd]);
    const window = model as { contextLength: number };
    const s = new ChatSession(model, tokenizer, metadata, { modelName: 'test' });
    let compared = 0;
    let droppedSome = 0;
    for (let c = 0; c < 60; c++) {
      const messages: ChatMessage[] = [];
      const n = 1 + Math.floor(next() * 40);
      for (let i = 0; i < n; i++) {
        const content = Array.from({ length: 1 + Math.floor(next() * 12) }, () => pick(words)).join(' ');
        messages.push({ role: i === n - 1 ? 'user' : pick(roles), content });
      }
      const all = s.promptTokens(messages).length;
      const contextLength = 8 + Math.floor(next() * all * 1.1);
      window.contextLength = contextLength;
      const expected = outcome(() => referenceFit(s, messages, contextLength));
      const actual = outcome(() => s.fitMessages(messages, 'drop-oldest-turns'));
      expect(actual, `conversation ${c}: ${n} messages, context ${contextLength}`).toEqual(expected);
      compared++;
      if ('dropped' in expected && expected.dropped > 0) droppedSome++;
    }
    expect(compared).toBe(60);
    expect(droppedSome).toBeGreaterThan(10);
  }, 60_000);
});

/** The fitting rule as first written (quadratic): drop the oldest turn and render again until it fits. */
function referenceFit(s: ChatSession, messages: readonly ChatMessage[], contextLength: number): { messages: ChatMessage[]; tokens: number[]; dropped: number } {
  const limit = contextLength - 1;
  let kept = [...messages];
  let tokens = s.promptTokens(kept);
  let dropped = 0;
  const tooLong = () =>
    new ContextWindowExceededError(
      `The conversation needs ${tokens.length} tokens but the context window holds ${contextLength}. ` +
        'Start a new conversation, shorten the messages, or load the model with a longer context.',
      { promptTokens: tokens.length, contextLength, policy: 'drop-oldest-turns', droppedMessages: dropped },
    );
  while (tokens.length > limit) {
    const first = kept.findIndex((m) => m.role !== 'system');
    const lastUser = kept.map((m) => m.role).lastIndexOf('user');
    if (first < 0 || first >= lastUser) throw tooLong();
    let end = first + 1;
    while (end < lastUser && kept[end]!.role !== 'user') end++;
    dropped += end - first;
    kept = [...kept.slice(0, first), ...kept.slice(end)];
    tokens = s.promptTokens(kept);
  }
  return { messages: kept, tokens, dropped };
}
