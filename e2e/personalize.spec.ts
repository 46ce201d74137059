/**
 * Personalize on the built-in demo model (llama, trainable): a short text, the estimate before
 * Start, a few steps plotted live, Pause, a reload that offers the saved run, Resume from the saved
 * step (never from an earlier one), the result with held-out perplexity before and after and
 * samples side by side, and "Use this adapter": stored in the adapter store and attached in the chat.
 * Figures (tokens/s, estimate against the run, perplexity) are printed as "[personalize]" lines.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Page } from '@playwright/test';
import { openDemo } from './chat-helpers.ts';

test.describe.configure({ timeout: 180_000 });
test.use({ viewport: { width: 1280, height: 900 } });

const DIR = join('test-results', 'e2e-personalize');
test.beforeAll(() => mkdirSync(DIR, { recursive: true }));

/** axe-core's serious and critical findings on the page as it is (as e2e/a11y.spec.ts audits the other pages). */
async function seriousViolations(page: Page): Promise<string[]> {
  const { violations } = await new AxeBuilder({ page }).analyze();
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(' | ')}`);
}

const TEXT = 'And the keeper of the lighthouse rang the bell eleven times, and wrote the names of the ships in green ink. '.repeat(8);
/**
 * Enough steps that the run is still going when the test pauses it: the wasm training ops run the
 * demo model's 16-token steps in tens of milliseconds, so 8 steps could end before the pause.
 */
const STEPS = 48;
/** A count of plotted points of at least 3 (or 2): the run may be many steps on when it is read. */
const AT_LEAST_3 = /^([3-9]|[1-9]\d+)$/;
const AT_LEAST_2 = /^([2-9]|[1-9]\d+)$/;

test('train, pause, reload, resume from the saved step, finish, use the adapter', async ({ page }) => {
  await openDemo(page);
  await page.getByTestId('nav-personalize').click();
  await expect(page.getByTestId('train-model')).toContainText(/tiny demo/i);
  await page.getByTestId('train-text').fill(TEXT);
  await page.getByTestId('train-steps').fill(String(STEPS));
  await page.getByTestId('train-rank').fill('2');
  await page.getByTestId('train-window').fill('16');
  await page.getByTestId('train-heldOut').fill('0.2');
  await page.getByTestId('train-lr').fill('0.005');
  await page.getByTestId('train-name').fill('keeper-style');
  await page.getByTestId('train-prompts').fill('And the keeper');
  await expect(page.getByTestId('train-start')).toBeDisabled();
  await page.getByTestId('train-estimate').click();
  const estimate = page.getByTestId('train-estimate-view');
  await expect(estimate).toContainText('Memory', { timeout: 60_000 });
  await expect(estimate).toContainText(`${STEPS} steps`);
  // Chromium here has no hardware GPU (SwiftShader at most, slower than the CPU ops): training goes on the CPU, and says so.
  await expect(page.getByTestId('train-estimate-backend')).toHaveText('CPU');
  expect(await seriousViolations(page)).toEqual([]);
  // On a phone the page fits the width (no sideways scrolling).
  await page.setViewportSize({ width: 390, height: 844 });
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await page.screenshot({ path: join(DIR, 'phone-setup.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });
  const estimatedSeconds = Number(await estimate.getAttribute('data-seconds'));
  const estimatedSpeed = Number(await estimate.getAttribute('data-tokens-per-second'));
  expect(estimatedSeconds).toBeGreaterThan(0);
  expect(Number(await estimate.getAttribute('data-memory'))).toBeGreaterThan(5 * 2 ** 20); // the demo's weights alone are 5.7 MiB

  const started = Date.now();
  await page.getByTestId('train-start').click();
  const progress = page.getByTestId('train-progress');
  // Steps are plotted as they come: a train-loss line with 3 points or more, and the held-out loss of the base (step 0) and a later check.
  await expect(page.getByTestId('loss-train')).toHaveAttribute('data-points', AT_LEAST_3, { timeout: 60_000 });
  await expect(page.getByTestId('loss-held-out')).toHaveAttribute('data-points', AT_LEAST_2, { timeout: 60_000 });
  await expect(page.getByTestId('train-speed')).toContainText('tokens/s');
  await expect(page.getByTestId('train-backend')).toHaveText('training on the CPU');
  await expect(page.getByTestId('train-left')).toContainText('left');
  // The run goes on while another page is open, and the page shows it again on the way back.
  await page.getByTestId('nav-chat').click();
  await page.getByTestId('nav-personalize').click();
  await expect(page.getByTestId('train-pause')).toBeEnabled();
  await expect(page.getByTestId('loss-train')).toHaveAttribute('data-points', AT_LEAST_3);
  await page.getByTestId('train-pause').click();
  const saved = page.getByTestId('train-saved');
  await expect(saved).toContainText(new RegExp(`paused at step \\d+ of ${STEPS}`), { timeout: 30_000 });
  const firstPart = (Date.now() - started) / 1000;
  const pausedAt = Number(/paused at step (\d+)/.exec((await saved.textContent()) ?? '')![1]);
  expect(pausedAt).toBeGreaterThanOrEqual(3);
  expect(pausedAt).toBeLessThan(STEPS);
  await page.screenshot({ path: join(DIR, 'paused.png'), fullPage: true });

  // A reload: the page (at #personalize) offers the run saved in IndexedDB, with its plot.
  await page.reload();
  await expect(page.getByTestId('train-saved')).toContainText(`paused at step ${pausedAt} of ${STEPS}`, { timeout: 60_000 });
  await expect(page.getByTestId('loss-train')).toHaveAttribute('data-points', String(pausedAt));
  await expect(page.getByTestId('train-resume')).toBeEnabled({ timeout: 120_000 });
  // Every step shown from here on, recorded as it changes: the run goes on from the saved step.
  await page.evaluate(() => {
    const seen: number[] = [];
    (window as unknown as { seenSteps: number[] }).seenSteps = seen;
    new MutationObserver(() => {
      const el = document.querySelector('[data-testid="train-progress"]');
      if (el) seen.push(Number(el.getAttribute('data-step')));
    }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['data-step'], childList: true });
  });
  await page.getByTestId('train-resume').click();
  const result = page.getByTestId('train-result');
  await expect(result).toBeVisible({ timeout: 90_000 });
  const seen = await page.evaluate(() => (window as unknown as { seenSteps: number[] }).seenSteps);
  expect(Math.min(...seen)).toBe(pausedAt);
  expect(seen).toContain(pausedAt + 1);
  await expect(progress).toHaveAttribute('data-step', String(STEPS));
  await expect(page.getByTestId('loss-train')).toHaveAttribute('data-points', String(STEPS));
  await expect(result).toHaveAttribute('data-steps', String(STEPS));
  await expect(result).toContainText(`${STEPS} steps (${STEPS - pausedAt} since the resume)`);

  const ppl = page.getByTestId('train-perplexity');
  const before = Number(await ppl.getAttribute('data-before'));
  const after = Number(await ppl.getAttribute('data-after'));
  expect(before).toBeGreaterThan(1);
  expect(after).toBeGreaterThan(1);
  // Trained on the same sentence the held-out windows hold: the adapter predicts it better.
  expect(after).toBeLessThan(before);
  const sample = page.getByTestId('train-sample');
  await expect(sample).toHaveCount(1);
  await expect(sample.locator('th')).toHaveText('And the keeper');
  const tps = Number(await result.getAttribute('data-tokens-per-second'));
  const seconds = Number(await result.getAttribute('data-seconds'));
  console.log(
    `[personalize] demo model, CPU (wasm) ops in the worker: ${tps.toFixed(1)} tokens/s (estimate measured ${estimatedSpeed.toFixed(1)}); estimate ${estimatedSeconds.toFixed(1)} s for ${STEPS} steps, ` +
      `actual: ${firstPart.toFixed(1)} s to the pause at step ${pausedAt} (page included) + ${seconds.toFixed(1)} s resumed (samples included) = ${(firstPart + seconds).toFixed(1)} s; ` +
      `held-out perplexity ${before.toFixed(2)} -> ${after.toFixed(2)}`,
  );
  await page.screenshot({ path: join(DIR, 'result.png'), fullPage: true });
  expect(await seriousViolations(page)).toEqual([]);
  await page.setViewportSize({ width: 390, height: 844 });
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await page.setViewportSize({ width: 1280, height: 900 });

  await page.getByTestId('train-use').click();
  await expect(page.getByTestId('adapters-active')).toContainText('LoRA: keeper-style', { timeout: 60_000 });
  await page.getByTestId('nav-models').click();
  await expect(page.getByTestId('adapter-store').getByTestId('adapter-item').filter({ hasText: 'keeper-style' }).getByTestId('adapter-facts')).toContainText('for llama models · rank 2');
});

test('data from files and the chat history, a file that is not text refused, cancel drops the run', async ({ page }) => {
  await openDemo(page);
  const history = join(DIR, 'history.json');
  writeFileSync(
    history,
    JSON.stringify({
      format: 'hearth-conversations',
      version: 1,
      conversations: [
        {
          id: 'bells',
          title: 'About the bells',
          systemPrompt: '',
          messages: [
            { role: 'user', content: 'Who rang the bell?' },
            { role: 'assistant', content: 'The keeper of the lighthouse rang it eleven times.' },
          ],
        },
      ],
    }),
  );
  await page.getByTestId('import-conversations').setInputFiles(history);
  await page.getByTestId('nav-personalize').click();
  const conversation = page.getByTestId('train-conversation');
  await expect(conversation).toHaveCount(1);
  await conversation.check();
  const notes = join(DIR, 'notes.md');
  writeFileSync(notes, '# Ships\n\nThe ships were written in green ink, each name on its own line.\n'.repeat(6));
  const picture = join(DIR, 'picture.png');
  writeFileSync(picture, 'not text');
  await page.getByTestId('train-files').setInputFiles([notes, picture]);
  await expect(page.getByTestId('train-file-list')).toContainText('notes.md');
  await expect(page.getByText('picture.png: not a text or Markdown file')).toBeVisible();
  // Far more steps than run before the cancel, however fast the ops are.
  await page.getByTestId('train-steps').fill('2000');
  await page.getByTestId('train-window').fill('16');
  await page.getByTestId('train-estimate').click();
  await expect(page.getByTestId('train-estimate-view')).toContainText('training windows', { timeout: 60_000 });
  // A setting changed after the estimate: Start waits for a new one.
  await page.getByTestId('train-rank').fill('4');
  await expect(page.getByTestId('train-start')).toBeDisabled();
  await page.getByTestId('train-estimate').click();
  await expect(page.getByTestId('train-start')).toBeEnabled({ timeout: 60_000 });
  await page.getByTestId('train-start').click();
  await expect(page.getByTestId('loss-train')).toHaveAttribute('data-points', /^[1-9]\d*$/, { timeout: 60_000 });
  await page.getByTestId('train-cancel').click();
  await expect(page.getByTestId('train-estimate')).toBeVisible({ timeout: 30_000 });
  await page.reload();
  await expect(page.getByTestId('train-text')).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId('train-saved')).toHaveCount(0);
});
