/**
 * The chat app end to end, in Chromium with WebGPU on SwiftShader, against the production build:
 * a real (generated, random-weight) model loaded through the UI's local-file path, a streamed
 * reply, stop, regenerate, edit and resend, persistence across a reload, offline reload through the
 * service worker, hostile markdown shown inert, and no request leaving localhost.
 * Screenshots of the main views go to test-results/screenshots/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type BrowserContext, type Page } from '@playwright/test';

const SHOTS = 'test-results/screenshots';
const MODEL = join('test-results', 'e2e-app', 'tiny-chat.gguf');
const DEMO_BUILT = existsSync('dist/models/hearth-demo-kjv-q8_0.gguf');
const TEMPLATE =
  '{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}<|end|>\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}';

test.beforeAll(() => {
  mkdirSync(join('test-results', 'e2e-app'), { recursive: true });
  execFileSync('node', ['bin/hearth.js', 'make-model', '--arch', 'llama', '--embd', '64', '--layers', '2', '--heads', '4', '--ff', '128',
    '--ctx', '2048', '--seed', '7', '--name', 'Tiny test model', '--chat-template', TEMPLATE, '--out', MODEL]);
});

/** Every request the page, its workers and its service worker make; all must stay on localhost. */
function watchRequests(context: BrowserContext): string[] {
  const urls: string[] = [];
  context.on('request', (request) => urls.push(request.url()));
  return urls;
}
function expectLocalOnly(urls: string[]) {
  const foreign = urls.filter((u) => !/^(https?:\/\/(localhost|127\.0\.0\.1)(:\d+)?\/|data:|blob:)/.test(u));
  expect(foreign).toEqual([]);
  expect(urls.length).toBeGreaterThan(0);
}

async function openApp(page: Page) {
  await page.goto('/');
  await expect(page.getByTestId('engine-status')).toHaveAttribute('data-engine-version', /\d+\.\d+\.\d+/, { timeout: 30_000 });
}

async function loadTestModel(page: Page) {
  await page.getByTestId('nav-models').click();
  await page.getByTestId('model-file').setInputFiles(MODEL);
  await page.getByTestId('nav-chat').click();
  await expect(page.getByTestId('model-ready')).toContainText('Tiny test model', { timeout: 120_000 });
}

async function setSampling(page: Page, values: { temperature?: string; max?: string; seed?: string }) {
  const settings = page.getByTestId('chat-settings');
  if (!(await settings.isVisible())) await page.getByTestId('settings-toggle').click();
  if (values.temperature !== undefined) await settings.getByLabel('Temperature').fill(values.temperature);
  if (values.max !== undefined) await settings.getByLabel('Max reply tokens').fill(values.max);
  if (values.seed !== undefined) await settings.getByLabel('Seed').fill(values.seed);
  await page.getByTestId('settings-toggle').click();
}

async function send(page: Page, text: string) {
  const composer = page.getByTestId('composer');
  await composer.fill(text);
  await composer.press('Enter');
}

const lastReply = (page: Page) => page.getByTestId('message-assistant').last();

test('chat: load a model, stream a reply, stop, regenerate, edit, reload, then offline', async ({ page, context }) => {
  test.setTimeout(480_000);
  const requests = watchRequests(context);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // The page's and the engine worker's console, kept with the test's results for diagnosis.
  const log: string[] = [];
  const stamp = () => new Date().toISOString().slice(11, 23);
  page.on('console', (m) => log.push(`${stamp()} page ${m.type()}: ${m.text()}`));
  page.on('worker', (w) => {
    log.push(`${stamp()} worker started: ${w.url()}`);
    w.on('console', (m) => log.push(`${stamp()} worker ${m.type()}: ${m.text()}`));
    w.on('close', () => log.push(`${stamp()} worker closed`));
  });
  page.on('framenavigated', (f) => f === page.mainFrame() && log.push(`${stamp()} navigated ${f.url()}`));
  const saveLog = () => writeFileSync(join('test-results', 'e2e-app', 'chat-console.log'), log.join('\n'));
  page.on('close', saveLog);
  setInterval(saveLog, 2000).unref();

  // On WebGPU (SwiftShader here): 'stop ends a reply mid-way' needs a reply slower than a click,
  // and auto's CPU backend finishes this tiny model's long reply in a fraction of a second.
  await page.addInitScript(() => localStorage.setItem('hearth.backend', 'webgpu'));
  await openApp(page);
  // The built-in demo (public/models/, copied into every build) loads by itself.
  expect(DEMO_BUILT).toBe(true);
  await expect(page.getByTestId('model-ready')).toBeVisible({ timeout: 120_000 });

  await test.step('load a local GGUF file through the model manager', async () => {
    await loadTestModel(page);
    await page.getByTestId('nav-models').click();
    await expect(page.getByTestId('catalog')).toContainText('Tiny demo (not an assistant)');
    await expect(page.getByTestId('catalog')).toContainText('Llama 3.1 8B Instruct');
    await expect(page.getByTestId('stored-models')).toContainText('tiny-chat.gguf');
    await expect(page.getByTestId('fit').first()).toContainText(/Fits|May not fit|Will not fit/);
    await page.screenshot({ path: `${SHOTS}/models.png`, fullPage: true });
    await page.getByTestId('nav-chat').click();
  });

  await test.step('a reply streams in, with statistics and a context meter', async () => {
    await setSampling(page, { temperature: '0', max: '120' });
    await send(page, 'Hello there');
    await expect(page.getByTestId('user-text')).toHaveText('Hello there');
    await expect(lastReply(page)).toHaveAttribute('data-streaming', 'true');
    await expect(page.getByTestId('stop')).toBeVisible();
    const stats = lastReply(page).getByTestId('reply-stats');
    await expect(stats).toContainText(/\d+(\.\d)? tokens\/s/, { timeout: 120_000 });
    await expect(stats).toContainText(/TTFT \d+ ms/);
    await expect(lastReply(page).getByTestId('markdown')).not.toBeEmpty();
    await expect(page.getByTestId('chat-announcer')).toContainText(/Reply finished|Reply stopped/);
    await expect(page.getByTestId('context-meter')).toContainText(/[1-9][\d,]* \/ 2,048/);
    await expect(page.getByTestId('conversation-list')).toContainText('Hello there');
    await page.screenshot({ path: `${SHOTS}/chat.png`, fullPage: true });
  });

  await test.step('stop ends a reply mid-way', async () => {
    // Greedy decoding of a random model cycles without an end token: only Stop ends this early.
    // A context of 2048 leaves the click time to arrive even on a loaded machine.
    await setSampling(page, { temperature: '0', max: '2000' });
    await send(page, 'Tell me a long story');
    await expect(page.getByTestId('message-assistant')).toHaveCount(2);
    await expect(lastReply(page).getByTestId('markdown')).not.toBeEmpty({ timeout: 120_000 });
    await page.getByTestId('stop').click();
    await expect(lastReply(page).getByTestId('reply-stats')).toContainText('stopped', { timeout: 30_000 });
    await expect(page.getByTestId('send')).toBeVisible();
  });

  await test.step('regenerate replaces the last reply', async () => {
    const before = await lastReply(page).getByTestId('markdown').innerText();
    await setSampling(page, { temperature: '1.2', max: '60', seed: '12345' });
    await page.getByTestId('regenerate').click();
    await expect(lastReply(page).getByTestId('reply-stats')).toContainText(/tokens\/s/, { timeout: 120_000 });
    await expect(lastReply(page).getByTestId('reply-stats')).not.toContainText('stopped');
    await expect(page.getByTestId('message-assistant')).toHaveCount(2);
    expect(await lastReply(page).getByTestId('markdown').innerText()).not.toBe(before);
  });

  await test.step('edit and resend drops the later replies and answers the new text', async () => {
    await page.getByTestId('message-user').first().getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Edit message').fill('Hello again');
    await page.getByTestId('save-resend').click();
    await expect(page.getByTestId('message-user')).toHaveCount(1);
    await expect(page.getByTestId('user-text')).toHaveText('Hello again');
    await expect(lastReply(page).getByTestId('reply-stats')).toContainText(/tokens\/s/, { timeout: 120_000 });
  });

  await test.step('after a reload the conversation and the model are back', async () => {
    await page.reload();
    await expect(page.getByTestId('user-text')).toHaveText('Hello again');
    await expect(page.getByTestId('message-assistant')).toHaveCount(1);
    await expect(page.getByTestId('model-ready')).toContainText('Tiny test model', { timeout: 120_000 });
  });

  await test.step('offline: the app and the stored model still work', async () => {
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
    await context.setOffline(true);
    await page.reload();
    await expect(page.getByTestId('engine-status')).toHaveAttribute('data-engine-version', /\d/, { timeout: 30_000 });
    await expect(page.getByTestId('model-ready')).toContainText('Tiny test model', { timeout: 120_000 });
    await send(page, 'Still there?');
    await expect(lastReply(page).getByTestId('reply-stats')).toContainText(/tokens\/s/, { timeout: 120_000 });
    await page.screenshot({ path: `${SHOTS}/chat-offline.png`, fullPage: true });
    await context.setOffline(false);
  });

  saveLog();
  expect(errors).toEqual([]);
  expectLocalOnly(requests);
});

const HOSTILE = [
  'Here: <img src=x onerror="window.__pwned=1">',
  '<script>window.__pwned=2</script>',
  '[click me](javascript:window.__pwned=3) and [data](data:text/html,<script>window.__pwned=4</script>)',
  '![tracker](https://evil.example/pixel.png)',
  '<a href="https://evil.example" onclick="window.__pwned=5">raw</a>',
  '',
  '| a | b |',
  '|---|---|',
  '| 1 | 2 |',
  '',
  '```python',
  'def f(x):',
  '    return x  # <script>window.__pwned=6</script>',
  '```',
].join('\n');

test('model output is shown as inert text: hostile HTML, links and remote images do nothing', async ({ page, context }) => {
  const requests = watchRequests(context);
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await openApp(page);
  const file = join('test-results', 'e2e-app', 'hostile.json');
  writeFileSync(
    file,
    JSON.stringify({
      format: 'hearth-conversations',
      version: 1,
      conversations: [{ id: 'hostile', title: 'Hostile reply', systemPrompt: '', messages: [
        { role: 'user', content: '<img src=x onerror="window.__pwned=7">' },
        { role: 'assistant', content: HOSTILE },
      ] }],
    }),
  );
  await page.getByTestId('import-conversations').setInputFiles(file);
  const reply = page.getByTestId('message-assistant').getByTestId('markdown');
  await expect(reply).toContainText('<img src=x onerror="window.__pwned=1">');
  await expect(reply).toContainText('<script>window.__pwned=2</script>');
  await expect(page.getByTestId('user-text')).toHaveText('<img src=x onerror="window.__pwned=7">');
  // Nothing became an element that loads or runs anything.
  const counts = await page.getByTestId('messages').evaluate((root) => ({
    img: root.querySelectorAll('img, script, iframe, object, embed, video, audio, source, link, style').length,
    handlers: [...root.querySelectorAll('*')].filter((el) => [...el.attributes].some((a) => a.name.startsWith('on'))).length,
    badLinks: [...root.querySelectorAll('a')].filter((a) => !/^(https?:|mailto:)/.test(a.getAttribute('href') ?? 'https:')).length,
  }));
  expect(counts).toEqual({ img: 0, handlers: 0, badLinks: 0 });
  // The markdown image is a link to its URL, not an image.
  await expect(reply.getByRole('link', { name: /tracker/ })).toHaveAttribute('href', 'https://evil.example/pixel.png');
  // The javascript: link is text, not a link.
  await expect(reply).toContainText('[click me](javascript:window.__pwned=3)');
  await expect(reply.locator('table td')).toHaveText(['1', '2']);
  await expect(reply.locator('code.language-python .hljs-keyword').first()).toHaveText('def');
  await expect(reply.getByRole('button', { name: /Copy python code/ })).toBeVisible();
  await page.screenshot({ path: `${SHOTS}/sanitized.png`, fullPage: true });
  expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();
  expect(dialogs).toEqual([]);
  expectLocalOnly(requests);
});

test('conversations: rename, export, delete', async ({ page }) => {
  await openApp(page);
  const file = join('test-results', 'e2e-app', 'two.json');
  writeFileSync(file, JSON.stringify({ format: 'hearth-conversations', version: 1, conversations: [
    { title: 'First', messages: [{ role: 'user', content: 'one' }] },
    { title: 'Second', messages: [{ role: 'user', content: 'two' }, { role: 'assistant', content: '**bold** reply' }] },
  ] }));
  await page.getByTestId('import-conversations').setInputFiles(file);
  const list = page.getByTestId('conversation-list');
  await expect(list.getByRole('button', { name: /^(First|Second)$/ })).toHaveCount(2);

  await list.getByRole('button', { name: 'Rename "First"' }).click();
  await page.getByLabel('New name').fill('Renamed chat');
  await page.getByLabel('New name').press('Enter');
  await expect(list).toContainText('Renamed chat');

  const download = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Export all' }).click();
  const exported = JSON.parse(await (await download).createReadStream().then(async (s) => {
    const chunks: Buffer[] = [];
    for await (const c of s) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  })) as { format: string; conversations: { title: string }[] };
  expect(exported.format).toBe('hearth-conversations');
  expect(exported.conversations.map((c) => c.title).sort()).toEqual(['Renamed chat', 'Second']);

  page.once('dialog', (d) => void d.accept());
  await list.getByRole('button', { name: 'Delete "Second"' }).click();
  await expect(list).not.toContainText('Second');
  await page.reload();
  await expect(page.getByTestId('conversation-list')).toContainText('Renamed chat');
  await expect(page.getByTestId('conversation-list')).not.toContainText('Second');
});

test('phone-sized screen, dark theme', async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await openApp(page);
  await page.getByTestId('theme').selectOption('dark');
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  const bg = await page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--bg').trim());
  expect(bg).toBe('#161311');
  // The conversation list is a drawer here; the composer fits the width.
  await expect(page.getByRole('complementary', { name: 'Conversations' })).toBeHidden();
  await page.getByRole('button', { name: '☰ Chats' }).click();
  await expect(page.getByTestId('new-chat')).toBeVisible();
  await page.getByTestId('new-chat').click();
  const box = await page.getByTestId('composer').boundingBox();
  expect(box!.x + box!.width).toBeLessThanOrEqual(390);
  await page.screenshot({ path: `${SHOTS}/phone-dark.png`, fullPage: true });
  await page.getByTestId('nav-models').click();
  await page.screenshot({ path: `${SHOTS}/phone-models-dark.png`, fullPage: true });
});

test('the built-in demo model loads by itself from the app origin, and chats in English', async ({ page, context }) => {
  test.setTimeout(300_000);
  let fetched = 0;
  context.on('request', (request) => {
    if (request.url().endsWith('/models/hearth-demo-kjv-q8_0.gguf') && request.method() === 'GET') fetched++;
  });
  await openApp(page);
  await expect(page.getByTestId('model-ready')).toContainText(/tiny demo/i, { timeout: 120_000 });
  expect(fetched).toBeGreaterThanOrEqual(1);
  await page.getByTestId('nav-models').click();
  await expect(page.getByTestId('catalog-hearth-demo-kjv-q8_0')).toContainText('Loaded');
  await page.getByTestId('nav-chat').click();
  await setSampling(page, { temperature: '0', max: '48' });
  await send(page, 'In the beginning');
  await expect(lastReply(page).getByTestId('reply-stats')).toContainText(/tokens\/s/, { timeout: 120_000 });
  // The demo continues in the style of its corpus: words of English, not byte soup.
  const reply = await lastReply(page).getByTestId('markdown').innerText();
  const words = reply.match(/\b[A-Za-z]+\b/g) ?? [];
  expect(words.length).toBeGreaterThanOrEqual(5);
  expect(reply).not.toContain('\uFFFD');
  await page.screenshot({ path: `${SHOTS}/chat-demo.png`, fullPage: true });
  // A reload loads it from the store, without fetching it again.
  const before = fetched;
  await page.reload();
  await expect(page.getByTestId('model-ready')).toContainText(/tiny demo/i, { timeout: 120_000 });
  expect(fetched).toBe(before);
});

test('a file that is not a GGUF model gives a clear error, and the app stays usable', async ({ page }) => {
  test.setTimeout(180_000);
  await openApp(page);
  const bad = join('test-results', 'e2e-app', 'not-a-model.gguf');
  writeFileSync(bad, 'this is not a gguf file at all, just text that is long enough to be read'.repeat(20));
  await page.getByTestId('nav-models').click();
  await page.getByTestId('model-file').setInputFiles(bad);
  await page.getByTestId('nav-chat').click();
  await expect(page.getByTestId('model-error')).toContainText('Not a usable GGUF file', { timeout: 30_000 });
  await expect(page.getByTestId('model-error')).toContainText('not-a-model.gguf');
  // Still usable: a good file loads after the bad one.
  await loadTestModel(page);
  await expect(page.getByTestId('model-error')).toHaveCount(0);
});

test('the parts of a split model, chosen together, load as one model and chat', async ({ page }) => {
  test.setTimeout(300_000);
  const { splitGguf } = await import('../src/testing/split-gguf.ts');
  const { readFileSync } = await import('node:fs');
  const parts = await splitGguf(new Uint8Array(readFileSync(MODEL)), 3, 'tiny-split');
  const paths = parts.map((part) => {
    const path = join('test-results', 'e2e-app', part.name);
    writeFileSync(path, part.bytes);
    return path;
  });
  await openApp(page);
  await page.getByTestId('nav-models').click();
  // Chosen out of order: the engine puts the parts in split.no order.
  await page.getByTestId('model-file').setInputFiles([paths[2]!, paths[0]!, paths[1]!]);
  await page.getByTestId('nav-chat').click();
  await expect(page.getByTestId('model-ready')).toContainText('Tiny test model', { timeout: 120_000 });
  await setSampling(page, { temperature: '0', max: '8' });
  await send(page, 'Hello');
  await expect(lastReply(page).getByTestId('reply-stats')).toContainText(/tokens\/s/, { timeout: 120_000 });
});

test('a GGUF file dropped on the app loads', async ({ page }) => {
  test.setTimeout(300_000);
  const { readFileSync } = await import('node:fs');
  await openApp(page);
  const data = readFileSync(MODEL).toString('base64');
  const dataTransfer = await page.evaluateHandle((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], 'dropped-tiny.gguf'));
    return transfer;
  }, data);
  await page.getByTestId('app').dispatchEvent('dragover', { dataTransfer });
  await expect(page.getByTestId('app')).toHaveClass(/dropping/);
  await page.getByTestId('app').dispatchEvent('drop', { dataTransfer });
  await expect(page.getByTestId('model-ready')).toContainText('Tiny test model', { timeout: 120_000 });
  await page.getByTestId('nav-models').click();
  await expect(page.getByTestId('stored-models')).toContainText('dropped-tiny.gguf');
});
