/**
 * The Compare page with the built-in demo model: quantized to Q8_0 and Q4_0 in the tab (the
 * worker writes the results into the store), measured on a short text, the table and the plot
 * show the three versions with plausible numbers, the results stay after switching pages, a
 * version downloads as the GGUF the store holds, a quantization cancelled through the engine API
 * leaves nothing behind, a local F16 file is copied into the store and quantized from there, and the Benchmark page measures the loaded model and exports JSON.
 */
import { readFileSync } from 'node:fs';
import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Page } from '@playwright/test';

/** Serious and critical axe violations on the page as it is now. */
async function axeFindings(page: Page, name: string): Promise<string[]> {
  const { violations } = await new AxeBuilder({ page }).analyze();
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${name}: ${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 4).join(' | ')}`);
}

// Public-domain text in the demo model's style (Genesis 1, KJV), long enough for a few windows of 32 tokens.
const TEXT = `In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters. And God said, Let there be light: and there was light. And God saw the light, that it was good: and God divided the light from the darkness. And God called the light Day, and the darkness he called Night. And the evening and the morning were the first day. And God said, Let there be a firmament in the midst of the waters, and let it divide the waters from the waters. And God made the firmament, and divided the waters which were under the firmament from the waters which were above the firmament: and it was so. And God called the firmament Heaven. And the evening and the morning were the second day.`;

test('quantize the demo model, measure the versions, keep and download the results', async ({ page }) => {
  test.setTimeout(150_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('/');
  await expect(page.getByTestId('model-ready')).toContainText(/tiny demo/i, { timeout: 60_000 });

  await page.getByTestId('nav-compare').click();
  await expect(page.getByTestId('compare-source')).toContainText(/tiny demo/i);
  await expect(page.getByTestId('quant-type-Q8_0')).toBeChecked();
  await expect(page.getByTestId('quant-type-Q4_0')).toBeChecked();
  await page.getByTestId('quantize').click();
  const versions = page.getByTestId('compare-versions').getByRole('listitem');
  await expect(versions).toHaveCount(3, { timeout: 60_000 });
  await expect(page.getByTestId('quantize')).toBeEnabled();
  await expect(page.getByTestId('compare-error')).toHaveCount(0);

  await page.getByTestId('compare-text').fill(TEXT);
  await page.getByTestId('compare-ctx').fill('32');
  await page.getByTestId('evaluate').click();
  const rows = page.getByTestId('compare-row');
  await expect(rows).toHaveCount(3, { timeout: 90_000 });
  await expect(page.getByTestId('compare-error')).toHaveCount(0);
  const table = await rows.evaluateAll((trs) =>
    trs.map((tr) => ({
      name: tr.querySelector('th')!.textContent!,
      bytes: Number(tr.querySelector('[data-bytes]')!.getAttribute('data-bytes')),
      perplexity: Number(tr.querySelector('[data-value]')!.getAttribute('data-value')),
      text: [...tr.querySelectorAll('td')].map((td) => td.textContent!.trim()),
    })),
  );
  // Printed for the closing note (the numbers are measured, never asserted beyond plausibility).
  console.log(table.map((r) => `${r.name} | ${r.text.join(' | ')}`).join('\n'));
  const [original, q8, q4] = table;
  expect(original!.name).toMatch(/Q8_0/);
  expect(q8!.name).toMatch(/Q8_0/);
  expect(q4!.name).toMatch(/Q4_0/);
  expect(q4!.bytes).toBeLessThan(original!.bytes);
  expect(q8!.bytes).toBeLessThanOrEqual(original!.bytes);
  for (const r of table) {
    expect(Number.isFinite(r.perplexity)).toBe(true);
    expect(r.perplexity).toBeGreaterThan(1);
  }
  // Q8_0 from Q8_0 changes the bytes little; Q4_0 costs perplexity.
  expect(Math.abs(q8!.perplexity - original!.perplexity) / original!.perplexity).toBeLessThan(0.05);
  expect(q4!.text[3]).toMatch(/^\d+\.\d+e[-+]\d+$/);
  const plot = page.getByTestId('compare-plot');
  await expect(plot.getByTestId('plot-point')).toHaveCount(3);
  await expect(plot.locator('title').first()).toHaveText('File size against perplexity');
  await page.screenshot({ path: 'test-results/screenshots/compare.png', fullPage: true });
  const findings = await axeFindings(page, 'compare-light');
  await page.getByTestId('theme').selectOption('dark');
  findings.push(...(await axeFindings(page, 'compare-dark')));
  await page.getByTestId('theme').selectOption('light');

  // The results stay when the page changes.
  await page.getByTestId('nav-chat').click();
  await page.getByTestId('nav-compare').click();
  await expect(page.getByTestId('compare-row')).toHaveCount(3);

  // A version downloads as the file the store holds.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('compare-download').last().click()]);
  expect(download.suggestedFilename()).toMatch(/Q4_0\.gguf$/);
  const bytes = readFileSync((await download.path())!);
  expect(bytes.length).toBe(q4!.bytes);
  expect(bytes.subarray(0, 4).toString('latin1')).toBe('GGUF');

  // Cancel, across the worker: the first progress event cancels; nothing is kept.
  const cancelled = await page.evaluate(async () => {
    const engine = window.hearth!.engine;
    const source = (await engine.listModels()).find((m) => /tiny demo/i.test(m.name) && m.quantization === 'Q8_0' && !m.id.includes(':'))!;
    const id = `${source.id}:Q6_K-cancelled`;
    let error = '';
    try {
      await engine.quantizeModel({ source: { kind: 'cached', id: source.id }, type: 'Q6_K', id }, () => void engine.cancelDownload(id));
    } catch (e) {
      error = (e as Error).name;
    }
    return { error, kept: (await engine.listModels()).some((m) => m.id === id) };
  });
  expect(cancelled).toEqual({ error: 'AbortError', kept: false });

  // A local F16 file: copied into the store, chosen as the original, quantized from there.
  await page.getByTestId('compare-local').setInputFiles('public/models/hearth-demo-kjv-f16.gguf');
  await expect(page.getByTestId('compare-source').locator('option:checked')).toContainText('F16', { timeout: 30_000 });
  await expect(page.getByTestId('compare-row')).toHaveCount(0);
  await page.getByTestId('quantize').click();
  await expect(versions).toHaveCount(3, { timeout: 60_000 });
  await expect(versions.last()).toContainText('Q4_0');
  await expect(page.getByTestId('compare-error')).toHaveCount(0);
  // The text is kept; measured again from the F16 original.
  await page.getByTestId('evaluate').click();
  await expect(rows).toHaveCount(3, { timeout: 90_000 });
  const fromF16 = await rows.evaluateAll((trs) => trs.map((tr) => [tr.querySelector('th')!.textContent!, ...[...tr.querySelectorAll('td')].map((td) => td.textContent!.trim())]));
  console.log(fromF16.map((r) => r.join(' | ')).join('\n'));
  expect(fromF16.map((r) => r[2])).toEqual(['1.00×', expect.stringMatching(/^1\.[89]\d×$/), expect.stringMatching(/^[3-4]\.\d\d×$/)]);

  // The benchmark of the loaded model, exported as JSON.
  await page.getByTestId('nav-bench').click();
  await page.getByLabel('Runs').fill('2');
  await page.getByTestId('bench-run').click();
  await expect(page.getByTestId('bench-report')).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId('bench-decode')).toContainText(/\d+(\.\d+)? .*tokens\/s/);
  const [json] = await Promise.all([page.waitForEvent('download'), page.getByTestId('bench-export').click()]);
  const report = JSON.parse(readFileSync((await json.path())!, 'utf8')) as { kind: string; decodeTokensPerSecond: { median: number; runs: number }; device: { cpu: string } };
  expect(report.kind).toBe('hearth-app-bench');
  expect(report.decodeTokensPerSecond.runs).toBe(2);
  expect(report.decodeTokensPerSecond.median).toBeGreaterThan(0);
  expect(report.device.cpu).toMatch(/logical cores/);
  findings.push(...(await axeFindings(page, 'benchmark')));
  expect(findings).toEqual([]);
  console.log('bench', JSON.stringify(report));
  expect(errors).toEqual([]);
});
