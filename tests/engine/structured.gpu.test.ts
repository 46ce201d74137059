import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatCompletionRequest, ModelSource } from '../../src/engine/api.ts';
import { Engine } from '../../src/engine/engine.ts';
import { makeTestModel } from '../../src/testing/make-model.ts';
import { schemaErrors } from '../../src/testing/json-schema-check.ts';
import { nodeGpu, nodeProbeOptions } from '../../src/node/webgpu.ts';

/**
 * Structured output on real WebGPU (Dawn): the grammar's mask goes to the device as a bitset
 * (logit_mask.wgsl) before the sampler, so a random-weight model's greedy reply is valid JSON.
 * The schema's language is finite, so greedy decoding must end inside it.
 */
let modelBytes: Uint8Array;
const engines: Engine[] = [];

const SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 6 },
    count: { type: 'integer' },
    ok: { type: 'boolean' },
    tags: { type: 'array', items: { enum: ['a', 'b', 'c'] }, maxItems: 3 },
  },
  required: ['name', 'count', 'ok', 'tags'],
  additionalProperties: false,
};
const REQUEST: ChatCompletionRequest = {
  messages: [{ role: 'user', content: 'Describe an item as JSON.' }],
  temperature: 0,
  max_tokens: 200,
  response_format: { type: 'json_schema', json_schema: { name: 'item', schema: SCHEMA, strict: true } },
};

async function reply(backend: 'webgpu' | 'cpu'): Promise<{ content: string; finish: string }> {
  const engine = new Engine({ gpu: nodeGpu(), runtime: 'test', probeOptions: nodeProbeOptions() });
  engines.push(engine);
  const source: ModelSource = { kind: 'file', file: new Blob([modelBytes as Uint8Array<ArrayBuffer>]), name: 'test-model.gguf' };
  await engine.loadModel(source, { contextLength: 512, backend });
  const result = await engine.chatCompletion(REQUEST);
  return { content: result.choices[0].message.content ?? '', finish: result.choices[0].finish_reason };
}

beforeAll(() => {
  modelBytes = makeTestModel({ arch: 'llama', embd: 64, layers: 2, heads: 4, kvHeads: 2, ff: 128, ctx: 512, seed: 11 });
});
afterAll(async () => {
  for (const engine of engines) await engine.unloadModel();
});

describe('structured output (Node, WebGPU)', () => {
  it('a constrained greedy reply on WebGPU is valid JSON for the schema, as on the CPU', async () => {
    const gpu = await reply('webgpu');
    expect(gpu.finish).toBe('stop');
    expect(schemaErrors(SCHEMA, JSON.parse(gpu.content)), gpu.content).toEqual([]);
    const cpu = await reply('cpu');
    expect(schemaErrors(SCHEMA, JSON.parse(cpu.content)), cpu.content).toEqual([]);
    expect(gpu.content).toBe(cpu.content);
  }, 300_000);
});
