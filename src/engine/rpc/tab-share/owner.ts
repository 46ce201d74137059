/**
 * The owner tab's serving side: it answers "who owns the engine?", and serves each follower that
 * connects the same API the worker serves the page (`WorkerApi`: plain calls, and the reporting
 * calls as pull streams through a `StreamHost` of its own), over a channel endpoint to that tab.
 */
import * as Comlink from 'comlink';
import type { EngineApi } from '../../api.ts';
import type { WorkerApi } from '../protocol.ts';
import { StreamHost } from '../stream-host.ts';
import { channelEndpoint, type ChannelEndpoint } from './channel-endpoint.ts';
import { engineFrom } from './movable-engine.ts';
import { onTabMessage, type SharedModel, type TabChannel } from './protocol.ts';

export interface EngineServer {
  /** Tells every tab the engine's model changed. */
  announceModel(model: SharedModel): void;
  /** Followers connected and not yet gone. */
  readonly followers: number;
  close(): void;
}

interface Connection {
  endpoint: ChannelEndpoint;
  /** The follower's chat requests still running, by request id: aborted when it leaves. */
  running: Set<string>;
}

/**
 * `engine` as one follower sees it: its chat requests and transforms are recorded while they run, so that a
 * follower that leaves mid-reply does not keep the engine busy for the tabs still there.
 */
function followerEngine(engine: EngineApi, running: Set<string>): EngineApi {
  return engineFrom(async (method, args) => {
    if (method !== 'chatCompletion' && method !== 'transform') return Reflect.apply(engine[method], engine, args) as Promise<unknown>;
    const [request, onChunk] = args as [{ request_id?: string }, unknown];
    const id = request.request_id ?? `tab-${crypto.randomUUID()}`;
    running.add(id);
    try {
      return await (Reflect.apply(engine[method], engine, [{ ...request, request_id: id }, onChunk]) as Promise<unknown>);
    } finally {
      running.delete(id);
    }
  });
}

export function serveFollowers(channel: TabChannel, self: string, engine: EngineApi, model: () => SharedModel): EngineServer {
  const connections = new Map<string, Connection>();
  const drop = (follower: string) => {
    const connection = connections.get(follower);
    if (!connection) return;
    connection.endpoint.close();
    connections.delete(follower);
    for (const id of connection.running) void engine.abort(id).catch(() => undefined);
  };
  const unsubscribe = onTabMessage(channel, (message) => {
    if (message.type === 'who-owns') channel.postMessage({ type: 'owner', from: self, model: model() });
    else if (message.type === 'connect' && message.to === self) {
      // A reconnect (the same tab again) replaces its old connection.
      drop(message.from);
      const endpoint = channelEndpoint(channel, self, message.from);
      const running = new Set<string>();
      connections.set(message.from, { endpoint, running });
      const served = followerEngine(engine, running);
      const api: WorkerApi = { engine: served, streams: new StreamHost(served) };
      Comlink.expose(api, endpoint);
    } else if (message.type === 'bye' && message.to === self) drop(message.from);
  });
  // Followers waiting for an owner (this tab took over from one that closed) hear it here.
  channel.postMessage({ type: 'owner', from: self, model: model() });
  return {
    announceModel: (shared) => channel.postMessage({ type: 'model', from: self, model: shared }),
    get followers() {
      return connections.size;
    },
    close() {
      unsubscribe();
      for (const follower of [...connections.keys()]) drop(follower);
    },
  };
}
