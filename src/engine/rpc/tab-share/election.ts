/**
 * Which tab owns the engine, decided with a Web Lock: the owner holds `OWNER_LOCK` for as long as
 * it lives, every other tab waits in the lock's queue. The browser releases a lock when its tab
 * closes (or crashes), and grants it to the next tab in the queue: that tab takes over. No
 * heartbeat, no timeout: the lock manager knows when a tab is gone.
 */

/** The part of `navigator.locks` the election uses (injected: Node has no Web Locks). */
export interface LockManagerLike {
  request(name: string, options: { ifAvailable?: boolean; signal?: AbortSignal }, callback: (lock: unknown) => unknown): Promise<unknown>;
}

export interface Election {
  /** Whether this tab got the lock at once (true: it owns the engine; false: another tab does). */
  readonly atOnce: Promise<boolean>;
  /** Resolves when this tab holds the lock: at once, or when the owner before it closed. */
  readonly owned: Promise<void>;
  /** Gives the lock up, or leaves the queue. */
  resign(): void;
}

export function electOwner(locks: LockManagerLike, name: string): Election {
  let resign!: () => void;
  const resigned = new Promise<void>((resolve) => (resign = resolve));
  let won!: () => void;
  const owned = new Promise<void>((resolve) => (won = resolve));
  const queue = new AbortController();
  // Held until resign(), that is for the life of the tab.
  const hold = () => {
    won();
    return resigned;
  };
  const atOnce = new Promise<boolean>((resolve, reject) => {
    locks
      .request(name, { ifAvailable: true }, (lock) => {
        resolve(lock !== null);
        if (lock !== null) return hold();
        // Wait in the queue: granted when the owner (and every tab queued before this one) is gone.
        locks.request(name, { signal: queue.signal }, hold).catch(() => undefined);
        return undefined;
      })
      .catch(reject);
  });
  return {
    atOnce,
    owned,
    resign() {
      queue.abort();
      resign();
    },
  };
}
