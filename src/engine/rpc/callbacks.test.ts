import * as Comlink from 'comlink';
import { describe, expect, it } from 'vitest';
import { releasingCallbacks } from './callbacks.ts';

/** A stand-in engine: `run` reports progress through its callback, then answers or fails. */
class Service {
  async run(fail: boolean, onEvent?: (n: number) => void): Promise<string> {
    for (let i = 0; i < 3; i++) onEvent?.(i);
    await new Promise((resolve) => setTimeout(resolve, 5));
    if (fail) throw new Error('boom');
    return 'done';
  }
}

/** The service exposed (wrapped) on one end of a channel, a Comlink proxy of it on the other. */
function connect(wrap: boolean) {
  const { port1, port2 } = new MessageChannel();
  const service = new Service();
  Comlink.expose(wrap ? releasingCallbacks(service) : service, port1);
  return { remote: Comlink.wrap<Service>(port2), close: () => (port1.close(), port2.close()) };
}

/** A callback proxy that records its events and whether the other side released it. */
function watchedCallback() {
  const events: number[] = [];
  const state = { released: false };
  const fn = Object.assign((n: number) => void events.push(n), { [Comlink.finalizer]: () => (state.released = true) });
  return { events, state, proxy: Comlink.proxy(fn) };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('releasingCallbacks', () => {
  it('releases a callback proxy once its call settles, after its events arrived', async () => {
    const { remote, close } = connect(true);
    const ok = watchedCallback();
    expect(await remote.run(false, ok.proxy)).toBe('done');
    await settle();
    expect(ok.events).toEqual([0, 1, 2]);
    expect(ok.state.released).toBe(true);

    const failing = watchedCallback();
    await expect(remote.run(true, failing.proxy)).rejects.toThrow('boom');
    await settle();
    expect(failing.state.released).toBe(true);
    expect(await remote.run(false)).toBe('done'); // calls without callbacks pass through
    close();
  });

  it('without it, the proxy stays open (the leak it fixes)', async () => {
    const { remote, close } = connect(false);
    const cb = watchedCallback();
    expect(await remote.run(false, cb.proxy)).toBe('done');
    await settle();
    expect(cb.events).toEqual([0, 1, 2]);
    expect(cb.state.released).toBe(false);
    close();
  });
});
