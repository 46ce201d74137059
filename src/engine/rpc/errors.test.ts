import * as Comlink from 'comlink';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { DeviceLostError, type HearthError } from '../errors.ts';
import { installErrorTransfer } from './errors.ts';

/** A Comlink endpoint over a Node MessagePort (what a Worker is in the browser). */
function endpoint(port: MessagePort): Comlink.Endpoint {
  const listeners = new Map<EventListenerOrEventListenerObject, (data: unknown) => void>();
  return {
    postMessage: (message: unknown) => port.postMessage(message),
    addEventListener: (_type: string, listener: EventListenerOrEventListenerObject) => {
      const wrapped = (data: unknown) =>
        typeof listener === 'function' ? listener({ data } as MessageEvent) : listener.handleEvent({ data } as MessageEvent);
      listeners.set(listener, wrapped);
      port.on('message', wrapped);
    },
    removeEventListener: (_type: string, listener: EventListenerOrEventListenerObject) => {
      const wrapped = listeners.get(listener);
      if (wrapped) port.off('message', wrapped);
    },
  };
}

installErrorTransfer();
const channel = new MessageChannel();
Comlink.expose(
  {
    async fail(): Promise<void> {
      throw new DeviceLostError('The GPU device was lost (unknown): test', { reason: 'unknown' });
    },
    async failPlain(): Promise<void> {
      throw new TypeError('plain');
    },
    async ok(): Promise<number> {
      return 7;
    },
  },
  endpoint(channel.port1),
);
const remote = Comlink.wrap<{ fail(): Promise<void>; failPlain(): Promise<void>; ok(): Promise<number> }>(endpoint(channel.port2));
afterAll(() => {
  channel.port1.close();
  channel.port2.close();
});

describe('errors across the worker boundary', () => {
  it('keep their name, message and detail', async () => {
    const error = (await remote.fail().catch((e: unknown) => e)) as HearthError;
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('DeviceLostError');
    expect(error.message).toContain('lost');
    expect(error.detail).toEqual({ reason: 'unknown' });
  });

  it('keep the name of built-in errors', async () => {
    const error = (await remote.failPlain().catch((e: unknown) => e)) as Error;
    expect(error.name).toBe('TypeError');
    expect(error.message).toBe('plain');
  });

  it('leave normal results alone', async () => {
    expect(await remote.ok()).toBe(7);
  });
});
