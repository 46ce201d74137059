/**
 * The follower tab's client side: it finds the owner (asks, and listens for announcements), opens
 * a connection to it, and hands back the owner's engine as a plain `EngineApi` over that connection
 * (the worker's own client code, remote-engine.ts, over a channel endpoint). When another tab
 * announces itself as the owner (the old one closed), it connects to that one instead.
 */
import * as Comlink from 'comlink';
import type { EngineApi } from '../../api.ts';
import type { WorkerApi } from '../protocol.ts';
import { remoteEngine } from '../remote-engine.ts';
import { channelEndpoint, type ChannelEndpoint } from './channel-endpoint.ts';
import { onTabMessage, type SharedModel, type TabChannel } from './protocol.ts';

export interface FollowerEvents {
  /** A (new) owner's engine to send requests to. */
  owner(ownerId: string, engine: EngineApi): void;
  /** The owner's model, as it announced it. */
  model(model: SharedModel): void;
}

export interface Follower {
  close(): void;
}

export function followOwner(channel: TabChannel, self: string, on: FollowerEvents): Follower {
  let owner: { id: string; endpoint: ChannelEndpoint } | undefined;
  const unsubscribe = onTabMessage(channel, (message) => {
    if (message.type === 'owner') {
      if (owner?.id !== message.from) connect(message.from);
      on.model(message.model);
    } else if (message.type === 'model' && message.from === owner?.id) on.model(message.model);
  });

  function connect(id: string) {
    owner?.endpoint.close();
    const endpoint = channelEndpoint(channel, self, id);
    owner = { id, endpoint };
    // Sent before any call: the channel keeps one sender's messages in order.
    channel.postMessage({ type: 'connect', from: self, to: id });
    on.owner(id, remoteEngine(Comlink.wrap<WorkerApi>(endpoint)));
  }

  channel.postMessage({ type: 'who-owns', from: self });
  return {
    close() {
      unsubscribe();
      if (!owner) return;
      channel.postMessage({ type: 'bye', from: self, to: owner.id });
      owner.endpoint.close();
      owner = undefined;
    },
  };
}
