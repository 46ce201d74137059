/**
 * The app without WebGPU (the `no-webgpu` project: Chromium with WebGPU and the GPU off): the
 * built-in demo model loads on the CPU backend by itself, a reply streams with its speed, and the
 * Device page reports the CPU backend with worker threads, since the preview server sends
 * COOP/COEP and the page is cross-origin isolated.
 */
import { readFileSync } from 'node:fs';
import { expect, test, type Page } from '@playwright/test';

const SHOTS = 'test-results/screenshots';
const lastReply = (page: Page) => page.getByTestId('message-assistant').last();

test('without WebGPU the demo model loads on the CPU, with threads, and chats', async ({ page }) => {
  test.setTimeout(300_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('/');
  await expect(page.getByTestId('engine-status')).toHaveAttribute('data-engine-version', /\d+\.\d+\.\d+/, { timeout: 30_000 });
  const { isolated, cores } = await page.evaluate(() => ({ isolated: crossOriginIsolated, cores: navigator.hardwareConcurrency }));
  expect(isolated).toBe(true);

  const ready = page.getByTestId('model-ready');
  await expect(ready).toContainText(/tiny demo/i, { timeout: 180_000 });
  await expect(page.getByTestId('model-backend')).toHaveText('CPU');
  const notice = page.getByTestId('backend-notice');
  await expect(notice).toContainText(/^ · WebGPU unavailable: .+; running on the CPU \(\d+ threads?\)/);
  const threads = Number((await notice.innerText()).match(/\((\d+) threads?\)/)![1]);
  if (cores > 1) expect(threads).toBe(Math.min(cores, 8));
  await expect(notice).not.toContainText('single-threaded');

  // Greedy, short: the reply streams and ends with its speed.
  await page.getByTestId('settings-toggle').click();
  const settings = page.getByTestId('chat-settings');
  await settings.getByLabel('Temperature').fill('0');
  await settings.getByLabel('Max reply tokens').fill('32');
  await page.getByTestId('settings-toggle').click();
  const composer = page.getByTestId('composer');
  await composer.fill('In the beginning');
  await composer.press('Enter');
  await expect(lastReply(page).getByTestId('reply-stats')).toContainText(/tokens\/s/, { timeout: 120_000 });
  const reply = await lastReply(page).getByTestId('markdown').innerText();
  expect((reply.match(/\b[A-Za-z]+\b/g) ?? []).length).toBeGreaterThanOrEqual(3);
  await page.screenshot({ path: `${SHOTS}/cpu-chat.png`, fullPage: true });

  // Abort ends a request within a token on the CPU backend too: its steps never wait on a task,
  // so the engine must yield for the abort message to arrive.
  const cut = await page.evaluate(async () => {
    const controller = new AbortController();
    const s = window.hearth!.chat.completions.create({
      messages: [{ role: 'user', content: 'And God said' }], temperature: 0, max_tokens: 400, stream: true, signal: controller.signal,
    });
    let chunks = 0;
    for await (const chunk of s) {
      if (!chunk.choices[0].delta.content) continue;
      chunks++;
      if (chunks === 3) controller.abort();
    }
    const completion = await s.completion;
    return { finish: completion.choices[0].finish_reason, tokens: completion.usage.completion_tokens };
  });
  // How many tokens were made while the abort was on its way depends on how busy the machine
  // is (chat-session.test.ts checks one token, deterministically); an engine that never
  // yields makes all 400 and finishes with 'length'.
  expect(cut.finish).toBe('abort');
  expect(cut.tokens).toBeLessThan(400);

  // The Device page: CPU backend with SIMD and its threads (or, on one core, why not).
  await page.getByTestId('nav-device').click();
  const cpu = page.getByTestId('cpu-report');
  await expect(cpu).toContainText('CPU backend');
  await expect(page.getByTestId('wasm-simd')).toHaveText('supported');
  await expect(page.getByTestId('relaxed-simd')).toContainText(/supported/);
  const threadLine = page.getByTestId('cpu-threads');
  await expect(threadLine).toHaveAttribute('data-cross-origin-isolated', 'true');
  if (cores > 1) {
    await expect(threadLine).toContainText(`${Math.min(cores, 8)} threads (of ${cores} logical cores)`);
    expect(Number(await threadLine.getAttribute('data-threads'))).toBeGreaterThan(1);
  }
  await page.screenshot({ path: `${SHOTS}/cpu-device.png`, fullPage: true });

  // The Models page shows the backend choice and what runs now.
  await page.getByTestId('nav-models').click();
  await expect(page.getByTestId('backend-choice')).toHaveValue('auto');
  await expect(page.getByTestId('backend-in-use')).toContainText('CPU');
  // The thread count can be set (default: the engine's, from hardwareConcurrency); the model reloads.
  await expect(page.getByTestId('threads-choice')).toHaveValue('auto');
  await page.getByTestId('threads-choice').selectOption('1');
  await expect(page.getByTestId('backend-in-use')).toContainText('CPU, 1 thread');

  // "Fits this device" judges the backend that runs: on the CPU, weights over 4 GiB spread over
  // several WebAssembly memories (src/engine/backend/cpu/shards.ts), so a 7-8B model is judged by
  // the device's memory and the storage quota (either may still say no on a given machine), never
  // refused for wasm32's 4 GiB.
  const catalog = JSON.parse(readFileSync('public/models.json', 'utf8')).models as Array<{ id: string; approxSize: number }>;
  const overOneMemory = catalog.filter((m) => m.approxSize > 4 * 1024 ** 3 && m.approxSize < 8 * 1024 ** 3);
  expect(overOneMemory.length).toBeGreaterThan(0);
  for (const m of overOneMemory) {
    const fit = page.getByTestId(`catalog-${m.id}`).getByTestId('fit');
    await expect(fit).toBeVisible();
    await expect(fit).not.toContainText(/WebAssembly memor|needs WebGPU/i);
  }
  const small = catalog.find((m) => m.approxSize < 1e9 && m.id !== catalog[0]!.id)!;
  await expect(page.getByTestId(`catalog-${small.id}`).getByTestId('fit')).not.toContainText('Will not fit');
  expect(errors).toEqual([]);
});
