/**
 * The README's `window.hearth` examples (tool calling, JSON schema) run as written, through
 * createHearthClient over an Engine on the CPU backend with a small random-weight model that has
 * Qwen2's vocabulary and Qwen2.5's chat template. The constraint makes the outputs valid whatever
 * the weights, so the checks below hold for any seed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bytesSource, readGguf } from './gguf/index.ts';
import { Engine } from './engine.ts';
import { createHearthClient, type HearthClient } from './rpc/client.ts';
import { makeTestModel } from '../testing/make-model.ts';
import { llamaCppSourceDir } from '../testing/llama-ref.ts';
import { schemaErrors } from '../testing/json-schema-check.ts';
import { AsyncFunction, readmeExample } from '../testing/readme-example.ts';
import type { ChatCompletionRequest, ToolCall } from './api.ts';

/** Runs an example with `hearth` bound to `client`; returns what it logged and the requests it sent. */
async function runExample(code: string, client: HearthClient) {
  const logged: unknown[][] = [];
  const requests: ChatCompletionRequest[] = [];
  const results: Array<Awaited<ReturnType<HearthClient['chat']['completions']['create']>>> = [];
  const hearth = {
    chat: {
      completions: {
        create: async (request: ChatCompletionRequest) => {
          // A copy: the example goes on to change its messages array.
          requests.push(structuredClone(request));
          const result = await client.chat.completions.create(request as ChatCompletionRequest & { stream?: false });
          results.push(result);
          return result;
        },
      },
    },
  };
  await new AsyncFunction('hearth', 'console', code)(hearth, { log: (...args: unknown[]) => logged.push(args) });
  return { logged, requests, results };
}

let engine: Engine;

beforeAll(async () => {
  const dir = join(llamaCppSourceDir(), 'models');
  const vocab = await readGguf(bytesSource(new Uint8Array(readFileSync(join(dir, 'ggml-vocab-qwen2.gguf')))));
  const chatTemplate = readFileSync(join(dir, 'templates', 'Qwen-Qwen2.5-7B-Instruct.jinja'), 'utf8');
  const model = makeTestModel({ arch: 'qwen2', embd: 64, layers: 1, heads: 1, kvHeads: 1, ff: 96, ctx: 2048, seed: 3, vocab, chatTemplate, name: 'Readme model' });
  engine = new Engine({ gpu: undefined, runtime: 'test' });
  await engine.loadModel({ kind: 'file', file: new Blob([model as Uint8Array<ArrayBuffer>]), name: 'readme.gguf' }, { backend: 'cpu', threads: 1 });
}, 120_000);

describe('README examples', () => {
  it('tool calling: a forced call with valid arguments, its result sent back in a tool message, and a reply', async () => {
    const { logged, requests, results } = await runExample(readmeExample('tool-calling'), createHearthClient(engine));
    expect(results[0]!.choices[0].finish_reason).toBe('tool_calls');
    const calls = results[0]!.choices[0].message.tool_calls as ToolCall[];
    expect(calls.length).toBeGreaterThan(0);
    for (const call of calls) {
      expect(call.function.name).toBe('get_weather');
      const args = JSON.parse(call.function.arguments) as unknown;
      expect(schemaErrors(requests[0]!.tools![0]!.function.parameters as Record<string, unknown>, args)).toEqual([]);
    }
    // The second request carries the assistant's calls and one tool result per call, by id.
    const sent = requests[1]!.messages;
    expect(sent[1]).toMatchObject({ role: 'assistant', tool_calls: calls });
    expect(sent.slice(2).map((m) => m.role === 'tool' && m.tool_call_id)).toEqual(calls.map((c) => c.id));
    expect(results[1]!.usage.prompt_tokens).toBeGreaterThan(results[0]!.usage.prompt_tokens);
    expect(logged).toEqual([[calls, results[1]!.choices[0].message.content]]);
  }, 300_000);

  it('json_schema: the reply parses and validates against the schema', async () => {
    const { logged, requests, results } = await runExample(readmeExample('json-schema'), createHearthClient(engine));
    const format = requests[0]!.response_format;
    if (format?.type !== 'json_schema') throw new Error('the example sends no json_schema');
    // Written so that the reply finishes: the schema bounds every string and array.
    expect(results[0]!.choices[0].finish_reason).toBe('stop');
    const value = JSON.parse(results[0]!.choices[0].message.content as string) as unknown;
    expect(schemaErrors(format.json_schema.schema as Record<string, unknown>, value)).toEqual([]);
    expect(logged).toEqual([[value]]);
  }, 300_000);
});
