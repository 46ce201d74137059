/**
 * A bounded load test of `hearth serve`: 8 clients (the official `openai` client) send 3 requests
 * each at once, half of them streamed. Every request must complete (a stream ends with its finish
 * reason and `[DONE]`), none may be lost, and none mixed up: each reply must equal the reply to the
 * same request run alone, one after another, before the load (distinct prompts and seeds, so a reply
 * sent to the wrong client would not match). Requests per second are printed, never asserted.
 *
 * Every prompt starts with a different letter, so whatever ran before, each request reuses the same
 * cached prefix (the chat template's header) and computes the same numbers in both runs.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../engine/engine.ts';
import { TEST_MODEL_ID, loadTestEngine, startTestServer, type TestServer } from '../testing/test-server.ts';

const CLIENTS = 8;
const PER_CLIENT = 3;

let engine: Engine;
let served: TestServer;

beforeAll(async () => {
  engine = await loadTestEngine();
  served = await startTestServer(engine);
}, 60_000);

afterAll(async () => {
  await served?.server.close();
});

interface Job {
  key: string;
  prompt: string;
  seed: number;
  stream: boolean;
}

interface Outcome {
  text: string;
  finish: string | null;
  tokens: number | undefined;
  id: string;
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

function jobs(): Job[][] {
  return Array.from({ length: CLIENTS }, (_, c) =>
    Array.from({ length: PER_CLIENT }, (_, r) => {
      const n = c * PER_CLIENT + r;
      return { key: `${c}.${r}`, prompt: `${LETTERS[n]} is the letter of client ${c}, request ${r}.`, seed: 1000 + n, stream: n % 2 === 0 };
    }),
  );
}

async function run(client: OpenAI, job: Job): Promise<Outcome> {
  const request = { model: TEST_MODEL_ID, messages: [{ role: 'user' as const, content: job.prompt }], max_tokens: 12, seed: job.seed, temperature: 1 };
  if (!job.stream) {
    const reply = await client.chat.completions.create(request);
    return { text: reply.choices[0]!.message.content ?? '', finish: reply.choices[0]!.finish_reason, tokens: reply.usage?.completion_tokens, id: reply.id };
  }
  const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish: string | null = null;
  let tokens: number | undefined;
  const ids = new Set<string>();
  for await (const chunk of stream) {
    ids.add(chunk.id);
    for (const choice of chunk.choices) {
      text += choice.delta.content ?? '';
      finish = choice.finish_reason ?? finish;
    }
    if (chunk.choices.length === 0) tokens = chunk.usage?.completion_tokens;
  }
  // Every chunk of a stream belongs to one request.
  expect(ids.size).toBe(1);
  return { text, finish, tokens, id: [...ids][0]! };
}

describe('hearth serve under load', () => {
  it(`serves ${CLIENTS} concurrent clients x ${PER_CLIENT} requests, none lost or mixed up`, async () => {
    const plan = jobs();
    // Warms the cache's template header, as every later request finds it.
    const client = new OpenAI({ baseURL: served.baseURL, apiKey: 'none', maxRetries: 0 });
    await run(client, { key: 'warm', prompt: 'z warm-up', seed: 1, stream: false });

    const alone = new Map<string, Outcome>();
    for (const job of plan.flat()) alone.set(job.key, await run(client, job));

    const clients = plan.map(() => new OpenAI({ baseURL: served.baseURL, apiKey: 'none', maxRetries: 0 }));
    const before = served.server.state().counts;
    // How many requests waited behind a running one, seen as each ended: shows the run was concurrent.
    let peakWaiting = 0;
    const stop = served.server.onRequestEnd(() => (peakWaiting = Math.max(peakWaiting, served.server.state().waiting)));
    const started = performance.now();
    const results = await Promise.all(
      plan.map(async (list, c) => {
        const out: Array<[Job, Outcome]> = [];
        for (const job of list) out.push([job, await run(clients[c]!, job)]);
        return out;
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    stop();

    const all = results.flat();
    expect(all).toHaveLength(CLIENTS * PER_CLIENT);
    for (const [job, outcome] of all) {
      const reference = alone.get(job.key)!;
      expect(outcome.finish, job.key).toMatch(/^(stop|length)$/);
      expect(outcome.tokens, job.key).toBe(reference.tokens);
      expect(outcome.text, job.key).toBe(reference.text);
    }
    expect(new Set(all.map(([, o]) => o.id)).size).toBe(all.length);
    const after = served.server.state();
    expect(after.counts.finished - before.finished).toBe(CLIENTS * PER_CLIENT);
    expect(after.counts.failed + after.counts.aborted + after.counts.dropped).toBe(0);
    expect(after).toMatchObject({ running: null, waiting: 0 });

    const tokens = all.reduce((sum, [, o]) => sum + (o.tokens ?? 0), 0);
    console.log(
      `hearth serve load: ${all.length} requests from ${CLIENTS} concurrent clients (half streamed), 0 errors, ` +
        `${(all.length / seconds).toFixed(1)} requests/s, ${(tokens / seconds).toFixed(0)} generated tokens/s, up to ${peakWaiting} waiting ` +
        '(tiny random model, CPU backend, 1 thread)',
    );
  }, 120_000);
});
