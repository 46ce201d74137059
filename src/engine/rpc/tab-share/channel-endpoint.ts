/**
 * A Comlink endpoint between two tabs over their shared BroadcastChannel: what this tab posts goes
 * to the peer as `rpc` envelopes, and only the peer's envelopes addressed to this tab come in. Over
 * it Comlink runs unchanged, so the follower's `remoteEngine` and the owner's `StreamHost` are the
 * same code that connects the page to the worker.
 */
import type { Endpoint } from 'comlink';
import { onTabMessage, type TabChannel } from './protocol.ts';

type Listener = Parameters<Endpoint['addEventListener']>[1];

export interface ChannelEndpoint extends Endpoint {
  /** Stops delivering the peer's messages (the channel itself stays open for the tab's other uses). */
  close(): void;
}

export function channelEndpoint(channel: TabChannel, self: string, peer: string): ChannelEndpoint {
  const listeners = new Set<Listener>();
  let closed = false;
  const unsubscribe = onTabMessage(channel, (message) => {
    if (message.type !== 'rpc' || message.to !== self || message.from !== peer) return;
    for (const listener of listeners) {
      const event = { data: message.data } as MessageEvent;
      if (typeof listener === 'function') listener(event);
      else listener.handleEvent(event);
    }
  });
  return {
    postMessage(data: unknown, transfer?: Transferable[]) {
      // A BroadcastChannel clones; it cannot move ports or buffers. The pull-stream protocol never asks to.
      if (transfer && transfer.length > 0) throw new TypeError('Nothing can be transferred between tabs (a Comlink.proxy or transfer was used across them).');
      // After close, answers still owed to the peer (and Comlink's release notes) have no one to go to.
      if (!closed) channel.postMessage({ type: 'rpc', from: self, to: peer, data });
    },
    addEventListener: (_type: string, listener: Listener) => void listeners.add(listener),
    removeEventListener: (_type: string, listener: Listener) => void listeners.delete(listener),
    close() {
      closed = true;
      listeners.clear();
      unsubscribe();
    },
  };
}
