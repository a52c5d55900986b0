/**
 * Attacks on the signaling server itself (issue #15, item 8), each made the way
 * an attacker makes it: a bare WebSocket client, or raw frames over TCP. Every
 * case asserts what happens to the attacker (dropped, refused, bounded) and
 * that an honest client on the same server is still served.
 * Waits are on events, or on a bounded number of attempts; no timing assertions.
 */
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientOptions } from 'ws';
import { DEFAULT_LIMITS, type Limits } from './limits';
import type { RejectReason } from './protocol';
import { startSignalingServer, type SignalingServer, type SignalingServerOptions } from './server';
import { assertRelayWorks, clientFrame, rawWebSocket, TestClient, until, wsUrl } from './testing';

/** Frame and byte buckets lifted: for attacks that need volume to show another limit. */
const NO_RATE_LIMIT: Partial<Limits> = { rateBurst: 1e9, ratePerSec: 1e9, rateBytesBurst: 1e12, rateBytesPerSec: 1e12, rateBytesBurstPerIp: 1e12, rateBytesPerSecPerIp: 1e12 };
/** A second loopback address: "another host" for the per-address limits. */
const OTHER_HOST: ClientOptions = { localAddress: '127.0.0.2' };

let server: SignalingServer | undefined;
const clients: TestClient[] = [];
const sockets: net.Socket[] = [];
const logLines: string[] = [];

async function start(limits: Partial<Limits> = {}, more: Partial<SignalingServerOptions> = {}): Promise<SignalingServer> {
  server = await startSignalingServer({ port: 0, staticDir: null, limits, log: (l) => logLines.push(l), ...more });
  return server;
}

async function connect(options?: ClientOptions): Promise<TestClient> {
  const c = await TestClient.open(wsUrl(server!.url), options);
  clients.push(c);
  return c;
}

async function raw(): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  const socket = await rawWebSocket(server!.port);
  sockets.push(socket);
  socket.on('error', () => undefined); // reset by the server's terminate
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  return { socket, closed };
}

/** Writes; resolves with the write error (the server reset the connection) or null. */
function write(socket: net.Socket, data: Buffer): Promise<Error | null> {
  return new Promise((resolve) => socket.write(data, (err) => resolve(err ?? null)));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function rejected(reason: RejectReason): number {
  return server!.stats().rejected[reason];
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
  logLines.length = 0;
});

describe('every reply is subject to the slow-consumer bound', () => {
  it.each([
    ['pings (answered with pongs)', '{"type":"ping"}'],
    ['garbage (answered with errors)', 'x'],
  ])('a client that sends %s and never reads is terminated once its replies pass maxBufferedBytes', async (_label, text) => {
    await start({ maxBufferedBytes: 64 * 1024, ...NO_RATE_LIMIT });
    const good = await connect(OTHER_HOST);
    await assertRelayWorks(good);
    const { socket, closed } = await raw();
    socket.pause(); // never reads: every reply stays queued at the server once the kernel buffers are full
    const batch = Buffer.concat(Array.from({ length: 2000 }, () => clientFrame(0x1, Buffer.from(text))));
    // Bounded: 3,000 batches are 60-125 MB of frames, far past any socket buffer.
    let reset: Error | null = null;
    for (let i = 0; i < 3000 && rejected('slow-consumer') === 0 && !reset; i++) reset = await write(socket, batch);
    expect(rejected('slow-consumer')).toBe(1);
    await closed;
    await assertRelayWorks(good);
    await until(() => server!.stats().connections === 1);
  });
});

describe('liveness means the client reads', () => {
  it('a client that keeps sending frames but never reads is terminated at the ping timeout', async () => {
    await start({ pingIntervalMs: 50, ...NO_RATE_LIMIT });
    const good = await connect();
    const { socket, closed } = await raw();
    socket.pause();
    let gone = false;
    void closed.then(() => (gone = true));
    const frame = clientFrame(0x1, Buffer.from('{"type":"subscribe","topics":["room"]}')); // no reply
    // Bounded: 500 × 10 ms is 100 ping intervals; the server needs two.
    let reset: Error | null = null;
    for (let i = 0; i < 500 && !gone && !reset; i++) {
      reset = await write(socket, frame);
      await sleep(10);
    }
    expect(gone || reset !== null).toBe(true);
    await closed;
    expect(rejected('ping-timeout')).toBe(1);
    await assertRelayWorks(good); // the honest client answers its pings and stays
    expect(rejected('ping-timeout')).toBe(1);
  });

  it('unsolicited pongs from a client that does not read do not keep it alive', async () => {
    await start({ pingIntervalMs: 50 });
    const good = await connect();
    const { socket, closed } = await raw();
    socket.pause(); // never sees the server's pings, so cannot echo their payload
    let gone = false;
    void closed.then(() => (gone = true));
    let reset: Error | null = null;
    for (let i = 0; i < 500 && !gone && !reset; i++) {
      reset = await write(socket, clientFrame(0xa, Buffer.from(`guess-${i}`)));
      await sleep(10);
    }
    expect(gone || reset !== null).toBe(true);
    await closed;
    expect(rejected('ping-timeout')).toBe(1);
    await assertRelayWorks(good);
  });

  it('a client that reads and answers pings stays connected over many ping intervals', async () => {
    await start({ pingIntervalMs: 20 });
    const a = await connect();
    for (let i = 0; i < 20; i++) {
      await sleep(25);
      await a.sync();
    }
    await assertRelayWorks(a);
    expect(rejected('ping-timeout')).toBe(0);
  });
});

describe('per-address limits, on by default', () => {
  it('one address cannot take every connection: past maxConnectionsPerIp it gets HTTP 429, another address still connects', async () => {
    const srv = await start(); // defaults
    const attacker: TestClient[] = [];
    let refused: Error | null = null;
    // Bounded: the global cap (10,000) is far away; without a per-address limit this runs 200 times.
    for (let i = 0; i < 200 && !refused; i++) {
      await TestClient.open(wsUrl(srv.url)).then((c) => { attacker.push(c); clients.push(c); }, (err: Error) => { refused = err; });
    }
    expect(String(refused)).toContain('HTTP 429');
    expect(attacker.length).toBe(64);
    expect(rejected('ip-connection-limit')).toBe(1);
    const good = await connect(OTHER_HOST);
    await assertRelayWorks(good);
    await assertRelayWorks(attacker[0]!); // the attacker's open connections are still served
  });

  it('one address cannot fill the topic table: past maxTopicsPerIp its subscriptions are refused, another address still gets new topics', async () => {
    await start({ maxTopics: 300 }); // the per-address default (256) is below it
    const attackers = await Promise.all(Array.from({ length: 6 }, () => connect()));
    for (const [i, a] of attackers.entries()) a.send({ type: 'subscribe', topics: Array.from({ length: 64 }, (_, j) => `junk-${i}-${j}`) });
    await Promise.all(attackers.map((a) => a.sync()));
    const errors = attackers.flatMap((a) => a.inbox.filter((m) => m.type === 'error').map((m) => m.reason as string));
    expect(new Set(errors)).toEqual(new Set(['ip-topic-limit']));
    expect(server!.stats().subscriptions).toBe(256);
    expect(rejected('server-topic-limit')).toBe(0);
    const good = await connect(OTHER_HOST);
    good.send({ type: 'subscribe', topics: ['room', 'room/node-1'] });
    good.send({ type: 'publish', topic: 'room/node-1', n: 1 });
    expect(await good.next()).toMatchObject({ topic: 'room/node-1', n: 1, clients: 1 });
    // freed when the attacker goes
    await Promise.all(attackers.map((a) => a.close()));
    await until(() => server!.stats().subscriptions === 2);
    const later = await connect();
    later.send({ type: 'subscribe', topics: ['t'] });
    later.send({ type: 'publish', topic: 't', n: 2 });
    expect(await later.next()).toMatchObject({ topic: 't', n: 2, clients: 1 });
  });

  it('TRUST_PROXY: the address is the rightmost X-Forwarded-For entry the proxy wrote, not what the client wrote before it', async () => {
    const srv = await start({ maxConnectionsPerIp: 2 }, { trustProxy: 1 });
    const via = (xff: string): Promise<TestClient> => TestClient.open(wsUrl(srv.url), { headers: { 'X-Forwarded-For': xff } });
    const a1 = await via('203.0.113.5');
    const a2 = await via('198.51.100.1, 203.0.113.5'); // the client prepended a fake entry
    clients.push(a1, a2);
    await expect(via('10.9.9.9, 203.0.113.5')).rejects.toThrow('HTTP 429');
    const b = await via('203.0.113.6');
    clients.push(b);
    await assertRelayWorks(b);
    // IPv6: one /64 is one client
    clients.push(await via('2001:db8:1:2::1'), await via('2001:db8:1:2::ffff'));
    await expect(via('2001:db8:1:2:abcd::1')).rejects.toThrow('HTTP 429');
    clients.push(await via('2001:db8:1:3::1'));
    expect(rejected('ip-connection-limit')).toBe(2);
  });

  it('without TRUST_PROXY the header is ignored (one address for all), and that is logged once', async () => {
    const srv = await start({ maxConnectionsPerIp: 2 });
    const via = (xff: string): Promise<TestClient> => TestClient.open(wsUrl(srv.url), { headers: { 'X-Forwarded-For': xff } });
    clients.push(await via('203.0.113.5'), await via('203.0.113.6'));
    await expect(via('203.0.113.7')).rejects.toThrow('HTTP 429');
    expect(logLines.filter((l) => l.includes('TRUST_PROXY is not set'))).toHaveLength(1);
  });
});

describe('byte rate per connection', () => {
  it('a publisher of 60 KiB frames at full speed is throttled and closed; a stalled subscriber is not pushed past the slow-consumer bound', async () => {
    // frame-count bucket lifted: only the byte bucket (defaults) stands in the way
    const limits = { rateBurst: 1e9, ratePerSec: 1e9, rateDropsBeforeClose: 1000 };
    await start(limits);
    const { rateBytesBurst, rateBytesPerSec } = DEFAULT_LIMITS;
    const subscriber = await connect(OTHER_HOST);
    subscriber.send({ type: 'subscribe', topics: ['room'] });
    await subscriber.sync();
    subscriber.ws.pause(); // a subscriber on a slow link: it reads nothing for now
    const attacker = await connect();
    let closedCode = 0;
    void attacker.closed.then((c) => (closedCode = c.code));
    const pad = 'x'.repeat(60 * 1024);
    const t0 = performance.now();
    // Bounded: 200 rounds × 10 × 60 KiB = 120 MB, far past the subscriber's socket
    // buffers plus maxBufferedBytes (default 1 MiB).
    for (let round = 0; round < 200 && closedCode === 0; round++) {
      for (let i = 0; i < 10; i++) attacker.send({ type: 'publish', topic: 'room', pad });
      await new Promise((r) => setImmediate(r));
      await until(() => attacker.ws.bufferedAmount === 0 || closedCode !== 0);
    }
    const seconds = (performance.now() - t0) / 1000;
    expect((await attacker.closed).code).toBe(1008);
    expect(rejected('byte-rate-limited')).toBeGreaterThanOrEqual(1000);
    expect(rejected('flood')).toBe(1);
    expect(rejected('slow-consumer')).toBe(0);
    subscriber.ws.resume();
    await subscriber.sync();
    const got = subscriber.inbox.filter((m) => m.topic === 'room').length;
    expect(got).toBeGreaterThanOrEqual(4); // the burst
    expect(got * 60 * 1024).toBeLessThanOrEqual(rateBytesBurst + rateBytesPerSec * (seconds + 1));
    await assertRelayWorks(subscriber);
  });

  it('reconnecting does not refill the budget: one address cycling connections is bounded by its shared byte bucket', async () => {
    await start({ rateBurst: 1e9, ratePerSec: 1e9 });
    const { rateBytesBurstPerIp, rateBytesPerSecPerIp } = DEFAULT_LIMITS;
    const subscriber = await connect(OTHER_HOST);
    subscriber.send({ type: 'subscribe', topics: ['room'] });
    await subscriber.sync();
    const pad = 'x'.repeat(60 * 1024);
    const t0 = performance.now();
    // each fresh connection would get a fresh per-connection burst (4 × 60 KiB)
    for (let cycle = 0; cycle < 50; cycle++) {
      const c = await TestClient.open(wsUrl(server!.url));
      for (let i = 0; i < 4; i++) c.send({ type: 'publish', topic: 'room', pad });
      await c.close(); // the close frame follows the publishes: they are handled first
    }
    const seconds = (performance.now() - t0) / 1000;
    await subscriber.sync();
    const got = subscriber.inbox.filter((m) => m.topic === 'room').length;
    expect(got * 60 * 1024).toBeLessThanOrEqual(rateBytesBurstPerIp + rateBytesPerSecPerIp * (seconds + 1));
    expect(rejected('ip-byte-rate-limited')).toBeGreaterThan(0);
    await assertRelayWorks(subscriber);
  });

  it('an address is forgotten once it has no connection and its bucket refilled; until then it is kept', async () => {
    await start({ pingIntervalMs: 20, rateBytesBurstPerIp: 128 * 1024, rateBytesPerSecPerIp: 64 * 1024 });
    const a = await connect();
    a.send({ type: 'publish', topic: 'nobody', pad: 'x'.repeat(60 * 1024) });
    await a.close();
    await until(() => server!.stats().connections === 0);
    expect(server!.stats().addresses).toBe(1); // 60 KiB short: refills in about 1 s
    await until(() => server!.stats().addresses === 0, 10_000_000);
  });

  it('an honest burst (SDP offers and candidates to a few peers) passes in full', async () => {
    await start();
    const a = await connect();
    a.send({ type: 'subscribe', topics: ['c/me'] });
    const offer = { type: 'publish', topic: 'c/me', data: { t: 'signal', signal: { type: 'offer', sdp: 's'.repeat(8 * 1024) } } };
    for (let i = 0; i < 20; i++) a.send(offer); // 160 KiB at once
    await a.sync();
    expect(a.inbox.filter((m) => m.topic === 'c/me')).toHaveLength(20);
    expect(rejected('byte-rate-limited')).toBe(0);
  });
});

describe('allowed Origins (ALLOWED_ORIGINS)', () => {
  it('a page of another origin is refused with HTTP 403; the allowed origin and non-browser clients connect', async () => {
    const srv = await start({}, { allowedOrigins: ['https://chat.example.org'] });
    await expect(TestClient.open(wsUrl(srv.url), { origin: 'https://evil.example' })).rejects.toThrow('HTTP 403');
    await expect(TestClient.open(wsUrl(srv.url), { origin: 'null' })).rejects.toThrow('HTTP 403');
    await expect(TestClient.open(wsUrl(srv.url), { origin: 'https://chat.example.org.evil.example' })).rejects.toThrow('HTTP 403');
    const page = await connect({ origin: 'https://chat.example.org' });
    await assertRelayWorks(page);
    const bare = await connect(); // no Origin header: not a browser page
    await assertRelayWorks(bare);
    expect(rejected('origin-refused')).toBe(3);
  });

  it('without the list any origin connects', async () => {
    await start();
    const page = await connect({ origin: 'https://anywhere.example' });
    await assertRelayWorks(page);
  });
});
