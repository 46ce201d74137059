/**
 * Runner: the page runtimes in headless Chromium (the system's /usr/bin/chromium through
 * playwright-core): this engine on Chromium's WebGPU and on the CPU backend, and wllama. A Vite dev
 * server serves ./page (TypeScript and `?raw` shaders compiled on request) with the COOP/COEP
 * headers that cross-origin isolation needs (SharedArrayBuffer, so wllama's threads), the models
 * under /models/ with HTTP Range support, and wllama's wasm.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import type { PageResult, PageRunArgs } from './page/main.ts';
import type { WllamaPageResult } from './page/wllama.ts';
import type { Workload } from './types.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cross-Origin-Resource-Policy': 'same-origin' };

/** Serves `file` honouring a single `Range: bytes=a-b` (what httpRangeSource and wllama ask for). */
function serveFile(req: IncomingMessage, res: ServerResponse, file: string): void {
  const size = statSync(file).size;
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
  const headers = { ...ISOLATION, 'Accept-Ranges': 'bytes', 'Content-Type': file.endsWith('.wasm') ? 'application/wasm' : 'application/octet-stream' };
  if (!range) {
    res.writeHead(200, { ...headers, 'Content-Length': size });
    if (req.method === 'HEAD') return void res.end();
    createReadStream(file).pipe(res);
    return;
  }
  const start = range[1] ? Number(range[1]) : Math.max(0, size - Number(range[2]));
  const end = range[1] && range[2] ? Math.min(size - 1, Number(range[2])) : size - 1;
  if (start > end || start >= size) {
    res.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}` });
    return void res.end();
  }
  res.writeHead(206, { ...headers, 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${size}` });
  if (req.method === 'HEAD') return void res.end();
  createReadStream(file, { start, end }).pipe(res);
}

export class ChromiumBench {
  private constructor(
    private readonly server: ViteDevServer,
    private readonly browser: Browser,
    private readonly page: Page,
    private readonly origin: string,
    private readonly cacheDir: string,
  ) {}

  static async start(modelDir: string, log: (line: string) => void, executablePath = process.env.HEARTH_CHROMIUM ?? '/usr/bin/chromium'): Promise<ChromiumBench> {
    const wasm = join(repoRoot, 'node_modules/@wllama/wllama/esm/wasm/wllama.wasm');
    // This server's own stamp, compiled into the page (`define`): the page proves it is this
    // server's transform of this tree's sources, not a page from elsewhere (another tree's server,
    // a cache), before anything is measured with it.
    const build = randomUUID();
    // Its own cache directory: the default, node_modules/.vite, is shared by every checkout whose
    // node_modules is a link to one tree's, and by benches running side by side.
    const cacheDir = mkdtempSync(join(tmpdir(), 'hearth-bench-vite-'));
    const server = await createServer({
      configFile: false,
      root: join(repoRoot, 'src/bench/page'),
      cacheDir,
      define: { __HEARTH_BENCH_BUILD__: JSON.stringify(build) },
      logLevel: 'error',
      server: { host: '127.0.0.1', port: 0, headers: ISOLATION, fs: { allow: [repoRoot] }, hmr: false },
      optimizeDeps: { noDiscovery: true, include: [] },
      plugins: [
        {
          name: 'hearth-bench-files',
          configureServer(s) {
            s.middlewares.use((req, res, next) => {
              const path = (req.url ?? '').split('?')[0]!;
              if (path === '/wllama.wasm') return serveFile(req, res, wasm);
              if (path.startsWith('/models/')) return serveFile(req, res, join(modelDir, basename(decodeURIComponent(path))));
              next();
            });
          },
        },
      ],
    });
    await server.listen();
    const address = server.httpServer?.address();
    if (!address || typeof address === 'string') throw new Error('bench server: no port');
    const origin = `http://127.0.0.1:${address.port}`;
    const browser = await chromium.launch({
      executablePath,
      args: ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-precise-memory-info', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', ...(process.env.HEARTH_JS_FLAGS ? [`--js-flags=${process.env.HEARTH_JS_FLAGS}`] : [])],
    });
    try {
      const page = await browser.newPage();
      page.on('console', (m) => log(m.text()));
      page.on('pageerror', (e) => log(`page error: ${e.message}`));
      await page.goto(`${origin}/index.html`);
      await page.waitForFunction(() => window.hearthBench?.ready === true, undefined, { timeout: 120_000 });
      const pageBuild = await page.evaluate(() => window.hearthBench.build);
      if (pageBuild !== build) throw new Error(`bench page: build ${String(pageBuild)} is not this server's (${build}): the browser ran a page this run did not compile`);
      log(`bench page: ${origin}, compiled from ${repoRoot}`);
      return new ChromiumBench(server, browser, page, origin, cacheDir);
    } catch (error) {
      await browser.close();
      await server.close();
      rmSync(cacheDir, { recursive: true, force: true });
      throw error;
    }
  }

  get version(): string {
    return this.browser.version();
  }

  private args(file: string, workload: Workload, runs: number): PageRunArgs {
    return { url: `${this.origin}/models/${encodeURIComponent(basename(file))}`, workload, runs };
  }

  oursWebGpu(file: string, workload: Workload, runs: number): Promise<PageResult> {
    return this.page.evaluate((a) => window.hearthBench.oursWebGpu(a), this.args(file, workload, runs));
  }

  oursCpu(file: string, workload: Workload, runs: number): Promise<PageResult> {
    return this.page.evaluate((a) => window.hearthBench.oursCpu(a), this.args(file, workload, runs));
  }

  wllama(file: string, workload: Workload, runs: number, gpu = false): Promise<WllamaPageResult> {
    const a = { ...this.args(file, workload, runs), wasmUrl: `${this.origin}/wllama.wasm`, gpu };
    return this.page.evaluate((x) => window.hearthBench.wllama(x), a);
  }

  async close(): Promise<void> {
    await this.browser.close();
    await this.server.close();
    rmSync(this.cacheDir, { recursive: true, force: true });
  }
}
