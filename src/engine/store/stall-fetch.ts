/**
 * A `fetch` that gives up on a silent server. Browsers and Node time out neither a request whose
 * answer never comes nor a body that stops mid-way: a server that sends 1 MiB and stalls leaves
 * the transfer pending forever. This wrapper fails the request (or its body) with a
 * {@link NetworkStallError} once no byte has arrived for `stallMs`, and aborts the underlying
 * request so the connection is freed. Callers retry (downloads) or report (loads from a URL).
 */
import { HearthError } from '../errors.ts';

/** No byte arrived for the stall timeout: the server or the network stopped answering. */
export class NetworkStallError extends HearthError {
  override name = 'NetworkStallError';
}

/** Default stall timeout: long enough for a slow mobile link, short enough that a user still waits. */
export const DEFAULT_STALL_MS = 30_000;

export function stallGuardedFetch(inner: typeof fetch, stallMs: number): typeof fetch {
  return async (input, init) => {
    const controller = new AbortController();
    const outer = init?.signal ?? undefined;
    const forward = () => controller.abort(outer!.reason);
    if (outer?.aborted) forward();
    else outer?.addEventListener('abort', forward, { once: true });
    const url = String(input instanceof Request ? input.url : input);
    const stall = () => new NetworkStallError(`no data from ${url} for ${Math.round(stallMs / 1000)} s`, { url, stallMs });
    const cleanup = () => outer?.removeEventListener('abort', forward);

    let response: Response;
    try {
      response = await withDeadline(inner(input, { ...init, signal: controller.signal }), stallMs, stall);
    } catch (error) {
      cleanup();
      if (error instanceof NetworkStallError) controller.abort(error);
      throw error;
    }
    if (!response.body || NULL_BODY_STATUSES.has(response.status)) {
      cleanup();
      return response;
    }
    const reader = response.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(stream) {
        try {
          const { done, value } = await withDeadline(reader.read(), stallMs, stall);
          if (done) {
            cleanup();
            stream.close();
          } else stream.enqueue(value);
        } catch (error) {
          cleanup();
          stream.error(error);
          // Frees the connection; only after the stall is reported, since cancelling ends the read.
          if (error instanceof NetworkStallError) {
            controller.abort(error);
            void reader.cancel(error).catch(() => undefined);
          }
        }
      },
      async cancel(reason) {
        cleanup();
        await reader.cancel(reason).catch(() => undefined);
      },
    });
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

/** Statuses whose Response may not carry a body (the constructor refuses one). */
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

/** `promise`, or the error `onTimeout` makes when it has not settled after `ms`. */
function withDeadline<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
