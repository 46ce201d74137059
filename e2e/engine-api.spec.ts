/**
 * The engine API in Chromium, through the real engine Worker and Comlink, with the built-in demo
 * model: the page's `window.hearth` (src/engine/rpc/client.ts over src/ui/engine-client.ts) is what an
 * embedding page or the console uses. Streaming as an async iterator, abort at random points with
 * an AbortSignal followed by output equal to a fresh request's, seeded sampling, KV prefix reuse
 * across turns, both context overflow policies, and named errors (with their detail) crossing the
 * worker, after which the engine still answers.
 */
import { expect, test, type Page } from '@playwright/test';
import type { ChatCompletion, ChatMessage } from '../src/engine/api.ts';

test.describe.configure({ timeout: 600_000 });

/**
 * Opens the app on WebGPU: the backend choice is saved as 'webgpu' first, since auto would take
 * the CPU over this machine's software adapter (the CPU backend has its own spec).
 */
async function openWithDemo(page: Page) {
  await page.addInitScript(() => localStorage.setItem('hearth.backend', 'webgpu'));
  await page.goto('/');
  await expect(page.getByTestId('model-ready')).toContainText(/tiny demo/i, { timeout: 180_000 });
  await page.waitForFunction(() => window.hearth !== undefined);
  const status = await page.evaluate(() => window.hearth!.engine.status());
  expect(status.state === 'ready' && status.model.backend).toBe('webgpu');
}

interface StreamResult {
  text: string;
  chunks: number;
  completion: ChatCompletion;
  lastUsage: boolean;
}

/** Streams a request in the page; with `abortAfter`, aborts once that many chunks have come. */
function stream(page: Page, request: Record<string, unknown>, abortAfter?: number): Promise<StreamResult> {
  return page.evaluate(
    async ({ request, abortAfter }) => {
      const controller = new AbortController();
      const s = window.hearth!.chat.completions.create({ ...(request as { messages: ChatMessage[] }), stream: true, signal: controller.signal });
      let text = '';
      let chunks = 0;
      let lastUsage = false;
      for await (const chunk of s) {
        text += chunk.choices[0].delta.content ?? '';
        lastUsage = chunk.usage !== undefined;
        if (chunk.choices[0].delta.content) chunks++;
        if (abortAfter !== undefined && chunks === abortAfter) controller.abort();
      }
      return { text, chunks, completion: await s.completion, lastUsage };
    },
    { request, abortAfter },
  );
}

const PROMPT: ChatMessage[] = [{ role: 'user', content: 'And God said' }];

test('streaming, abort at random points, seeded sampling, prefix reuse', async ({ page }) => {
  await openWithDemo(page);
  const greedy = { messages: PROMPT, temperature: 0, max_tokens: 24 };

  const fresh = await stream(page, greedy);
  expect(fresh.text).toBe(fresh.completion.choices[0].message.content);
  expect(fresh.lastUsage).toBe(true);
  expect(fresh.chunks).toBeGreaterThan(3);
  expect(fresh.completion.usage.completion_tokens).toBeGreaterThan(3);
  expect(fresh.completion.usage.decode_tokens_per_second).toBeGreaterThan(0);
  expect(fresh.text).toMatch(/[a-z]{2,} [a-z]{2,}/i);

  // Abort after a random number of chunks: the reply so far is a prefix of the full one, and the
  // next request gives exactly what a fresh one gave (the KV cache stayed consistent).
  const seed = Date.now() % 997;
  test.info().annotations.push({ type: 'abort-seed', description: String(seed) });
  for (let i = 0; i < 2; i++) {
    const at = 1 + ((seed * (i + 3)) % Math.max(1, fresh.chunks - 2));
    const cut = await stream(page, greedy, at);
    expect(cut.completion.choices[0].finish_reason).toBe('abort');
    expect(fresh.text.startsWith(cut.text)).toBe(true);
    expect(cut.completion.usage.completion_tokens).toBeLessThan(fresh.completion.usage.completion_tokens);
    const again = await stream(page, greedy);
    expect(again.text).toBe(fresh.text);
  }

  // Seeded sampling: the same seed repeats, another seed differs.
  const sampled = { messages: PROMPT, temperature: 1.0, top_k: 40, max_tokens: 16 };
  const a = await stream(page, { ...sampled, seed: 1234 });
  const b = await stream(page, { ...sampled, seed: 1234 });
  const c = await stream(page, { ...sampled, seed: 98765 });
  expect(b.text).toBe(a.text);
  expect(c.text).not.toBe(a.text);

  // A later turn reuses the earlier turn's KV cache: only the new tokens are evaluated. (The
  // assistant turns are given, not generated: this model's replies may contain special tokens that
  // the text leaves out, so a generated reply sent back would not match its own tokens.)
  const turn1: ChatMessage[] = [...PROMPT, { role: 'assistant', content: 'Let there be light.' }, { role: 'user', content: 'And the evening' }];
  const one = await stream(page, { messages: turn1, temperature: 0, max_tokens: 4 });
  const turn2: ChatMessage[] = [...turn1, { role: 'assistant', content: 'And the morning were the first day.' }, { role: 'user', content: 'And God saw' }];
  const two = (await stream(page, { messages: turn2, temperature: 0, max_tokens: 4 })).completion.usage;
  expect(two.cached_prompt_tokens).toBeGreaterThanOrEqual(one.completion.usage.prompt_tokens);
  expect(two.prompt_tokens - two.cached_prompt_tokens).toBeLessThanOrEqual(two.prompt_tokens - one.completion.usage.prompt_tokens);
});

test('context overflow: the error policy names the error, the default drops the oldest turns', async ({ page }) => {
  await openWithDemo(page);
  const long = 'and the word of the lord came unto him saying '.repeat(80);
  const error = await page.evaluate(async (content) => {
    try {
      await window.hearth!.chat.completions.create({ messages: [{ role: 'user', content }], max_tokens: 4, context_overflow: 'error' });
      return undefined;
    } catch (e) {
      return { name: (e as Error).name, message: (e as Error).message };
    }
  }, long);
  expect(error?.name).toBe('ContextWindowExceededError');
  expect(error?.message).toMatch(/context/i);

  const history: ChatMessage[] = [{ role: 'system', content: 'The words of the preacher.' }];
  for (let i = 0; i < 12; i++) {
    history.push({ role: 'user', content: `Verse ${i}: ${'and it came to pass that the people went up '.repeat(4)}` });
    history.push({ role: 'assistant', content: 'and they did eat and were filled '.repeat(4) });
  }
  history.push({ role: 'user', content: 'And the evening' });
  const dropped = await stream(page, { messages: history, temperature: 0, max_tokens: 16 });
  expect(dropped.completion.usage.dropped_messages).toBeGreaterThan(0);
  const status = await page.evaluate(() => window.hearth!.engine.status());
  const context = status.state === 'ready' ? status.model.contextLength : 0;
  expect(dropped.completion.usage.prompt_tokens + 16).toBeLessThanOrEqual(context);
  expect(dropped.completion.usage.completion_tokens).toBeGreaterThan(0);
});

test('errors cross the worker with their name and detail, and the engine recovers', async ({ page }) => {
  await openWithDemo(page);
  const failure = await page.evaluate(async () => {
    const engine = window.hearth!.engine;
    const bytes = new TextEncoder().encode('GGUF but then nothing that makes sense '.repeat(10));
    try {
      await engine.loadModel({ kind: 'file', file: new Blob([bytes]), name: 'broken.gguf' });
      return undefined;
    } catch (e) {
      const error = e as Error & { detail?: Record<string, unknown> };
      return { name: error.name, message: error.message, detail: error.detail };
    }
  });
  expect(failure?.name).toBe('GgufFormatError');
  expect(failure?.message).toMatch(/GGUF/);
  expect(typeof failure?.detail?.['offset']).toBe('number');
  // The next request brings the last good model back.
  const after = await stream(page, { messages: PROMPT, temperature: 0, max_tokens: 8 });
  expect(after.completion.usage.completion_tokens).toBeGreaterThan(0);
  expect(await page.evaluate(() => window.hearth!.engine.status().then((s) => s.state))).toBe('ready');
});
