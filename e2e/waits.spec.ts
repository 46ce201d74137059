/**
 * Long waits that tell the truth and can be cancelled, and the small things of issue 19 item 13,
 * in the built app (issue 19 items 7 and 13, issue 28 item 10): a local file copied into the
 * browser shows bytes, rate and time left and can be cancelled, leaving an incomplete entry that
 * explains itself; a download that stored nothing promises no resume; a dropped non-GGUF file is
 * explained; an error names the file once; the demo has one name; the Device page says where chat
 * runs; the offline toast covers no control.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { generatedGgufFile } from './store/server.ts';

const DEMO_BUILT = existsSync('dist/models/hearth-demo-kjv-q8_0.gguf');

async function openApp(page: Page, hash = '') {
  await page.goto(`/${hash}`);
  await expect(page.getByTestId('engine-status')).toHaveAttribute('data-engine-version', /\d+\.\d+\.\d+/, { timeout: 30_000 });
}

/** The start-up load (the demo, when built) is over, so it cannot race what a test does next. */
async function settled(page: Page) {
  await page.getByTestId('nav-chat').click();
  await expect(page.getByTestId(DEMO_BUILT ? 'model-ready' : 'model-none')).toBeVisible({ timeout: 120_000 });
}

test('copying a large local file shows bytes, rate and time left, and Cancel leaves an entry that explains itself', async ({ page }) => {
  test.setTimeout(240_000);
  // 768 MiB: the copy lasts seconds even on a fast disk (the store e2e shares this generated file).
  const big = await generatedGgufFile(768);
  await openApp(page);
  await settled(page);
  await page.getByTestId('nav-models').click();
  await page.getByTestId('model-file').setInputFiles(big);
  const progress = page.getByTestId('load-progress');
  await expect(progress.getByTestId('load-phase')).toContainText('Copying into this browser', { timeout: 60_000 });
  await expect(progress.getByTestId('transfer-figures')).toContainText(/\d+% · [\d.]+ (KiB|MiB|GiB) of 768 MiB · [\d.]+ (KiB|MiB|GiB)\/s/, { timeout: 60_000 });
  await page.screenshot({ path: 'test-results/screenshots/copy-progress.png' });
  await progress.getByTestId('transfer-cancel').click();
  await expect(page.getByTestId('load-progress')).toHaveCount(0, { timeout: 30_000 });
  // Cancelled is not an error, and the model in use (if any) still answers.
  await expect(page.getByTestId('load-error')).toHaveCount(0);
  const note = page.getByTestId('incomplete-note');
  await expect(note).toContainText(/Copying this file stopped at [\d.]+ (KiB|MiB|GiB) of 768 MiB/);
  await expect(note).toContainText('choose the same file again to continue, or delete it');
  await expect(page.getByTestId('resume-copy')).toBeVisible();
  await expect(page.getByTestId('stored-models').getByRole('button', { name: 'Delete' })).toBeVisible();
  page.once('dialog', (dialog) => void dialog.accept());
  await page.getByTestId('stored-models').getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByTestId('stored-models')).toHaveCount(0);
});

test.describe('a download that fails before storing anything', () => {
  // Routes must see the worker's requests, which a service worker would otherwise answer.
  test.use({ serviceWorkers: 'block' });

  test('shows the error and promises no resume', async ({ page }) => {
    test.setTimeout(120_000);
    await page.route('**/models.json', async (route) => {
      const catalog = await (await route.fetch()).json();
      const demo = catalog.models[0];
      catalog.models.push({ ...demo, id: 'e2e-gone', name: 'Gone model', builtin: false, urls: ['e2e/gone.gguf'], sha256: undefined, assistant: undefined, mode: undefined });
      await route.fulfill({ json: catalog });
    });
    // The size probe answers; the file itself is gone: nothing is ever stored.
    await page.route('**/e2e/gone.gguf', (route) =>
      route.request().headers()['range'] === 'bytes=0-0'
        ? route.fulfill({ status: 206, headers: { 'Content-Range': 'bytes 0-0/6291456', 'Content-Length': '1' }, body: 'G' })
        : route.fulfill({ status: 404, body: 'gone' }),
    );
    await openApp(page);
    await settled(page);
    await page.getByTestId('nav-models').click();
    const item = page.getByTestId('catalog-e2e-gone');
    await item.getByRole('button', { name: 'Download' }).click();
    await expect(item.getByRole('alert')).toContainText('was not found on the server', { timeout: 30_000 });
    await expect(item).not.toContainText(/resume/i);
    await expect(item.getByTestId('partial-note')).toHaveCount(0);
    await expect(item.getByRole('button', { name: 'Download' })).toBeVisible();
  });
});

test('a dropped file that is not a GGUF model is explained, not ignored', async ({ page }) => {
  await openApp(page);
  await page.evaluate(() => {
    const data = new DataTransfer();
    data.items.add(new File(['hello'], 'notes.txt', { type: 'text/plain' }));
    document.querySelector('[data-testid="app"]')!.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
  });
  await expect(page.getByTestId('drop-notice')).toContainText('notes.txt is not a GGUF model file (.gguf), so nothing was loaded');
});

test('an error names the file once', async ({ page }) => {
  test.setTimeout(120_000);
  mkdirSync(join('test-results', 'e2e-waits'), { recursive: true });
  const bad = join('test-results', 'e2e-waits', 'not-a-model.gguf');
  writeFileSync(bad, 'this is not a gguf file at all, just text that is long enough to be read'.repeat(20));
  await openApp(page);
  await settled(page);
  await page.getByTestId('nav-models').click();
  await page.getByTestId('model-file').setInputFiles(bad);
  const error = page.getByTestId('load-error');
  await expect(error).toContainText('Not a usable GGUF file', { timeout: 30_000 });
  expect(((await error.innerText()).match(/not-a-model\.gguf/g) ?? []).length).toBe(1);
});

test('the demo has one name, and the Device page says the chat runs on the CPU when it does', async ({ page }) => {
  test.skip(!DEMO_BUILT, 'the demo model is not part of this build');
  test.setTimeout(180_000);
  await openApp(page);
  await settled(page);
  const backend = await page.getByTestId('model-backend').innerText();
  const catalog = JSON.parse(readFileSync('public/models.json', 'utf8')) as { models: Array<{ name: string; builtin?: boolean }> };
  const catalogName = catalog.models.find((m) => m.builtin)!.name;
  await page.getByTestId('nav-chat').click();
  await expect(page.getByTestId('model-name')).toHaveText(catalogName);
  await page.getByTestId('nav-device').click();
  await expect(page.getByTestId('backend-used')).toContainText(backend === 'CPU' ? 'Chat runs on the CPU now' : 'Chat runs on WebGPU now');
});

test('the "works offline" toast covers no control', async ({ page }) => {
  test.setTimeout(120_000);
  await openApp(page);
  const toast = page.getByTestId('offline-ready');
  await expect(toast).toBeVisible({ timeout: 60_000 });
  const box = (await toast.boundingBox())!;
  const controls = page.locator(':is(button, select, textarea, input):visible:not([data-testid="offline-ready"] *)');
  for (let i = 0; i < (await controls.count()); i++) {
    const control = controls.nth(i);
    const other = await control.boundingBox();
    if (!other || other.width === 0) continue;
    const overlaps = box.x < other.x + other.width && other.x < box.x + box.width && box.y < other.y + other.height && other.y < box.y + box.height;
    expect(overlaps, `the toast covers ${await control.evaluate((e) => e.outerHTML.slice(0, 80))}`).toBe(false);
  }
});
