/**
 * The UI's only handle on the engine: a Comlink proxy of `EngineApi` running in a dedicated
 * worker. The UI never imports engine internals, only the API types.
 *
 * The same engine is also offered to developers as `window.hearth`, an OpenAI-shaped client
 * (`hearth.chat.completions.create({ messages, stream: true, signal })`, see src/engine/rpc/client.ts):
 * handy from the console, and what the browser tests of the engine API drive.
 */
import * as Comlink from 'comlink';
import type { EngineApi } from '../engine/api.ts';
import { clientOfRemote, type HearthClient } from '../engine/rpc/client.ts';
import { installErrorTransfer } from '../engine/rpc/errors.ts';

declare global {
  interface Window {
    hearth?: HearthClient;
  }
}

let client: Comlink.Remote<EngineApi> | undefined;

/**
 * Runs an engine call that reports through a callback (progress, streamed chunks) and delivers the
 * callback's events to `onEvent` only while the call runs. A Comlink-proxied callback travels on a
 * MessagePort of its own, which the browser does not order with the call's result: a last event
 * may arrive after the result and would, for example, put a finished load back to "loading".
 */
export async function callWithEvents<T, E>(onEvent: (event: E) => void, call: (callback: (event: E) => void) => Promise<T>): Promise<T> {
  let settled = false;
  try {
    return await call(
      Comlink.proxy((event: E) => {
        if (!settled) onEvent(event);
      }),
    );
  } finally {
    settled = true;
  }
}

export function engineClient(): Comlink.Remote<EngineApi> {
  if (!client) {
    installErrorTransfer();
    const worker = new Worker(new URL('../engine/rpc/worker.ts', import.meta.url), { type: 'module', name: 'hearth-engine' });
    client = Comlink.wrap<EngineApi>(worker);
    window.hearth = clientOfRemote(client);
  }
  return client;
}
