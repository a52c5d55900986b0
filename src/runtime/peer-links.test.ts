/**
 * PeerLinks' relay path: a message for a node without a link goes through signaling,
 * unless it is too large for a signaling server's frame limit (a batch of KV writes routed
 * to a replica no path is known to): then it is dropped and counted, since a server
 * closes a connection that sends an oversized frame, with everything else in flight on it.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WireMessage } from '../core/node';
import type { SimplePeerCtor } from '../net/transport';
import { generateIdentity } from '../trust/keys';
import { nodeIdentity, type NodeIdentity } from './node-identity';
import { MAX_RELAY_BYTES, PeerLinks } from './peer-links';
import { Stats } from './stats';

let identity: NodeIdentity;
beforeAll(async () => {
  identity = nodeIdentity(await generateIdentity());
});

const made: PeerLinks[] = [];
afterEach(() => {
  for (const l of made.splice(0)) l.closeAll();
});

function links(): { l: PeerLinks; relayed: [string, number][]; stats: Stats } {
  const relayed: [string, number][] = [];
  const stats = new Stats();
  const NoDial = function () {
    throw new Error('no dial expected');
  } as unknown as SimplePeerCtor;
  const l = new PeerLinks({ identity, cluster: 'c', SimplePeer: NoDial }, stats, {
    message: () => undefined,
    linkUp: () => undefined,
    linkDown: () => undefined,
    signal: () => undefined,
    relay: (to, bytes) => relayed.push([to, bytes.byteLength]),
  });
  made.push(l);
  return { l, relayed, stats };
}

describe('PeerLinks relays', () => {
  it('relays a transient message for a node without a link, and drops and counts one too large for a signaling frame', () => {
    const { l, relayed, stats } = links();
    l.send('nb', { type: 'mem.ping', nonce: 7 } as WireMessage, true);
    expect(relayed).toHaveLength(1);
    const big = { type: 'mem.ping', nonce: 8, pad: 'x'.repeat(MAX_RELAY_BYTES) } as unknown as WireMessage;
    l.send('nb', big, true);
    expect(relayed).toHaveLength(1);
    expect(stats.snapshot()['drop.relayTooLarge']).toBe(1);
    expect(stats.snapshot()['relay.out']).toBe(1);
    expect(stats.recent().at(-1)).toMatch(/drop\.relayTooLarge: mem\.ping of \d+ bytes to nb: over 32768/);
  });
});
