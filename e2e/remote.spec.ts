/**
 * Remote engines in the app, end to end in the real Chromium against the production build: the
 * Models page adds an OpenAI-compatible server, lists its models, and a chat with one streams
 * through the app's own client (SSE over fetch, across origins, through the page's CSP), is stored
 * in this browser, stops mid-stream, and fails by name (a refused key, CORS refused, the server
 * down) while the chat stays usable. Removing the server sends chats back to this device.
 *
 * The server here is a small OpenAI-shaped one written in this file (node:http), so every failure
 * can be staged; e2e/remote-serve.spec.ts runs the same flow against a real `hearth serve`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Page } from '@playwright/test';
import { addServer, lastReply, send, SHOTS } from './chat-helpers.ts';

const KEY = 'sk-test-key';
const MODEL = 'fake-remote-model';

interface FakeServer {
  server: Server;
  port: number;
  base: string;
  /** Chat requests as the server read them, and whether the client closed each before its end. */
  chats: Array<{ body: Record<string, unknown>; closedEarly: Promise<boolean> }>;
  close(): Promise<void>;
}

/** Words of the reply, sent one chunk each; a prompt with "long" gets a reply that never ends by itself. */
const REPLY = ['Hello', ' from', ' the', ' server', '.'];

function handle(req: IncomingMessage, res: ServerResponse, body: string, fake: FakeServer, cors: boolean) {
  if (cors) {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type');
    res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
  }
  if (req.method === 'OPTIONS') return res.writeHead(204).end();
  if (req.headers.authorization !== `Bearer ${KEY}`) {
    res.writeHead(401, { 'Content-Type': 'application/json' });
    return res.end(JSON.stringify({ error: { message: 'Invalid API key', type: 'invalid_request_error', code: 'invalid_api_key' } }));
  }
  if (req.method === 'GET' && req.url === '/v1/models') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    return res.end(JSON.stringify({ object: 'list', data: [{ id: MODEL, object: 'model', owned_by: 'test' }] }));
  }
  if (req.method === 'POST' && req.url === '/v1/chat/completions') {
    const request = JSON.parse(body) as { messages: Array<{ content: string }> };
    fake.chats.push({ body: request as unknown as Record<string, unknown>, closedEarly: new Promise((resolve) => res.on('close', () => resolve(!res.writableFinished))) });
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    const chunk = (content: string, finish: string | null = null) =>
      `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: MODEL, choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n\n`;
    const endless = request.messages.at(-1)?.content.includes('long');
    let i = 0;
    const timer = setInterval(() => {
      if (endless || i < REPLY.length) {
        res.write(chunk(endless ? ` word${i}` : REPLY[i]!));
        i++;
        return;
      }
      clearInterval(timer);
      res.write(chunk('', 'stop'));
      res.write(`data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: MODEL, choices: [], usage: { prompt_tokens: 11, completion_tokens: REPLY.length, total_tokens: 11 + REPLY.length } })}\n\n`);
      res.end('data: [DONE]\n\n');
    }, 30);
    res.on('close', () => clearInterval(timer));
    return;
  }
  res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: { message: 'not found' } }));
}

async function startFake({ cors = true, port = 0 } = {}): Promise<FakeServer> {
  const fake = { chats: [] } as unknown as FakeServer;
  fake.server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => handle(req, res, body, fake, cors));
  });
  await new Promise<void>((resolve) => fake.server.listen(port, '127.0.0.1', resolve));
  fake.port = (fake.server.address() as AddressInfo).port;
  fake.base = `http://127.0.0.1:${fake.port}`;
  fake.close = () =>
    new Promise<void>((resolve) => {
      fake.server.closeAllConnections();
      fake.server.close(() => resolve());
    });
  return fake;
}

test('a chat with a server: add it, list its models, stream a reply that is stored here, stop one, remove the server', async ({ page, baseURL }) => {
  const fake = await startFake();
  const appOrigin = new URL(baseURL!).origin;
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  try {
    await page.goto('/');
    await page.getByTestId('nav-models').click();
    await expect(page.getByTestId('servers')).toBeVisible();

    // A wrong key: the server is not added, and the error says why and what to do.
    await addServer(page, fake.base, 'wrong-key');
    await expect(page.getByTestId('server-error')).toContainText('The server refused the API key');
    await expect(page.getByTestId('server-error')).toContainText('Invalid API key');
    await expect(page.getByTestId('server')).toHaveCount(0);

    // Until a server was added, the page asked nothing of any other origin.
    const before = requests.splice(0);
    expect(before.filter((u) => u.startsWith('http') && new URL(u).origin !== appOrigin && new URL(u).origin !== fake.base)).toEqual([]);

    await addServer(page, `${fake.base}/v1`, KEY);
    const server = page.getByTestId('server');
    await expect(server).toHaveCount(1);
    await expect(server).toContainText(`127.0.0.1:${fake.port}`);
    await expect(server).toContainText('leaves this device');
    await expect(server.getByTestId('remote-model')).toHaveAttribute('data-model', MODEL);
    // The key stays in this browser only; the field is emptied once the server is added.
    await expect(page.getByTestId('server-key')).toHaveValue('');
    await server.getByTestId('use-remote').click();
    await expect(server.getByTestId('use-remote')).toHaveText('In use');
    await expect(page.getByTestId('remote-in-use')).toContainText(MODEL);
    await page.getByTestId('servers').screenshot({ path: `${SHOTS}/remote-servers.png` });

    // The chat's header says the chat goes to the server.
    await page.getByTestId('nav-chat').click();
    const banner = page.getByTestId('model-ready');
    await expect(banner).toHaveAttribute('data-remote', 'true');
    await expect(banner.getByTestId('model-name')).toHaveText(MODEL);
    await expect(banner.getByTestId('model-server')).toHaveText(`127.0.0.1:${fake.port}`);
    await expect(banner.getByTestId('leaves-device')).toBeVisible();
    await expect(page.getByTestId('footer-remote')).toContainText('leave this device');
    // On a phone the marker wraps within the page instead of widening it.
    await page.setViewportSize({ width: 390, height: 844 });
    await expect(banner.getByTestId('leaves-device')).toBeVisible();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    // Not cut off by the banner (a phone's model line is one line, ellipsized, for a local model).
    const clipped = await banner.getByTestId('leaves-device').evaluate((marker) => {
      const line = marker.closest('.model-line')!.getBoundingClientRect();
      const box = marker.getBoundingClientRect();
      return box.right > line.right + 0.5 || box.bottom > line.bottom + 0.5;
    });
    expect(clipped).toBe(false);
    await page.screenshot({ path: `${SHOTS}/remote-chat-phone.png` });
    await page.setViewportSize({ width: 1280, height: 720 });

    await send(page, 'Say hello');
    await expect(lastReply(page)).toContainText('Hello from the server.');
    const stats = lastReply(page).getByTestId('reply-stats');
    await expect(stats).toContainText('tokens/s');
    await expect(stats).toContainText(`${REPLY.length} tokens`);
    await expect(stats.getByTestId('reply-server')).toContainText(`127.0.0.1:${fake.port}`);
    await page.screenshot({ path: `${SHOTS}/remote-chat.png` });
    expect(fake.chats[0]!.body).toMatchObject({ model: MODEL, stream: true });
    expect((fake.chats[0]!.body.messages as Array<{ role: string; content: string }>).at(-1)).toEqual({ role: 'user', content: 'Say hello' });

    // Stop mid-stream: the reply keeps its text, says it stopped, and the request is closed.
    await send(page, 'Write something long');
    await expect(lastReply(page)).toContainText('word2');
    await page.getByTestId('stop').click();
    await expect(lastReply(page).getByTestId('finish-reason')).toHaveText('stopped');
    expect(await fake.chats[1]!.closedEarly).toBe(true);
    await expect(page.getByTestId('send')).toBeVisible();

    // The conversation is stored in this browser: it is there after a reload, still on the server's model.
    await page.reload();
    await expect(page.getByTestId('message-assistant').first()).toContainText('Hello from the server.');
    await expect(page.getByTestId('model-ready')).toHaveAttribute('data-remote', 'true');

    // Removing the server forgets it (and its key), and chats go back to this device.
    await page.getByTestId('nav-models').click();
    await page.getByTestId('remove-server').click();
    await expect(page.getByTestId('server')).toHaveCount(0);
    expect(await page.evaluate(() => localStorage.getItem('hearth.servers'))).not.toContain(KEY);
    await page.getByTestId('nav-chat').click();
    await expect(page.getByTestId('leaves-device')).toHaveCount(0);
    await expect(page.getByTestId('footer-remote')).toHaveCount(0);
  } finally {
    await fake.close();
  }
});

test('a server that goes down, and one that refuses CORS: named, explained, and the chat stays usable', async ({ page }) => {
  const fake = await startFake();
  const noCors = await startFake({ cors: false });
  try {
    await page.goto('/');
    await addServer(page, noCors.base, KEY);
    await expect(page.getByTestId('server-error')).toContainText('does not allow this page (CORS)');
    await expect(page.getByTestId('server-error')).toContainText('Access-Control-Allow-Origin');

    await addServer(page, fake.base, KEY);
    await page.getByTestId('use-remote').click();
    await page.getByTestId('nav-chat').click();
    await send(page, 'First');
    await expect(lastReply(page)).toContainText('Hello from the server.');

    // The server goes away: the reply fails by name, the conversation keeps everything.
    const port = fake.port;
    await fake.close();
    await send(page, 'Second');
    await expect(lastReply(page).getByRole('alert')).toContainText('The server is not reachable');
    await expect(lastReply(page).getByRole('alert')).toContainText(`127.0.0.1:${port}`);
    await expect(page.getByTestId('user-text')).toHaveCount(2);

    // It comes back on the same port: the same chat goes on.
    const again = await startFake({ port });
    try {
      await send(page, 'Third');
      await expect(lastReply(page)).toContainText('Hello from the server.');
      await expect(lastReply(page).getByTestId('reply-stats')).toContainText('tokens/s');
    } finally {
      await again.close();
    }
  } finally {
    await noCors.close();
    await fake.close().catch(() => undefined);
  }
});

/** axe-core's serious and critical violations on the page as it is now. */
async function seriousViolations(page: Page, name: string): Promise<string[]> {
  const results = await new AxeBuilder({ page }).analyze();
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${name}: ${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 4).join(' | ')}`);
}

test('the Servers panel and a remote chat pass an axe audit in the light and the dark theme', async ({ page }) => {
  const fake = await startFake();
  try {
    await page.goto('/');
    await addServer(page, `${fake.base}`, 'wrong-key');
    await expect(page.getByTestId('server-error')).toBeVisible();
    await addServer(page, fake.base, KEY);
    await page.getByTestId('use-remote').click();
    const found: string[] = [];
    for (const theme of ['light', 'dark']) {
      await page.getByTestId('theme').selectOption(theme);
      await page.getByTestId('nav-models').click();
      await expect(page.getByTestId('remote-in-use')).toBeVisible();
      found.push(...(await seriousViolations(page, `${theme}-models-servers`)));
      await page.getByTestId('nav-chat').click();
      await send(page, `Hello in ${theme}`);
      await expect(lastReply(page).getByTestId('reply-server')).toBeVisible();
      found.push(...(await seriousViolations(page, `${theme}-remote-chat`)));
    }
    expect(found).toEqual([]);
  } finally {
    await fake.close();
  }
});
