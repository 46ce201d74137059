/**
 * Model output with math, hostile TeX and oversized markdown, shown through the built app: a
 * conversation imported from a file stands in for a model's reply. KaTeX renders the formulas with
 * its fonts served from the app's own origin (bundled and precached, so math works offline);
 * nothing the TeX says links, loads or styles anything; too-wide tables become text.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';

const DIR = join('test-results', 'e2e-render');

async function importReply(page: Page, name: string, reply: string) {
  mkdirSync(DIR, { recursive: true });
  const file = join(DIR, `${name}.json`);
  writeFileSync(file, JSON.stringify({ format: 'hearth-conversations', version: 1, conversations: [
    { id: name, title: name, systemPrompt: '', messages: [{ role: 'user', content: 'Show me' }, { role: 'assistant', content: reply }] },
  ] }));
  await page.getByTestId('import-conversations').setInputFiles(file);
  return page.getByTestId('message-assistant').getByTestId('markdown');
}

const MATH_REPLY = [
  'The roots of \\(ax^2 + bx + c = 0\\) are',
  '\\[',
  'x = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a}',
  '\\]',
  'and Euler wrote $e^{i\\pi} + 1 = 0$:',
  '',
  '$$\\sum_{n=1}^{\\infty} \\frac{1}{n^2} = \\frac{\\pi^2}{6}$$',
  '',
  'A coffee costs $5 and a book $10.',
  '',
  'Hostile: $\\href{javascript:window.__pwned=1}{click}$ $\\url{https://evil.example/u}$',
  '$\\includegraphics{https://evil.example/pixel.png}$ $\\htmlClass{evil}{x}$ $\\htmlStyle{background:url(https://evil.example/s)}{y}$',
  'and broken $\\frac{1}{$ stays source. See [the formula](https://en.wikipedia.org/wiki/Quadratic_formula).',
].join('\n');

test('math in a reply is rendered by KaTeX with fonts from the origin; hostile TeX stays inert', async ({ page, context }) => {
  const requests: string[] = [];
  context.on('request', (r) => requests.push(r.url()));
  await page.goto('/');
  const reply = await importReply(page, 'math', MATH_REPLY);

  // Two inline formulas from the text, two displayed, plus the hostile ones (rendered inertly).
  await expect(reply.locator('.katex-display')).toHaveCount(2);
  await expect(reply.locator('.katex-display .katex').first()).toBeVisible();
  await expect(reply.locator('p .katex').first()).toBeVisible();
  // The MathML for screen readers survived the sanitizer.
  await expect(reply.locator('.katex-mathml math annotation').first()).toHaveText('ax^2 + bx + c = 0');
  // Prices stay prose; a formula KaTeX cannot parse is shown as its source.
  await expect(reply).toContainText('A coffee costs $5 and a book $10.');
  await expect(reply.locator('code.math-source')).toHaveText('$\\frac{1}{$');
  // The square root's sign is an SVG path: its geometry survived the sanitizer.
  await expect(reply.locator('.sqrt svg path')).toHaveAttribute('d', /^M\d/);
  await expect(reply.locator('.sqrt svg')).toHaveAttribute('viewBox', /^0 0 /);
  // A link in a reply opens in a new tab without a referrer (also kept by the sanitizer).
  const link = reply.getByRole('link', { name: 'the formula' });
  await expect(link).toHaveAttribute('href', 'https://en.wikipedia.org/wiki/Quadratic_formula');
  await expect(link).toHaveAttribute('target', '_blank');
  await expect(link).toHaveAttribute('rel', 'noopener noreferrer nofollow');

  const inert = await reply.evaluate((root) => ({
    links: [...root.querySelectorAll('.katex a, .katex [href]')].map((a) => a.getAttribute('href')),
    loaders: root.querySelectorAll('img, image, use, script, iframe, object, embed, link, style, foreignObject').length,
    evil: root.querySelectorAll('.evil').length,
    styledUrls: [...root.querySelectorAll('[style]')].filter((el) => /url|background/i.test(el.getAttribute('style') ?? '')).length,
  }));
  expect(inert).toEqual({ links: [], loaders: 0, evil: 0, styledUrls: 0 });

  // KaTeX's fonts were loaded, from this origin.
  const fonts = await page.evaluate(async () => {
    await document.fonts.ready;
    return [...document.fonts].filter((f) => f.family.replace(/"/g, '').startsWith('KaTeX') && f.status === 'loaded').map((f) => f.family);
  });
  expect(fonts.length).toBeGreaterThan(0);
  const fontRequests = requests.filter((u) => /KaTeX_.*\.woff2$/.test(u));
  expect(fontRequests.length).toBeGreaterThan(0);
  const origin = new URL(page.url()).origin;
  expect(requests.filter((u) => !u.startsWith(origin) && !/^(data|blob):/.test(u))).toEqual([]);
  expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();
  await page.screenshot({ path: join(DIR, 'math.png'), fullPage: true });
});

test('the service worker precaches the KaTeX fonts', async ({ page }) => {
  await page.goto('/');
  const sw = await (await page.request.get('/sw.js')).text();
  expect(sw).toMatch(/KaTeX_Main-Regular[^"']*\.woff2/);
});

test('an oversized reply is shown within the limits: a 2000-column table as text, a big code block unhighlighted', async ({ page }) => {
  await page.goto('/');
  const cols = 2000;
  const row = (cell: (i: number) => string) => `|${Array.from({ length: cols }, (_, i) => cell(i)).join('|')}|\n`;
  const table = row((i) => `h${i}`) + row(() => '---') + row((i) => `c${i}`);
  const links = '[a](https://example.com/a) https://example.com/b [x](\n'.repeat(2000);
  const reply = await importReply(page, 'big', `${table}\n\n\`\`\`markdown\n${links}\`\`\`\n`);
  await expect(reply.locator('.wide-table')).toContainText('A table of 2000 columns, shown as text.');
  await expect(reply.locator('table')).toHaveCount(0);
  await expect(reply.locator('.code-block code')).toContainText('https://example.com/b');
  await expect(reply.locator('.code-block [class^="hljs-"]')).toHaveCount(0);
});
