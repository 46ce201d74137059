/**
 * The UI's only handle on the engine: the OpenAI-shaped client (src/engine/rpc/client.ts) over
 * the engine running in a dedicated worker. The UI never imports engine internals, only the API
 * types and this client.
 *
 * The same client is offered to developers as `window.hearth`
 * (`hearth.chat.completions.create({ messages, stream: true, signal })`, `hearth.engine.*`):
 * handy from the console, and what the browser tests of the engine API drive.
 */
import { connectEngineWorker, type HearthClient } from '../engine/rpc/client.ts';

declare global {
  interface Window {
    hearth?: HearthClient;
  }
}

let client: HearthClient | undefined;

export function engineClient(): HearthClient {
  if (!client) {
    const worker = new Worker(new URL('../engine/rpc/worker.ts', import.meta.url), { type: 'module', name: 'hearth-engine' });
    client = connectEngineWorker(worker);
    window.hearth = client;
  }
  return client;
}
