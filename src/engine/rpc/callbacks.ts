/**
 * Comlink gives the worker each callback an API call takes (load progress, streamed chunks) as a
 * proxy with a MessagePort of its own, open until someone releases it. Nobody did, so a long
 * session kept one open port pair per request. `releasingCallbacks` wraps the exposed engine:
 * once a call settles, the proxies of the callbacks it was given are released. Messages already
 * sent on them still arrive first (a port delivers in order); the UI drops any that come after the
 * call's result (src/ui/engine-client.ts, `callWithEvents`).
 */
import * as Comlink from 'comlink';

/** Releases `value` if it is a Comlink proxy (a plain function has no release handle). */
function releaseIfRemote(value: unknown): void {
  const release = (value as { [Comlink.releaseProxy]?: unknown })[Comlink.releaseProxy];
  if (typeof release === 'function') (release as () => void)();
}

export function releasingCallbacks<T extends object>(target: T): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      const value: unknown = Reflect.get(object, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(object, args);
        const callbacks = args.filter((arg) => typeof arg === 'function');
        if (callbacks.length === 0 || !(result instanceof Promise)) return result;
        return result.finally(() => callbacks.forEach(releaseIfRemote));
      };
    },
  });
}
