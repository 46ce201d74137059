/**
 * Store writes coordinated across the tabs of an origin with Web Locks: a download or a copy
 * holds its model's lock for as long as it writes, and a delete only runs while nobody holds it.
 * Without the lock, tab B could delete a model tab A is downloading, and A would fail at the end
 * with a misleading "damaged" error. Where there is no `navigator.locks` (Node, old browsers) there
 * is one store per process, and the store's own in-process bookkeeping is enough.
 */

/** The part of the Web Locks API the store uses; `navigator.locks`, or a fake in tests. */
export interface LockManagerLike {
  request<T>(name: string, options: { mode?: 'exclusive' | 'shared'; ifAvailable?: boolean }, callback: (lock: unknown) => Promise<T> | T): Promise<T>;
}

/** The lock that a write to model `id` holds. */
export const modelLockName = (id: string) => `hearth-model:${id}`;

/**
 * Runs `body` holding model `id`'s lock, or `busy()` (which should throw) when another tab holds it.
 * Never waits: a second writer is refused at once with a named error rather than queued behind a
 * download that may take an hour.
 */
export async function withModelLock<T>(locks: LockManagerLike | null, id: string, busy: () => never, body: () => Promise<T>): Promise<T> {
  if (!locks) return body();
  return locks.request(modelLockName(id), { mode: 'exclusive', ifAvailable: true }, async (lock) => {
    if (!lock) busy();
    return body();
  });
}

/** `navigator.locks` where the platform has it, else null. */
export function platformLocks(): LockManagerLike | null {
  const locks = (globalThis.navigator as (Navigator & { locks?: LockManagerLike }) | undefined)?.locks;
  return locks ?? null;
}
