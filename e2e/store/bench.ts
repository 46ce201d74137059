/**
 * Model store benchmark (not a test): in Chromium, download a generated 1 GB GGUF from a local
 * server into the cache, then load it from the cache into GPU buffers with the engine's uploader,
 * with the peak JS heap (V8 heap plus ArrayBuffer backing stores, sampled over DevTools) of each;
 * and beside them the raw IndexedDB write and read rates through idb-keyval for several chunk
 * sizes, and the store's own download and read rates per chunk size (how its chunk size was chosen).
 *
 *   npx tsx e2e/store/bench.ts [--mb 1024] [--chunk-mib 4] [--read-ahead 0] [--sweep 256K,1M,4M,16M] [--sweep-mb 256]
 *
 * Writes the numbers to stdout and to test-results/store-bench.json.
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { chromium, type CDPSession } from 'playwright-core';
import { generatedGgufFile, startHarnessServer, startModelServer } from './server.ts';

const MiB = 1 << 20;
const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const totalMiB = Number(args.get('mb') ?? 1024);
const chunkBytes = Number(args.get('chunk-mib') ?? 4) * MiB;
const sweep = (args.get('sweep') ?? '256K,1M,4M,16M').split(',').filter(Boolean).map(parseSize);
const sweepBytes = Number(args.get('sweep-mb') ?? 256) * MiB;
const readAheadChunks = Number(args.get('read-ahead') ?? 0);

function parseSize(text: string): number {
  const match = /^(\d+)([KM])$/i.exec(text);
  if (!match) throw new Error(`bad size ${text}`);
  return Number(match[1]) * (match[2]!.toUpperCase() === 'K' ? 1024 : MiB);
}

/** Runs `body` while sampling the page's heap; returns its result and the peak growth in bytes. */
async function withHeap<T>(cdp: CDPSession, body: () => Promise<T>): Promise<{ value: T; peakGrowth: number; seconds: number }> {
  const heap = async () => {
    const usage = (await cdp.send('Runtime.getHeapUsage')) as { usedSize: number; backingStorageSize?: number };
    return usage.usedSize + (usage.backingStorageSize ?? 0);
  };
  await cdp.send('HeapProfiler.collectGarbage');
  const baseline = await heap();
  let peak = baseline;
  let running = true;
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, await heap().catch(() => 0));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  const started = performance.now();
  const value = await body();
  const seconds = (performance.now() - started) / 1000;
  running = false;
  await sampler;
  return { value, peakGrowth: peak - baseline, seconds };
}

const path = await generatedGgufFile(totalMiB);
const size = statSync(path).size;
const models = await startModelServer(new Map([['bench.gguf', { path }]]));
const harness = await startHarnessServer();
const browser = await chromium.launch({
  executablePath: process.env.HEARTH_CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--enable-unsafe-webgpu'],
});
try {
  const page = await browser.newPage();
  await page.goto(harness.url);
  await page.waitForFunction(() => document.querySelector('#status')?.textContent === 'ready');
  const cdp = await page.context().newCDPSession(page);
  const results: Record<string, unknown> = {
    date: new Date().toISOString(),
    machine: `${os.cpus().length} cores ${os.cpus()[0]?.model ?? ''}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
    chromium: browser.version(),
    fileBytes: size,
    chunkBytes,
    readAheadChunks,
  };
  const mb = size / 1e6;

  results.networkOnly = await page.evaluate((url) => window.harness.fetchRate(url), `${models.origin}/ok/bench.gguf`);
  console.log('network only (fetch, body discarded)', results.networkOnly);
  results.sha256Only = await page.evaluate(() => window.harness.shaRate(256));
  console.log('incremental SHA-256 only', results.sha256Only);

  await page.evaluate(([c, ra]) => window.harness.configure({ dbName: `bench-${Date.now()}`, chunkBytes: c, readAheadChunks: ra }), [chunkBytes, readAheadChunks] as const);
  const download = await withHeap(cdp, () =>
    page.evaluate((url) => window.harness.download({ id: 'bench', urls: [url] }), `${models.origin}/ok/bench.gguf`),
  );
  if (!download.value.ok) throw new Error(`download failed: ${JSON.stringify(download.value.error)}`);
  results.downloadToCache = { MBps: mb / download.seconds, seconds: download.seconds, peakHeapGrowthMB: download.peakGrowth / 1e6 };
  console.log('download to cache', results.downloadToCache);

  const readThrough = await withHeap(cdp, () => page.evaluate(() => window.harness.readThrough('bench', 16 * 1024 * 1024)));
  if (!readThrough.value.ok) throw new Error(JSON.stringify(readThrough.value.error));
  results.cacheReadThrough16MiB = { MBps: mb / readThrough.seconds, peakHeapGrowthMB: readThrough.peakGrowth / 1e6 };
  console.log('cache read (16 MiB reads)', results.cacheReadThrough16MiB);

  const gpu = await withHeap(cdp, () => page.evaluate(() => window.harness.loadToGpu('bench')));
  if (!gpu.value.ok) throw new Error(`GPU load failed: ${JSON.stringify(gpu.value.error)}`);
  results.cacheToGpu = { MBps: mb / gpu.seconds, seconds: gpu.seconds, peakHeapGrowthMB: gpu.peakGrowth / 1e6, adapter: gpu.value.value.adapter };
  console.log('cache to GPU', results.cacheToGpu);
  const verified = await page.evaluate(() => window.harness.verifyGpu());
  if (!verified.ok) throw new Error(`GPU copy differs: ${JSON.stringify(verified.error)}`);
  await page.evaluate(() => window.harness.delete('bench'));

  // Chunk size sweep: the raw idb-keyval rate (median of 3) and the store's own download and
  // sequential read of a smaller file, per chunk size.
  const sweepPath = await generatedGgufFile(sweepBytes / MiB);
  models.files.set('sweep.gguf', { path: sweepPath });
  const sweepMB = statSync(sweepPath).size / 1e6;
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const byChunk: Array<Record<string, number>> = [];
  for (const chunk of sweep) {
    const rates = [];
    for (let rep = 0; rep < 3; rep++) rates.push(await page.evaluate(([total, c]) => window.harness.rawIdb(total!, c!), [sweepBytes, chunk]));
    await page.evaluate((c) => window.harness.configure({ dbName: `bench-sweep-${c}-${Date.now()}`, chunkBytes: c }), chunk);
    let t = performance.now();
    const got = await page.evaluate((url) => window.harness.download({ id: 'sweep', urls: [url] }), `${models.origin}/ok/sweep.gguf`);
    if (!got.ok) throw new Error(JSON.stringify(got.error));
    const downloadMBps = sweepMB / ((performance.now() - t) / 1000);
    t = performance.now();
    const read = await page.evaluate(() => window.harness.readThrough('sweep', 16 * 1024 * 1024));
    if (!read.ok) throw new Error(JSON.stringify(read.error));
    const readMBps = sweepMB / ((performance.now() - t) / 1000);
    await page.evaluate(() => window.harness.delete('sweep'));
    const row = {
      chunkKiB: chunk / 1024,
      rawWriteMBps: median(rates.map((r) => r.writeMBs)),
      rawReadMBps: median(rates.map((r) => r.readMBs)),
      storeDownloadMBps: downloadMBps,
      storeRead16MiBMBps: readMBps,
    };
    byChunk.push(row);
    console.log('chunk sweep', row);
  }
  results.chunkSweep = { fileBytes: statSync(sweepPath).size, byChunk };
  mkdirSync('test-results', { recursive: true });
  writeFileSync('test-results/store-bench.json', JSON.stringify(results, null, 2) + '\n');
  console.log(JSON.stringify(results, null, 2));
} finally {
  await browser.close();
  await harness.close();
  await models.close();
}
