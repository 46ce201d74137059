/**
 * One engine for all the tabs of an origin. Each tab calls `shareEngine` and gets the same
 * `EngineApi` shape: in the tab that wins the election (election.ts) it is this tab's own engine
 * (its worker, started here), served to the others (owner.ts); in the other tabs it is the owner's
 * engine over the channel (follower.ts). When the owner closes, the next tab in the lock's queue
 * starts its own engine, loads the model the owner had loaded (model-announcer.ts), and the other
 * followers move to it; calls in flight fail with `EngineMovedError` (movable-engine.ts).
 *
 * Without Web Locks or BroadcastChannel every tab runs its own engine, as before.
 */
import type { EngineApi } from '../../api.ts';
import { electOwner, type LockManagerLike } from './election.ts';
import { followOwner, type Follower } from './follower.ts';
import { announceModel } from './model-announcer.ts';
import { MovableEngine } from './movable-engine.ts';
import { serveFollowers, type EngineServer } from './owner.ts';
import { OWNER_LOCK, type SharedModel, type TabChannel } from './protocol.ts';

/** Where this tab's requests run: its own engine, shared (owner) or not (alone), or another tab's. */
export type TabRole = 'starting' | 'owner' | 'follower' | 'alone';

export interface TabShareState {
  role: TabRole;
  /** The engine's model, as its owner announced it. */
  model: SharedModel;
  /** How many times the engine moved to another tab since this page opened. */
  moves: number;
}

export interface SharedEngine {
  /** The engine, wherever it runs: what the page's client wraps. */
  readonly engine: EngineApi;
  state(): TabShareState;
  /** Calls `listener` on every change; returns the unsubscribe. */
  subscribe(listener: (state: TabShareState) => void): () => void;
  /** Leaves: gives up the engine (another tab takes over) or disconnects from it. */
  close(): void;
}

export interface ShareOptions {
  /** Starts this tab's own engine: at once in the owner, on taking over in a follower. */
  startEngine(): EngineApi;
  /** `navigator.locks`; without it (or `channel`) the tab runs its own engine. */
  locks?: LockManagerLike | undefined;
  /** A BroadcastChannel named `CHANNEL` (protocol.ts). */
  channel?: TabChannel | undefined;
  /** This tab's id on the channel; random by default. */
  tabId?: string | undefined;
}

export function shareEngine({ startEngine, locks, channel, tabId }: ShareOptions): SharedEngine {
  const movable = new MovableEngine();
  const listeners = new Set<(state: TabShareState) => void>();
  let state: TabShareState = { role: 'starting', model: { state: 'none' }, moves: 0 };
  const update = (patch: Partial<TabShareState>) => {
    state = { ...state, ...patch };
    for (const listener of listeners) listener(state);
  };
  const handle = (close: () => void): SharedEngine => ({
    engine: movable.engine,
    state: () => state,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close,
  });

  if (!locks || !channel) {
    movable.moveTo(announceModel(startEngine(), (model) => update({ model })).engine);
    update({ role: 'alone' });
    return handle(() => movable.detach('This tab closed its engine.'));
  }

  const self = tabId ?? crypto.randomUUID();
  const election = electOwner(locks, OWNER_LOCK);
  let closed = false;
  let follower: Follower | undefined;
  let server: EngineServer | undefined;
  /** Whether this tab has been connected to an engine: connecting to another after that is a move. */
  let connected = false;

  void election.atOnce.then((owner) => {
    if (owner || closed) return;
    follower = followOwner(channel, self, {
      owner: (_id, engine) => {
        movable.moveTo(engine, 'The tab that ran the engine closed; another tab runs it now.');
        update({ role: 'follower', moves: state.moves + (connected ? 1 : 0) });
        connected = true;
      },
      model: (model) => update({ model }),
    });
  });

  void election.owned.then(() => {
    if (closed) return;
    const modelBefore = state.model;
    follower?.close();
    follower = undefined;
    const announcer = announceModel(startEngine(), (model) => {
      update({ model });
      server?.announceModel(model);
    });
    server = serveFollowers(channel, self, announcer.engine, announcer.current);
    movable.moveTo(announcer.engine, 'The tab that ran the engine closed; this tab runs it now.');
    // Taking over: load what the closed owner had loaded (or was loading); the load announces
    // 'loading' at once, and a failure as 'failed', where every tab's UI shows it.
    if (connected && (modelBefore.state === 'ready' || modelBefore.state === 'loading')) {
      announcer.engine.loadModel(modelBefore.source, modelBefore.options).catch(() => undefined);
    }
    update({ role: 'owner', model: announcer.current(), moves: state.moves + (connected ? 1 : 0) });
    connected = true;
  });

  return handle(() => {
    closed = true;
    election.resign();
    follower?.close();
    server?.close();
    movable.detach('This tab left the shared engine.');
  });
}
