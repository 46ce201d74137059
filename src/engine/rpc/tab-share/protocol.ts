/**
 * What the tabs of one origin say to each other to share one engine. One tab owns the engine (it
 * holds the Web Lock `OWNER_LOCK` for as long as it lives) and runs its worker; the others reach
 * it over the BroadcastChannel `CHANNEL`. A BroadcastChannel reaches every tab, so each message
 * says who sent it and, where it is meant for one tab, which.
 *
 * The engine calls themselves travel as `rpc` envelopes carrying Comlink's messages, so a follower
 * speaks to the owner exactly as the page speaks to the worker (protocol.ts one level up: plain
 * calls and pull streams). Nothing is transferred: a BroadcastChannel cannot carry MessagePorts,
 * which is why the pull streams (and no Comlink-proxied callbacks) are what crosses.
 */
import type { LoadModelOptions, ModelInfo, ModelSource } from '../../api.ts';
import type { SerializedError } from '../../errors.ts';

export const CHANNEL = 'hearth-engine';
export const OWNER_LOCK = 'hearth-engine-owner';

/**
 * The model of the shared engine, as its owner announces it: what a tab that takes over loads
 * again, and what every tab's UI shows.
 */
export type SharedModel =
  | { state: 'none' }
  | { state: 'loading'; source: ModelSource; options?: LoadModelOptions | undefined }
  | { state: 'ready'; source: ModelSource; options?: LoadModelOptions | undefined; info: ModelInfo }
  /** A reload after a hand-over that failed (an ordinary failed load keeps the model before it). */
  | { state: 'failed'; source: ModelSource; options?: LoadModelOptions | undefined; error: SerializedError };

export type TabMessage =
  /** A tab that does not own the engine asks who does. */
  | { type: 'who-owns'; from: string }
  /** The owner: on taking the lock, and in answer to `who-owns`. */
  | { type: 'owner'; from: string; model: SharedModel }
  /** The owner's model changed (a load began, ended, or the model was unloaded). */
  | { type: 'model'; from: string; model: SharedModel }
  /** A follower opens its connection to the owner; its `rpc` messages follow. */
  | { type: 'connect'; from: string; to: string }
  /** A follower closes (its page is going away): the owner forgets its connection. */
  | { type: 'bye'; from: string; to: string }
  /** One Comlink message between a follower and the owner. */
  | { type: 'rpc'; from: string; to: string; data: unknown };

/** The part of BroadcastChannel the tabs use (Node 20 has it too, which the tests rely on). */
export interface TabChannel {
  postMessage(message: TabMessage): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  removeEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
}

/** A tab message, or undefined for anything else on the channel (another app version, garbage). */
export function asTabMessage(data: unknown): TabMessage | undefined {
  if (!data || typeof data !== 'object') return undefined;
  const { type, from } = data as { type?: unknown; from?: unknown };
  if (typeof from !== 'string') return undefined;
  return type === 'who-owns' || type === 'owner' || type === 'model' || type === 'connect' || type === 'bye' || type === 'rpc' ? (data as TabMessage) : undefined;
}

/** Listens for tab messages on the channel; returns the unsubscribe. */
export function onTabMessage(channel: TabChannel, listener: (message: TabMessage) => void): () => void {
  const handler = (event: { data: unknown }) => {
    const message = asTabMessage(event.data);
    if (message) listener(message);
  };
  channel.addEventListener('message', handler);
  return () => channel.removeEventListener('message', handler);
}
