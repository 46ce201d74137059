/**
 * A turn of the event loop between tokens. A backend that computes synchronously (the CPU backend)
 * resolves each step with microtasks only, and messages (an abort from the page, a request for the
 * next stream chunk) are tasks: without a task boundary between steps they would wait for the whole
 * reply. `setTimeout(0)` is clamped to 4 ms when nested, so a message to ourselves is the turn in
 * browsers and workers (what `scheduler.postTask` polyfills do); Node has `setImmediate`.
 */
type Resolve = () => void;

let waiting: Resolve[] = [];
let port: MessagePort | undefined;

function channelYield(): Promise<void> {
  if (!port) {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      const ready = waiting;
      waiting = [];
      for (const resolve of ready) resolve();
    };
    port = channel.port2;
    // Node keeps a process alive while a port listens; a pending yield holds its own promise.
    (channel.port1 as { unref?: () => void }).unref?.();
  }
  return new Promise<void>((resolve) => {
    waiting.push(resolve);
    if (waiting.length === 1) port!.postMessage(null);
  });
}

export function yieldToEventLoop(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  return channelYield();
}
