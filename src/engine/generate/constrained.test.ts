/**
 * Structured output through the whole session: a model of random logits (src/testing/random-logits-model.ts)
 * under response_format and grammar requests.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { bytesSource, readGguf } from '../gguf/index.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { llamaCppSourceDir } from '../../testing/llama-ref.ts';
import { freshSeed, mulberry32 } from '../../testing/random.ts';
import { randomSchema, schemaErrors } from '../../testing/json-schema-check.ts';
import type { ChatCompletionRequest } from '../api.ts';
import { RandomLogitsModel, closingTokens } from '../../testing/random-logits-model.ts';
import { ChatSession } from './chat-session.ts';
import { validateChatRequest } from './validate-request.ts';

let tokenizer: Tokenizer;
let metadata: Map<string, unknown>;
let closers: Uint8Array;

beforeAll(async () => {
  const bytes = readFileSync(`${llamaCppSourceDir()}/models/ggml-vocab-qwen2.gguf`);
  metadata = (await readGguf(bytesSource(new Uint8Array(bytes)))).metadata as Map<string, unknown>;
  tokenizer = Tokenizer.fromGgufMetadata(metadata);
  closers = closingTokens(tokenizer);
});

async function generate(request: Omit<ChatCompletionRequest, 'messages'>, seed: number) {
  const model = new RandomLogitsModel(4096, mulberry32(seed), closers);
  const session = new ChatSession(model, tokenizer, metadata, { modelName: 'random' });
  const valid = validateChatRequest({ messages: [{ role: 'user', content: 'Answer in JSON.' }], temperature: 1, top_k: 0, top_p: 1, min_p: 0, seed, ...request });
  const result = await session.complete(valid, undefined, () => false);
  return { result, model };
}

describe('constrained generation in a chat session', () => {
  it('json_schema: every finished reply of a random-logits model parses and validates (random schemas, 152k vocabulary)', async () => {
    const next = mulberry32(freshSeed('session schemas'));
    let finished = 0;
    for (let trial = 0; trial < 16; trial++) {
      const schema = randomSchema(next, 2);
      const { result, model } = await generate({ max_tokens: 400, response_format: { type: 'json_schema', json_schema: { name: 'out', schema, strict: true } } }, Math.floor(next() * 2 ** 31));
      expect(model.masked.every(Boolean)).toBe(true);
      const reply = result.choices[0].message.content ?? '';
      if (result.choices[0].finish_reason !== 'stop') continue;
      finished++;
      expect(schemaErrors(schema, JSON.parse(reply)), `${JSON.stringify(schema)}\n${reply}`).toEqual([]);
    }
    expect(finished).toBeGreaterThan(12);
  }, 600_000);

  it('the same model without a constraint writes no JSON (so the check above can fail)', async () => {
    const { result, model } = await generate({ max_tokens: 30 }, 7);
    expect(model.masked.some(Boolean)).toBe(false);
    expect(() => JSON.parse(result.choices[0].message.content ?? '')).toThrow();
  });

  it('json_object and a GBNF grammar: the reply matches and ends with finish_reason stop', async () => {
    const { result } = await generate({ max_tokens: 400, response_format: { type: 'json_object' } }, 3);
    expect(result.choices[0].finish_reason).toBe('stop');
    expect(JSON.parse(result.choices[0].message.content ?? '')).toBeTypeOf('object');
    const g = await generate({ max_tokens: 50, grammar: 'root ::= ("yes" | "no") ", " [0-9]{2}' }, 4);
    expect(g.result.choices[0].message.content).toMatch(/^(yes|no), [0-9]{2}$/);
    expect(g.result.choices[0].finish_reason).toBe('stop');
  }, 120_000);

  it('refuses unusable constraints by name before generating', () => {
    const request = (extra: Record<string, unknown>) => () => validateChatRequest({ messages: [{ role: 'user', content: 'x' }], ...extra });
    expect(request({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', pattern: '(a)\\1' } } } })).toThrow(
      expect.objectContaining({ name: 'UnsupportedSchemaError', message: expect.stringMatching(/a backreference in the pattern.*Supported keywords/), detail: expect.objectContaining({ param: 'response_format.json_schema.schema' }) }),
    );
    expect(request({ response_format: { type: 'xml' } })).toThrow(expect.objectContaining({ name: 'InvalidRequestError', detail: expect.objectContaining({ param: 'response_format.type' }) }));
    expect(request({ response_format: { type: 'json_schema' } })).toThrow(expect.objectContaining({ name: 'InvalidRequestError' }));
    expect(request({ grammar: 'root ::= undefinedrule' })).toThrow(expect.objectContaining({ name: 'GrammarError', detail: expect.objectContaining({ param: 'grammar' }) }));
    expect(request({ grammar: 'root ::= "a"', response_format: { type: 'json_object' } })).toThrow(expect.objectContaining({ name: 'InvalidRequestError' }));
  });
});
