/**
 * One engine for all tabs (issue 19, item 12), with the built-in demo model in two pages of one
 * browser context (they share the origin's Web Locks and BroadcastChannels, as two tabs do):
 * - page A opens and loads the demo; page B opens and starts no engine of its own (no engine
 *   worker in B; before, every tab started one and loaded its own copy of the model), says that
 *   the engine runs in another tab, and shows A's model;
 * - B streams a reply through A's engine, and its abort ends the request there;
 * - A closes: B starts its engine worker, loads the demo again, says the engine moved, and chats.
 */
import { expect, test, type Page } from '@playwright/test';
import type { ChatCompletion, ChatMessage } from '../src/engine/api.ts';

test.describe.configure({ timeout: 300_000 });

/** The page's dedicated engine workers (not the CPU backend's thread pool, which they start). */
const engineWorkers = (page: Page) => page.workers().filter((w) => /\/worker-[^/]*\.js$/.test(w.url()));

async function openApp(page: Page) {
  await page.goto('/');
  await expect(page.getByTestId('model-ready')).toContainText(/tiny demo/i, { timeout: 180_000 });
  await page.waitForFunction(() => window.hearth !== undefined);
}

interface StreamResult {
  text: string;
  chunks: number;
  completion: ChatCompletion;
}

/** Streams a request through the page's `window.hearth`; with `abortAfter`, aborts after that many chunks. */
function stream(page: Page, abortAfter?: number): Promise<StreamResult> {
  const messages: ChatMessage[] = [{ role: 'user', content: 'And God said' }];
  return page.evaluate(
    async ({ messages, abortAfter }) => {
      const controller = new AbortController();
      const s = window.hearth!.chat.completions.create({ messages, temperature: 0, max_tokens: 32, stream: true, signal: controller.signal });
      let text = '';
      let chunks = 0;
      for await (const chunk of s) {
        text += chunk.choices[0].delta.content ?? '';
        if (chunk.choices[0].delta.content) chunks++;
        if (chunks === abortAfter) controller.abort();
      }
      return { text, chunks, completion: await s.completion };
    },
    { messages, abortAfter },
  );
}

test('a second tab uses the first tab’s engine, and takes it over when the first closes', async ({ context }) => {
  const a = await context.newPage();
  await openApp(a);
  await expect(a.getByTestId('engine-status')).toHaveAttribute('data-engine-tab', 'owner');
  expect(engineWorkers(a)).toHaveLength(1);

  const b = await context.newPage();
  await openApp(b);
  const statusB = b.getByTestId('engine-status');
  await expect(statusB).toHaveAttribute('data-engine-tab', 'follower');
  await expect(statusB).toContainText('Running in another tab');
  // The proof that B loaded no second copy: it never started an engine worker.
  expect(engineWorkers(b)).toHaveLength(0);
  expect(engineWorkers(a)).toHaveLength(1);
  await b.screenshot({ path: 'test-results/screenshots/tabs-follower.png' });

  // B's requests run on A's engine: a streamed reply, and an abort that ends it there.
  const full = await stream(b);
  expect(full.chunks).toBeGreaterThan(3);
  expect(full.text).toBe(full.completion.choices[0].message.content);
  expect(full.completion.choices[0].finish_reason).not.toBe('abort');
  const cut = await stream(b, 2);
  expect(cut.completion.choices[0].finish_reason).toBe('abort');
  expect(cut.completion.usage.completion_tokens).toBeLessThan(full.completion.usage.completion_tokens);
  expect(full.text.startsWith(cut.text)).toBe(true);

  // A closes: B takes the engine over, loads the demo again from the store, and answers.
  await a.close();
  await expect(statusB).toHaveAttribute('data-engine-tab', 'owner', { timeout: 60_000 });
  await expect(b.getByTestId('engine-moved')).toBeVisible();
  await expect(b.getByTestId('model-ready')).toContainText(/tiny demo/i, { timeout: 180_000 });
  await expect.poll(() => engineWorkers(b).length).toBe(1);
  const status = await b.evaluate(() => window.hearth!.engine.status());
  expect(status.state).toBe('ready');
  const again = await stream(b);
  // The same model, greedy: the same reply as through A's engine.
  expect(again.text).toBe(full.text);
  await b.screenshot({ path: 'test-results/screenshots/tabs-took-over.png' });
});
