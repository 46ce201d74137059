/**
 * LoRA adapters in the model store: imported from a file and downloaded by URL, listed on the
 * Models page apart from the models (base architecture, rank), never offered as a model; a model
 * file picked as an adapter is refused and the stored model kept; in the chat settings one made
 * for the loaded model attaches from the store (one for another architecture is listed as not
 * matching), the header shows it, replies change; detached, the base answers again; deleted, it
 * leaves the store.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { openTinyModelWithAdapters, regenerate, replyDone, replyText, send, setSampling } from './chat-helpers.ts';

test.describe.configure({ timeout: 300_000 });
test.use({ viewport: { width: 1280, height: 900 } });

const DIR = join('test-results', 'e2e-lora-store');
test.beforeAll(() => mkdirSync(DIR, { recursive: true }));

test('adapters in the store: import and download, listed apart, attach from the store, detach, delete', async ({ page, context }) => {
  const { model, adapter, foreign } = await openTinyModelWithAdapters(page, DIR);
  // The foreign adapter is "published" at a same-origin URL (the page's CSP allows its own origin).
  const foreignBytes = readFileSync(foreign);
  await context.route('**/published/foreign-lora.gguf', (route) =>
    route.fulfill({ status: 200, body: foreignBytes, headers: { 'content-type': 'application/octet-stream', 'content-length': String(foreignBytes.length) } }),
  );

  await setSampling(page, { temperature: '0', max: '10' });
  await send(page, 'Hello there');
  await replyDone(page);
  const base = await replyText(page);

  await page.getByTestId('nav-models').click();
  const store = page.getByTestId('adapter-store');
  await store.getByTestId('adapter-store-file').setInputFiles(adapter);
  const item = store.getByTestId('adapter-item').filter({ hasText: 'style.gguf' });
  await expect(item.getByTestId('adapter-facts')).toContainText('for llama models · rank 8', { timeout: 60_000 });
  await store.getByTestId('adapter-url').fill(new URL('published/foreign-lora.gguf', page.url()).href);
  await store.getByTestId('adapter-download').click();
  await expect(store.getByTestId('adapter-item').filter({ hasText: 'foreign-lora.gguf' }).getByTestId('adapter-facts')).toContainText('for qwen2 models · rank 4', { timeout: 60_000 });
  // Not offered as models: the "Your files" list holds the model only.
  await expect(page.getByTestId('stored-models')).toContainText('tiny.gguf');
  await expect(page.getByTestId('stored-models')).not.toContainText('style.gguf');
  // A model picked as an adapter is refused by name, and the model stored before stays.
  await store.getByTestId('adapter-store-file').setInputFiles(model);
  await expect(store.getByTestId('adapter-store-error')).toContainText('is a model, not a LoRA adapter');
  await expect(page.getByTestId('stored-models')).toContainText('tiny.gguf');
  await expect(store.getByTestId('adapter-item')).toHaveCount(2);
  await page.screenshot({ path: join(DIR, 'models-adapters.png'), fullPage: true });

  await page.getByTestId('nav-chat').click();
  await page.getByTestId('settings-toggle').click();
  const stored = page.getByTestId('stored-adapter');
  await expect(stored.filter({ hasText: 'foreign-lora.gguf' })).toContainText('not for this model: it is llama');
  await expect(stored.filter({ hasText: 'foreign-lora.gguf' }).getByTestId('stored-adapter-attach')).toHaveCount(0);
  await stored.filter({ hasText: 'style.gguf' }).getByTestId('stored-adapter-attach').click();
  await expect(page.getByTestId('adapter-row')).toContainText('from the store');
  await expect(page.getByTestId('adapters-active')).toHaveText(' · LoRA: style ×1');
  await page.getByTestId('adapter-scale').fill('1.5');
  await expect(page.getByTestId('adapters-active')).toHaveText(' · LoRA: style ×1.5');
  const adapted = await regenerate(page, 2);
  expect(adapted).not.toBe(base);
  await page.screenshot({ path: join(DIR, 'chat-adapter.png') });

  await page.getByTestId('adapter-detach').click();
  await expect(page.getByTestId('adapters-active')).toHaveCount(0);
  expect(await regenerate(page, 3)).toBe(base);
  // Attached again after the detach (which unloaded it), it works as before.
  await stored.filter({ hasText: 'style.gguf' }).getByTestId('stored-adapter-attach').click();
  await page.getByTestId('adapter-scale').fill('1.5');
  expect(await regenerate(page, 4)).toBe(adapted);

  page.on('dialog', (dialog) => void dialog.accept());
  await page.getByTestId('nav-models').click();
  await store.getByTestId('adapter-item').filter({ hasText: 'style.gguf' }).getByTestId('adapter-delete').click();
  await expect(store.getByTestId('adapter-item')).toHaveCount(1);
  await expect(store.getByTestId('adapter-item')).toContainText('foreign-lora.gguf');
});
