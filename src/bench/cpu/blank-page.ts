/**
 * A blank page in the system's Chromium (HEARTH_CHROMIUM overrides /usr/bin/chromium) for the CPU
 * micro-benchmarks that run self-contained functions in the page (`page.evaluate`): launched,
 * handed to `use`, closed whatever happens. HEARTH_JS_FLAGS passes V8 flags to the page, e.g.
 * `--perf-prof`, which writes jit-<pid>.dump (every function's machine code, wasm included) into
 * the working directory: how the rebuilt vector constants of BYTE_SPLATS (assembly/kernels.ts) were
 * found, with objdump on the dumped code.
 */
import { chromium, type Page } from 'playwright-core';

export async function withBlankPage<T>(use: (page: Page, version: string) => Promise<T>): Promise<T> {
  const browser = await chromium.launch({
    executablePath: process.env.HEARTH_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...(process.env.HEARTH_JS_FLAGS ? [`--js-flags=${process.env.HEARTH_JS_FLAGS}`] : [])],
  });
  try {
    const page = await browser.newPage();
    // tsx keeps function names with a __name helper the page does not have.
    await page.addInitScript('globalThis.__name = (f) => f');
    await page.goto('about:blank');
    return await use(page, browser.version());
  } finally {
    await browser.close();
  }
}
