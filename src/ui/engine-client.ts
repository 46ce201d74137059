/**
 * The UI's only handle on the engine: the OpenAI-shaped client (src/engine/rpc/client.ts) over
 * the engine running in a dedicated worker. The UI never imports engine internals, only the API
 * types and this client.
 *
 * The same client is offered to developers as `window.hearth`
 * (`hearth.chat.completions.create({ messages, stream: true, signal })`, `hearth.engine.*`):
 * handy from the console, and what the browser tests of the engine API drive. For a model on an
 * OpenAI-compatible server, `window.hearthServer({ baseUrl, apiKey, model })` gives the same
 * `chat.completions.create` (src/engine/rpc/openai-server.ts).
 *
 * One engine serves all the app's tabs: the first tab starts the worker, the others send their
 * requests to it, and when it closes another tab takes over (`engineTabs()` says which this is).
 */
import { connectSharedEngine, type HearthClient, type SharedEngine } from '../engine/rpc/client.ts';
import { connectServer } from '../engine/rpc/openai-server.ts';

declare global {
  interface Window {
    hearth?: HearthClient;
    /**
     * The same client for a model on an OpenAI-compatible server (`hearthServer({ baseUrl, apiKey,
     * model }).chat.completions.create(...)`): the request shape is the local engine's. Nothing is
     * sent until it is called.
     */
    hearthServer?: typeof connectServer;
  }
}

let connection: { client: HearthClient; tabs: SharedEngine } | undefined;

function connect() {
  if (!connection) {
    connection = connectSharedEngine(() => new Worker(new URL('../engine/rpc/worker.ts', import.meta.url), { type: 'module', name: 'hearth-engine' }));
    window.hearth = connection.client;
    window.hearthServer = connectServer;
    const { tabs } = connection;
    // Leaving for good: hand the engine over now rather than when the page is torn down.
    window.addEventListener('pagehide', (event) => {
      if (!event.persisted) tabs.close();
    });
  }
  return connection;
}

export function engineClient(): HearthClient {
  return connect().client;
}

/** Which tab runs the engine, the model it has loaded, and when it moved. */
export function engineTabs(): SharedEngine {
  return connect().tabs;
}
