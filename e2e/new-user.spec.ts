/**
 * The app as a new user meets it, with the built-in demo model (on the CPU backend: auto takes it
 * over this machine's software WebGPU adapter):
 * - the first minute: no "No model is loaded" while the demo loads; the demo opens in
 *   text-continuation mode (no system prompt, openings to click) and says what it is and where to
 *   get an assistant; screenshots of it on a desktop and a phone;
 * - a failed load (a text file, random bytes, a truncated GGUF) keeps the demo loaded and
 *   answering, and shows its error on the Models page, where the file was picked;
 * - the context meter is right at every moment, streaming included, and a reply that ends at a
 *   limit says which one, and what happens to the oldest turns.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';

const SHOTS = 'test-results/screenshots';
const DIR = join('test-results', 'e2e-new-user');
const DEMO_FILE = 'public/models/hearth-demo-kjv-q8_0.gguf';
const catalog = JSON.parse(readFileSync('public/models.json', 'utf8')).models as Array<{
  id: string;
  name: string;
  builtin?: boolean;
  examples?: string[];
  assistant?: string;
  contextLength: number;
}>;
const demo = catalog.find((m) => m.builtin)!;

test.describe.configure({ timeout: 300_000 });

test.beforeAll(() => mkdirSync(DIR, { recursive: true }));

const lastReply = (page: Page) => page.getByTestId('message-assistant').last();

async function openDemo(page: Page) {
  await page.goto('/');
  await expect(page.getByTestId('model-ready')).toContainText(/tiny demo/i, { timeout: 180_000 });
}

async function setSampling(page: Page, values: { temperature: string; max: string }) {
  await page.getByTestId('settings-toggle').click();
  const settings = page.getByTestId('chat-settings');
  await settings.getByLabel('Temperature').fill(values.temperature);
  await settings.getByLabel('Max reply tokens').fill(values.max);
  await page.getByTestId('settings-toggle').click();
}

async function send(page: Page, text: string) {
  const composer = page.getByTestId('composer');
  await composer.fill(text);
  await composer.press('Enter');
}

/** The number of prompt tokens in a reply's statistics. */
async function promptTokens(page: Page): Promise<number> {
  const text = await lastReply(page).getByTestId('reply-stats').innerText();
  return Number(text.match(/prompt (\d+)/)![1]);
}

test('the first minute: the demo opens as text continuation, says what it is, and points to an assistant', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.setViewportSize({ width: 1280, height: 800 });
  // Everything the chat banner says from the first paint on, recorded in the page.
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { __banners: string[] }).__banners = seen;
    new MutationObserver(() => {
      for (const el of document.querySelectorAll('[data-testid^="model-"]')) {
        const id = el.getAttribute('data-testid')!;
        if (seen.at(-1) !== id) seen.push(id);
      }
    }).observe(document, { subtree: true, childList: true, characterData: true });
  });
  await openDemo(page);
  const banners = await page.evaluate(() => (window as unknown as { __banners: string[] }).__banners);
  expect(banners).not.toContain('model-none');
  expect(banners).not.toContain('model-error');

  // It says plainly what the demo is, offers its openings, and names a real assistant to download.
  const intro = page.getByTestId('demo-intro');
  await expect(intro).toContainText('text continuation');
  await expect(intro).toContainText('does not follow instructions');
  await expect(intro.getByTestId('example')).toHaveText(demo.examples!);
  const assistant = catalog.find((m) => m.id === demo.assistant)!;
  await expect(intro.getByTestId('assistant-suggestion')).toContainText(assistant.name);
  await expect(page.getByTestId('composer')).toHaveAttribute('placeholder', /continue/);
  // No system prompt: the demo would only continue it as text.
  await page.getByTestId('settings-toggle').click();
  await expect(page.getByTestId('no-system-prompt')).toBeVisible();
  await expect(page.getByTestId('system-prompt')).toHaveCount(0);
  await page.getByTestId('settings-toggle').click();
  await expect(page.getByTestId('context-meter')).toContainText(`0 / ${demo.contextLength}`);
  await page.screenshot({ path: `${SHOTS}/first-minute-desktop.png` });

  // An opening, clicked: the prompt is exactly its text's tokens (no template, no system prompt).
  await setSampling(page, { temperature: '0', max: '32' });
  await intro.getByTestId('example').first().click();
  await expect(page.getByTestId('user-text')).toHaveText(demo.examples![0]!);
  await expect(lastReply(page).getByTestId('reply-stats')).toContainText(/tokens\/s/, { timeout: 120_000 });
  const { Tokenizer } = await import('../src/engine/tokenizer/index.ts');
  const { bytesSource, readGguf } = await import('../src/engine/gguf/index.ts');
  const file = await readGguf(bytesSource(new Uint8Array(readFileSync(DEMO_FILE))));
  const tokenizer = Tokenizer.fromGgufMetadata(file.metadata as Map<string, unknown>);
  expect(await promptTokens(page)).toBe(tokenizer.encode(demo.examples![0]!, { addSpecial: true, parseSpecial: false }).length);
  const words = (await lastReply(page).getByTestId('markdown').innerText()).match(/\b[A-Za-z]+\b/g) ?? [];
  expect(words.length).toBeGreaterThanOrEqual(3);
  await expect(page.getByTestId('demo-intro')).toContainText(assistant.name);
  await page.screenshot({ path: `${SHOTS}/first-minute-desktop-reply.png` });

  // The same first minute on a phone.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole('button', { name: '☰ Chats' }).click();
  await page.getByTestId('new-chat').click();
  await expect(page.getByTestId('demo-intro').getByTestId('example').first()).toBeVisible();
  const box = await page.getByTestId('demo-intro').boundingBox();
  expect(box!.x + box!.width).toBeLessThanOrEqual(390);
  // Nothing widens the page, the "works offline" toast in the header included (if it shows).
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await page.screenshot({ path: `${SHOTS}/first-minute-phone.png`, fullPage: true });
  expect(errors).toEqual([]);
});

test('a failed load keeps the model in use, and its error shows where the file was picked', async ({ page }) => {
  await openDemo(page);
  // The page's CSP forbids inline scripts: the observer goes in through evaluate.
  await page.evaluate(() => {
    const w = window as unknown as { __progress: number };
    w.__progress = 0;
    new MutationObserver(() => {
      if (document.querySelector('[data-testid="load-progress"]')) w.__progress++;
    }).observe(document, { subtree: true, childList: true });
  });
  const demoBytes = readFileSync(DEMO_FILE);
  let seed = 12345;
  const random = Buffer.from(Array.from({ length: 65536 }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 24)));
  const bad = [
    { name: 'notes.gguf', bytes: Buffer.from('Shopping list: bread, milk, eggs.\n'.repeat(100)), error: /GGUF/ },
    { name: 'noise.gguf', bytes: random, error: /GGUF/ },
    { name: 'truncated.gguf', bytes: demoBytes.subarray(0, Math.floor(demoBytes.length / 2)), error: /./ },
  ];
  for (const { name, bytes, error } of bad) {
    await test.step(name, async () => {
      const path = join(DIR, name);
      writeFileSync(path, bytes);
      await page.getByTestId('nav-models').click();
      const before = await page.evaluate(() => (window as unknown as { __progress: number }).__progress);
      await page.getByTestId('model-file').setInputFiles(path);
      // On the Models page, in the section the file was picked from: the error, and what still runs.
      const local = page.getByRole('region', { name: 'Load a model file' });
      const shown = local.getByTestId('load-error');
      await expect(shown).toContainText(name, { timeout: 60_000 });
      await expect(shown).toContainText(error);
      await expect(shown.getByTestId('still-loaded')).toContainText(/tiny demo/i);
      expect(await page.evaluate(() => (window as unknown as { __progress: number }).__progress)).toBeGreaterThan(before);
      const status = await page.evaluate(() => window.hearth!.engine.status());
      expect(status.state === 'ready' && status.model.name).toMatch(/demo/i);
      await expect(page.getByTestId('backend-in-use')).toBeVisible();
      await page.screenshot({ path: `${SHOTS}/failed-load-${name.replace('.gguf', '')}.png`, fullPage: true });
      // The chat still has the demo, says the load failed, and answers.
      await page.getByTestId('nav-chat').click();
      await expect(page.getByTestId('model-ready')).toContainText(/tiny demo/i);
      await expect(page.getByTestId('model-error')).toContainText(name);
    });
  }
  await setSampling(page, { temperature: '0', max: '16' });
  await send(page, 'In the beginning');
  await expect(lastReply(page).getByTestId('reply-stats')).toContainText(/tokens\/s/, { timeout: 120_000 });
  await expect(lastReply(page).getByTestId('markdown')).not.toBeEmpty();
});

test('the context meter is right at every moment, and a reply says which limit ended it', async ({ page }) => {
  const total = demo.contextLength;
  await openDemo(page);
  // Every reading of the meter, and whether a reply was streaming then.
  await page.evaluate(() => {
    const meter: Array<{ text: string; streaming: boolean }> = [];
    (window as unknown as { __meter: typeof meter }).__meter = meter;
    new MutationObserver(() => {
      const el = document.querySelector('[data-testid="context-meter"]');
      if (!el) return;
      const text = el.textContent ?? '';
      const streaming = !!document.querySelector('[data-streaming="true"]');
      const last = meter.at(-1);
      if (!last || last.text !== text || last.streaming !== streaming) meter.push({ text, streaming });
    }).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
  });
  await setSampling(page, { temperature: '0', max: '64' });
  let contextFull = false;
  for (let turn = 0; turn < 12 && !contextFull; turn++) {
    await send(page, turn === 0 ? 'In the beginning' : ' And');
    const stats = lastReply(page).getByTestId('reply-stats');
    await expect(stats).toContainText(/tokens\/s/, { timeout: 120_000 });
    const text = await stats.innerText();
    if (/^.*\b64 tokens/m.test(text) && turn === 0) await expect(stats.getByTestId('finish-reason')).toContainText('Max reply tokens (64)');
    contextFull = /context window/.test(text);
  }
  expect(contextFull).toBe(true);
  const finish = lastReply(page).getByTestId('finish-reason');
  await expect(finish).toContainText(`context window (${total} tokens) is full`);
  await expect(finish).toContainText('new chat');
  await page.screenshot({ path: `${SHOTS}/context-full.png`, fullPage: true });

  // The next turn no longer fits whole: the oldest turns are left out, and the app says so.
  await send(page, ' And');
  await expect(lastReply(page).getByTestId('reply-stats')).toContainText(/tokens\/s/, { timeout: 120_000 });
  await expect(lastReply(page).getByTestId('dropped-note')).toContainText(/The \d+ oldest messages did not fit/);
  await expect(page.getByRole('status').filter({ hasText: 'oldest messages were left out' })).toBeVisible();
  await expect(page.getByTestId('context-dropped')).toContainText(/\d+ oldest left out/);
  await page.screenshot({ path: `${SHOTS}/context-dropped.png`, fullPage: true });

  const readings = await page.evaluate(() => (window as unknown as { __meter: Array<{ text: string; streaming: boolean }> }).__meter);
  const values = readings.map((r) => {
    const m = r.text.match(/([\d,]+) \/ ([\d,]+)/);
    expect(m, `meter reading "${r.text}"`).not.toBeNull();
    return { used: Number(m![1]!.replace(/,/g, '')), total: Number(m![2]!.replace(/,/g, '')), streaming: r.streaming };
  });
  expect(values.every((v) => v.total === total)).toBe(true);
  expect(values.filter((v) => v.used > total)).toEqual([]);
  // It moved while replies streamed, and reached the full window.
  expect(new Set(values.filter((v) => v.streaming).map((v) => v.used)).size).toBeGreaterThan(5);
  expect(values.some((v) => v.used === total)).toBe(true);
});
