/**
 * The KV cache of one sequence: the backend's storage (every layer's K and V, `capacity`
 * positions) and how many positions are filled. A token's slot is its absolute position, so the
 * cache itself is the position counter: the next token goes at `length`, and `truncate(n)` keeps a
 * prefix (a chat turn that shares the previous prompt re-evaluates only what follows it).
 */
import { HearthError } from '../errors.ts';
import type { KvStorage } from '../backend/ops.ts';

/** More tokens than the context the model was loaded with. `detail` has the numbers. */
export class ContextFullError extends HearthError {
  override name = 'ContextFullError';
}

export class KvCache {
  private filled = 0;

  constructor(readonly storage: KvStorage) {}

  /** Positions held (the context length). */
  get capacity(): number {
    return this.storage.capacity;
  }

  /** Positions filled; the next token's position. */
  get length(): number {
    return this.filled;
  }

  /** Throws unless `n` more tokens fit. */
  checkRoom(n: number): void {
    if (this.filled + n > this.capacity) {
      throw new ContextFullError(
        `the context holds ${this.capacity} tokens: ${this.filled} used, ${n} more do not fit (load the model with a longer context, or start over)`,
        { capacity: this.capacity, used: this.filled, requested: n },
      );
    }
  }

  /** Marks `n` more positions as filled (after a step wrote them). */
  advance(n: number): void {
    this.checkRoom(n);
    this.filled += n;
  }

  /** Keeps the first `n` positions; later writes overwrite the rest. */
  truncate(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > this.filled) throw new RangeError(`truncate to ${n}: the cache holds ${this.filled}`);
    this.filled = n;
  }

  reset(): void {
    this.filled = 0;
  }
}
