/**
 * The cluster secret's signaling layer, end to end through the real signaling server on
 * loopback: SignalingBridges with and without a secret, and a bare WebSocket client that
 * listens on every topic it can name (and on the sealed topics themselves, as if it had
 * guessed them) to check that nothing crosses the server in clear.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startSignalingServer, type SignalingServer } from '../../signaling/server';
import { TestClient } from '../../signaling/testing';
import type { WebSocketCtor } from '../net/signaling';
import { encryptPayload } from '../trust/secret';
import { toBase64, utf8 } from '../trust/bytes';
import { signSignal } from './signal-messages';
import { lobbyTopic, openClusterSecret, type ClusterSecret } from './cluster-secret';
import { SignalingBridge, type SignalingHandlers } from './signaling-bridge';
import { Stats } from './stats';
import { generateIdentity } from '../trust/keys';
import { nodeIdentity, type NodeIdentity } from './node-identity';

const CLUSTER = 'sealed-test';
let A: string;
let B: string;
let C: string;
let ids: Record<string, NodeIdentity>;
const SDP = 'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\na=fingerprint:sha-256 AB:CD';

let server: SignalingServer;
let wsUrl: string;
let right: ClusterSecret;
let wrong: ClusterSecret;
const bridges: SignalingBridge[] = [];
const clients: TestClient[] = [];

beforeAll(async () => {
  server = await startSignalingServer({ port: 0, host: '127.0.0.1', staticDir: null, log: () => undefined });
  wsUrl = server.url.replace('http', 'ws');
  // the real KDF (310,000 iterations), no key cache
  [right, wrong] = await Promise.all([openClusterSecret(CLUSTER, 'correct horse', null), openClusterSecret(CLUSTER, 'battery staple', null)]);
  const made = (await Promise.all([generateIdentity(), generateIdentity(), generateIdentity()])).map((k) => nodeIdentity(k));
  [A, B, C] = made.map((i) => i.id) as [string, string, string];
  ids = Object.fromEntries(made.map((i) => [i.id, i]));
});
afterAll(async () => {
  await server.close();
});
afterEach(() => {
  for (const b of bridges.splice(0)) b.close();
  for (const c of clients.splice(0)) c.ws.close();
});

interface Heard {
  announces: string[];
  signals: { from: string; conn: string; signal: unknown }[];
  relays: { from: string; bytes: Uint8Array }[];
  wills: string[];
  ownAnnounces: number;
}

/** ws's WebSocket, keeping every socket opened, so a test can cut one as a crash would. */
class TrackedSocket extends WebSocket {
  static made: TrackedSocket[] = [];
  constructor(url: string) {
    super(url);
    TrackedSocket.made.push(this);
  }
}

function bridge(id: string, secret?: ClusterSecret): { b: SignalingBridge; heard: Heard; stats: Stats } {
  const heard: Heard = { announces: [], signals: [], relays: [], wills: [], ownAnnounces: 0 };
  const stats = new Stats();
  const on: SignalingHandlers = {
    announce: (from) => heard.announces.push(from),
    ownAnnounce: () => heard.ownAnnounces++,
    signal: (from, conn, signal) => heard.signals.push({ from, conn, signal }),
    relay: (from, bytes) => heard.relays.push({ from, bytes }),
    will: (from) => heard.wills.push(from),
    state: () => undefined,
    open: () => undefined,
  };
  const b = new SignalingBridge({ identity: ids[id]!, cluster: CLUSTER, urls: [wsUrl], WebSocketImpl: TrackedSocket as unknown as WebSocketCtor, secret }, stats, on);
  bridges.push(b);
  return { b, heard, stats };
}

const until = async (f: () => boolean, what: string) => {
  for (let i = 0; i < 400 && !f(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!f()) throw new Error(`never: ${what}`);
};
const settle = () => new Promise((r) => setTimeout(r, 150));

/** A bare client subscribed to `topics`; `raw()` is every frame it received, as text. */
async function eavesdropper(topics: string[]): Promise<{ client: TestClient; raw: () => string }> {
  const client = await TestClient.open(wsUrl);
  clients.push(client);
  const frames: string[] = [];
  client.ws.on('message', (d: Buffer) => frames.push(d.toString('utf8')));
  client.send({ type: 'subscribe', topics });
  await until(() => server.stats().subscriptions >= topics.length, 'eavesdropper subscribed');
  return { client, raw: () => frames.join('\n') };
}

async function everyTopicOf(secret: ClusterSecret): Promise<string[]> {
  return [
    CLUSTER,
    `${CLUSTER}/${A}`,
    `${CLUSTER}/${B}`,
    'default',
    secret.clusterTopic,
    secret.lobbyTopic,
    await secret.nodeTopic(A),
    await secret.nodeTopic(B),
  ];
}

async function exchange(a: SignalingBridge, b: SignalingBridge): Promise<void> {
  await until(() => a.isOpen() && b.isOpen(), 'open');
  await settle(); // the sealed inbox subscriptions go out after their topic's HMAC
  a.announce(false);
  b.announce(true);
  a.signal(B, 'c1', { type: 'offer', sdp: SDP });
  a.signal(B, 'c1', { type: 'candidate', candidate: { candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 51000 typ host' } });
  a.relay(B, new Uint8Array([1, 2, 3, 250]));
}

describe('signaling with a cluster secret', () => {
  it('a last will is sealed too: the tab with the secret hears it, a listener on every topic reads no id', async () => {
    const spy = await eavesdropper(await everyTopicOf(right));
    TrackedSocket.made = [];
    const a = bridge(A, right);
    bridge(B, right);
    await until(() => server.stats().wills >= 2, 'wills held');
    TrackedSocket.made[1]!.terminate(); // B's renderer dies: no goodbye
    await until(() => a.heard.wills.length === 1, 'the will');
    expect(a.heard.wills).toEqual([B]);
    await settle();
    expect(spy.raw()).toContain('"c":');
    for (const secretText of [A, B, 'will']) expect(spy.raw()).not.toContain(secretText);
  });

  it('tabs with the same secret announce, signal in order and relay; a listener on every topic reads no id, SDP or frame', async () => {
    const spy = await eavesdropper(await everyTopicOf(right));
    const a = bridge(A, right);
    const b = bridge(B, right);
    await exchange(a.b, b.b);
    await until(() => b.heard.relays.length === 1 && b.heard.signals.length === 2 && a.heard.announces.length === 1, 'delivered');
    expect(b.heard.announces).toEqual([A]);
    expect(a.heard.announces).toEqual([B]);
    // the offer before its candidate: encryption is asynchronous but keeps the order
    expect(b.heard.signals.map((s) => (s.signal as { type: string }).type)).toEqual(['offer', 'candidate']);
    expect(b.heard.signals[0]).toMatchObject({ from: A, conn: 'c1', signal: { sdp: SDP } });
    expect(Array.from(b.heard.relays[0]!.bytes)).toEqual([1, 2, 3, 250]);
    expect(a.b.secretStatus()).toMatchObject({ protected: true, wrongSecret: false });
    expect(a.b.secretStatus().decrypted).toBeGreaterThan(0);

    await settle();
    const raw = spy.raw();
    expect(raw).toContain('"c":'); // it did receive the sealed traffic
    for (const secretText of [A, B, 'fingerprint', 'candidate', 'announce', 'AQID+g']) expect(raw).not.toContain(secretText);
    // short words are looked for outside the ciphertexts and derived topic names: random
    // base64 contains a given 3-4 letter word now and then ("sdp" did, once in CI)
    const clear = raw.replace(/"(c|topic)":"[A-Za-z0-9+/=_-]{16,}"/g, '"$1":"…"');
    expect(clear).not.toBe(raw);
    for (const word of ['sdp', 'relay', 'offer']) expect(clear).not.toContain(word);
    // the signed envelope is inside the seal: no signature, public key or nonce in clear
    for (const field of ['"sig"', '"pub"', '"n":', '"ts"', toBase64(ids[A]!.pub), toBase64(ids[B]!.pub)]) expect(raw).not.toContain(field);
    // and the cluster's name is no topic on the server
    expect(raw).not.toContain(`"topic":"${CLUSTER}`);
  });

  it('a tab with the wrong secret hears nothing of the others and is told, while the others are not', async () => {
    const a = bridge(A, right);
    const b = bridge(B, right);
    await exchange(a.b, b.b);
    await until(() => a.heard.announces.length === 1, 'right tabs met');
    const c = bridge(C, wrong);
    await until(() => c.b.isOpen(), 'open');
    await settle();
    c.b.announce(true);
    await until(() => c.b.secretStatus().wrongSecret, 'wrong secret noticed');
    a.b.announce(false);
    a.b.signal(C, 'c2', { type: 'offer', sdp: SDP });
    await settle();
    expect(c.heard.announces).toEqual([]);
    expect(c.heard.signals).toEqual([]);
    expect(c.b.secretStatus()).toMatchObject({ protected: true, decrypted: 0 });
    expect(c.stats.snapshot()['drop.secret']).toBeGreaterThanOrEqual(2);
    // the tabs with the right secret never heard of C, and have decrypted each other
    expect(a.heard.announces).not.toContain(C);
    expect(b.heard.announces).not.toContain(C);
    expect(a.b.secretStatus().wrongSecret).toBe(false);
    expect(b.b.secretStatus().wrongSecret).toBe(false);
  });

  it('drops and counts what does not decrypt on our topics: garbage, a payload sealed for another topic', async () => {
    const b = bridge(B, right);
    await until(() => b.b.isOpen(), 'open');
    await settle();
    const attacker = await TestClient.open(wsUrl);
    clients.push(attacker);
    const inbox = await right.nodeTopic(B);
    const moved = await encryptPayload(right.keys, utf8(JSON.stringify({ t: 'relay', from: A, to: B, frame: 'AQID' })), right.clusterTopic);
    attacker.send({ type: 'publish', topic: inbox, data: { c: moved } });
    attacker.send({ type: 'publish', topic: inbox, data: { c: 'not base64 !' } });
    attacker.send({ type: 'publish', topic: inbox, data: { t: 'relay', from: A, to: B, frame: 'AQID' } });
    await until(() => (b.stats.snapshot()['drop.secret'] ?? 0) >= 3, 'dropped');
    expect(b.heard.relays).toEqual([]);
  });

  it('an insider with the secret cannot speak for another node: sealed but unsigned or other-key messages "from" A are dropped', async () => {
    const b = bridge(B, right);
    const a = bridge(A, right);
    await until(() => a.b.isOpen() && b.b.isOpen(), 'open');
    await settle();
    const insider = await TestClient.open(wsUrl);
    clients.push(insider);
    const inbox = await right.nodeTopic(B);
    const seal = async (m: Record<string, unknown>) => ({ c: await encryptPayload(right.keys, utf8(JSON.stringify(m)), inbox) });
    // the unsigned form of an open cluster, and one signed by C's key claiming A's id
    insider.send({ type: 'publish', topic: inbox, data: await seal({ t: 'relay', from: A, to: B, frame: 'AQID' }) });
    insider.send({ type: 'publish', topic: inbox, data: await seal(await signSignal({ ...ids[C]!, id: A }, CLUSTER, 'relay', B, { frame: 'AQID' }, Date.now())) });
    await until(() => (b.stats.snapshot()['drop.signaling'] ?? 0) >= 2, 'forgeries dropped');
    expect(b.heard.relays).toEqual([]);
    expect(b.stats.snapshot()['drop.secret'] ?? 0).toBe(0); // they decrypted: the signature refused them
    // A's own relay still gets through
    a.b.relay(B, new Uint8Array([9]));
    await until(() => b.heard.relays.length === 1, 'genuine relay');
    expect(b.heard.relays[0]!.from).toBe(A);
  });

  it('a client with the wrong secret that knows the real topics reaches nobody: its signed messages do not decrypt', async () => {
    const b = bridge(B, right);
    await until(() => b.b.isOpen(), 'open');
    await settle();
    const outsider = await TestClient.open(wsUrl);
    clients.push(outsider);
    // as if the server's operator had told it the topic names
    const inbox = await right.nodeTopic(B);
    const offer = await signSignal(ids[C]!, CLUSTER, 'signal', B, { conn: 'x.1', signal: { type: 'offer', sdp: SDP } }, Date.now());
    const announce = await signSignal(ids[C]!, CLUSTER, 'announce', '', { isolated: true }, Date.now());
    outsider.send({ type: 'publish', topic: inbox, data: { c: await encryptPayload(wrong.keys, utf8(JSON.stringify(offer)), inbox) } });
    outsider.send({ type: 'publish', topic: right.clusterTopic, data: { c: await encryptPayload(wrong.keys, utf8(JSON.stringify(announce)), right.clusterTopic) } });
    // and the same signed messages in clear
    outsider.send({ type: 'publish', topic: inbox, data: offer });
    outsider.send({ type: 'publish', topic: right.clusterTopic, data: announce });
    await until(() => (b.stats.snapshot()['drop.secret'] ?? 0) >= 4, 'all four dropped');
    expect(b.heard.signals).toEqual([]);
    expect(b.heard.announces).toEqual([]);
    expect(b.b.secretStatus()).toMatchObject({ decrypted: 0 });
  });

  it('a presence burst on the lobby is answered a bounded number of times', async () => {
    const b = bridge(B, right);
    await until(() => b.b.isOpen(), 'open');
    await settle();
    const lobby = await lobbyTopic(CLUSTER);
    const spy = await eavesdropper([lobby]);
    const countSealed = () => spy.raw().split('\n').filter((l) => l.includes('"c":')).length;
    const before = countSealed();
    for (let i = 0; i < 20; i++) spy.client.send({ type: 'publish', topic: lobby, data: { c: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' } });
    await until(() => (b.stats.snapshot()['drop.secret'] ?? 0) >= 20, 'all counted');
    await settle();
    // its answers: at most the bucket's burst (3), whatever the attacker sends
    expect(countSealed() - before - 20).toBeLessThanOrEqual(3);
  });
});

describe('signaling without a secret', () => {
  it('uses the cluster name and ids as topics, in clear, as an open cluster does', async () => {
    const spy = await eavesdropper([CLUSTER, `${CLUSTER}/${B}`]);
    const a = bridge(A);
    const b = bridge(B);
    await exchange(a.b, b.b);
    await until(() => b.heard.relays.length === 1, 'relayed');
    await settle();
    expect(a.b.secretStatus()).toEqual({ protected: false, undecryptable: 0, decrypted: 0, wrongSecret: false });
    expect(spy.raw()).toContain(A);
  });
});
