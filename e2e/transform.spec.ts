/**
 * An encoder-decoder model in the app: a generated t5 (Flan-T5-shaped) file loaded from the Models
 * page replaces the chat with the "Transform text" view; a task and a text run through the engine
 * and the streamed output equals what the CLI's greedy loop writes for the same input
 * (`hearth generate t5.gguf --prompt ... --temperature 0`); the view passes an axe audit.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import { expect, test } from '@playwright/test';
import { hearth, openDemo } from './chat-helpers.ts';

test.describe.configure({ timeout: 240_000 });
test.use({ actionTimeout: 30_000 });
test.use({ viewport: { width: 1280, height: 800 } });

const DIR = join('test-results', 'e2e-transform');
test.beforeAll(() => mkdirSync(DIR, { recursive: true }));

test('a t5 model opens in the Transform text view; its greedy output equals the CLI\'s', async ({ page }) => {
  const model = join(DIR, 'tiny-t5.gguf');
  hearth('make-model', '--arch', 't5', '--embd', '64', '--layers', '2', '--heads', '4', '--ff', '128', '--seed', '12', '--name', 'Tiny T5', '--out', model);
  const text = 'the house is small';
  const cli = JSON.parse(
    hearth('generate', model, '--prompt', `translate English to German: ${text}`, '-n', '12', '--temperature', '0', '--json', '--backend', 'cpu', '--threads', '1').toString(),
  ) as { text: string; tokens: number[] };
  expect(cli.tokens.length).toBeGreaterThan(0);

  await openDemo(page);
  await page.getByTestId('nav-models').click();
  await page.getByTestId('model-file').setInputFiles(model);
  await page.getByTestId('nav-chat').click();
  await expect(page.getByTestId('model-ready')).toContainText('Tiny T5', { timeout: 120_000 });
  await expect(page.getByTestId('nav-chat')).toHaveText('Transform');
  const view = page.getByTestId('transform-view');
  await expect(view.getByRole('heading', { name: 'Transform text' })).toBeVisible();
  await expect(page.getByTestId('composer')).toHaveCount(0);

  await view.getByLabel('Task', { exact: true }).selectOption('translate-de');
  await expect(page.getByTestId('transform-prefix')).toContainText('translate English to German:');
  await view.getByLabel('Max output tokens', { exact: true }).fill('12');
  await view.getByLabel('Temperature', { exact: true }).fill('0');
  await view.getByLabel('Text to transform', { exact: true }).fill(text);
  await page.getByTestId('transform-run').click();
  await expect(page.getByTestId('transform-status')).toContainText(/\d+ tokens from \d+ input tokens/, { timeout: 120_000 });
  await expect(page.getByTestId('transform-status')).toContainText(`${cli.tokens.length} tokens from`);
  // Rendered as text: exactly the model's output, no markup made of it.
  expect(await page.locator('.transform-text').textContent()).toBe(cli.text);
  await expect(page.getByTestId('transform-output').locator('*:not(p)')).toHaveCount(0);
  await page.screenshot({ path: join(DIR, 'transform.png'), fullPage: true });

  // The same request through the page's engine client: the same output, and chat is refused by name.
  const api = await page.evaluate(async (input) => {
    const engine = window.hearth!.engine;
    const result = await engine.transform({ input, max_tokens: 12, temperature: 0 });
    const chat = await engine.chatCompletion({ messages: [{ role: 'user', content: 'hi' }] }).then(
      () => 'answered',
      (e: Error) => e.name,
    );
    return { output: result.output, chat };
  }, `translate English to German: ${text}`);
  expect(api.output).toBe(cli.text);
  expect(api.chat).toBe('ModelKindError');

  const audit = await new AxeBuilder({ page }).analyze();
  const serious = audit.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual([]);
});
