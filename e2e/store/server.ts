/**
 * The model store's test servers, started by its specs (and the benchmark) in the Playwright
 * process:
 *
 * - a model server on its own origin (so every request is a CORS request, as with a model hub)
 *   serving GGUF files with Range support, and misbehaving variants chosen by the first path
 *   segment: `/<variant>/<file>`;
 * - a Vite dev server for the harness page (e2e/store/harness.html), which imports the store's
 *   TypeScript directly.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { createServer as createViteServer, type ViteDevServer } from 'vite';
import { GgmlType } from '../../src/engine/gguf/ggml-types.ts';
import { ggufChunks, layoutGguf } from '../../src/engine/gguf/writer.ts';

export type Variant =
  | 'ok'
  /** The first request for a file is cut off halfway (socket destroyed); later ones work. */
  | 'cut'
  /** Claims (and sends) 4096 bytes fewer than the file has. */
  | 'liar-short'
  /** Claims 4096 bytes more than it sends, then closes the connection. */
  | 'liar-long'
  /** Ignores Range: always 200 with the whole file; the first request is cut halfway. */
  | 'norange'
  | '404'
  | '500'
  /** 500 to the first two requests for a file, then fine. */
  | 'flaky'
  /** 64 KiB every 40 ms (about 1.6 MB/s). */
  | 'slow'
  /** One byte in the middle is flipped. */
  | 'corrupt'
  /** Claims the file is 20 TB (more than any quota); for size probes only. */
  | 'huge';

export interface RequestLogEntry {
  variant: string;
  file: string;
  method: string;
  range: string | undefined;
  status: number;
}

/** A file served from memory or from disk (the 1 GB benchmark file). */
export type ServedFile = Uint8Array | { path: string };

export interface ModelServer {
  origin: string;
  log: RequestLogEntry[];
  files: Map<string, ServedFile>;
  close(): Promise<void>;
}

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers': 'Range, Authorization',
  'Access-Control-Expose-Headers': 'Content-Range, Content-Length, Accept-Ranges',
};

export async function startModelServer(files: Map<string, ServedFile> = new Map()): Promise<ModelServer> {
  const log: RequestLogEntry[] = [];
  const counts = new Map<string, number>();
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.destroy(error as Error);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const [, variant = '', ...rest] = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).split('/');
    const name = rest.join('/');
    const range = req.headers.range;
    const entry: RequestLogEntry = { variant, file: name, method: req.method ?? 'GET', range, status: 0 };
    const reply = (status: number, headers: Record<string, string> = {}, body?: string) => {
      entry.status = status;
      log.push(entry);
      res.writeHead(status, { ...CORS, ...headers });
      res.end(body);
    };
    if (req.method === 'OPTIONS') return reply(204, { 'Access-Control-Max-Age': '600' });
    // Size probes (`bytes=0-0`) are not counted: "the first request" means the first transfer.
    const key = `${variant}/${name}`;
    const probe = range === 'bytes=0-0';
    const n = (counts.get(key) ?? 0) + (probe ? 0 : 1);
    counts.set(key, n);
    const every = (counts.get(`all:${key}`) ?? 0) + 1;
    counts.set(`all:${key}`, every);
    const file = files.get(name);
    if (variant === '404' || !file) return reply(404, { 'Content-Type': 'text/plain' }, 'not found');
    if (variant === '500' || (variant === 'flaky' && every <= 2)) return reply(500, { 'Content-Type': 'text/plain' }, 'internal error');

    const realSize = file instanceof Uint8Array ? file.length : statSync(file.path).size;
    let size = realSize;
    if (variant === 'liar-short') size = realSize - 4096;
    if (variant === 'liar-long') size = realSize + 4096;
    if (variant === 'huge') size = 20e12;
    let start = 0;
    let end = size - 1;
    let status = 200;
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes' };
    const match = variant !== 'norange' && range ? /^bytes=(\d+)-(\d*)$/.exec(range) : null;
    if (match) {
      start = Number(match[1]);
      end = match[2] ? Math.min(Number(match[2]), size - 1) : size - 1;
      if (start >= size) return reply(416, { 'Content-Range': `bytes */${size}` });
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    }
    headers['Content-Length'] = String(end - start + 1);
    entry.status = status;
    log.push(entry);
    res.writeHead(status, { ...CORS, ...headers });
    if (req.method === 'HEAD') return void res.end();

    // What is really sent: never past the real file; cut variants stop halfway and drop the socket.
    let sendEnd = Math.min(end + 1, realSize);
    const cutFirst = (variant === 'cut' || variant === 'norange') && n === 1 && !probe;
    if (cutFirst) sendEnd = start + Math.floor((sendEnd - start) / 2);
    const abortAfter = cutFirst || variant === 'liar-long';

    const pieces = file instanceof Uint8Array ? memoryPieces(file, start, sendEnd, variant === 'corrupt') : diskPieces(file.path, start, sendEnd);
    for await (const piece of pieces) {
      if (res.destroyed) return;
      if (!res.write(piece)) await new Promise((resolve) => res.once('drain', resolve));
      if (variant === 'slow') await new Promise((resolve) => setTimeout(resolve, 40));
    }
    if (abortAfter) {
      // Let the bytes written so far leave before the reset.
      await new Promise((resolve) => setTimeout(resolve, 50));
      res.socket?.destroy();
      return;
    }
    res.end();
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    log,
    files,
    close: () => closeServer(server),
  };
}

async function* memoryPieces(file: Uint8Array, start: number, end: number, corrupt: boolean): AsyncGenerator<Uint8Array> {
  const flip = Math.floor(file.length / 2);
  for (let at = start; at < end; at += 65536) {
    let piece = file.subarray(at, Math.min(end, at + 65536));
    if (corrupt && flip >= at && flip < at + piece.length) {
      piece = piece.slice();
      piece[flip - at] = piece[flip - at]! ^ 0x5a;
    }
    yield piece;
  }
}

async function* diskPieces(path: string, start: number, end: number): AsyncGenerator<Uint8Array> {
  if (end <= start) return;
  yield* createReadStream(path, { start, end: end - 1, highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>;
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** The harness page's server: Vite in dev mode, rooted at the repository. */
export async function startHarnessServer(): Promise<{ url: string; close(): Promise<void> }> {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const vite: ViteDevServer = await createViteServer({
    root,
    configFile: false,
    logLevel: 'error',
    server: { host: 'localhost', port: 0, strictPort: false, hmr: false, watch: null },
    optimizeDeps: { noDiscovery: true, include: ['idb-keyval'] },
  });
  await vite.listen();
  const address = vite.httpServer!.address() as AddressInfo;
  return {
    url: `http://localhost:${address.port}/e2e/store/harness.html`,
    close: () => vite.close(),
  };
}

/**
 * A GGUF of about `mib` MiB on disk (64 MiB F16 tensors of random bytes), written once to the
 * temporary directory and reused: large files for the heap test and the benchmark.
 */
export async function generatedGgufFile(mib: number): Promise<string> {
  const dir = `${os.tmpdir()}/hearth-store-bench`;
  mkdirSync(dir, { recursive: true });
  const path = `${dir}/bench-${mib}m.gguf`;
  const tensors = Math.max(1, Math.round(mib / 64));
  const k = (8 << 20) / 2; // rows of 8 MiB in F16, 8 rows: 64 MiB per tensor
  const layout = layoutGguf({
    metadata: { 'general.architecture': 'llama', 'general.name': `store test ${mib} MiB` },
    tensors: Array.from({ length: tensors }, (_, i) => ({ name: `blk.${i}.w.weight`, type: GgmlType.F16, shape: [k, 8] })),
  });
  if (existsSync(path) && statSync(path).size === layout.fileSize) return path;
  const partial = `${path}.${process.pid}.tmp`;
  const out = createWriteStream(partial);
  for await (const chunk of ggufChunks(layout, (t) => randomBytes(t.byteSize))) {
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  renameSync(partial, path);
  return path;
}
