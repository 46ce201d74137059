/**
 * The UI's only handle on the engine: a Comlink proxy of `EngineApi` running in a dedicated
 * worker. The UI never imports engine internals, only the API types.
 */
import * as Comlink from 'comlink';
import type { EngineApi } from '../engine/api.ts';
import { installErrorTransfer } from '../engine/worker-errors.ts';

let client: Comlink.Remote<EngineApi> | undefined;

export function engineClient(): Comlink.Remote<EngineApi> {
  if (!client) {
    installErrorTransfer();
    const worker = new Worker(new URL('../engine/worker.ts', import.meta.url), { type: 'module', name: 'hearth-engine' });
    client = Comlink.wrap<EngineApi>(worker);
  }
  return client;
}
