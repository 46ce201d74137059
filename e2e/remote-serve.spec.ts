/**
 * The app's remote engine against a real `hearth serve` (src/cli/commands/serve.ts), started here
 * on a tiny random-weight chat model made by `hearth make-model`, on the CPU, with an API key: the
 * app adds the server (a wrong key first), lists its model, streams a reply from it (the model's
 * text is noise; the test checks it arrives, is stored and carries the server's stats), then meets
 * the model gone (the server restarted serving another model id) and the server down.
 * Stop mid-stream and CORS refused are staged with a scripted server in remote.spec.ts, where the
 * timing is the test's to choose.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { addServer, lastReply, send } from './chat-helpers.ts';

const KEY = 'serve-test-key';
const TEMPLATE = '{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}<|end|>\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}';

let dir: string;
let model: string;

test.beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hearth-remote-'));
  model = join(dir, 'tiny-chat.gguf');
  execFileSync('node', ['bin/hearth.js', 'make-model', '--arch', 'llama', '--embd', '64', '--layers', '2', '--heads', '4', '--ff', '128', '--ctx', '512', '--seed', '7', '--name', 'Tiny test model', '--chat-template', TEMPLATE, '--out', model]);
});
test.afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A port nobody listens on now. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Starts `hearth serve` and resolves once it says it is serving. */
async function serve(port: number, modelId: string): Promise<ChildProcess> {
  const child = spawn('node', ['bin/hearth.js', 'serve', model, '--port', String(port), '--backend', 'cpu', '--api-key', KEY, '--model-id', modelId], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('serving ')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`hearth serve exited (${code}) before serving:\n${log}`)));
  });
  return child;
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

test('chats with a model on hearth serve: wrong key, models, a streamed reply stored here, the model gone, the server down', async ({ page }) => {
  test.setTimeout(180_000);
  const port = await freePort();
  let server: ChildProcess | undefined = await serve(port, 'tiny-chat');
  try {
    await page.goto('/');
    await addServer(page, `localhost:${port}`, 'not-the-key');
    await expect(page.getByTestId('server-error')).toContainText('The server refused the API key');
    await expect(page.getByTestId('server')).toHaveCount(0);

    await addServer(page, `http://localhost:${port}/v1`, KEY);
    await expect(page.getByTestId('server')).toContainText(`localhost:${port}`);
    await expect(page.getByTestId('remote-model')).toHaveAttribute('data-model', 'tiny-chat');
    await page.getByTestId('use-remote').click();

    await page.getByTestId('nav-chat').click();
    const banner = page.getByTestId('model-ready');
    await expect(banner).toHaveAttribute('data-remote', 'true');
    await expect(banner.getByTestId('model-name')).toHaveText('tiny-chat');
    await expect(banner.getByTestId('model-server')).toHaveText(`localhost:${port}`);

    await send(page, 'Hello there');
    const stats = lastReply(page).getByTestId('reply-stats');
    await expect(stats).toContainText('tokens/s', { timeout: 60_000 });
    await expect(stats.getByTestId('reply-server')).toContainText(`localhost:${port}`);
    // hearth serve reports the prompt's tokens (the template applied by the server).
    await expect(stats).toContainText(/prompt [1-9]\d*/);
    const text = (await lastReply(page).getByTestId('markdown').textContent()) ?? '';
    expect(text.length).toBeGreaterThan(0);

    // Developers get the same client: window.hearthServer takes window.hearth's request shape.
    const viaConsole = await page.evaluate(
      async ({ baseUrl, apiKey }) => {
        const client = window.hearthServer!({ baseUrl, apiKey, model: 'tiny-chat' });
        const stream = client.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4, temperature: 0, stream: true });
        let text = '';
        for await (const chunk of stream) text += chunk.choices[0].delta.content ?? '';
        const done = await stream.completion;
        return { text, content: done.choices[0].message.content, finish: done.choices[0].finish_reason, tokens: done.usage.completion_tokens };
      },
      { baseUrl: `http://localhost:${port}`, apiKey: KEY },
    );
    expect(viaConsole.text).toBe(viaConsole.content);
    expect(viaConsole).toMatchObject({ finish: 'length', tokens: 4 });

    // Stored in this browser: after a reload the reply is there, word for word.
    await page.reload();
    await expect(page.getByTestId('message-assistant').first().getByTestId('markdown')).toHaveText(text);

    // The server restarts serving another model id: the chat's model is gone, by name.
    await stop(server);
    server = await serve(port, 'another-model');
    await send(page, 'Still there?');
    await expect(lastReply(page).getByRole('alert')).toContainText('The server no longer has this model');
    await expect(lastReply(page).getByRole('alert')).toContainText('tiny-chat');

    // The server goes away: named, and the chat stays usable.
    await stop(server);
    server = undefined;
    await send(page, 'Anyone?');
    await expect(lastReply(page).getByRole('alert')).toContainText('The server is not reachable');
    await expect(page.getByTestId('composer')).toBeEnabled();
    await expect(page.getByTestId('user-text')).toHaveCount(3);
  } finally {
    await stop(server);
  }
});
