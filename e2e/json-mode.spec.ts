/**
 * JSON mode: the chat settings' toggle sends response_format json_object, so a reply parses as JSON
 * whatever the weights (a small random-weight chat model here), and its stats say JSON mode.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { downloadedText, lastReply, openTinyChatModel, replyDone, send, setSampling } from './chat-helpers.ts';

test.describe.configure({ timeout: 300_000 });
test.use({ viewport: { width: 1280, height: 800 } });

const DIR = join('test-results', 'e2e-json-mode');
test.beforeAll(() => mkdirSync(DIR, { recursive: true }));

/** The last reply's raw text, from the chat's JSON export (the view renders it as Markdown). */
async function lastReplyContent(page: Page): Promise<string> {
  await page.getByTestId('export-menu').locator('summary').click();
  const download = page.waitForEvent('download');
  await page.getByTestId('export-json').click();
  const { text } = await downloadedText(download);
  const data = JSON.parse(text) as { conversations: Array<{ messages: Array<{ role: string; content: string }> }> };
  const messages = data.conversations[0]!.messages;
  return messages[messages.length - 1]!.content;
}

test('JSON mode: a reply of a random-weight model parses as a JSON object; a reply cut by Max reply tokens says so', async ({ page }) => {
  await openTinyChatModel(page, join(DIR, 'tiny-chat.gguf'), 2048);

  await page.getByTestId('new-chat').click();
  await page.getByTestId('settings-toggle').click();
  const toggle = page.getByLabel('JSON mode');
  await expect(toggle).not.toBeChecked();
  await toggle.check();
  // Random weights write long strings: seed 3 (temperature 1, default sampling) closes the object
  // after about 550 tokens (at temperature 0 this model loops inside its first string).
  await page.getByTestId('chat-settings').getByLabel('Seed').fill('3');
  await setSampling(page, { temperature: '1', max: '1000' });
  await send(page, 'Describe a cat as JSON.');
  await replyDone(page);
  const stats = lastReply(page).getByTestId('reply-stats');
  await expect(stats.getByTestId('json-mode-stat')).toBeVisible();
  await expect(stats.getByTestId('finish-reason')).toHaveCount(0);
  const reply = await lastReplyContent(page);
  expect(JSON.parse(reply), reply).toEqual(expect.any(Object));
  expect(reply.trim().startsWith('{')).toBe(true);

  // Too few tokens for the object: the reply is reported as cut, not passed off as JSON.
  await setSampling(page, { max: '2' });
  await send(page, 'And a dog.');
  await replyDone(page);
  await expect(lastReply(page).getByTestId('finish-reason')).toContainText('reached Max reply tokens (2)');
  await expect(lastReply(page).getByTestId('json-mode-stat')).toBeVisible();

  // The toggle is kept, and off again sends no constraint: the same model then writes no JSON.
  await page.reload();
  await page.getByTestId('settings-toggle').click();
  await expect(page.getByLabel('JSON mode')).toBeChecked();
  await page.getByLabel('JSON mode').uncheck();
  await setSampling(page, { max: '40' });
  await page.getByTestId('new-chat').click();
  await send(page, 'Describe a cat as JSON.');
  await replyDone(page);
  await expect(lastReply(page).getByTestId('json-mode-stat')).toHaveCount(0);
  const free = await lastReplyContent(page);
  expect(() => JSON.parse(free), free).toThrow();
});
