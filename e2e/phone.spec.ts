/**
 * The chat on a phone (390x844), with the built-in demo model: the first message starts near the
 * top (a one-row header and toolbar, the model and demo lines cut to fit), nothing is wider than
 * the screen, and the conversation list is a drawer that closes (its close button, Escape, a tap
 * beside it, choosing a chat). The first minute's screenshot goes to test-results/screenshots/.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { dismissToast, openDemo, replyDone, SHOTS, setSampling } from './chat-helpers.ts';

test.describe.configure({ timeout: 300_000 });
test.use({ viewport: { width: 390, height: 844 } });

test('on a phone the first message starts near the top, and everything fits the width', async ({ page }) => {
  await openDemo(page);
  await setSampling(page, { temperature: '0', max: '48' });
  await page.getByTestId('example').first().click();
  await replyDone(page);
  await dismissToast(page);
  // Read from the start, as after opening a conversation: where does its first message show?
  const messages = page.getByTestId('messages');
  await messages.evaluate((box) => (box.scrollTop = 0));
  const first = await page.getByTestId('message-user').first().boundingBox();
  // Before: 394 px of header, toolbar, model and demo lines came first.
  expect(first!.y).toBeLessThan(170);
  const reply = await page.getByTestId('message-assistant').first().boundingBox();
  expect(reply!.y).toBeLessThan(844 / 2);
  // One row each for the header and the toolbar; the composer on screen; no sideways scrolling.
  expect((await page.locator('.app-header').boundingBox())!.height).toBeLessThanOrEqual(48);
  expect((await page.locator('.chat-toolbar').boundingBox())!.height).toBeLessThanOrEqual(48);
  const composer = (await page.getByTestId('composer').boundingBox())!;
  expect(composer.y + composer.height).toBeLessThanOrEqual(844);
  expect(composer.x + composer.width).toBeLessThanOrEqual(390);
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  // The folded controls keep their names for screen readers, and still open.
  await expect(page.getByRole('button', { name: '☰ Chats' })).toBeVisible();
  await page.getByRole('button', { name: '⚙ Settings' }).click();
  await expect(page.getByTestId('chat-settings')).toBeVisible();
  await page.getByRole('button', { name: '⚙ Settings' }).click();
  await page.screenshot({ path: `${SHOTS}/phone-first-minute.png` });
});

test('on a phone the conversation list is a drawer that closes', async ({ page }) => {
  await openDemo(page);
  const dir = join('test-results', 'e2e-phone');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'two.json');
  writeFileSync(file, JSON.stringify({ format: 'hearth-conversations', version: 1, conversations: [
    { title: 'Morning', messages: [{ role: 'user', content: 'In the morning' }, { role: 'assistant', content: 'the sun rose.' }] },
    { title: 'Evening', messages: [{ role: 'user', content: 'In the evening' }, { role: 'assistant', content: 'the sun set.' }] },
  ] }));
  await page.getByTestId('import-conversations').setInputFiles(file);
  await dismissToast(page);
  const drawer = page.getByRole('complementary', { name: 'Conversations' });
  const toggle = page.getByRole('button', { name: '☰ Chats' });
  await expect(drawer).toBeHidden();

  await test.step('its close button', async () => {
    await toggle.click();
    await expect(drawer).toBeVisible();
    await expect(page.getByTestId('close-list')).toBeFocused();
    await page.screenshot({ path: `${SHOTS}/phone-drawer.png` });
    await page.getByTestId('close-list').click();
    await expect(drawer).toBeHidden();
    await expect(toggle).toBeFocused();
  });

  await test.step('Escape', async () => {
    await toggle.click();
    await expect(drawer).toBeVisible();
    await page.keyboard.press('Escape');
    await expect(drawer).toBeHidden();
  });

  await test.step('a tap beside it', async () => {
    await toggle.click();
    await expect(drawer).toBeVisible();
    // The drawer leaves a strip of the chat uncovered on the right.
    await page.mouse.click(380, 500);
    await expect(drawer).toBeHidden();
  });

  await test.step('choosing a chat', async () => {
    const other = (await page.getByTestId('chat-title').innerText()) === 'Morning' ? 'Evening' : 'Morning';
    await toggle.click();
    await drawer.getByRole('button', { name: other, exact: true }).click();
    await expect(drawer).toBeHidden();
    await expect(page.getByTestId('chat-title')).toHaveText(other);
  });
});
