/**
 * The UI's only handle on the engine: a Comlink proxy of `EngineApi` running in a dedicated
 * worker. The UI never imports engine internals, only the API types.
 *
 * The same engine is also offered to developers as `window.hearth`, an OpenAI-shaped client
 * (`hearth.chat.completions.create({ messages, stream: true, signal })`, see src/engine/client.ts):
 * handy from the console, and what the browser tests of the engine API drive.
 */
import * as Comlink from 'comlink';
import type { EngineApi } from '../engine/api.ts';
import { createHearthClient, type HearthClient } from '../engine/client.ts';
import { installErrorTransfer } from '../engine/worker-errors.ts';

declare global {
  interface Window {
    hearth?: HearthClient;
  }
}

let client: Comlink.Remote<EngineApi> | undefined;

export function engineClient(): Comlink.Remote<EngineApi> {
  if (!client) {
    installErrorTransfer();
    const worker = new Worker(new URL('../engine/worker.ts', import.meta.url), { type: 'module', name: 'hearth-engine' });
    client = Comlink.wrap<EngineApi>(worker);
    window.hearth = createHearthClient(client as unknown as EngineApi, (f) => Comlink.proxy(f as object) as typeof f);
  }
  return client;
}
