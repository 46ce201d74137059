/**
 * The remote engine against a real HTTP server in this process (node:http), written here to behave
 * as OpenAI-compatible servers do and misbehave as they can: the client code is the app's own
 * (createChatClient over ServerChatEngine), so streaming, stop and errors are those the chat sees.
 * The browser-only failure (CORS) is driven with a fetch that refuses as a browser does.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createChatClient } from './client.ts';
import {
  listServerModels,
  normalizeServerUrl,
  ServerAuthError,
  ServerChatEngine,
  ServerCorsError,
  ServerModelNotFoundError,
  ServerResponseError,
  ServerStreamError,
  ServerUnreachableError,
  ServerUrlError,
} from './openai-server.ts';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;
let handler: Handler = (_req, res) => res.end();
let server: Server;
let base: string;
/** Requests the server saw, and whether each was closed by the client before it ended. */
const seen: Array<{ url: string; auth: string | undefined; body: string; closedEarly: Promise<boolean> }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const closedEarly = new Promise<boolean>((resolve) => res.on('close', () => resolve(!res.writableFinished)));
      seen.push({ url: req.url ?? '', auth: req.headers.authorization, body, closedEarly });
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
afterEach(() => {
  seen.length = 0;
  vi.unstubAllGlobals();
});

const chunk = (content: string, finish: string | null = null) => `data: ${JSON.stringify({ id: 'cmpl-1', object: 'chat.completion.chunk', created: 5, model: 'served-model', choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n\n`;

function sse(res: ServerResponse) {
  res.writeHead(200, { 'Content-Type': 'text/event-stream' });
}

const messages = [{ role: 'user' as const, content: 'Hi' }];

describe('listServerModels', () => {
  it("reads OpenAI's model list, sending the key to that server", async () => {
    handler = (_req, res) => res.end(JSON.stringify({ object: 'list', data: [{ id: 'a', object: 'model' }, { id: 'b', object: 'model' }] }));
    expect(await listServerModels({ baseUrl: base, apiKey: 'sk-1' })).toEqual(['a', 'b']);
    expect(seen[0]).toMatchObject({ url: '/v1/models', auth: 'Bearer sk-1' });
  });

  it('names a refused key (401), a wrong URL (404) and an answer that is not a model list', async () => {
    handler = (_req, res) => {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'Invalid API key', type: 'invalid_request_error' } }));
    };
    const refused = listServerModels({ baseUrl: base, apiKey: 'wrong' });
    await expect(refused).rejects.toThrow(ServerAuthError);
    await expect(refused).rejects.toThrow(/refused the API key.*Invalid API key/);
    handler = (_req, res) => {
      res.writeHead(404);
      res.end('Not Found');
    };
    await expect(listServerModels({ baseUrl: base })).rejects.toThrow(ServerResponseError);
    handler = (_req, res) => res.end('<html>hello</html>');
    await expect(listServerModels({ baseUrl: base })).rejects.toThrow(/other than OpenAI's model list/);
  });

  it('names a server that is down', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await expect(listServerModels({ baseUrl: `http://127.0.0.1:${port}` })).rejects.toThrow(ServerUnreachableError);
    await expect(listServerModels({ baseUrl: `http://127.0.0.1:${port}` })).rejects.not.toThrow(/Private Network Access/);
    // From a page on another machine, a local server may also be blocked by the browser: say so.
    vi.stubGlobal('location', { origin: 'https://hearth.example' });
    await expect(listServerModels({ baseUrl: `http://127.0.0.1:${port}` })).rejects.toThrow(/Private Network Access/);
  });

  it('tells CORS refused from down when the page is on another origin', async () => {
    vi.stubGlobal('location', { origin: 'http://app.example' });
    // As a browser does: a CORS request to a server without CORS headers fails with a bare
    // TypeError, while a no-cors one gets an (opaque) answer.
    const browserFetch = (url: string, init?: RequestInit) => (init?.mode === 'no-cors' ? fetch(url, init) : Promise.reject(new TypeError('Failed to fetch')));
    handler = (_req, res) => res.end('{}');
    const error = await listServerModels({ baseUrl: base }, { fetch: browserFetch }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServerCorsError);
    expect((error as Error).message).toMatch(/CORS.*llama-server/);
  });
});

describe('ServerChatEngine through the chat client', () => {
  const client = (apiKey?: string) => createChatClient(new ServerChatEngine({ baseUrl: base, apiKey }, 'served-model'));

  it('streams chunks split across writes and [DONE], and sends the request in OpenAI shape', async () => {
    handler = (_req, res) => {
      sse(res);
      const text = chunk('Hel') + ': ping\n\n' + chunk('lo') + chunk(' world', 'stop') +
        `data: ${JSON.stringify({ id: 'cmpl-1', choices: [], usage: { prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 } })}\n\n` + 'data: [DONE]\n\n';
      // Writes of 7 bytes: events, lines and JSON all arrive in pieces.
      let i = 0;
      const next = () => {
        if (i >= text.length) return res.end();
        res.write(text.slice(i, (i += 7)));
        setImmediate(next);
      };
      next();
    };
    const stream = client('sk-2').chat.completions.create({ messages, temperature: 0, max_tokens: 8, response_format: { type: 'json_object' }, stream: true });
    const deltas: string[] = [];
    for await (const c of stream) deltas.push(c.choices[0].delta.content ?? '');
    expect(deltas.join('')).toBe('Hello world');
    expect(deltas.filter(Boolean)).toEqual(['Hel', 'lo', ' world']);
    const done = await stream.completion;
    expect(done.choices[0]).toEqual({ index: 0, message: { role: 'assistant', content: 'Hello world' }, finish_reason: 'stop' });
    expect(done.model).toBe('served-model');
    expect(done.usage).toMatchObject({ prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 });
    const sent = JSON.parse(seen[0]!.body) as Record<string, unknown>;
    expect(sent).toEqual({ messages, temperature: 0, max_tokens: 8, response_format: { type: 'json_object' }, model: 'served-model', stream: true, stream_options: { include_usage: true } });
    expect(seen[0]).toMatchObject({ url: '/v1/chat/completions', auth: 'Bearer sk-2' });
  });

  it('counts content chunks as tokens when the server sends no usage, and accepts a stream without [DONE] after a finish reason', async () => {
    handler = (_req, res) => {
      sse(res);
      res.end(chunk('a') + chunk('b') + chunk('', 'length'));
    };
    const done = await client().chat.completions.create({ messages, stream: true }).completion;
    expect(done.choices[0].finish_reason).toBe('length');
    expect(done.usage.completion_tokens).toBe(2);
    expect(done.usage.length_limit).toBeUndefined();
    expect(seen[0]!.auth).toBeUndefined();
  });

  it("passes on Hearth's extensions when the server is hearth serve: the context fill and which limit ended the reply", async () => {
    const withContext = (content: string, used: number, finish: string | null = null, usage?: object) =>
      `data: ${JSON.stringify({ id: 'h', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: finish }], context: { used, total: 512 }, ...(usage ? { usage } : {}) })}\n\n`;
    handler = (_req, res) => {
      sse(res);
      res.end(withContext('a', 10) + withContext('', 11, 'length', { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11, length_limit: 'max_tokens' }) + 'data: [DONE]\n\n');
    };
    const stream = client().chat.completions.create({ messages, stream: true });
    const fills: unknown[] = [];
    for await (const c of stream) fills.push(c.context);
    expect(fills).toEqual([{ used: 10, total: 512 }, { used: 11, total: 512 }]);
    expect((await stream.completion).usage).toMatchObject({ completion_tokens: 2, length_limit: 'max_tokens' });
  });

  it('stops mid-stream: the fetch is aborted, the reply ends with its text and finish_reason abort', async () => {
    handler = (_req, res) => {
      sse(res);
      res.write(chunk('partial'));
      // Then nothing more until the client goes away.
    };
    const controller = new AbortController();
    const stream = client().chat.completions.create({ messages, stream: true, signal: controller.signal });
    for await (const c of stream) {
      expect(c.choices[0].delta.content).toBe('partial');
      controller.abort();
    }
    const done = await stream.completion;
    expect(done.choices[0]).toMatchObject({ message: { content: 'partial' }, finish_reason: 'abort' });
    expect(await seen[0]!.closedEarly).toBe(true);
  });

  it('names a model the server no longer has (404) and a refused key (401)', async () => {
    handler = (_req, res) => {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'model not found', code: 'model_not_found' } }));
    };
    await expect(client().chat.completions.create({ messages, stream: true }).completion).rejects.toThrow(ServerModelNotFoundError);
    handler = (_req, res) => {
      res.writeHead(401);
      res.end(JSON.stringify({ error: { message: 'Unauthorized' } }));
    };
    await expect(client('bad').chat.completions.create({ messages })).rejects.toThrow(ServerAuthError);
  });

  it('fails a malformed stream, an error event and a stream cut short by name, keeping the chunks it delivered', async () => {
    const cases: Array<[string, RegExp]> = [
      [chunk('ok') + 'data: {not json\n\n', /not JSON/],
      [chunk('ok') + `data: ${JSON.stringify({ error: { message: 'out of memory' } })}\n\n`, /reported an error: out of memory/],
      [chunk('ok') + 'event: error\ndata: overloaded\n\n', /reported an error: overloaded/],
      [chunk('ok'), /ended before the reply did/],
    ];
    for (const [body, message] of cases) {
      handler = (_req, res) => {
        sse(res);
        res.end(body);
      };
      const stream = client().chat.completions.create({ messages, stream: true });
      const got: string[] = [];
      const error = await (async () => {
        for await (const c of stream) got.push(c.choices[0].delta.content ?? '');
      })().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ServerStreamError);
      expect((error as Error).message).toMatch(message);
      expect(got).toEqual(['ok']);
    }
  });

  it('takes a whole completion from a server that ignores stream: true', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'whole' }, finish_reason: 'stop' }], usage: { prompt_tokens: 2, completion_tokens: 1, total_tokens: 3 } }));
    };
    const stream = client().chat.completions.create({ messages, stream: true });
    const deltas: string[] = [];
    for await (const c of stream) deltas.push(c.choices[0].delta.content ?? '');
    expect(deltas).toEqual(['whole']);
    expect((await stream.completion).usage.completion_tokens).toBe(1);
  });
});

describe('normalizeServerUrl', () => {
  it('keeps https anywhere and http on this machine, without a trailing slash or /v1', () => {
    expect(normalizeServerUrl(' http://localhost:8080/v1/ ')).toBe('http://localhost:8080');
    expect(normalizeServerUrl('http://127.0.0.1:11434')).toBe('http://127.0.0.1:11434');
    expect(normalizeServerUrl('https://llm.example.com/api/v1')).toBe('https://llm.example.com/api');
    expect(normalizeServerUrl('localhost:8080')).toBe('http://localhost:8080');
    expect(normalizeServerUrl('llm.example.com')).toBe('https://llm.example.com');
  });

  it('refuses by name what the page could not or should not reach', () => {
    for (const bad of ['http://', 'ftp://host/', 'http://192.168.1.5:8080', 'http://[::1]:8080', 'https://user:pw@host/', 'https://host/?key=1']) {
      expect(() => normalizeServerUrl(bad), bad).toThrow(ServerUrlError);
    }
    expect(() => normalizeServerUrl('http://192.168.1.5:8080')).toThrow(/over https/);
  });
});
