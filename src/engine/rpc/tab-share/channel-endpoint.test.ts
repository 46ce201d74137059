/** The tab-to-tab Comlink endpoint over Node 20's BroadcastChannel (the same API as a browser's). */
import * as Comlink from 'comlink';
import { afterEach, describe, expect, it } from 'vitest';
import { channelEndpoint } from './channel-endpoint.ts';
import { CHANNEL, type TabChannel, type TabMessage } from './protocol.ts';

const opened: BroadcastChannel[] = [];
function tab(): TabChannel {
  const channel = new BroadcastChannel(CHANNEL);
  opened.push(channel);
  return channel as unknown as TabChannel;
}
afterEach(() => opened.splice(0).forEach((c) => c.close()));

describe('channelEndpoint', () => {
  it('carries Comlink calls between two tabs, and a third tab on the channel answers none of them', async () => {
    const [a, b, c] = [tab(), tab(), tab()];
    const served = { whoAmI: async () => 'A' };
    Comlink.expose(served, channelEndpoint(a, 'A', 'B'));
    // C serves the same API to B, but B's calls are addressed to A only.
    Comlink.expose({ whoAmI: async () => 'C' }, channelEndpoint(c, 'C', 'B'));
    const remote = Comlink.wrap<typeof served>(channelEndpoint(b, 'B', 'A'));
    expect(await Promise.all([remote.whoAmI(), remote.whoAmI()])).toEqual(['A', 'A']);
  });

  it('refuses to transfer (a BroadcastChannel cannot move ports or buffers) instead of losing the call', () => {
    const endpoint = channelEndpoint(tab(), 'B', 'A');
    const { port1 } = new MessageChannel();
    expect(() => endpoint.postMessage({}, [port1])).toThrow(/Nothing can be transferred between tabs/);
    port1.close();
  });

  it('after close, delivers nothing and posts nothing', async () => {
    const [a, b] = [tab(), tab()];
    const heard: TabMessage[] = [];
    (b as unknown as BroadcastChannel).onmessage = (event) => heard.push(event.data as TabMessage);
    const endpoint = channelEndpoint(a, 'A', 'B');
    endpoint.close();
    endpoint.postMessage({ late: true });
    (a as unknown as BroadcastChannel).postMessage({ type: 'rpc', from: 'A', to: 'B', data: 'marker' } satisfies TabMessage);
    // One sender's messages arrive in order: a late post would come before the marker.
    while (heard.length === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    expect(heard).toEqual([{ type: 'rpc', from: 'A', to: 'B', data: 'marker' }]);
  });
});
