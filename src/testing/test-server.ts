/**
 * A `hearth serve` server for tests: an Engine on the CPU backend with a small random-weight model
 * made in memory (the default synthetic vocabulary: fast to load), served on a free port of
 * 127.0.0.1. `wrap` puts something between the server and the engine (a gate, a call counter).
 */
import type { EngineApi } from '../engine/api.ts';
import { Engine } from '../engine/engine.ts';
import { createHearthServer, type HearthServer, type HearthServerOptions } from '../server/server.ts';
import { makeTestModel } from './make-model.ts';

export const TEST_MODEL_ID = 'tiny-test';

/** A fresh engine with a tiny model loaded (context 512 unless `ctx` says otherwise). */
export async function loadTestEngine(ctx = 512): Promise<Engine> {
  const model = makeTestModel({ arch: 'llama', embd: 64, layers: 1, heads: 4, ff: 96, ctx, seed: 7, name: 'Tiny test model' });
  const engine = new Engine({ gpu: undefined, runtime: 'test' });
  await engine.loadModel({ kind: 'file', file: new Blob([model as Uint8Array<ArrayBuffer>]), name: 'tiny.gguf' }, { backend: 'cpu', threads: 1 });
  return engine;
}

export interface TestServer {
  server: HearthServer;
  url: string;
  /** The OpenAI base URL, `${url}/v1`. */
  baseURL: string;
}

export async function startTestServer(engine: EngineApi, options: Partial<HearthServerOptions> = {}): Promise<TestServer> {
  const server = createHearthServer({ engine, modelId: TEST_MODEL_ID, ...options });
  const url = await server.listen(0, '127.0.0.1');
  return { server, url, baseURL: `${url}/v1` };
}

/** Resolves once `check` holds, looking again every few milliseconds (the test's own timeout bounds the wait). */
export async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 2));
}
