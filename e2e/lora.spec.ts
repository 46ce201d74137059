/**
 * LoRA adapters in the app: attach one from a .gguf to the model in use, the chat header shows it
 * with its scale, replies change; detached, the base model's reply comes back; an adapter made
 * for another model is refused with a named, readable error.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { openTinyModelWithAdapters, regenerate, replyDone, replyText, send, setSampling } from './chat-helpers.ts';

test.describe.configure({ timeout: 300_000 });
test.use({ viewport: { width: 1280, height: 800 } });

const DIR = join('test-results', 'e2e-lora');
test.beforeAll(() => mkdirSync(DIR, { recursive: true }));

test('attach a LoRA adapter, see it in the header, replies change; detach it and the base answers again', async ({ page }) => {
  const { adapter, foreign } = await openTinyModelWithAdapters(page, DIR);

  await setSampling(page, { temperature: '0', max: '10' });
  await send(page, 'Hello there');
  await replyDone(page);
  const base = await replyText(page);
  await expect(page.getByTestId('adapters-active')).toHaveCount(0);

  // The adapters are with the chat settings.
  await page.getByTestId('settings-toggle').click();
  await page.getByTestId('adapter-file').setInputFiles(adapter);
  await expect(page.getByTestId('adapter-row')).toContainText('style');
  await page.getByTestId('adapter-scale').fill('1.5');
  await expect(page.getByTestId('adapters-active')).toHaveText(' · LoRA: style ×1.5');
  const adapted = await regenerate(page, 2);
  expect(adapted).not.toBe(base);

  // An adapter for a qwen2 model does not attach to this llama model, and says why.
  await page.getByTestId('adapter-file').setInputFiles(foreign);
  await expect(page.getByTestId('adapter-error')).toContainText('The adapter is for another model');
  await expect(page.getByTestId('adapter-row')).toHaveCount(1);
  await page.screenshot({ path: join(DIR, 'adapters.png') });

  await page.getByTestId('adapter-detach').click();
  await expect(page.getByTestId('adapters-active')).toHaveCount(0);
  expect(await regenerate(page, 3)).toBe(base);
});
