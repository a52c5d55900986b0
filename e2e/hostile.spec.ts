/**
 * Hostile peers (issue #15), driven from outside the honest tabs the way an attacker
 * would: a bare WebSocket client of the signaling server, speaking its protocol, against
 * a running 3-tab cluster. Each test asserts what the honest cluster keeps afterwards.
 *
 * Links and identities (docs/security.md): relayed frames and WebRTC offers "from" a
 * neighbour that the neighbour did not sign never reach the victim's links or core, so
 * the victim keeps its real link to that neighbour, and the cluster keeps working.
 */
import WebSocket from 'ws';
import { test, expect } from './fixtures';
import { waitFor, type Tab } from './harness';
import { generateIdentity } from '../src/trust/keys';
import { nodeIdentity } from '../src/runtime/node-identity';
import { signSignal } from '../src/runtime/signal-messages';

/** A bare client of the signaling server. */
async function attacker(wsUrl: string): Promise<{ publish(topic: string, data: unknown): void; close(): void }> {
  const ws = new WebSocket(wsUrl);
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  return { publish: (topic, data) => ws.send(JSON.stringify({ type: 'publish', topic, data })), close: () => ws.close() };
}

/** The victim's open link to `peer`: since when it is open (unchanged while the same link stays up). */
function openSince(victim: Tab, peer: string): Promise<number | null> {
  return victim.page.evaluate((peer) => window.p2p.links().find((l) => l.peer === peer && l.state === 'open')?.since ?? null, peer);
}

async function victimAndNeighbour(tabs: Tab[]): Promise<{ victim: Tab; neighbour: Tab; since: number }> {
  const victim = tabs[0]!;
  const peers = await waitFor(() => victim.page.evaluate(() => window.p2p.peers()), (p) => p.length > 0, 30_000, 'a neighbour');
  const neighbour = tabs.find((t) => t.id === peers[0])!;
  const since = await waitFor(() => openSince(victim, neighbour.id), (s) => s !== null, 30_000, 'the link open');
  return { victim, neighbour, since: since! };
}

test.describe('hostile: links and identities', () => {
  test('junk relay frames "from" a neighbour are refused and do not close the real link', async ({ cluster, server }) => {
    const { name, tabs } = await cluster(3, 'hostile-relay');
    const { victim, neighbour, since } = await victimAndNeighbour(tabs);
    const evil = await attacker(server.ws);
    const inbox = `${name}/${victim.id}`;
    const evilKey = nodeIdentity(await generateIdentity());
    for (let i = 0; i < 60; i++) {
      // the unsigned form, and one signed by the attacker's key claiming the neighbour's id
      evil.publish(inbox, { t: 'relay', from: neighbour.id, to: victim.id, frame: 'AAECAwQ=' });
      evil.publish(inbox, await signSignal({ ...evilKey, id: neighbour.id }, name, 'relay', victim.id, { frame: 'AAECAwQ=' }, Date.now()));
    }
    await waitFor(() => victim.page.evaluate(() => window.p2p.stats()['drop.signaling'] ?? 0), (n) => n >= 120, 20_000, 'the forged relays dropped');
    // the garbage defence was never triggered: the same link is up, and the cluster works over it
    await new Promise((r) => setTimeout(r, 3000));
    expect(await openSince(victim, neighbour.id)).toBe(since);
    expect(await victim.page.evaluate(() => window.p2p.members().length)).toBe(3);
    await victim.page.evaluate(() => window.p2p.kv.put('hostile/relay', 1));
    expect(await neighbour.page.evaluate(() => window.p2p.kv.get('hostile/relay'))).toBe(1);
    evil.close();
  });

  test('a forged offer "from" a connected peer leaves the link up', async ({ cluster, server }) => {
    const { name, tabs } = await cluster(3, 'hostile-offer');
    const { victim, neighbour, since } = await victimAndNeighbour(tabs);
    const downsBefore = await victim.page.evaluate(() => window.p2p.stats()['link.down'] ?? 0);
    const evil = await attacker(server.ws);
    const inbox = `${name}/${victim.id}`;
    const evilKey = nodeIdentity(await generateIdentity());
    const offer = { type: 'offer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n' };
    evil.publish(inbox, { t: 'signal', from: neighbour.id, to: victim.id, conn: 'forged.1', signal: offer });
    evil.publish(inbox, await signSignal({ ...evilKey, id: neighbour.id }, name, 'signal', victim.id, { conn: 'forged.2', signal: offer }, Date.now()));
    await waitFor(() => victim.page.evaluate(() => window.p2p.stats()['drop.signaling'] ?? 0), (n) => n >= 2, 20_000, 'the forged offers dropped');
    await new Promise((r) => setTimeout(r, 3000));
    expect(await openSince(victim, neighbour.id)).toBe(since);
    expect(await victim.page.evaluate(() => window.p2p.stats()['link.down'] ?? 0)).toBe(downsBefore);
    evil.close();
  });
});
