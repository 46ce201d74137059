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
import { onTabMessage, type SharedModel, type TabChannel } from './protocol.ts';

export interface EngineServer {
  /** Tells every tab the engine's model changed. */
  announceModel(model: SharedModel): void;
  /** Followers connected and not yet gone. */
  readonly followers: number;
  close(): void;
}

export function serveFollowers(channel: TabChannel, self: string, engine: EngineApi, model: () => SharedModel): EngineServer {
  const connections = new Map<string, ChannelEndpoint>();
  const drop = (follower: string) => {
    connections.get(follower)?.close();
    connections.delete(follower);
  };
  const unsubscribe = onTabMessage(channel, (message) => {
    if (message.type === 'who-owns') channel.postMessage({ type: 'owner', from: self, model: model() });
    else if (message.type === 'connect' && message.to === self) {
      // A reconnect (the same tab again) replaces its old connection.
      drop(message.from);
      const endpoint = channelEndpoint(channel, self, message.from);
      connections.set(message.from, endpoint);
      const api: WorkerApi = { engine, streams: new StreamHost(engine) };
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
