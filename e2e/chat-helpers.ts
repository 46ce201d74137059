/** What the chat specs on the built-in demo model share: opening it, settings, sending, downloads. */
import { execFileSync } from 'node:child_process';
import { expect, type Download, type Page } from '@playwright/test';

export const SHOTS = 'test-results/screenshots';

export const lastReply = (page: Page) => page.getByTestId('message-assistant').last();

/** Opens the app and waits for the built-in demo model, which loads by itself. */
export async function openDemo(page: Page) {
  await page.goto('/');
  await expect(page.getByTestId('model-ready')).toContainText(/tiny demo/i, { timeout: 180_000 });
}

export async function setSampling(page: Page, values: { temperature?: string; max?: string }) {
  const settings = page.getByTestId('chat-settings');
  if (!(await settings.isVisible())) await page.getByTestId('settings-toggle').click();
  if (values.temperature !== undefined) await settings.getByLabel('Temperature').fill(values.temperature);
  if (values.max !== undefined) await settings.getByLabel('Max reply tokens').fill(values.max);
  await page.getByTestId('settings-toggle').click();
}

export async function send(page: Page, text: string) {
  const composer = page.getByTestId('composer');
  await composer.fill(text);
  await composer.press('Enter');
}

/** Waits for the last reply to finish (its statistics appear). */
export async function replyDone(page: Page) {
  await expect(lastReply(page).getByTestId('reply-stats')).toContainText(/tokens\/s/, { timeout: 120_000 });
}

export async function downloadedText(download: Promise<Download>): Promise<{ name: string; text: string }> {
  const done = await download;
  const chunks: Buffer[] = [];
  for await (const chunk of await done.createReadStream()) chunks.push(chunk as Buffer);
  return { name: done.suggestedFilename(), text: Buffer.concat(chunks).toString('utf8') };
}

/** The "works offline" toast, when it shows, is dismissed as a user would. */
export async function dismissToast(page: Page) {
  const ok = page.getByRole('button', { name: 'OK', exact: true });
  if (await ok.isVisible()) await ok.click();
}

/**
 * Generates a small random-weight chat model (the demo continues text and has no chat template) at
 * `path`, opens the app and loads it from the Models page.
 */
export async function openTinyChatModel(page: Page, path: string, ctx = 512) {
  execFileSync('node', ['bin/hearth.js', 'make-model', '--arch', 'llama', '--embd', '64', '--layers', '2', '--heads', '4', '--ff', '128', '--ctx', String(ctx), '--seed', '7',
    '--name', 'Tiny test model', '--chat-template', '{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}<|end|>\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}', '--out', path]);
  await openDemo(page);
  await page.getByTestId('nav-models').click();
  await page.getByTestId('model-file').setInputFiles(path);
  await page.getByTestId('nav-chat').click();
  await expect(page.getByTestId('model-ready')).toContainText('Tiny test model', { timeout: 120_000 });
}

/** Models → Servers: adds the server at `url` with `key` (the page checks it by listing its models). */
export async function addServer(page: Page, url: string, key: string) {
  await page.getByTestId('nav-models').click();
  await page.getByTestId('server-url').fill(url);
  await page.getByTestId('server-key').fill(key);
  await page.getByTestId('add-server').click();
}

/** Runs `bin/hearth.js` with `args` (make-model, make-lora, ...). */
export const hearth = (...args: string[]) => execFileSync('node', ['bin/hearth.js', ...args]);

/** The last reply's text, as rendered. */
export const replyText = (page: Page) => lastReply(page).getByTestId('markdown').innerText();

/** Regenerates the last reply, waits for it as version `version` of `version`, and returns its text. */
export async function regenerate(page: Page, version: number): Promise<string> {
  await page.getByTestId('regenerate').click();
  await expect(lastReply(page).getByTestId('version-label')).toHaveText(`${version}/${version}`, { timeout: 120_000 });
  await replyDone(page);
  return replyText(page);
}

/**
 * The tiny chat model opened in the app, with two adapters made in `dir`: `adapter` (style.gguf,
 * rank 8, for it) and `foreign` (foreign.gguf, rank 4, for a qwen2 model).
 */
export async function openTinyModelWithAdapters(page: Page, dir: string): Promise<{ model: string; adapter: string; foreign: string }> {
  const model = `${dir}/tiny.gguf`;
  await openTinyChatModel(page, model);
  const adapter = `${dir}/style.gguf`;
  hearth('make-lora', model, '--rank', '8', '--targets', 'attn_q,attn_v,ffn_down,output', '--gain', '2', '--seed', '3', '--out', adapter);
  const other = `${dir}/other-base.gguf`;
  hearth('make-model', '--arch', 'qwen2', '--embd', '64', '--layers', '1', '--heads', '4', '--ff', '96', '--out', other);
  const foreign = `${dir}/foreign.gguf`;
  hearth('make-lora', other, '--rank', '4', '--out', foreign);
  return { model, adapter, foreign };
}
