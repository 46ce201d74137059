/**
 * Chat features people expect, with the built-in demo model (and, for the system prompt, a small
 * generated chat model): Regenerate keeps every version of a reply, switchable, saved and exported;
 * Copy confirms; "New chat" does not pile up empty chats; a chat's system prompt is its own; the
 * title follows an edited first message unless renamed; the view stays where the user reads while
 * a reply streams; one chat exports as Markdown or JSON.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { downloadedText, lastReply, openDemo, openTinyChatModel, replyDone, send, setSampling, SHOTS } from './chat-helpers.ts';

test.describe.configure({ timeout: 300_000 });
test.use({ viewport: { width: 1280, height: 800 } });

const DIR = join('test-results', 'e2e-chat-features');
test.beforeAll(() => mkdirSync(DIR, { recursive: true }));

const replyText = (page: Page) => lastReply(page).getByTestId('markdown').innerText();

async function exportChat(page: Page, as: 'markdown' | 'json') {
  await page.getByTestId('export-menu').locator('summary').click();
  const download = page.waitForEvent('download');
  await page.getByTestId(`export-${as}`).click();
  return downloadedText(download);
}

test('Regenerate keeps the earlier replies: switch between them, after a reload too, and export them', async ({ page }) => {
  await openDemo(page);
  // A random seed per reply (the seed setting is empty): each version is sampled afresh.
  await setSampling(page, { temperature: '1', max: '12' });
  await send(page, 'In the beginning');
  await replyDone(page);
  const texts = [await replyText(page)];
  for (const count of [2, 3]) {
    await page.getByTestId('regenerate').click();
    await expect(lastReply(page).getByTestId('version-label')).toHaveText(`${count}/${count}`, { timeout: 120_000 });
    await replyDone(page);
    texts.push(await replyText(page));
  }
  await expect(page.getByTestId('message-assistant')).toHaveCount(1);
  const versions = lastReply(page).getByTestId('versions');
  await expect(versions.getByRole('button', { name: 'Next version' })).toBeDisabled();
  await versions.getByRole('button', { name: 'Previous version' }).click();
  await expect(versions.getByTestId('version-label')).toHaveText('2/3');
  expect(await replyText(page)).toBe(texts[1]);
  await versions.getByRole('button', { name: 'Previous version' }).click();
  await expect(versions.getByTestId('version-label')).toHaveText('1/3');
  expect(await replyText(page)).toBe(texts[0]);
  await expect(versions.getByRole('button', { name: 'Previous version' })).toBeDisabled();
  await page.screenshot({ path: `${SHOTS}/reply-versions.png` });

  await page.reload();
  await expect(lastReply(page).getByTestId('version-label')).toHaveText('1/3');
  expect(await replyText(page)).toBe(texts[0]);

  const { text } = await exportChat(page, 'json');
  const data = JSON.parse(text) as { conversations: Array<{ messages: Array<{ versions?: Array<{ content: string }>; version?: number }> }> };
  const reply = data.conversations[0]!.messages[1]!;
  expect(reply.versions).toHaveLength(3);
  expect(reply.version).toBe(0);
});

test('Copy says "Copied" and puts the text on the clipboard', async ({ page, context }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await openDemo(page);
  await setSampling(page, { temperature: '0', max: '8' });
  await send(page, 'In the beginning');
  await replyDone(page);
  const copy = page.getByTestId('message-user').getByTestId('copy');
  await copy.click();
  await expect(copy).toHaveText('Copied');
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe('In the beginning');
  // The confirmation goes away again.
  await expect(copy).toHaveText('Copy', { timeout: 10_000 });
});

test('"New chat" clicked again and again keeps one empty chat, saved only once it has a message', async ({ page }) => {
  await openDemo(page);
  const list = page.getByTestId('conversation-list');
  const titles = list.locator('.conversation-title');
  for (let i = 0; i < 3; i++) await page.getByTestId('new-chat').click();
  await expect(titles).toHaveText(['New chat']);
  await page.reload();
  await expect(page.getByTestId('model-ready')).toBeVisible({ timeout: 120_000 });
  await expect(list).toContainText('No conversations yet.');

  await setSampling(page, { temperature: '0', max: '8' });
  await send(page, 'In the beginning');
  await replyDone(page);
  for (let i = 0; i < 3; i++) await page.getByTestId('new-chat').click();
  await expect(titles).toHaveText(['New chat', 'In the beginning']);
  await page.reload();
  await expect(titles).toHaveText(['In the beginning']);
});

test("a chat's system prompt is its own: the default for new chats is a separate setting", async ({ page }) => {
  // The demo continues text and takes no system prompt: this needs a model with a chat template.
  await openTinyChatModel(page, join(DIR, 'tiny-chat.gguf'));

  await page.getByTestId('new-chat').click();
  await page.getByTestId('settings-toggle').click();
  const own = page.getByTestId('system-prompt');
  const defaultPrompt = page.getByTestId('default-system-prompt');
  await expect(own).toHaveValue('You are a helpful assistant.');
  await own.fill('Answer like a pirate.');
  await expect(defaultPrompt).toHaveValue('You are a helpful assistant.');
  await setSampling(page, { temperature: '0', max: '4' });
  await send(page, 'Ahoy');
  await replyDone(page);
  await page.getByTestId('new-chat').click();
  await page.getByTestId('settings-toggle').click();
  await expect(own).toHaveValue('You are a helpful assistant.');
  await defaultPrompt.fill('Be brief.');
  await expect(own).toHaveValue('You are a helpful assistant.');
  await page.getByTestId('conversation-list').getByRole('button', { name: 'Ahoy', exact: true }).click();
  await expect(own).toHaveValue('Answer like a pirate.');
  await page.reload();
  await page.getByTestId('settings-toggle').click();
  await expect(page.getByTestId('system-prompt')).toHaveValue('Answer like a pirate.');
  await expect(page.getByTestId('default-system-prompt')).toHaveValue('Be brief.');
});

test('the title follows an edited first message, unless the chat was renamed', async ({ page }) => {
  await openDemo(page);
  await setSampling(page, { temperature: '0', max: '8' });
  await send(page, 'In the beginning');
  await replyDone(page);
  const title = page.getByTestId('chat-title');
  await expect(title).toHaveText('In the beginning');

  const editFirst = async (text: string) => {
    await page.getByTestId('message-user').first().getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Edit message').fill(text);
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await expect(page.getByTestId('user-text').first()).toHaveText(text);
  };
  await editFirst('And God said');
  await expect(title).toHaveText('And God said');
  await expect(page.getByTestId('conversation-list')).toContainText('And God said');

  const list = page.getByTestId('conversation-list');
  await list.getByRole('button', { name: 'Rename "And God said"' }).click();
  await page.getByLabel('New name').fill('My passage');
  await page.getByLabel('New name').press('Enter');
  await expect(title).toHaveText('My passage');
  await editFirst('Let there be light');
  await expect(title).toHaveText('My passage');
  await page.reload();
  await expect(page.getByTestId('chat-title')).toHaveText('My passage');
});

test('while a reply streams, the view stays where the user scrolled up to read', async ({ page }) => {
  // On WebGPU (SwiftShader here) the demo writes slowly enough to scroll during a reply; the CPU
  // backend finishes it in a fraction of a second.
  await page.addInitScript(() => localStorage.setItem('hearth.backend', 'webgpu'));
  await page.setViewportSize({ width: 1280, height: 600 });
  const file = join(DIR, 'long.json');
  const turns = Array.from({ length: 12 }, (_, i) => [
    { role: 'user', content: `Verse ${i + 1}` },
    { role: 'assistant', content: 'And it was so.' },
  ]).flat();
  writeFileSync(file, JSON.stringify({ format: 'hearth-conversations', version: 1, conversations: [{ title: 'Long', messages: turns }] }));
  await openDemo(page);
  await page.getByTestId('import-conversations').setInputFiles(file);
  await setSampling(page, { temperature: '0', max: '200' });
  const box = page.getByTestId('messages');
  await send(page, 'And the');
  await expect(lastReply(page)).toHaveAttribute('data-streaming', 'true', { timeout: 60_000 });
  await expect(lastReply(page).getByTestId('markdown')).not.toBeEmpty({ timeout: 120_000 });
  // The user scrolls up to the start while the reply goes on.
  const streamingWhenScrolled = await box.evaluate((el) => {
    el.scrollTop = 0;
    return !!document.querySelector('[data-streaming="true"]');
  });
  expect(streamingWhenScrolled).toBe(true);
  await replyDone(page);
  expect(await box.evaluate((el) => el.scrollTop)).toBeLessThan(40);
  await expect(page.getByTestId('user-text').first()).toBeInViewport();

  // Sending again follows the new reply to the end.
  await setSampling(page, { temperature: '0', max: '16' });
  await send(page, 'And');
  await replyDone(page);
  expect(await box.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight)).toBeLessThan(48);
});

test('one chat exports as Markdown and as JSON, named after its title', async ({ page }) => {
  await openDemo(page);
  await setSampling(page, { temperature: '0', max: '12' });
  await send(page, 'In the beginning');
  await replyDone(page);
  const reply = await replyText(page);

  const md = await exportChat(page, 'markdown');
  expect(md.name).toBe('In-the-beginning.md');
  expect(md.text.startsWith('# In the beginning\n')).toBe(true);
  expect(md.text).toContain('## You\n\nIn the beginning\n');
  expect(md.text).toContain('## Assistant\n\n');
  expect(md.text).toContain(reply.split('\n')[0]!.trim());

  const json = await exportChat(page, 'json');
  expect(json.name).toBe('In-the-beginning.json');
  const data = JSON.parse(json.text) as { format: string; conversations: Array<{ title: string; messages: unknown[] }> };
  expect(data.format).toBe('hearth-conversations');
  expect(data.conversations.map((c) => [c.title, c.messages.length])).toEqual([['In the beginning', 2]]);
});
