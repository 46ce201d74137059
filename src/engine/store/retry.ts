/**
 * Retrying a transfer: which failures another attempt may fix, how long to wait before it, and
 * how an abort (a pause) cuts a wait short.
 */

export interface RetryPolicy {
  /** Attempts in a row without progress before giving up. */
  attempts: number;
  /** The wait after the first failure, doubled after each further one up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
}

/** An error that another attempt may fix (network, 5xx, a connection closed early). */
export class RetryableError extends Error {
  override name = 'RetryableError';
}

/** The wait before the next attempt after `failures` failures in a row (1 or more). */
export function retryDelay(policy: RetryPolicy, failures: number): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (failures - 1));
}

export const sleep = (ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** The error an aborted transfer ends with: the signal's own AbortError, or one that says how to resume. */
export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  return new DOMException('The download was paused; call download again to resume.', 'AbortError');
}

export const isAbort = (error: unknown) => error instanceof Error && error.name === 'AbortError';

/** A generated part's producer failed (its error is the cause); not a transfer to retry. */
export class GeneratedError extends Error {
  override name = 'GeneratedError';
  constructor(override readonly cause: unknown) {
    super((cause as Error)?.message ?? String(cause));
  }
}
