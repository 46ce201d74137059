/**
 * An in-memory Web Locks manager (exclusive locks and `ifAvailable` only, what the model store
 * uses), shared by several stores in one test to stand for the tabs of one origin.
 */
import type { LockManagerLike } from '../engine/store/locks.ts';

export function fakeLocks(): LockManagerLike & { held: Set<string> } {
  const held = new Set<string>();
  const waiting = new Map<string, Array<() => void>>();
  return {
    held,
    async request(name, options, callback) {
      if (held.has(name)) {
        if (options.ifAvailable) return callback(null);
        await new Promise<void>((resolve) => waiting.set(name, [...(waiting.get(name) ?? []), resolve]));
      }
      held.add(name);
      try {
        return await callback({ name, mode: options.mode ?? 'exclusive' });
      } finally {
        held.delete(name);
        const next = waiting.get(name)?.shift();
        next?.();
      }
    },
  };
}
