/**
 * `hearth serve` against the official `openai` npm client, a real client nobody here wrote:
 * streaming and not, the legacy completions endpoint, structured output, a client aborting mid-stream
 * (the server's record of the request shows the generation ended early), a waiting request dropped
 * when its client leaves, a full queue, and the error matrix (401, 400 naming the parameter, 404
 * model, bad JSON, 413, 405, CORS preflights) in OpenAI's error shape. The engine runs on the CPU
 * with a tiny random-weight model; replies are compared with the engine's own for the same request.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatCompletionChunk, ChatCompletionRequest, EngineApi } from '../engine/api.ts';
import type { Engine } from '../engine/engine.ts';
import { schemaErrors } from '../testing/json-schema-check.ts';
import { AsyncFunction, readmeExample } from '../testing/readme-example.ts';
import { TEST_MODEL_ID, loadTestEngine, startTestServer, until, type TestServer } from '../testing/test-server.ts';
import { request as httpRequest } from 'node:http';
import { SseParser, type SseEvent } from '../engine/rpc/sse.ts';
import { hostAllowed, type RequestRecord } from './server.ts';

const KEY = 'test-key-1234';
let engine: Engine;
let served: TestServer;
let client: OpenAI;

beforeAll(async () => {
  engine = await loadTestEngine();
  served = await startTestServer(engine, { apiKey: KEY });
  client = new OpenAI({ baseURL: served.baseURL, apiKey: KEY, maxRetries: 0 });
}, 60_000);

afterAll(async () => {
  await served?.server.close();
});

/** The next request record the server reports that satisfies `match`. */
function nextRecord(server: TestServer, match: (r: RequestRecord) => boolean = () => true): Promise<RequestRecord> {
  return new Promise((resolve) => {
    const stop = server.server.onRequestEnd((record) => {
      if (!match(record)) return;
      stop();
      resolve(record);
    });
  });
}

/** The engine's own reply to `request`, for comparison with what the server sent. */
async function engineReply(request: ChatCompletionRequest) {
  return engine.chatCompletion(request);
}

const hi = [{ role: 'user' as const, content: 'Tell me a story about a lighthouse.' }];

describe('hearth serve with the openai client', () => {
  it('answers a chat completion whole, as the engine does', async () => {
    const reply = await client.chat.completions.create({ model: TEST_MODEL_ID, messages: hi, max_tokens: 12, seed: 5, temperature: 0.9 });
    const reference = await engineReply({ messages: hi, max_tokens: 12, seed: 5, temperature: 0.9 });
    expect(reply.object).toBe('chat.completion');
    expect(reply.id).toMatch(/^chatcmpl-/);
    expect(reply.model).toBe(TEST_MODEL_ID);
    expect(reply.choices[0]!.message.content).toBe(reference.choices[0].message.content);
    expect(reply.choices[0]!.finish_reason).toBe(reference.choices[0].finish_reason);
    expect(reply.usage?.completion_tokens).toBe(reference.usage.completion_tokens);
    expect(reply.usage?.prompt_tokens).toBe(reference.usage.prompt_tokens);
  });

  it('streams the same reply as server-sent events, usage included when asked', async () => {
    const request = { messages: hi, max_tokens: 12, seed: 6, temperature: 0.9 };
    const whole = await client.chat.completions.create({ model: TEST_MODEL_ID, ...request });
    const stream = await client.chat.completions.create({ model: TEST_MODEL_ID, ...request, stream: true, stream_options: { include_usage: true } });
    let text = '';
    const ids = new Set<string>();
    const finishes: Array<string | null> = [];
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      ids.add(chunk.id);
      expect(chunk.object).toBe('chat.completion.chunk');
      expect(chunk.model).toBe(TEST_MODEL_ID);
      if (chunk.choices.length === 0) usage = chunk.usage;
      for (const choice of chunk.choices) {
        text += choice.delta.content ?? '';
        finishes.push(choice.finish_reason);
      }
    }
    expect(ids.size).toBe(1);
    expect(text).toBe(whole.choices[0]!.message.content);
    // One finish reason, on the last choice chunk.
    expect(finishes.filter((f) => f !== null)).toEqual([whole.choices[0]!.finish_reason]);
    expect(finishes.at(-1)).toBe(whole.choices[0]!.finish_reason);
    expect(usage?.completion_tokens).toBe(whole.usage?.completion_tokens);

    // On the wire: server-sent events, each `data: {json}` and a blank line, `data: [DONE]` last.
    const raw = await fetch(`${served.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ ...request, stream: true }),
    });
    expect(raw.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = (await raw.text()).split('\n\n');
    expect(events.pop()).toBe('');
    expect(events.pop()).toBe('data: [DONE]');
    const chunks = events.map((e) => {
      expect(e).toMatch(/^data: \{/);
      return JSON.parse(e.slice('data: '.length)) as ChatCompletionChunk;
    });
    expect(chunks.map((c) => c.choices[0].delta.content ?? '').join('')).toBe(text);
  });

  it('continues text on /v1/completions, streamed and not', async () => {
    const prompt = 'Once upon a time';
    const reply = await client.completions.create({ model: TEST_MODEL_ID, prompt, max_tokens: 10, seed: 3, temperature: 0.8 });
    const reference = await engineReply({ messages: [{ role: 'user', content: prompt }], prompt_format: 'text', max_tokens: 10, seed: 3, temperature: 0.8 });
    expect(reply.object).toBe('text_completion');
    expect(reply.choices[0]!.text).toBe(reference.choices[0].message.content);
    expect(reply.usage?.prompt_tokens).toBe(reference.usage.prompt_tokens);
    const stream = await client.completions.create({ model: TEST_MODEL_ID, prompt, max_tokens: 10, seed: 3, temperature: 0.8, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    expect(text).toBe(reply.choices[0]!.text);
    // OpenAI's default for this endpoint is 16 tokens.
    const short = await client.completions.create({ model: TEST_MODEL_ID, prompt, seed: 3 });
    expect(short.usage?.completion_tokens).toBeLessThanOrEqual(16);
  });

  it('constrains the reply with response_format, streamed and not', async () => {
    const schema = {
      type: 'object',
      properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer' }, tags: { type: 'array', items: { enum: ['a', 'b'] }, maxItems: 3 } },
      required: ['name', 'age', 'tags'],
      additionalProperties: false,
    };
    const response_format = { type: 'json_schema' as const, json_schema: { name: 'person', schema, strict: true } };
    for (const seed of [1, 2]) {
      const reply = await client.chat.completions.create({ model: TEST_MODEL_ID, messages: hi, seed, response_format, max_tokens: 200 });
      expect(reply.choices[0]!.finish_reason).toBe('stop');
      expect(schemaErrors(schema, JSON.parse(reply.choices[0]!.message.content!))).toEqual([]);
    }
    const stream = await client.chat.completions.create({ model: TEST_MODEL_ID, messages: hi, seed: 3, response_format: { type: 'json_object' }, max_tokens: 200, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    const value: unknown = JSON.parse(text);
    expect(typeof value === 'object' && value !== null && !Array.isArray(value)).toBe(true);
  });

  it('answers a forced tool call in the OpenAI shape, streamed and not', async () => {
    const tools = [
      {
        type: 'function' as const,
        function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 20 } }, required: ['city'], additionalProperties: false } },
      },
    ];
    const request = { model: TEST_MODEL_ID, messages: hi, tools, tool_choice: 'required' as const, seed: 4, max_tokens: 200 };
    const reply = await client.chat.completions.create(request);
    expect(reply.choices[0]!.finish_reason).toBe('tool_calls');
    const [call] = reply.choices[0]!.message.tool_calls!;
    expect(call!.type === 'function' && call!.function.name).toBe('get_weather');
    const args: unknown = JSON.parse(call!.type === 'function' ? call!.function.arguments : '');
    expect(schemaErrors(tools[0]!.function.parameters, args)).toEqual([]);
    const stream = await client.chat.completions.create({ ...request, stream: true });
    const calls: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    for await (const chunk of stream) calls.push(...(chunk.choices[0]?.delta.tool_calls ?? []));
    // Arguments stream piece by piece, as the model writes them; the first piece names the call.
    expect(calls[0]?.function?.name).toBe('get_weather');
    expect(calls.every((c) => c.index === 0)).toBe(true);
    expect(calls.map((c) => c.function?.arguments ?? '').join('')).toBe(call!.type === 'function' ? call!.function.arguments : undefined);
  });

  it('refuses a prompt that does not fit with 400 context_length_exceeded, streamed or not', async () => {
    const long = [{ role: 'user' as const, content: 'word '.repeat(3000) }];
    for (const stream of [false, true]) {
      const request = { model: TEST_MODEL_ID, messages: long, context_overflow: 'error', stream } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming;
      const error = await client.chat.completions.create(request).catch((e: unknown) => e);
      expect(error, `stream ${stream}`).toBeInstanceOf(OpenAI.BadRequestError);
      expect(error).toMatchObject({ code: 'context_length_exceeded', param: 'messages' });
    }
  });

  it('lists and retrieves the served model; an unknown model is a 404', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual([TEST_MODEL_ID]);
    expect((await client.models.retrieve(TEST_MODEL_ID)).id).toBe(TEST_MODEL_ID);
    await expect(client.models.retrieve('gpt-4o')).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    const error = await client.chat.completions.create({ model: 'gpt-4o', messages: hi }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error).toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
  });

  it('refuses a missing or wrong API key with 401; /health needs none', async () => {
    const noKey = new OpenAI({ baseURL: served.baseURL, apiKey: 'wrong-key', maxRetries: 0 });
    const wrong = await noKey.chat.completions.create({ model: TEST_MODEL_ID, messages: hi }).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(wrong).toMatchObject({ status: 401, code: 'invalid_api_key' });
    const missing = await fetch(`${served.baseURL}/models`);
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ error: { type: 'authentication_error', code: 'missing_api_key' } });
    const health = await fetch(`${served.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', model: TEST_MODEL_ID });
  });

  it('names the parameter of an invalid or unknown field with 400', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ temperature: -1 }, 'temperature'],
      [{ max_tokens: 0 }, 'max_tokens'],
      [{ n: 2 }, 'n'],
      [{ frobnicate: true }, 'frobnicate'],
      [{ messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role'],
      [{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', patternProperties: { a: {} } } } } }, 'response_format.json_schema.schema'],
      [{ stream_options: { include_usage: true } }, 'stream_options'],
      [{ max_tokens: 4, max_completion_tokens: 4 }, 'max_completion_tokens'],
      [{ request_id: 'mine' }, 'request_id'],
    ];
    for (const [fields, param] of cases) {
      const request = { model: TEST_MODEL_ID, messages: hi, ...fields } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming;
      const error = await client.chat.completions.create(request).catch((e: unknown) => e);
      expect(error, param).toBeInstanceOf(OpenAI.BadRequestError);
      expect((error as InstanceType<typeof OpenAI.APIError>).param, JSON.stringify(fields)).toBe(param);
      expect((error as InstanceType<typeof OpenAI.APIError>).type).toBe('invalid_request_error');
    }
    const prompt = await client.completions.create({ model: TEST_MODEL_ID, prompt: [1, 2, 3] }).catch((e: unknown) => e);
    expect(prompt).toMatchObject({ status: 400, param: 'prompt' });
    const echo = await client.completions.create({ model: TEST_MODEL_ID, prompt: 'x', echo: true }).catch((e: unknown) => e);
    expect(echo).toMatchObject({ status: 400, param: 'echo' });
    // The server still answers.
    expect((await client.chat.completions.create({ model: TEST_MODEL_ID, messages: hi, max_tokens: 2 })).choices).toHaveLength(1);
  });

  it('answers bad JSON, oversized bodies, unknown routes and wrong methods in the OpenAI error shape', async () => {
    const auth = { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' };
    const post = (body: string, path = '/chat/completions') => fetch(`${served.baseURL}${path}`, { method: 'POST', headers: auth, body });
    const shapes: Array<[Response, number, string]> = [
      [await post('{"messages": ['), 400, 'invalid_json'],
      [await post('[1, 2]'), 400, 'invalid_json'],
      [await post(JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(5 * 1024 * 1024) }] })), 413, 'request_too_large'],
      [await post('{}', '/embeddings'), 404, 'unknown_url'],
      [await fetch(`${served.baseURL}/chat/completions`, { headers: auth }), 405, 'method_not_allowed'],
    ];
    for (const [response, status, code] of shapes) {
      expect(response.status, code).toBe(status);
      const body = (await response.json()) as { error: Record<string, unknown> };
      expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
      expect(body.error.code).toBe(code);
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
    }
  });

  it('answers odd values of every field with 200 or 4xx, never a 5xx, and keeps serving', async () => {
    const auth = { Authorization: `Bearer ${KEY}` };
    const values: unknown[] = [null, -1.5, 'x', {}, [{}], 'a'.repeat(300)];
    const fields = [
      'messages', 'prompt', 'stream', 'max_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'repetition_penalty', 'presence_penalty', 'frequency_penalty',
      'seed', 'stop', 'context_overflow', 'prompt_format', 'model', 'n', 'logprobs', 'response_format', 'grammar', 'tools', 'tool_choice',
      'stream_options', 'max_completion_tokens', 'user', 'echo', 'suffix', 'best_of',
    ];
    const failures: string[] = [];
    const send = async (path: string, body: string) => {
      const response = await fetch(`${served.baseURL}${path}`, { method: 'POST', headers: auth, body });
      await response.text();
      if (response.status >= 500) failures.push(`${path} ${body.slice(0, 120)}: ${response.status}`);
    };
    for (const field of fields) {
      for (const value of values) {
        await send('/chat/completions', JSON.stringify({ messages: hi, max_tokens: 1, [field]: value }));
        await send('/completions', JSON.stringify({ prompt: 'Hi', max_tokens: 1, [field]: value }));
      }
    }
    // Nesting deeper than the schema and grammar compilers recurse.
    const deepSchema = '{"type":"object","properties":{"a":'.repeat(5000) + '{}' + '}}'.repeat(5000);
    await send('/chat/completions', `{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":${deepSchema}}}}`);
    await send('/chat/completions', JSON.stringify({ messages: hi, grammar: `root ::= ${'('.repeat(5000)}"a"${')'.repeat(5000)}` }));
    await send('/chat/completions', '['.repeat(100_000) + ']'.repeat(100_000));
    // The compilers' own nesting limit names the problem (not a stack overflow caught after the fact).
    for (const body of [
      `{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":${deepSchema}}}}`,
      JSON.stringify({ messages: hi, grammar: `root ::= ${'('.repeat(5000)}"a"${')'.repeat(5000)}` }),
    ]) {
      const response = await fetch(`${served.baseURL}/chat/completions`, { method: 'POST', headers: auth, body });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(/nested more than 100 deep/);
    }
    const badEscape = await fetch(`${served.baseURL}/models/%E0%A4%A`, { headers: auth });
    expect(badEscape.status).toBe(404);
    expect(failures).toEqual([]);
    expect((await client.chat.completions.create({ model: TEST_MODEL_ID, messages: hi, max_tokens: 2 })).choices).toHaveLength(1);
  }, 60_000);

  it('answers CORS preflights without the key, so a page on another origin can call it', async () => {
    const preflight = await fetch(`${served.baseURL}/chat/completions`, {
      method: 'OPTIONS',
      headers: {
        Origin: 'https://app.example',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization,content-type,x-stainless-os',
        'Access-Control-Request-Private-Network': 'true',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
    expect(preflight.headers.get('access-control-allow-headers')).toBe('authorization,content-type,x-stainless-os');
    expect(preflight.headers.get('access-control-allow-private-network')).toBe('true');
  });

  it('allows only the origins it is given when given a list', async () => {
    const only = await startTestServer(engine, { corsOrigins: ['https://app.example'] });
    try {
      const allowed = await fetch(`${only.url}/health`, { headers: { Origin: 'https://app.example' } });
      expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
      const other = await fetch(`${only.url}/health`, { headers: { Origin: 'https://evil.example' } });
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      // A simple POST needs no preflight: it is refused rather than run with its answer hidden.
      const simple = await fetch(`${only.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { Origin: 'https://evil.example', 'Content-Type': 'text/plain' },
        body: JSON.stringify({ messages: hi, max_tokens: 1 }),
      });
      expect(simple.status).toBe(403);
      expect(only.server.state().counts.finished).toBe(0);
      // No Origin header (curl, the openai client in Node) is not a browser page: allowed.
      expect((await fetch(`${only.baseURL}/models`)).status).toBe(200);
    } finally {
      await only.server.close();
    }
  });

  it('bound to loopback, answers only Host values naming loopback at its port or the allowed names (DNS rebinding)', async () => {
    const guarded = await startTestServer(engine, { allowedHosts: ['hearth.internal', 'proxy.example:9000'] });
    const port = Number(new URL(guarded.url).port);
    /** Node's fetch may not set Host: a raw request does. */
    const statusFor = (host: string | null, method = 'GET', path = '/v1/models') =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, method, path, setHost: host !== null, headers: host === null ? {} : { Host: host } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', reject);
        req.end();
      });
    try {
      for (const ok of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`, 'hearth.internal', 'hearth.internal:1234', 'proxy.example:9000']) {
        expect(await statusFor(ok), ok).toBe(200);
      }
      for (const bad of ['attacker.example', `attacker.example:${port}`, `localhost:${port + 1}`, 'localhost', 'proxy.example', 'proxy.example:9001', `evil@localhost:${port}`]) {
        expect(await statusFor(bad), String(bad)).toBe(403);
      }
      // No Host at all: Node's HTTP/1.1 parser refuses it before the server sees it.
      expect(await statusFor(null)).toBe(400);
      // The same check before the route: preflights and /health too.
      expect(await statusFor('attacker.example', 'OPTIONS', '/v1/chat/completions')).toBe(403);
      expect(await statusFor('attacker.example', 'GET', '/health')).toBe(403);
      expect(await statusFor(`localhost:${port}`, 'GET', '/health')).toBe(200);
      expect(guarded.server.state().counts.finished).toBe(0);
      expect(hostAllowed(`localhost:${port}`, port, [])).toBe(true);
      expect(hostAllowed('localhost:80', 80, [])).toBe(true);
      expect(hostAllowed('localhost', 80, [])).toBe(true);
    } finally {
      await guarded.server.close();
    }
  });

  it('aborts the generation when the client stops reading mid-stream, or gives up on a whole reply', async () => {
    // A request that runs to its token limit when left alone.
    const request = { messages: hi, max_tokens: 400, seed: 11, temperature: 1 };
    let seed = request.seed;
    while ((await engineReply({ ...request, seed })).choices[0].finish_reason !== 'length' && seed < request.seed + 10) seed++;
    expect((await engineReply({ ...request, seed })).choices[0].finish_reason).toBe('length');
    const stream = await client.chat.completions.create({ model: TEST_MODEL_ID, ...request, seed, stream: true });
    let first: ChatCompletionChunk | undefined;
    let ended: Promise<RequestRecord> | undefined;
    for await (const chunk of stream) {
      first = chunk as unknown as ChatCompletionChunk;
      ended = nextRecord(served, (r) => r.id === chunk.id);
      break; // ends the stream: the client closes the connection
    }
    const record = await ended!;
    expect(first?.choices[0].delta.content).toBeTruthy();
    expect(record).toMatchObject({ outcome: 'aborted', finish_reason: 'abort', stream: true });
    expect(record.completion_tokens).toBeLessThan(request.max_tokens);
    expect(served.server.state().running).toBeNull();

    // A whole (non-streamed) reply whose client gives up is aborted the same way.
    const giveUp = new AbortController();
    const ended2 = nextRecord(served, (r) => !r.stream);
    const waiting = client.chat.completions.create({ model: TEST_MODEL_ID, ...request, seed }, { signal: giveUp.signal });
    await until(() => served.server.state().running !== null);
    giveUp.abort();
    await expect(waiting).rejects.toBeInstanceOf(OpenAI.APIUserAbortError);
    const record2 = await ended2;
    expect(record2).toMatchObject({ outcome: 'aborted', finish_reason: 'abort' });
    expect(record2.completion_tokens).toBeLessThan(request.max_tokens);
    // The engine is free for the next request.
    expect((await client.chat.completions.create({ model: TEST_MODEL_ID, messages: hi, max_tokens: 2 })).choices[0]!.finish_reason).toBeTruthy();
  });
});

describe('the README example of hearth serve', () => {
  it('runs as written against a server started as it says', async () => {
    const readme = await startTestServer(engine, { modelId: 'model', apiKey: 'secret' });
    const records: RequestRecord[] = [];
    readme.server.onRequestEnd((r) => records.push(r));
    // The example names the default port; this server has a free one.
    class ExampleOpenAI extends OpenAI {
      constructor(options: { baseURL: string; apiKey: string }) {
        expect(options.baseURL).toBe('http://127.0.0.1:8080/v1');
        super({ ...options, baseURL: readme.baseURL, maxRetries: 0 });
      }
    }
    let written = '';
    const logged: unknown[][] = [];
    try {
      const process = { stdout: { write: (text: string) => void (written += text) } };
      await new AsyncFunction('OpenAI', 'process', 'console', readmeExample('serve'))(ExampleOpenAI, process, { log: (...args: unknown[]) => logged.push(args) });
    } finally {
      await readme.server.close();
    }
    expect(records.map((r) => [r.stream, r.outcome])).toEqual([[true, 'finished'], [false, 'finished']]);
    expect(written.length > 0).toBe(records[0]!.completion_tokens! > 0);
    const schema = { type: 'object', properties: { title: { type: 'string', maxLength: 40 } }, required: ['title'], additionalProperties: false };
    expect(logged).toHaveLength(records[1]!.finish_reason === 'stop' ? 1 : 0);
    for (const [value] of logged) expect(schemaErrors(schema, value)).toEqual([]);
  });
});

describe('hearth serve queue', () => {
  /** The engine behind a gate: requests reach it only once `open` is called. */
  function gated(inner: EngineApi) {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const seen: string[] = [];
    const wrapped: EngineApi = Object.create(inner, {
      chatCompletion: {
        value: async (request: ChatCompletionRequest, onChunk?: (chunk: ChatCompletionChunk) => void) => {
          seen.push(request.request_id!);
          await gate;
          return inner.chatCompletion(request, onChunk);
        },
      },
    });
    return { engine: wrapped, open, seen };
  }

  it('sends SSE keep-alive comments while a streamed request waits, which the openai client and the app\'s parser skip', async () => {
    const { engine: gatedEngine, open } = gated(engine);
    const slow = await startTestServer(gatedEngine, { keepAliveMs: 5 });
    const body = { model: TEST_MODEL_ID, messages: hi, max_tokens: 3, seed: 1, stream: true };
    try {
      const response = await fetch(`${slow.baseURL}/chat/completions`, { method: 'POST', body: JSON.stringify(body) });
      // The comment comes before any token: the headers went with it.
      expect(response.status).toBe(200);
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      while ((text.match(/: keep-alive\n\n/g) ?? []).length < 2) text += decoder.decode((await reader.read()).value, { stream: true });
      expect(text).not.toContain('data:');
      // The openai client, waiting behind the same gate, reads through its comments too.
      const openai = new OpenAI({ baseURL: slow.baseURL, apiKey: 'none', maxRetries: 0 });
      const second = openai.chat.completions.create({ ...body, stream: true });
      await until(() => slow.server.state().waiting === 1);
      open();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      const events: SseEvent[] = [];
      const parser = new SseParser((e) => events.push(e));
      parser.push(text);
      parser.end();
      expect(events.at(-1)!.data).toBe('[DONE]');
      const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data) as { choices: Array<{ delta: { content?: string } }> });
      const reply = await engine.chatCompletion({ messages: hi, max_tokens: 3, seed: 1 });
      expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(reply.choices[0].message.content);
      let streamed = '';
      for await (const chunk of await second) streamed += chunk.choices[0]?.delta.content ?? '';
      expect(streamed).toBe(reply.choices[0].message.content);
    } finally {
      open();
      await slow.server.close();
    }
  });

  it('drops a waiting request whose client leaves, refuses past the limit with 503, then serves in order', async () => {
    const { engine: gatedEngine, open, seen } = gated(engine);
    const busy = await startTestServer(gatedEngine, { maxWaiting: 2 });
    const openai = new OpenAI({ baseURL: busy.baseURL, apiKey: 'none', maxRetries: 0 });
    try {
      const ask = (content: string, signal?: AbortSignal) =>
        openai.chat.completions.create({ model: TEST_MODEL_ID, messages: [{ role: 'user', content }], max_tokens: 3, seed: 1 }, signal ? { signal } : {});
      const running = ask('first');
      await until(() => busy.server.state().running !== null);
      const leaving = new AbortController();
      const left = ask('second', leaving.signal);
      const third = ask('third');
      await until(() => busy.server.state().waiting === 2);
      // Full: two wait behind the running one.
      await expect(ask('fourth')).rejects.toMatchObject({ status: 503, code: 'queue_full' });

      const dropped = nextRecord(busy, (r) => r.outcome === 'dropped');
      leaving.abort();
      await expect(left).rejects.toBeInstanceOf(OpenAI.APIUserAbortError);
      await dropped;
      expect(busy.server.state().waiting).toBe(1);

      open();
      const [a, c] = await Promise.all([running, third]);
      // The dropped request never reached the engine; the others ran in arrival order.
      expect(seen).toEqual([a.id, c.id]);
      expect(busy.server.state().counts).toMatchObject({ finished: 2, dropped: 1, aborted: 0, failed: 0 });
    } finally {
      open();
      await busy.server.close();
    }
  });
});
