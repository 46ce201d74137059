/**
 * The model store in real Chromium: downloads from a local server on another origin (CORS, as a
 * model hub) that serves generated GGUF files with Range support and misbehaves on request (see
 * server.ts), a reload mid-download, a quota smaller than the model, a corrupted byte, local files,
 * and loading from the cache into GPU buffers with the JS heap watched.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { expect, test, type CDPSession, type Page } from '@playwright/test';
import { makeTestGguf } from '../../src/testing/store-fixtures.ts';
import type { HarnessOptions } from './harness.ts';
import { generatedGgufFile, startHarnessServer, startModelServer, type ModelServer, type ServedFile } from './server.ts';

const MiB = 1 << 20;
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

const MODEL = makeTestGguf(6 * MiB, 1);
const PARTS = [makeTestGguf(2 * MiB, 3, [0, 3, 12]), makeTestGguf(2 * MiB, 4, [1, 3]), makeTestGguf(1 * MiB, 5, [2, 3])];

/** Large enough that heap use proportional to it would stand out from the collector's slack. */
const BIG_MIB = 768;
let bigBytes = 0;
let models: ModelServer;
let harness: { url: string; close(): Promise<void> };
let dbCount = 0;

test.beforeAll(async () => {
  test.setTimeout(120_000);
  const big = await generatedGgufFile(BIG_MIB);
  bigBytes = statSync(big).size;
  models = await startModelServer(
    new Map<string, ServedFile>([
      ['model-f16.gguf', MODEL],
      ['big-f16.gguf', { path: big }],
      ...PARTS.map((p, i) => [`split-f16-0000${i + 1}-of-00003.gguf`, p] as [string, Uint8Array]),
    ]),
  );
  harness = await startHarnessServer();
});

test.afterAll(async () => {
  await harness?.close();
  await models?.close();
});

/** Opens the harness with a fresh database (IndexedDB persists across tests in one context). */
async function open(page: Page, options: HarnessOptions = {}): Promise<HarnessOptions> {
  await page.goto(harness.url);
  await expect(page.locator('#status')).toHaveText('ready', { timeout: 30_000 });
  const configured = { dbName: `spec-${Date.now()}-${++dbCount}`, chunkBytes: MiB, ...options };
  await page.evaluate((o) => window.harness.configure(o), configured);
  return configured;
}

const url = (variant: string, file = 'model-f16.gguf') => `${models.origin}/${variant}/${file}`;
const requests = (variant: string, file = 'model-f16.gguf') => models.log.filter((r) => r.variant === variant && r.file === file && r.method === 'GET');

test.describe('model store in Chromium', () => {
  test.beforeEach(() => {
    models.log.length = 0;
  });

  test('downloads with progress, verifies the SHA-256, lists, and reads back the same bytes', async ({ page }) => {
    await open(page);
    const result = await page.evaluate(
      (entry) => window.harness.download(entry),
      { id: 'm', urls: [url('ok')], size: MODEL.length, sha256: sha(MODEL), quantization: 'F16' },
    );
    expect(result.ok, JSON.stringify(result)).toBe(true);
    if (!result.ok) return;
    expect(result.value.model).toMatchObject({ id: 'm', state: 'complete', size: MODEL.length, storedBytes: MODEL.length, sha256: [sha(MODEL)] });
    const downloading = result.value.progress.filter((p) => p.phase === 'downloading');
    expect(downloading.length).toBeGreaterThan(0);
    expect(downloading.every((p) => p.total === MODEL.length && p.bytes <= MODEL.length)).toBe(true);
    expect(result.value.progress.at(-1)).toMatchObject({ phase: 'verifying', bytes: MODEL.length });

    expect(await page.evaluate(() => window.harness.hash('m'))).toEqual({ ok: true, value: [sha(MODEL)] });
    const list = await page.evaluate(() => window.harness.list());
    expect(list.ok && list.value.map((m) => [m.id, m.state, m.quantization, m.size])).toEqual([['m', 'complete', 'F16', MODEL.length]]);
    const usage = await page.evaluate(() => window.harness.usage());
    expect(usage.ok && usage.value.modelBytes).toBe(MODEL.length);
    expect(usage.ok && typeof usage.value.persisted).toBe('boolean');
    expect(usage.ok && usage.value.quota).toBeGreaterThan(MODEL.length);
    // Every GET asked for a range (the first one a 1-byte probe) and got 206.
    expect(requests('ok').map((r) => [r.range, r.status])).toEqual([
      ['bytes=0-0', 206],
      ['bytes=0-', 206],
    ]);
  });

  test('a connection cut halfway is retried from the stored chunks', async ({ page }) => {
    await open(page);
    const result = await page.evaluate((entry) => window.harness.download(entry), { id: 'm', urls: [url('cut')], sha256: sha(MODEL) });
    expect(result.ok, JSON.stringify(result)).toBe(true);
    const ranges = requests('cut').map((r) => r.range);
    expect(ranges.length).toBe(3);
    const resumedAt = Number(/bytes=(\d+)-/.exec(ranges[2]!)![1]);
    expect(resumedAt).toBeGreaterThanOrEqual(MiB);
    expect(resumedAt % MiB).toBe(0);
    expect(result.ok && result.value.progress.some((p) => p.phase === 'retrying' && /connection lost/.test(p.reason!))).toBe(true);
    expect(await page.evaluate(() => window.harness.hash('m'))).toEqual({ ok: true, value: [sha(MODEL)] });
  });

  test('a server that ignores Range: the resumed 200 is skipped up to the stored bytes', async ({ page }) => {
    await open(page);
    const result = await page.evaluate((entry) => window.harness.download(entry), { id: 'm', urls: [url('norange')], sha256: sha(MODEL) });
    expect(result.ok, JSON.stringify(result)).toBe(true);
    expect(requests('norange').every((r) => r.status === 200)).toBe(true);
    expect(requests('norange').length).toBe(3);
    expect(await page.evaluate(() => window.harness.hash('m'))).toEqual({ ok: true, value: [sha(MODEL)] });
  });

  test('a server that lies about the length never yields a loadable model', async ({ page }) => {
    await open(page);
    const short = await page.evaluate((entry) => window.harness.download(entry), { id: 'short', urls: [url('liar-short')] });
    expect(short).toMatchObject({ ok: false, error: { name: 'IntegrityError' } });
    expect(!short.ok && short.error.message).toMatch(/not a usable GGUF model.*past the end/);
    const long = await page.evaluate((entry) => window.harness.download(entry), { id: 'long', urls: [url('liar-long')] });
    expect(long).toMatchObject({ ok: false, error: { name: 'DownloadError' } });
    expect(!long.ok && long.error.message).toMatch(/failed 4 times in a row.*are kept: try again later to resume/);
    const list = await page.evaluate(() => window.harness.list());
    expect(list.ok && list.value.map((m) => [m.id, m.state])).toEqual([['long', 'partial']]);
    expect(await page.evaluate(() => window.harness.hash('long'))).toMatchObject({ ok: false, error: { name: 'ModelNotFoundError' } });
  });

  test('404 fails at once, 500 is retried and then reported, a flaky 500 recovers', async ({ page }) => {
    await open(page);
    const missing = await page.evaluate((entry) => window.harness.download(entry), { id: 'a', urls: [url('404')] });
    expect(missing).toMatchObject({ ok: false, error: { name: 'DownloadError', detail: { status: 404 } } });
    expect(!missing.ok && missing.error.message).toMatch(/not found on the server \(404\)/);
    expect(requests('404').length).toBe(1);

    const broken = await page.evaluate((entry) => window.harness.download(entry), { id: 'b', urls: [url('500')] });
    expect(broken).toMatchObject({ ok: false, error: { name: 'DownloadError' } });
    expect(!broken.ok && broken.error.message).toMatch(/500.*4 times in a row/);
    expect(requests('500').length).toBe(4);

    const flaky = await page.evaluate((entry) => window.harness.download(entry), { id: 'c', urls: [url('flaky')], sha256: sha(MODEL) });
    expect(flaky.ok, JSON.stringify(flaky)).toBe(true);
    expect(requests('flaky').map((r) => r.status)).toEqual([500, 500, 206, 206]);
    expect(requests('flaky').map((r) => r.range)).toEqual(['bytes=0-0', 'bytes=0-0', 'bytes=0-0', 'bytes=0-']);
    const list = await page.evaluate(() => window.harness.list());
    expect(list.ok && list.value.map((m) => m.id)).toEqual(['c']);
  });

  test('a corrupted byte is caught by the hash and the download deleted', async ({ page }) => {
    await open(page);
    const result = await page.evaluate((entry) => window.harness.download(entry), { id: 'm', urls: [url('corrupt')], sha256: sha(MODEL) });
    expect(result).toMatchObject({ ok: false, error: { name: 'IntegrityError', detail: { expected: sha(MODEL) } } });
    expect(!result.ok && result.error.message).toMatch(/corrupted.*deleted; download it again/);
    expect(await page.evaluate(() => window.harness.list())).toEqual({ ok: true, value: [] });
  });

  test('pause and resume a slow download, with rate and time left in the progress', async ({ page }) => {
    await open(page);
    await page.evaluate((entry) => window.harness.start(entry), { id: 'm', urls: [url('slow')], sha256: sha(MODEL) });
    await expect.poll(async () => (await page.evaluate(() => window.harness.progress())).at(-1)?.bytes ?? 0, { timeout: 20_000 }).toBeGreaterThan(2 * MiB);
    await page.evaluate(() => window.harness.pause());
    const paused = await page.evaluate(() => window.harness.wait());
    expect(paused).toMatchObject({ ok: false, error: { name: 'AbortError' } });
    const progress = await page.evaluate(() => window.harness.progress());
    const last = progress.at(-1)!;
    // The server sends about 1.6 MB/s.
    expect(last.rate).toBeGreaterThan(0.3e6);
    expect(last.rate).toBeLessThan(5e6);
    expect(last.eta).toBeGreaterThan(0);
    expect(last.eta).toBeLessThan(30);
    const partial = await page.evaluate(() => window.harness.get('m'));
    expect(partial.ok && partial.value).toMatchObject({ state: 'partial' });
    const kept = partial.ok ? partial.value!.storedBytes : 0;
    expect(kept).toBeGreaterThanOrEqual(MiB);

    const resumed = await page.evaluate((entry) => window.harness.download(entry), { id: 'm', urls: [url('slow')], sha256: sha(MODEL) });
    expect(resumed.ok, JSON.stringify(resumed)).toBe(true);
    expect(requests('slow').at(-1)!.range).toBe(`bytes=${kept}-`);
    expect(await page.evaluate(() => window.harness.hash('m'))).toEqual({ ok: true, value: [sha(MODEL)] });
  });

  test('a reload in the middle of a download resumes from the stored chunks', async ({ page }) => {
    const options = await open(page);
    await page.evaluate((entry) => window.harness.start(entry), { id: 'm', urls: [url('slow')], sha256: sha(MODEL) });
    await expect
      .poll(async () => page.evaluate(async () => ((await window.harness.get('m')) as { ok: true; value?: { storedBytes: number } }).value?.storedBytes ?? 0), {
        timeout: 20_000,
      })
      .toBeGreaterThanOrEqual(2 * MiB);
    await page.reload();
    await expect(page.locator('#status')).toHaveText('ready');
    await page.evaluate((o) => window.harness.configure(o), options);
    const partial = await page.evaluate(() => window.harness.get('m'));
    expect(partial.ok && partial.value?.state).toBe('partial');
    const kept = partial.ok ? partial.value!.storedBytes : 0;
    expect(kept).toBeGreaterThanOrEqual(2 * MiB);
    expect(kept % MiB).toBe(0);

    const resumed = await page.evaluate((entry) => window.harness.download(entry), { id: 'm', urls: [url('slow')], sha256: sha(MODEL) });
    expect(resumed.ok, JSON.stringify(resumed)).toBe(true);
    expect(requests('slow').at(-1)!.range).toBe(`bytes=${kept}-`);
    expect(await page.evaluate(() => window.harness.hash('m'))).toEqual({ ok: true, value: [sha(MODEL)] });
  });

  test('a quota smaller than the model: refused up front, or stopped mid-way with the partial kept', async ({ page }) => {
    await open(page);
    const origin = new URL(harness.url).origin;
    const cdp: CDPSession = await page.context().newCDPSession(page);
    try {
      // Chromium's estimate() ignores a DevTools quota override, so the refusal is shown with a
      // file claimed larger than the real quota (the server says 20 TB; only its size is probed).
      const estimate = await page.evaluate(() => navigator.storage.estimate());
      const refused = await page.evaluate((entry) => window.harness.download(entry), { id: 'm', urls: [url('huge')] });
      expect(refused).toMatchObject({ ok: false, error: { name: 'StorageQuotaError', detail: { neededBytes: 20e12, quota: expect.any(Number) } } });
      expect(!refused.ok && refused.error.detail!.quota).toBeGreaterThanOrEqual(estimate.quota!);
      expect(!refused.ok && refused.error.message).toMatch(/Not enough storage for "model-f16.gguf": it needs 18\.2 TiB more, but this browser allows only [\d.]+ (GiB|MiB) more/);
      expect(requests('huge').map((r) => r.range)).toEqual(['bytes=0-0']);
      expect(await page.evaluate(() => window.harness.list())).toEqual({ ok: true, value: [] });

      // The estimate says there is room (as a stale estimate may), the real quota stops the writes.
      const options = await open(page, { fakeEstimate: true });
      await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 3 * MiB });
      const stopped = await page.evaluate((entry) => window.harness.download(entry), { id: 'm', urls: [url('ok')], sha256: sha(MODEL) });
      expect(stopped).toMatchObject({ ok: false, error: { name: 'StorageQuotaError' } });
      expect(!stopped.ok && stopped.error.message).toMatch(/Storage ran out.*download again to resume, or delete the partial download/);
      const partial = await page.evaluate(() => window.harness.get('m'));
      const kept = partial.ok ? partial.value!.storedBytes : -1;
      expect(kept).toBeGreaterThan(0);
      expect(kept).toBeLessThan(MODEL.length);

      await cdp.send('Storage.overrideQuotaForOrigin', { origin });
      await page.evaluate((o) => window.harness.configure(o), options);
      const resumed = await page.evaluate((entry) => window.harness.download(entry), { id: 'm', urls: [url('ok')], sha256: sha(MODEL) });
      expect(resumed.ok, JSON.stringify(resumed)).toBe(true);
      expect(requests('ok').at(-1)!.range).toBe(`bytes=${kept}-`);
      expect(await page.evaluate(() => window.harness.hash('m'))).toEqual({ ok: true, value: [sha(MODEL)] });
      expect(await page.evaluate(() => window.harness.delete('m'))).toEqual({ ok: true, value: true });
      expect(await page.evaluate(() => window.harness.list())).toEqual({ ok: true, value: [] });
    } finally {
      await cdp.send('Storage.overrideQuotaForOrigin', { origin }).catch(() => undefined);
    }
  });

  test('a split model downloads from its first part URL and opens as one model', async ({ page }) => {
    await open(page);
    const result = await page.evaluate((entry) => window.harness.download(entry), {
      id: 's',
      urls: [url('ok', 'split-f16-00001-of-00003.gguf')],
      sha256: PARTS.map(sha),
    });
    expect(result.ok, JSON.stringify(result)).toBe(true);
    expect(result.ok && result.value.model).toMatchObject({ parts: 3, size: PARTS.reduce((s, p) => s + p.length, 0) });
    expect(await page.evaluate(() => window.harness.hash('s'))).toEqual({ ok: true, value: PARTS.map(sha) });
    const gpu = await page.evaluate(() => window.harness.loadToGpu('s'));
    expect(gpu.ok && gpu.value.tensors, JSON.stringify(gpu)).toBe(12);
    expect(await page.evaluate(() => window.harness.verifyGpu())).toEqual({ ok: true, value: 24 });
  });

  test('local files: picked and copied into the cache, or dropped and read in place', async ({ page }) => {
    await open(page);
    await page.locator('#file').setInputFiles({ name: 'local-f16.gguf', mimeType: 'application/octet-stream', buffer: Buffer.from(MODEL) });
    const copied = await page.evaluate(() => window.harness.importSelected(true));
    expect(copied.ok && copied.value, JSON.stringify(copied)).toMatchObject({ origin: 'file', state: 'complete', storedBytes: MODEL.length });
    const copiedId = copied.ok ? copied.value.id : '';
    expect(await page.evaluate((i) => window.harness.hash(i), copiedId)).toEqual({ ok: true, value: [sha(MODEL)] });

    // Drag and drop of the three split parts, in the wrong order.
    const dataTransfer = await page.evaluateHandle(async (urls) => {
      const dt = new DataTransfer();
      for (const i of [2, 0, 1]) {
        const bytes = await (await fetch(urls[i]!)).arrayBuffer();
        dt.items.add(new File([bytes], urls[i]!.slice(urls[i]!.lastIndexOf('/') + 1)));
      }
      return dt;
    }, [1, 2, 3].map((i) => url('ok', `split-f16-0000${i}-of-00003.gguf`)));
    await page.dispatchEvent('#drop', 'drop', { dataTransfer });
    await expect.poll(() => page.evaluate(() => window.harness.dropped().length)).toBe(1);
    const [dropped] = await page.evaluate(() => window.harness.dropped());
    expect(dropped!.ok && dropped!.value, JSON.stringify(dropped)).toMatchObject({ origin: 'session', parts: 3, storedBytes: 0 });
    const id = dropped!.ok ? dropped!.value.id : '';
    expect(await page.evaluate((i) => window.harness.hash(i), id)).toEqual({ ok: true, value: PARTS.map(sha) });

    // Only the copy survives a reload.
    const options = { dbName: `spec-local-${dbCount}` };
    await page.evaluate((o) => window.harness.configure(o), options);
    await page.reload();
    await expect(page.locator('#status')).toHaveText('ready');
    await page.evaluate((o) => window.harness.configure(o), options);
    expect(await page.evaluate(() => window.harness.list())).toEqual({ ok: true, value: [] });
  });

  test('loading from the cache into GPU buffers keeps the peak JS heap well below the model size', async ({ page }) => {
    test.setTimeout(240_000);
    await open(page, { chunkBytes: 4 * MiB });
    // No SHA-256 here (the size and GGUF checks still run): hashing 768 MiB in JS would only slow the test.
    const downloaded = await page.evaluate((entry) => window.harness.download(entry), { id: 'big', urls: [url('ok', 'big-f16.gguf')] });
    expect(downloaded.ok, JSON.stringify(downloaded).slice(0, 500)).toBe(true);

    const cdp = await page.context().newCDPSession(page);
    await cdp.send('HeapProfiler.collectGarbage');
    const heap = async () => {
      // ArrayBuffers (the chunks) live outside the V8 heap proper: count their backing stores too.
      const usage = (await cdp.send('Runtime.getHeapUsage')) as { usedSize: number; backingStorageSize?: number };
      if (typeof usage.backingStorageSize !== 'number') throw new Error('this Chromium does not report ArrayBuffer backing stores');
      return usage.usedSize + usage.backingStorageSize;
    };
    const baseline = await heap();
    let peak = baseline;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await heap().catch(() => 0));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const loaded = await page.evaluate(() => window.harness.loadToGpu('big'));
    sampling = false;
    await sampler;
    expect(loaded.ok, JSON.stringify(loaded)).toBe(true);
    expect(loaded.ok && loaded.value.bytes).toBeGreaterThan((BIG_MIB - 1) * MiB);
    expect(await page.evaluate(() => window.harness.verifyGpu())).toEqual({ ok: true, value: 2 * (BIG_MIB / 64) });
    const growth = peak - baseline;
    test.info().annotations.push({ type: 'heap', description: `peak growth ${(growth / MiB).toFixed(1)} MiB loading a ${(bigBytes / MiB).toFixed(0)} MiB model` });
    // The uploader reads 16 MiB windows (4 chunks and the joined copy); what stays above that is
    // garbage the collector has not reached yet, bounded by its own thresholds, not by the model:
    // about 170-200 MB here for 512 MiB and for 1 GB (e2e/store/bench.ts). Holding the model would
    // be over 768 MiB.
    expect(growth).toBeLessThan(bigBytes / 2);
  });
});
