/**
 * The cluster secret (#secret= in the URL): tabs that share it form the cluster and chat;
 * a tab with another secret never links and tells its user; a bare signaling client that
 * listens on every topic it can name reads no node id, SDP or frame; outsiders publishing
 * signed messages (in clear, or sealed with another secret on the cluster's real topics)
 * reach nobody; a tab running modified code that has the secret's signaling keys but
 * makes its link hello's MAC with another key never links.
 */
import type { BrowserContext } from '@playwright/test';
import { test, expect } from './fixtures';
import { chatTexts, uniqueCluster, waitFor, waitMembers, type Tab } from './harness';
import { TestClient } from '../signaling/testing';
import { lobbyTopic, openClusterSecret } from '../src/runtime/cluster-secret';
import { encryptPayload } from '../src/trust/secret';
import { utf8 } from '../src/trust/bytes';
import { generateIdentity } from '../src/trust/keys';
import { nodeIdentity } from '../src/runtime/node-identity';
import { signSignal } from '../src/runtime/signal-messages';

async function openWithSecret(context: BrowserContext, appUrl: string, cluster: string, nick: string, secret: string | null, o: { ready?: boolean } = {}): Promise<Tab> {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`[pageerror] ${e.message}`));
  const q = new URLSearchParams({ cluster, nick });
  await page.goto(`${appUrl}?${q}${secret === null ? '' : `#${new URLSearchParams({ secret })}`}`);
  await page.waitForFunction(() => (window as unknown as { p2p?: unknown }).p2p !== undefined);
  if (o.ready !== false) await page.evaluate(() => window.p2p.ready);
  return { context, page, id: await page.evaluate(() => window.p2p.id) };
}

const stat = (t: Tab, name: string) => t.page.evaluate((name) => window.p2p.stats()[name] ?? 0, name);
const linkedTo = (t: Tab) => t.page.evaluate(() => window.p2p.links().map((l) => l.peer));

test('tabs with the same secret link and chat; a listener on every topic it can name reads no id, SDP or frame', async ({ browserProfile, server }) => {
  const c = uniqueCluster('secret');
  const spy = await TestClient.open(server.ws);
  const frames: string[] = [];
  spy.ws.on('message', (d: Buffer) => frames.push(d.toString('utf8')));
  spy.send({ type: 'subscribe', topics: [c, 'default', `${c}/`, await lobbyTopic(c)] });

  const a = await openWithSecret(await browserProfile(), server.url, c, 'ann', 'open sesame');
  // as if it had guessed the first tab's id: its inbox in an open cluster
  spy.send({ type: 'subscribe', topics: [`${c}/${a.id}`] });
  const b = await openWithSecret(await browserProfile(), server.url, c, 'bob', 'open sesame');
  spy.send({ type: 'subscribe', topics: [`${c}/${b.id}`] });
  await waitMembers([a, b], 60_000);

  await a.page.evaluate(() => window.p2p.chat.send('hello under a secret'));
  await waitFor(() => chatTexts(b), (h) => h.includes('hello under a secret'), 15_000, 'chat at bob');

  // the secret left the address bar, the header says the cluster is protected
  expect(await a.page.evaluate(() => location.hash)).toBe('');
  await expect(a.page.getByTestId('secret-indicator')).toHaveText(/protected/);
  expect(await a.page.evaluate(() => window.p2p.info().secret)).toMatchObject({ protected: true, wrongSecret: false });

  const raw = frames.join('\n');
  expect(raw).toContain('"c":'); // the lobby's sealed presences reached it
  for (const clear of [a.id, b.id, 'hello under a secret', 'candidate', 'fingerprint']) expect(raw).not.toContain(clear);
  // short words only outside ciphertexts and derived topic names (random base64 holds a
  // given 3-letter word now and then)
  const outside = raw.replace(/"(c|topic)":"[A-Za-z0-9+/=_-]{16,}"/g, '"$1":"…"');
  for (const word of ['ann', 'bob', 'sdp']) expect(outside).not.toContain(word);
  spy.ws.close();
});

test('a tab with the wrong secret never links and is told so', async ({ browserProfile, server }) => {
  const c = uniqueCluster('secret-wrong');
  const a = await openWithSecret(await browserProfile(), server.url, c, 'ann', 'right one');
  const b = await openWithSecret(await browserProfile(), server.url, c, 'bob', 'right one');
  await waitMembers([a, b], 60_000);
  const m = await openWithSecret(await browserProfile(), server.url, c, 'mal', 'wrong one');

  await expect(m.page.getByTestId('wrong-secret')).toBeVisible({ timeout: 20_000 });
  await expect(m.page.getByTestId('wrong-secret')).toContainText('Wrong secret?');
  // it had time to find them: nothing links, nobody lists it, it lists nobody
  await m.page.waitForTimeout(3_000);
  expect(await m.page.evaluate(() => window.p2p.peers())).toEqual([]);
  expect(await m.page.evaluate(() => window.p2p.members())).toEqual([m.id]);
  for (const t of [a, b]) {
    expect(await t.page.evaluate(() => window.p2p.members().slice().sort())).toEqual([a.id, b.id].sort());
    await expect(t.page.getByTestId('wrong-secret')).toHaveCount(0);
  }
});

test('a tab without the secret and outsiders publishing signed messages reach nobody', async ({ browserProfile, server }) => {
  const c = uniqueCluster('secret-outsider');
  const a = await openWithSecret(await browserProfile(), server.url, c, 'ann', 'right one');
  const b = await openWithSecret(await browserProfile(), server.url, c, 'bob', 'right one');
  await waitMembers([a, b], 60_000);
  const open = await openWithSecret(await browserProfile(), server.url, c, 'opn', null);

  // a bare client with its own key pair, that knows the tabs' ids and, as if the server's
  // operator had told it, the cluster's real topic names, but holds another secret
  const evil = nodeIdentity(await generateIdentity());
  const right = await openClusterSecret(c, 'right one', null);
  const wrong = await openClusterSecret(c, 'wrong one', null);
  const spy = await TestClient.open(server.ws);
  const inboxA = await right.nodeTopic(a.id);
  const offer = () => signSignal(evil, c, 'signal', a.id, { conn: `${evil.id}.1`, signal: { type: 'offer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n' } }, Date.now());
  const announce = () => signSignal(evil, c, 'announce', '', { isolated: true }, Date.now());
  const dropsBefore = await stat(a, 'drop.secret');
  for (let i = 0; i < 5; i++) {
    // in clear, on the topics of an open cluster: the protected tabs do not listen there
    spy.send({ type: 'publish', topic: c, data: await announce() });
    spy.send({ type: 'publish', topic: `${c}/${a.id}`, data: await offer() });
    // sealed under the wrong secret, on the real topics
    spy.send({ type: 'publish', topic: right.clusterTopic, data: { c: await encryptPayload(wrong.keys, utf8(JSON.stringify(await announce())), right.clusterTopic) } });
    spy.send({ type: 'publish', topic: inboxA, data: { c: await encryptPayload(wrong.keys, utf8(JSON.stringify(await offer())), inboxA) } });
    // in clear on the real topics
    spy.send({ type: 'publish', topic: inboxA, data: await offer() });
  }
  await waitFor(() => stat(a, 'drop.secret'), (n) => n - dropsBefore >= 15, 20_000, 'the sealed-elsewhere and clear messages dropped');
  await a.page.waitForTimeout(3_000);

  // no RTCPeerConnection for the outsider, nobody new in the cluster, the open tab alone
  expect(await linkedTo(a)).not.toContain(evil.id);
  expect(await stat(a, 'links.helloFailures')).toBe(0);
  for (const t of [a, b]) expect(await t.page.evaluate(() => window.p2p.members().slice().sort())).toEqual([a.id, b.id].sort());
  expect(await open.page.evaluate(() => window.p2p.members())).toEqual([open.id]);
  expect(await open.page.evaluate(() => window.p2p.peers())).toEqual([]);
  // the cluster works as before
  await a.page.evaluate(() => window.p2p.chat.send('still here'));
  await waitFor(() => chatTexts(b), (h) => h.includes('still here'), 15_000, 'chat at bob');
  spy.ws.close();
});

test('a modified tab with the secret but a link hello MAC under another key never links', async ({ browserProfile, server }) => {
  const c = uniqueCluster('secret-mac');
  const a = await openWithSecret(await browserProfile(), server.url, c, 'ann', 'right one');
  const b = await openWithSecret(await browserProfile(), server.url, c, 'bob', 'right one');
  await waitMembers([a, b], 60_000);

  // modified code: every HMAC over a link transcript ("p2p-link/1" label) is made with a
  // key of its own, so its signaling (sealed with the right keys) works but its hellos lie
  const context = await browserProfile();
  await context.addInitScript(() => {
    const subtle = crypto.subtle;
    const sign = subtle.sign.bind(subtle);
    const label = new TextEncoder().encode('p2p-link/1');
    let other: Promise<CryptoKey> | null = null;
    const isLink = (data: BufferSource) => {
      const d = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      return d.length > 4 + label.length && label.every((x, i) => d[4 + i] === x);
    };
    subtle.sign = (alg: AlgorithmIdentifier, key: CryptoKey, data: BufferSource) => {
      const name = typeof alg === 'string' ? alg : alg.name;
      if (name !== 'HMAC' || !isLink(data)) return sign(alg, key, data);
      other ??= subtle.generateKey({ name: 'HMAC', hash: 'SHA-256' }, false, ['sign']) as Promise<CryptoKey>;
      return other.then((k) => sign(alg, k, data));
    };
  });
  const m = await openWithSecret(context, server.url, c, 'mal', 'right one', { ready: false });
  await m.page.evaluate(() => window.p2p.chat.send('from the modified tab'));

  // its signaling works (it hears the others and they it), so links are tried and refused
  await waitFor(async () => (await stat(a, 'links.helloFailures')) + (await stat(b, 'links.helloFailures')), (n) => n >= 1, 30_000, 'a refused hello');
  expect(await m.page.evaluate(() => window.p2p.info().secret)).toMatchObject({ protected: true, wrongSecret: false });
  await a.page.waitForTimeout(3_000);
  for (const t of [a, b]) {
    expect(await t.page.evaluate(() => window.p2p.peers())).not.toContain(m.id);
    expect(await t.page.evaluate(() => window.p2p.members().slice().sort())).toEqual([a.id, b.id].sort());
    expect(await chatTexts(t)).not.toContain('from the modified tab');
  }
  expect(await m.page.evaluate(() => window.p2p.members())).toEqual([m.id]);
});
