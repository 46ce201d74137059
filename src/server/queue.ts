/**
 * One engine generates one reply at a time: requests take turns in arrival order. A request waits
 * for its turn here rather than in the engine's own queue, so a client that leaves while waiting is
 * dropped before the engine spends anything on it (not even the prompt), and a full queue is refused
 * up front instead of growing without bound.
 */
import { HearthError } from '../engine/errors.ts';

/** More requests wait than the server accepts. */
export class QueueFullError extends HearthError {
  override name = 'QueueFullError';
}

/** A waiting request's client left (its signal aborted) before its turn. */
export class LeftQueueError extends HearthError {
  override name = 'LeftQueueError';
}

interface Waiter {
  grant: () => void;
}

export class TurnQueue {
  private running = false;
  private readonly waiting: Waiter[] = [];

  /** At most `maxWaiting` requests wait behind the running one. */
  constructor(private readonly maxWaiting: number) {}

  /** Requests waiting for their turn (the running one not counted). */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /**
   * Resolves with `release` when it is this request's turn; rejects with LeftQueueError when
   * `signal` aborts first (the request then leaves the queue). Throws QueueFullError at once (not
   * through the promise) when the queue is full, so a caller can refuse before it answers anything.
   */
  turn(signal: AbortSignal): Promise<() => void> {
    if (this.running && this.waiting.length >= this.maxWaiting) {
      throw new QueueFullError(`The server is busy: ${this.waiting.length} requests are already waiting. Try again shortly.`);
    }
    if (signal.aborted) return Promise.reject(new LeftQueueError('The client left before its turn.'));
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.next();
    };
    if (!this.running) {
      this.running = true;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          signal.removeEventListener('abort', leave);
          resolve(release);
        },
      };
      const leave = () => {
        const at = this.waiting.indexOf(waiter);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(new LeftQueueError('The client left before its turn.'));
      };
      signal.addEventListener('abort', leave, { once: true });
      this.waiting.push(waiter);
    });
  }

  /** Hands the turn to the next waiter, or marks the engine idle. */
  private next(): void {
    const waiter = this.waiting.shift();
    if (waiter) waiter.grant();
    else this.running = false;
  }
}
