/**
 * Accessibility, in the real Chromium against the production build:
 * - an axe-core audit of every page (Chat with the demo model and a reply, Chat with its settings
 *   open and with rendered markdown, Models with a failed load's error, Device; on a phone the
 *   conversation drawer too), in the light and the dark theme, on a desktop and a phone: no serious
 *   or critical violation. Each audit's full result goes to test-results/a11y/.
 * - the keyboard: the message box has focus on load and again after a reply sent with the Send
 *   button; the conversation list is one tab stop with Up/Down/Home/End inside and Enter to open;
 * - what a screen reader meets: hidden file inputs are out of the accessibility tree, fields have
 *   short names with their help as descriptions, and a streaming reply is announced through a
 *   status line, not token by token.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Page } from '@playwright/test';

const DIR = join('test-results', 'a11y');
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

test.describe.configure({ timeout: 300_000 });
test.beforeAll(() => mkdirSync(DIR, { recursive: true }));

/** A conversation whose reply renders every markdown element the app styles (code colors included). */
const MARKDOWN_CONVERSATION = {
  format: 'hearth-conversations',
  version: 1,
  conversations: [
    {
      id: 'markdown',
      title: 'Markdown sampler',
      systemPrompt: '',
      messages: [
        { role: 'user', content: 'Show me some formatting' },
        {
          role: 'assistant',
          content: [
            '# A heading',
            'Some **bold**, _italic_, `inline code` and [a link](https://example.com).',
            '',
            '> A quotation.',
            '',
            '| a | b |',
            '|---|---|',
            '| 1 | 2 |',
            '',
            '```python',
            'def f(x: int) -> str:',
            '    # a comment',
            '    return "text" + str(42)',
            '```',
          ].join('\n'),
        },
      ],
    },
  ],
};

/** Serious and critical violations on the page as it is now, with the full result saved. */
async function audit(page: Page, name: string): Promise<string[]> {
  const results = await new AxeBuilder({ page }).analyze();
  writeFileSync(join(DIR, `${name}.json`), JSON.stringify(results.violations, null, 2));
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${name}: ${v.id} (${v.impact}, ${v.nodes.length}x): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 4).join(' | ')}`);
}

async function openDemo(page: Page) {
  await page.goto('/');
  await expect(page.getByTestId('model-ready')).toContainText(/tiny demo/i, { timeout: 180_000 });
}

async function send(page: Page, text: string) {
  const composer = page.getByTestId('composer');
  await composer.fill(text);
  await composer.press('Enter');
}

const lastReply = (page: Page) => page.getByTestId('message-assistant').last();

async function importConversations(page: Page, name: string, data: unknown) {
  const file = join(DIR, `${name}.json`);
  writeFileSync(file, JSON.stringify(data));
  await page.getByTestId('import-conversations').setInputFiles(file);
}

/** The chat with the demo's reply, then with rendered markdown (code colors, tables, links, quotations). */
async function auditChat(page: Page, prefix: string): Promise<string[]> {
  await send(page, 'In the beginning');
  await expect(lastReply(page).getByTestId('reply-stats')).toContainText(/tokens\/s/, { timeout: 120_000 });
  const found = await audit(page, `${prefix}-chat-reply`);
  await importConversations(page, 'markdown-conversation', MARKDOWN_CONVERSATION);
  await expect(lastReply(page).locator('.hljs-keyword').first()).toHaveText('def');
  return [...found, ...(await audit(page, `${prefix}-chat-markdown`))];
}

/** A theme chosen in the app, or left to the system's preference (here: dark). */
async function useTheme(page: Page, theme: 'light' | 'dark' | 'system-dark') {
  if (theme === 'system-dark') {
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.getByTestId('theme').selectOption('system');
    await expect(page.locator('html')).not.toHaveAttribute('data-theme');
  } else {
    await page.getByTestId('theme').selectOption(theme);
    await expect(page.locator('html')).toHaveAttribute('data-theme', theme);
  }
}

for (const theme of ['light', 'dark'] as const) {
  test(`axe: every page on a desktop, ${theme} theme`, async ({ page }) => {
    await page.setViewportSize(DESKTOP);
    const found: string[] = [];
    await openDemo(page);
    await useTheme(page, theme);

    // Chat with a reply, then with the settings open (where the reply length is set).
    await page.getByTestId('settings-toggle').click();
    await page.getByTestId('chat-settings').getByLabel('Max reply tokens').fill('24');
    found.push(...(await audit(page, `desktop-${theme}-chat-settings`)));
    await page.getByTestId('settings-toggle').click();
    found.push(...(await auditChat(page, `desktop-${theme}`)));

    // Models, with a failed load's error shown where the file was picked.
    await page.getByTestId('nav-models').click();
    const bad = join(DIR, 'not-a-model.gguf');
    writeFileSync(bad, 'not a model '.repeat(100));
    await page.getByTestId('model-file').setInputFiles(bad);
    await expect(page.getByTestId('load-error')).toBeVisible({ timeout: 60_000 });
    found.push(...(await audit(page, `desktop-${theme}-models`)));

    await page.getByTestId('nav-device').click();
    await expect(page.locator('main h2').first()).toBeVisible();
    found.push(...(await audit(page, `desktop-${theme}-device`)));

    expect(found).toEqual([]);
  });
}

for (const theme of ['light', 'system-dark'] as const) {
  test(`axe: every page on a phone, ${theme} theme`, async ({ page }) => {
    await page.setViewportSize(PHONE);
    const found: string[] = [];
    await openDemo(page);
    await useTheme(page, theme);

    found.push(...(await auditChat(page, `phone-${theme}`)));

    // The conversation list, open as a drawer.
    await page.getByRole('button', { name: /Chats/ }).click();
    await expect(page.getByTestId('new-chat')).toBeVisible();
    found.push(...(await audit(page, `phone-${theme}-conversations`)));
    await page.getByTestId('close-list').click();

    await page.getByTestId('nav-models').click();
    await expect(page.getByTestId('catalog')).toBeVisible();
    found.push(...(await audit(page, `phone-${theme}-models`)));

    await page.getByTestId('nav-device').click();
    await expect(page.locator('main h2').first()).toBeVisible();
    found.push(...(await audit(page, `phone-${theme}-device`)));

    expect(found).toEqual([]);
  });
}

test('keyboard: the message box has focus on load and after a reply; the conversation list is one tab stop with arrows inside', async ({ page }) => {
  await page.setViewportSize(DESKTOP);
  await openDemo(page);
  await expect(page.getByTestId('composer')).toBeFocused();

  await importConversations(page, 'three', {
    format: 'hearth-conversations',
    version: 1,
    conversations: ['First', 'Second', 'Third'].map((title) => ({ title, systemPrompt: '', messages: [{ role: 'user', content: title }] })),
  });
  const list = page.getByTestId('conversation-list');
  const titles = list.locator('.conversation-title');
  await expect(titles).toHaveCount(3);
  const order = await titles.allInnerTexts();
  const activeTitle = (await list.locator('[aria-current="true"]').innerText()).trim();

  await test.step('Tab enters the list once, at the open conversation, and the next Tab leaves it', async () => {
    await page.getByTestId('new-chat').focus();
    await page.keyboard.press('Tab');
    await expect(list.getByRole('button', { name: activeTitle, exact: true })).toBeFocused();
    await page.keyboard.press('Tab');
    const stillInList = await list.evaluate((el) => el.contains(document.activeElement));
    expect(stillInList).toBe(false);
    await page.keyboard.press('Shift+Tab');
    await expect(list.getByRole('button', { name: activeTitle, exact: true })).toBeFocused();
  });

  await test.step('Home, End, Down and Up move within the list; Enter opens the focused one', async () => {
    const focusedTitle = () => page.evaluate(() => document.activeElement?.textContent?.trim());
    await page.keyboard.press('Home');
    expect(await focusedTitle()).toBe(order[0]);
    await page.keyboard.press('ArrowDown');
    expect(await focusedTitle()).toBe(order[1]);
    await page.keyboard.press('End');
    expect(await focusedTitle()).toBe(order[2]);
    await page.keyboard.press('ArrowUp');
    expect(await focusedTitle()).toBe(order[1]);
    await page.keyboard.press('Enter');
    await expect(page.locator('.chat-title')).toHaveText(order[1]!);
    await expect(list.locator('[aria-current="true"]')).toHaveText(order[1]!);
    // Still one tab stop, now at the conversation just opened.
    await page.getByTestId('new-chat').focus();
    await page.keyboard.press('Tab');
    expect(await focusedTitle()).toBe(order[1]);
  });

  await test.step('F2 renames the focused conversation and Right reaches its buttons, all without leaving the list', async () => {
    await page.keyboard.press('F2');
    await expect(page.getByLabel('New name')).toBeFocused();
    await page.keyboard.press('Control+A');
    await page.keyboard.type('Renamed');
    await page.keyboard.press('Enter');
    await expect(list.getByRole('button', { name: 'Renamed', exact: true })).toBeFocused();
    await page.keyboard.press('ArrowRight');
    await expect(list.getByRole('button', { name: 'Rename "Renamed"' })).toBeFocused();
    await page.keyboard.press('ArrowRight');
    await expect(list.getByRole('button', { name: 'Delete "Renamed"' })).toBeFocused();
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft');
    await expect(list.getByRole('button', { name: 'Renamed', exact: true })).toBeFocused();
    // Delete asks first, then leaves the focus on the conversation after the deleted one.
    const before = await titles.allInnerTexts();
    const at = before.indexOf('Renamed');
    const next = before[at + 1] ?? before[at - 1]!;
    page.once('dialog', (d) => void d.accept());
    await page.keyboard.press('Delete');
    await expect(list.getByRole('button', { name: 'Renamed', exact: true })).toHaveCount(0);
    await expect(list.getByRole('button', { name: next, exact: true })).toBeFocused();
  });

  await test.step('a reply sent with the Send button gives the focus back to the message box', async () => {
    await page.getByTestId('new-chat').click();
    await page.getByTestId('composer').fill('In the beginning');
    await page.getByTestId('send').click();
    await expect(lastReply(page).getByTestId('reply-stats')).toContainText(/tokens\/s/, { timeout: 120_000 });
    await expect(page.getByTestId('composer')).toBeFocused();
  });
});

test('screen readers: hidden file inputs are out of the tree, fields have short names with help as descriptions, replies are announced once', async ({ page }) => {
  await page.setViewportSize(DESKTOP);
  await openDemo(page);

  /** Whether Chromium's accessibility tree leaves out the element that `selector` finds. */
  const ignoredByScreenReaders = async (selector: string) => {
    const cdp = await page.context().newCDPSession(page);
    const { root } = await cdp.send('DOM.getDocument');
    const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector });
    const { nodes } = await cdp.send('Accessibility.getPartialAXTree', { nodeId, fetchRelatives: false });
    await cdp.detach();
    return nodes[0]?.ignored === true;
  };
  expect(await ignoredByScreenReaders('[data-testid="import-conversations"]')).toBe(true);

  await test.step('a reply is announced by a status line, not token by token', async () => {
    // Every change inside a live region is read out: the reply's text must not be in one.
    await page.evaluate(() => {
      const w = window as unknown as { __liveReplyChanges: number };
      w.__liveReplyChanges = 0;
      const live = '[aria-live]:not([aria-live="off"]), [role="log"], [role="status"], [role="alert"]';
      const messages = document.querySelector('[data-testid="messages"]')!;
      new MutationObserver((records) => {
        for (const r of records) {
          const el = r.target instanceof Element ? r.target : r.target.parentElement;
          if (el?.closest(live)) w.__liveReplyChanges++;
        }
      }).observe(messages, { subtree: true, childList: true, characterData: true });
    });
    await page.getByTestId('settings-toggle').click();
    await page.getByTestId('chat-settings').getByLabel('Max reply tokens').fill('48');
    await page.getByTestId('chat-settings').getByLabel('Temperature').fill('0');
    await page.getByTestId('settings-toggle').click();
    await send(page, 'In the beginning');
    await expect(lastReply(page).getByTestId('reply-stats')).toContainText(/48 tokens/, { timeout: 120_000 });
    await expect(page.getByTestId('chat-announcer')).toContainText(/Reply finished/);
    expect(await page.evaluate(() => (window as unknown as { __liveReplyChanges: number }).__liveReplyChanges)).toBe(0);
  });

  await test.step('settings: short names, the help as the description', async () => {
    await page.getByTestId('settings-toggle').click();
    const settings = page.getByTestId('chat-settings');
    for (const name of ['Temperature', 'Top-p', 'Top-k', 'Min-p', 'Repetition penalty', 'Max reply tokens', 'Seed']) {
      const field = settings.getByRole(name === 'Seed' ? 'textbox' : 'spinbutton', { name, exact: true });
      await expect(field).toHaveAccessibleName(name);
      await expect(field).toHaveAccessibleDescription(/\w{3,}/);
    }
    await expect(page.getByTestId('composer')).toHaveAccessibleName('Message');
    await expect(page.getByTestId('composer')).toHaveAccessibleDescription(/Enter/);
  });

  await test.step('Models: the picker button is named, its file input is not in the tree, the copy option is short', async () => {
    await page.getByTestId('nav-models').click();
    await expect(page.getByRole('button', { name: /Choose a \.gguf file/ })).toBeVisible();
    expect(await ignoredByScreenReaders('[data-testid="model-file"]')).toBe(true);
    const keep = page.getByRole('checkbox', { name: 'Keep a copy in this browser', exact: true });
    await expect(keep).toHaveAccessibleDescription(/offline/);
  });
});
