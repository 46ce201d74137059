/**
 * Tool calling through the whole session: requests with tools and tool_choice, replies scripted
 * (a call in the model's format, or plain text) or drawn from random logits (a forced call must
 * always parse), and follow-up conversations rendered through the real Qwen2.5 and Llama 3.1
 * templates, compared with Python's jinja2.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { bytesSource, readGguf } from '../gguf/index.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import type { SamplingParams } from '../sampling/index.ts';
import { llamaCppSourceDir } from '../../testing/llama-ref.ts';
import { freshSeed, mulberry32 } from '../../testing/random.ts';
import { schemaErrors } from '../../testing/json-schema-check.ts';
import { RandomLogitsModel, closingTokens } from '../../testing/random-logits-model.ts';
import { PYTHON, renderWithPython } from '../../../tests/chat/python-jinja2.ts';
import type { ChatCompletionChunk, ChatCompletionRequest, ChatCompletionTool } from '../api.ts';
import { ChatSession, type SessionModel } from './chat-session.ts';
import { constraintVocabulary, requestGrammar } from './constraint.ts';
import { GrammarConstraint, maskHas } from '../grammar/index.ts';
import { validateChatRequest } from './validate-request.ts';
import { joinEvents } from '../../testing/tool-call-events.ts';

/** Replies with the scripted tokens, whatever it is asked. */
class ScriptedModel implements SessionModel {
  position = 0;
  private step = 0;
  constructor(
    readonly contextLength: number,
    private readonly reply: number[],
  ) {}
  async next(tokens: readonly number[], _sampling: SamplingParams): Promise<number> {
    this.position += tokens.length;
    return this.reply[Math.min(this.step++, this.reply.length - 1)]!;
  }
  truncate(n: number): number {
    this.position = n;
    return n;
  }
}

interface Vocab {
  tokenizer: Tokenizer;
  metadata: Map<string, unknown>;
  end: number;
}

const TEMPLATES = `${llamaCppSourceDir()}/models/templates`;

/** A vocabulary with the chat template of the model family put in its metadata. */
async function vocab(name: string, template: string | { source: string }, endToken: string, overrides: Record<string, unknown> = {}, controlTokens: string[] = []): Promise<Vocab> {
  const bytes = readFileSync(`${llamaCppSourceDir()}/models/ggml-vocab-${name}.gguf`);
  const metadata = new Map((await readGguf(bytesSource(new Uint8Array(bytes)))).metadata as Map<string, unknown>);
  metadata.set('tokenizer.chat_template', typeof template === 'string' ? readFileSync(`${TEMPLATES}/${template}`, 'utf8') : template.source);
  for (const [key, value] of Object.entries(overrides)) metadata.set(key, value);
  if (controlTokens.length > 0) {
    // Unused reserved control tokens take the names of the family's markers, as its own vocabulary has them.
    const tokens = [...(metadata.get('tokenizer.ggml.tokens') as string[])];
    controlTokens.forEach((text, i) => {
      const at = tokens.indexOf(`<|reserved_special_token_${10 + i}|>`);
      if (at < 0) throw new Error(`${name} has no reserved token to rename`);
      tokens[at] = text;
    });
    metadata.set('tokenizer.ggml.tokens', tokens);
  }
  const tokenizer = Tokenizer.fromGgufMetadata(metadata);
  const end = tokenizer.encode(endToken, { parseSpecial: true });
  if (end.length !== 1) throw new Error(`${endToken} is not one token in ${name}`);
  return { tokenizer, metadata, end: end[0]! };
}

let qwen: Vocab;
let llama: Vocab;
// llama.cpp ships no Mistral or Granite vocabulary: their templates go with Llama 3's byte-level
// one, with their call markers as control tokens (as in their own vocabularies).
let nemo: Vocab;
let granite: Vocab;
let mistralSmall: Vocab;
let devstral: Vocab;
let phi4mini: Vocab;

/**
 * Phi-4-mini-instruct's chat template (Hugging Face; llama.cpp does not ship it): the tools come in
 * the system message's `tools` field, a JSON string.
 */
const PHI4_MINI_TEMPLATE =
  "{% for message in messages %}{% if message['role'] == 'system' and 'tools' in message and message['tools'] is not none %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|tool|>' + message['tools'] + '<|/tool|>' + '<|end|>' }}{% else %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% else %}{{ eos_token }}{% endif %}";

beforeAll(async () => {
  qwen = await vocab('qwen2', 'Qwen-Qwen2.5-7B-Instruct.jinja', '<|im_end|>');
  llama = await vocab('llama-bpe', 'meta-llama-Llama-3.1-8B-Instruct.jinja', '<|eot_id|>');
  nemo = await vocab('llama-bpe', 'mistralai-Mistral-Nemo-Instruct-2407.jinja', '<|eot_id|>', {}, ['[TOOL_CALLS]']);
  const mistralMarkers = ['[TOOL_CALLS]', '[ARGS]', '[CALL_ID]'];
  mistralSmall = await vocab('llama-bpe', 'Mistral-Small-3.2-24B-Instruct-2506.jinja', '<|eot_id|>', {}, mistralMarkers);
  devstral = await vocab('llama-bpe', 'unsloth-mistral-Devstral-Small-2507.jinja', '<|eot_id|>', {}, mistralMarkers);
  // Granite's own vocabulary adds no BOS (its template writes none).
  granite = await vocab('llama-bpe', 'ibm-granite-granite-3.3-2B-Instruct.jinja', '<|eot_id|>', { 'tokenizer.ggml.add_bos_token': false }, ['<|tool_call|>']);
  // Phi-4-mini's own vocabulary is not in llama.cpp: Llama 3's, with Phi's role markers as control tokens (and, as Phi's, no BOS).
  phi4mini = await vocab('llama-bpe', { source: PHI4_MINI_TEMPLATE }, '<|end|>', { 'tokenizer.ggml.add_bos_token': false }, ['<|system|>', '<|end|>', '<|user|>', '<|assistant|>', '<|tool|>', '<|/tool|>']);
}, 120_000); // seven vocabularies: seconds, longer on a loaded machine

const TOOLS: ChatCompletionTool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'The weather in a city.',
      parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['celsius', 'fahrenheit'] } }, required: ['city'], additionalProperties: false },
    },
  },
  {
    type: 'function',
    function: {
      name: 'add',
      parameters: { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'integer' } }, required: ['a', 'b'], additionalProperties: false },
    },
  },
];

const ASK = [{ role: 'user', content: 'Weather in Paris?' }];

/** `reply`'s tokens; with `parseSpecial`, control-token texts in it become those tokens, as a model writes them. */
async function scripted(v: Vocab, reply: string, request: Omit<ChatCompletionRequest, 'messages'>, parseSpecial = false) {
  const model = new ScriptedModel(4096, [...v.tokenizer.encode(reply, { parseSpecial }), v.end]);
  const session = new ChatSession(model, v.tokenizer, v.metadata, { modelName: 'test' });
  const chunks: ChatCompletionChunk[] = [];
  const result = await session.complete(validateChatRequest({ messages: ASK, temperature: 0, ...request }), (c) => chunks.push(c), () => false);
  const streamed = chunks.map((c) => c.choices[0].delta.content ?? '').join('');
  return { result, chunks, streamed, session };
}

/** The calls a completion stream sent, joined from their pieces as an OpenAI client joins them. */
function streamedCalls(chunks: readonly ChatCompletionChunk[]) {
  const events = chunks.flatMap((c) => [
    ...(c.choices[0].delta.content ? [{ content: c.choices[0].delta.content }] : []),
    ...(c.choices[0].delta.tool_calls ?? []).map((tool_call) => ({ tool_call })),
  ]);
  return joinEvents(events).calls;
}

const QWEN_CALL = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';

describe('tool calls in a chat session', () => {
  it("auto: a Qwen-style call becomes message.tool_calls and finish_reason 'tool_calls'; its text is not streamed", async () => {
    const { result, chunks, streamed, session } = await scripted(qwen, QWEN_CALL, { tools: TOOLS });
    expect(session.toolFormat).toBe('hermes');
    const choice = result.choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.tool_calls).toEqual([{ id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }]);
    expect(choice.message.content).toBe('Let me check.');
    // The stream: the text before the call as content, nothing of the call; the call in pieces
    // (name, then arguments) before the last chunk, which only ends it.
    expect(streamed).toBe('Let me check.');
    expect(chunks.some((c) => (c.choices[0].delta.content ?? '').includes('<'))).toBe(false);
    expect(streamedCalls(chunks)).toEqual(choice.message.tool_calls);
    const pieces = chunks.filter((c) => c.choices[0].delta.tool_calls);
    expect(pieces.length).toBeGreaterThan(2);
    for (const c of pieces) expect(c.choices[0].delta.tool_calls).toHaveLength(1);
    expect(pieces[0]!.choices[0].delta.tool_calls![0]).toEqual({ index: 0, id: choice.message.tool_calls![0]!.id, type: 'function', function: { name: 'get_weather', arguments: '' } });
    const last = chunks.at(-1)!;
    expect(last.choices[0]).toEqual({ index: 0, delta: {}, finish_reason: 'tool_calls' });
  });

  it('auto: two calls, ids unique; a reply without calls is plain content, streamed whole', async () => {
    const two = `${QWEN_CALL}\n<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>`;
    const { result } = await scripted(qwen, two, { tools: TOOLS, tool_choice: 'auto' });
    const calls = result.choices[0].message.tool_calls!;
    expect(calls.map((c) => c.function.name)).toEqual(['get_weather', 'add']);
    expect(new Set(calls.map((c) => c.id)).size).toBe(2);

    const plain = 'It is sunny <b>today</b>, I think. <tool_ nope\n';
    const { result: r, streamed, chunks } = await scripted(qwen, plain, { tools: TOOLS });
    expect(r.choices[0].finish_reason).toBe('stop');
    expect(r.choices[0].message).toEqual({ role: 'assistant', content: plain });
    expect(streamed).toBe(plain);
    expect(chunks.some((c) => c.choices[0].delta.tool_calls)).toBe(false);
  });

  it('parallel_tool_calls false: the reply ends with its first call', async () => {
    const two = `${QWEN_CALL}\n<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>`;
    const { result: both } = await scripted(qwen, two, { tools: TOOLS, parallel_tool_calls: true });
    expect(both.choices[0].message.tool_calls!.map((c) => c.function.name)).toEqual(['get_weather', 'add']);
    const { result, chunks } = await scripted(qwen, two, { tools: TOOLS, parallel_tool_calls: false });
    expect(result.choices[0].finish_reason).toBe('tool_calls');
    expect(result.choices[0].message.tool_calls!.map((c) => c.function)).toEqual([{ name: 'get_weather', arguments: '{"city":"Paris"}' }]);
    expect(streamedCalls(chunks)).toEqual(result.choices[0].message.tool_calls);
    expect(result.usage.completion_tokens).toBeLessThan(both.usage.completion_tokens);
  });

  it("auto: a call to an unknown tool or with broken JSON stays content", async () => {
    const bad = '<tool_call>\n{"name": "delete_all", "arguments": {}}\n</tool_call>';
    const { result, streamed } = await scripted(qwen, bad, { tools: TOOLS });
    expect(result.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: bad } });
    expect(result.choices[0].message.tool_calls).toBeUndefined();
    expect(streamed).toBe(bad);
  });

  it("'none': the reply is not parsed, even when it holds a call", async () => {
    const { result, streamed } = await scripted(qwen, QWEN_CALL, { tools: TOOLS, tool_choice: 'none' });
    expect(result.choices[0]).toEqual({ index: 0, message: { role: 'assistant', content: QWEN_CALL }, finish_reason: 'stop' });
    expect(streamed).toBe(QWEN_CALL);
  });

  it('auto with a Llama 3.1 template: its bare JSON call (after <|python_tag|> or not) is parsed', async () => {
    for (const reply of ['{"name": "add", "parameters": {"a": 2, "b": 3}}', '<|python_tag|>{"name": "add", "parameters": {"a": 2, "b": 3}}']) {
      const { result, streamed, session } = await scripted(llama, reply, { tools: TOOLS });
      expect(session.toolFormat).toBe('llama3');
      expect(result.choices[0].finish_reason).toBe('tool_calls');
      expect(result.choices[0].message.tool_calls![0]!.function).toEqual({ name: 'add', arguments: '{"a":2,"b":3}' });
      // Only calls: content null, as OpenAI's.
      expect(result.choices[0].message.content).toBeNull();
      expect(streamed).toBe('');
    }
    const { result } = await scripted(llama, 'Sure: {"name": "add"} is a tool.', { tools: TOOLS });
    expect(result.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: 'Sure: {"name": "add"} is a tool.' } });
  });

  it('auto after a thinking block the template opened: the thinking is content, a call drafted in it is none', async () => {
    // Qwen2.5's template with its assistant turn opened in thinking, as DeepSeek-R1's and Reka's templates open it.
    const template = (qwen.metadata.get('tokenizer.chat_template') as string).replace("{{- '<|im_start|>assistant\\n' }}", "{{- '<|im_start|>assistant\\n<think>\\n' }}");
    expect(template).toContain('<think>');
    const thinking: Vocab = { ...qwen, metadata: new Map(qwen.metadata).set('tokenizer.chat_template', template) };
    const draft = '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 1}}\n</tool_call>';
    const reply = `Maybe ${draft}, no: the weather.\n</think>\n\n${QWEN_CALL}`;
    const { result, chunks, streamed } = await scripted(thinking, reply, { tools: TOOLS });
    const choice = result.choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.tool_calls!.map((c) => c.function)).toEqual([{ name: 'get_weather', arguments: '{"city":"Paris"}' }]);
    expect(choice.message.content).toBe(`Maybe ${draft}, no: the weather.\n</think>\n\nLet me check.`);
    expect(streamed).toBe(choice.message.content);
    expect(streamedCalls(chunks)).toEqual(choice.message.tool_calls);
    // Without the opened block, the drafted call is a call.
    const { result: plain } = await scripted(qwen, reply, { tools: TOOLS });
    expect(plain.choices[0].message.tool_calls!.map((c) => c.function.name)).toEqual(['add', 'get_weather']);
  });

  it("auto with Mistral Nemo's template: a [TOOL_CALLS] list is parsed, its ids are the 9 alphanumerics the template takes back", async () => {
    const reply = '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "a1b2c3d4e"}, {"name": "add", "arguments": {"a": 1, "b": 2}, "id": "f5g6h7i8j"}]';
    expect(nemo.tokenizer.encode(reply, { parseSpecial: true })[0]).not.toBe(nemo.tokenizer.encode(reply)[0]); // [TOOL_CALLS] is one control token
    const { result, streamed, session } = await scripted(nemo, reply, { tools: TOOLS }, true);
    expect(session.toolFormat).toBe('mistral-nemo');
    const choice = result.choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.tool_calls!.map((c) => c.function)).toEqual([
      { name: 'get_weather', arguments: '{"city":"Paris"}' },
      { name: 'add', arguments: '{"a":1,"b":2}' },
    ]);
    const ids = choice.message.tool_calls!.map((c) => c.id);
    for (const id of ids) expect(id).toMatch(/^[a-zA-Z0-9]{9}$/);
    expect(new Set(ids).size).toBe(2);
    expect(streamed).toBe('');
    // The reply and its results, sent back as the next request, render through the template (which raises on other ids).
    const next = validateChatRequest({
      messages: [...ASK, choice.message, ...ids.map((id) => ({ role: 'tool', tool_call_id: id, content: '1' }))],
      tools: TOOLS,
    });
    const text = nemo.tokenizer.decode(session.fitMessages(next.messages, 'error', 'chat', next.tools).tokens, { unparseSpecial: true });
    expect(text).toContain(`"id": "${ids[1]}"`);
  });

  it("auto with Mistral Small 3.2's template: [TOOL_CALLS]name[CALL_ID]id[ARGS]{...} calls, from control tokens", async () => {
    const reply = 'Checking.[TOOL_CALLS]get_weather[CALL_ID]000000001[ARGS]{"city": "Oslo"}[TOOL_CALLS]add[CALL_ID]000000002[ARGS]{"a": 1, "b": 2}';
    const { result, streamed, session } = await scripted(mistralSmall, reply, { tools: TOOLS }, true);
    expect(session.toolFormat).toBe('mistral');
    const choice = result.choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.tool_calls!.map((c) => c.function)).toEqual([
      { name: 'get_weather', arguments: '{"city":"Oslo"}' },
      { name: 'add', arguments: '{"a":1,"b":2}' },
    ]);
    for (const call of choice.message.tool_calls!) expect(call.id).toMatch(/^[a-zA-Z0-9]{9}$/);
    expect(choice.message.content).toBe('Checking.');
    expect(streamed).toBe('Checking.');
  });

  it('auto with a Granite 3.3 template: its <|tool_call|> list is parsed, the text before it is content', async () => {
    const { result, streamed, session } = await scripted(granite, 'One moment.<|tool_call|>[{"name": "add", "arguments": {"a": 2, "b": 3}}]', { tools: TOOLS }, true);
    expect(session.toolFormat).toBe('granite');
    expect(result.choices[0].finish_reason).toBe('tool_calls');
    expect(result.choices[0].message.tool_calls![0]!).toEqual({ id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'add', arguments: '{"a":2,"b":3}' } });
    expect(result.choices[0].message.content).toBe('One moment.');
    expect(streamed).toBe('One moment.');
  });
});

describe('forced tool calls from a random-logits model', () => {
  async function forced(v: Vocab, closers: Uint8Array, request: Omit<ChatCompletionRequest, 'messages'>, seed: number) {
    const model = new RandomLogitsModel(4096, mulberry32(seed), closers);
    const session = new ChatSession(model, v.tokenizer, v.metadata, { modelName: 'random' });
    const valid = validateChatRequest({ messages: ASK, temperature: 1, top_k: 0, top_p: 1, min_p: 0, seed, max_tokens: 300, ...request });
    const chunks: ChatCompletionChunk[] = [];
    const result = await session.complete(valid, (c) => chunks.push(c), () => false);
    // Streamed, the call came in pieces that join to the completion's calls.
    expect(streamedCalls(chunks)).toEqual(result.choices[0].message.tool_calls ?? []);
    expect(chunks.map((c) => c.choices[0].delta.content ?? '').join('')).toBe(result.choices[0].message.content ?? '');
    return { result, model };
  }

  function expectValidCall(result: Awaited<ReturnType<typeof forced>>['result'], names: readonly string[]) {
    const choice = result.choices[0];
    expect(choice.finish_reason, choice.message.content ?? undefined).toBe('tool_calls');
    expect(choice.message.tool_calls).toHaveLength(1);
    expect(choice.message.content).toBeNull();
    const call = choice.message.tool_calls![0]!.function;
    expect(names).toContain(call.name);
    const schema = TOOLS.find((t) => t.function.name === call.name)!.function.parameters!;
    expect(schemaErrors(schema, JSON.parse(call.arguments)), call.arguments).toEqual([]);
    return call.name;
  }

  it("'required': every reply is one call to one of the tools with valid arguments (Qwen and Llama 3 formats)", async () => {
    const next = mulberry32(freshSeed('required tool calls'));
    for (const v of [qwen, llama]) {
      const closers = closingTokens(v.tokenizer);
      const called = new Set<string>();
      for (let trial = 0; trial < 12; trial++) {
        const { result, model } = await forced(v, closers, { tools: TOOLS, tool_choice: 'required' }, Math.floor(next() * 2 ** 31));
        expect(model.masked.every(Boolean)).toBe(true);
        called.add(expectValidCall(result, ['get_weather', 'add']));
      }
      // Both tools are reachable: the grammar is a choice, not the first tool.
      expect(called.size).toBe(2);
    }
  }, 600_000);

  it("'required' in the Mistral Nemo, Mistral [ARGS], Granite and Phi-4-mini formats: one valid call each time", async () => {
    const next = mulberry32(freshSeed('required tool calls, list formats'));
    for (const v of [nemo, mistralSmall, granite, phi4mini]) {
      const closers = closingTokens(v.tokenizer);
      for (let trial = 0; trial < 4; trial++) {
        const { result, model } = await forced(v, closers, { tools: TOOLS, tool_choice: 'required' }, Math.floor(next() * 2 ** 31));
        expect(model.masked.every(Boolean)).toBe(true);
        expectValidCall(result, ['get_weather', 'add']);
      }
    }
  }, 600_000);

  it('a forced call may write its marker as the control token the model was trained on, or as text', () => {
    const marker = nemo.tokenizer.encode('[TOOL_CALLS]', { parseSpecial: true });
    expect(marker).toHaveLength(1);
    expect(nemo.tokenizer.decode(marker)).toBe('');
    expect(nemo.tokenizer.decode(marker, { unparseTokens: new Set(marker) })).toBe('[TOOL_CALLS]');
    const grammar = requestGrammar({ tools: TOOLS, tool_choice: 'required' }, 'mistral-nemo')!;
    const kept = new GrammarConstraint(grammar, constraintVocabulary(nemo.tokenizer, [nemo.end], new Set(marker)));
    expect(maskHas(kept.allowed(), marker[0]!)).toBe(true);
    expect(maskHas(kept.allowed(), nemo.tokenizer.encode('[')[0]!)).toBe(true);
    // Without keeping it, a control token is markup a grammar never allows.
    const plain = new GrammarConstraint(grammar, constraintVocabulary(nemo.tokenizer, [nemo.end]));
    expect(maskHas(plain.allowed(), marker[0]!)).toBe(false);
  });

  it('a named function: every reply calls that one', async () => {
    const next = mulberry32(freshSeed('named tool calls'));
    const closers = closingTokens(qwen.tokenizer);
    for (let trial = 0; trial < 6; trial++) {
      const { result } = await forced(qwen, closers, { tools: TOOLS, tool_choice: { type: 'function', function: { name: 'add' } } }, Math.floor(next() * 2 ** 31));
      expectValidCall(result, ['add']);
    }
  }, 300_000);

  it("'auto' and 'none' put no constraint on the reply (so the checks above can fail)", async () => {
    const closers = closingTokens(qwen.tokenizer);
    for (const tool_choice of ['auto', 'none'] as const) {
      const { result, model } = await forced(qwen, closers, { tools: TOOLS, tool_choice, max_tokens: 30 }, 5);
      expect(model.masked.some(Boolean)).toBe(false);
      expect(result.choices[0].message.tool_calls).toBeUndefined();
    }
  });
});

describe('a follow-up with the call and its result', () => {
  const followUpCall1 = [
    { role: 'system', content: 'You help with weather.' },
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris", "unit": "celsius"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"temperature": 21}' },
  ];
  /** The same conversation as Python's transformers gives it to the template: arguments as an object. */
  const pythonCall1 = [
    followUpCall1[0],
    followUpCall1[1],
    { role: 'assistant', content: '', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris', unit: 'celsius' } } }] },
    followUpCall1[3],
  ];
  /** Mistral's templates take only 9-character ids. */
  const withId = <T,>(messages: T[], id: string): T[] => JSON.parse(JSON.stringify(messages).replaceAll('"call_1"', JSON.stringify(id)));

  it.each([
    ['Qwen2.5', () => qwen, 'call_1', '"city": "Paris"'],
    ['Llama 3.1', () => llama, 'call_1', '"city": "Paris"'],
    ['Mistral Nemo', () => nemo, 'a1b2c3d4e', '"city": "Paris"'],
    ['Mistral Small 3.2', () => mistralSmall, 'a1b2c3d4e', '"city": "Paris"'],
    ['Devstral', () => devstral, 'a1b2c3d4e', '"city": "Paris"'],
    // Granite 3.3's template shows an assistant turn's content only, not its calls; the result it shows.
    ['Granite 3.3', () => granite, 'call_1', '{"temperature": 21}'],
  ])('renders through the real %s template as Python jinja2 does', (_name, get, id, shown) => {
    const v = get();
    const followUp = withId(followUpCall1, id);
    const pythonMessages = withId(pythonCall1, id);
    const session = new ChatSession(new ScriptedModel(8192, [v.end]), v.tokenizer, v.metadata, { modelName: 'test' });
    const request = validateChatRequest({ messages: followUp, tools: TOOLS });
    const tokens = session.fitMessages(request.messages, 'error', 'chat', request.tools).tokens;
    const special = v.tokenizer.special;
    const [python] = renderWithPython([
      {
        template: v.metadata.get('tokenizer.chat_template') as string,
        context: {
          messages: pythonMessages,
          tools: TOOLS,
          add_generation_prompt: true,
          bos_token: special.bos !== null ? v.tokenizer.tokenText(special.bos) : '',
          eos_token: special.eos !== null ? v.tokenizer.tokenText(special.eos) : '',
        },
        now: [2026, 1, 2, 3, 4, 5],
      },
    ]);
    if (!python!.ok) throw new Error(python!.message);
    expect(python!.text).toContain(shown);
    expect(python!.text).toContain('get_weather');
    expect(v.tokenizer.decode(tokens, { unparseSpecial: true })).toBe(python!.text);
  });
});

describe("Phi-4-mini's template, which reads tools from the system message", () => {
  /** Python's json.dumps of `value`, the way Phi-4-mini's model card builds its `tools` string. */
  const pythonDumps = (value: unknown) => execFileSync(PYTHON, ['-c', 'import json, sys; sys.stdout.write(json.dumps(json.load(sys.stdin)))'], { input: JSON.stringify(value), encoding: 'utf8' });

  it.each([
    ['with a system prompt', true],
    ['without one (an empty system message carries the tools)', false],
  ])('renders tools, a call and its result as Python jinja2 does, %s', (_label, withSystem) => {
    const v = phi4mini;
    expect(v.tokenizer.encode('<|tool|>', { parseSpecial: true })).toHaveLength(1);
    const args = { city: 'Zürich', unit: 'celsius' };
    const messages = [
      ...(withSystem ? [{ role: 'system', content: 'You help with weather.' }] : []),
      { role: 'user', content: 'Weather in Zürich?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: JSON.stringify(args) } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temperature": 21}' },
    ];
    // As Phi-4-mini's model card passes them: the functions as a json.dumps string on the system
    // message; the earlier call as the model writes it.
    const pythonMessages = [
      { role: 'system', content: withSystem ? 'You help with weather.' : '', tools: pythonDumps(TOOLS.map((t) => t.function)) },
      messages.at(-3),
      { role: 'assistant', content: `functools${pythonDumps([{ name: 'get_weather', arguments: args }])}` },
      messages.at(-1),
    ];
    const session = new ChatSession(new ScriptedModel(8192, [v.end]), v.tokenizer, v.metadata, { modelName: 'test' });
    expect(session.toolFormat).toBe('phi4');
    const request = validateChatRequest({ messages, tools: TOOLS });
    const tokens = session.fitMessages(request.messages, 'error', 'chat', request.tools).tokens;
    const [python] = renderWithPython([{ template: PHI4_MINI_TEMPLATE, context: { messages: pythonMessages, add_generation_prompt: true, eos_token: '<|end|>' }, now: [2026, 1, 2, 3, 4, 5] }]);
    if (!python!.ok) throw new Error(python!.message);
    expect(python!.text).toContain('<|tool|>[{"name": "get_weather", "description": "The weather in a city."');
    expect(python!.text).toContain('<|assistant|>functools[{"name": "get_weather", "arguments": {"city": "Z\\u00fcrich", "unit": "celsius"}}]<|end|>');
    expect(v.tokenizer.decode(tokens, { unparseSpecial: true })).toBe(python!.text);
  });
});

describe('tool request validation', () => {
  const reject = (request: Record<string, unknown>) => {
    try {
      validateChatRequest({ messages: ASK, ...request });
    } catch (error) {
      return error as Error & { detail?: Record<string, unknown> };
    }
    throw new Error(`accepted ${JSON.stringify(request)}`);
  };

  it.each([
    [{ tools: TOOLS, tool_choice: { type: 'function', function: { name: 'nope' } } }, 'InvalidRequestError', 'tool_choice.function.name'],
    [{ tools: TOOLS, tool_choice: 'sometimes' }, 'InvalidRequestError', 'tool_choice'],
    [{ tools: TOOLS, parallel_tool_calls: 'no' }, 'InvalidRequestError', 'parallel_tool_calls'],
    [{ tool_choice: 'required' }, 'InvalidRequestError', 'tool_choice'],
    [{ tools: [TOOLS[0], TOOLS[0]] }, 'InvalidRequestError', 'tools[1].function.name'],
    [{ tools: [{ type: 'function', function: { name: 'has space' } }] }, 'InvalidRequestError', 'tools[0].function.name'],
    [{ tools: [{ type: 'retrieval' }] }, 'InvalidRequestError', 'tools[0].type'],
    [{ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { s: { type: 'number', multipleOf: 3 } } } } }] }, 'UnsupportedSchemaError', 'tools[0].function.parameters'],
    [{ tools: TOOLS, tool_choice: 'required', response_format: { type: 'json_object' } }, 'InvalidRequestError', 'tool_choice'],
    [{ messages: [{ role: 'tool', content: '1' }] }, 'InvalidRequestError', 'messages[0].tool_call_id'],
    [{ messages: [{ role: 'user', content: null }] }, 'InvalidRequestError', 'messages[0].content'],
    [{ messages: [{ role: 'user', content: 'x', tool_calls: [] }] }, 'InvalidRequestError', 'messages[0].tool_calls'],
    [{ messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: {} } }] }] }, 'InvalidRequestError', 'messages[0].tool_calls[0].function.arguments'],
  ])('rejects %j: %s naming %s', (request, name, param) => {
    const error = reject(request);
    expect(error.name).toBe(name);
    expect(error.detail?.param).toBe(param);
  });

  it('accepts the OpenAI shapes', () => {
    const valid = validateChatRequest({
      messages: [...ASK, { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'add', arguments: '{"a":1,"b":2}' } }] }, { role: 'tool', tool_call_id: 'c', content: '3' }],
      tools: TOOLS,
      tool_choice: { type: 'function', function: { name: 'add' } },
    });
    expect(valid.messages[1]).toEqual({ role: 'assistant', content: '', tool_calls: [{ id: 'c', type: 'function', function: { name: 'add', arguments: '{"a":1,"b":2}' } }] });
    expect(valid.messages[2]).toEqual({ role: 'tool', content: '3', tool_call_id: 'c' });
  });
});
