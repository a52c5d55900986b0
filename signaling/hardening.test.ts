/**
 * Hostile and broken clients. Each case shows (a) what happens to the bad
 * connection (error reply or close, as documented in docs/benchmarks.md) and
 * (b) that a well-behaved client on the same server is still served afterwards.
 * No timing assertions: waits are on events, bounded only by the test timeout.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientOptions } from 'ws';
import type { Limits } from './limits';
import type { RejectReason } from './protocol';
import { startSignalingServer, type SignalingServer } from './server';
import { assertRelayWorks, clientFrame, rawWebSocket, TestClient, until, wsUrl } from './testing';

/** Frame and byte buckets lifted: for tests of other limits that need volume. */
const NO_RATE_LIMIT: Partial<Limits> = { rateBurst: 1e9, ratePerSec: 1e9, rateBytesBurst: 1e12, rateBytesPerSec: 1e12, rateBytesBurstPerIp: 1e12, rateBytesPerSecPerIp: 1e12 };

let server: SignalingServer | undefined;
const clients: TestClient[] = [];
const logLines: string[] = [];

async function start(limits: Partial<Limits> = {}): Promise<SignalingServer> {
  server = await startSignalingServer({ port: 0, staticDir: null, limits, log: (l) => logLines.push(l) });
  return server;
}

async function connect(path = '/', options?: ClientOptions): Promise<TestClient> {
  const c = await TestClient.open(wsUrl(server!.url, path), options);
  clients.push(c);
  return c;
}

/** A well-behaved client, already subscribed and served once. */
async function goodClient(): Promise<TestClient> {
  const good = await connect();
  await assertRelayWorks(good);
  return good;
}

function rejected(reason: RejectReason): number {
  return server!.stats().rejected[reason];
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
  logLines.length = 0;
});

describe('malformed frames get an error reply; the connection stays usable', () => {
  it('non-JSON text', async () => {
    await start();
    const good = await goodClient();
    const bad = await connect();
    bad.sendRaw('{"type":"subscribe", this is not json');
    expect(await bad.next()).toEqual({ type: 'error', reason: 'not-json' });
    await bad.sync(); // still served
    expect(await assertRelayWorks(good)).toMatchObject({ clients: 1 });
    expect(rejected('not-json')).toBe(1);
    expect(logLines.some((l) => l.includes('not-json'))).toBe(true);
  });

  it.each([['null'], ['[]'], ['[{"type":"ping"}]'], ['42'], ['"ping"'], ['true']])('JSON that is not an object: %s', async (text) => {
    await start();
    const good = await goodClient();
    const bad = await connect();
    bad.sendRaw(text);
    expect(await bad.next()).toEqual({ type: 'error', reason: 'not-object' });
    await bad.sync();
    await assertRelayWorks(good);
    expect(rejected('not-object')).toBe(1);
  });

  it('unknown type is ignored without a reply (as the stock server does) but counted', async () => {
    await start();
    const good = await goodClient();
    const bad = await connect();
    bad.send({ type: 'subscribe-all', topics: ['x'] });
    await bad.sync();
    expect(bad.inbox).toEqual([]);
    await assertRelayWorks(good);
    expect(rejected('unknown-type')).toBe(1);
  });

  it.each<[object, string]>([
    [{ topics: ['a'] }, 'no type'],
    [{ type: 42 }, 'numeric type'],
    [{ type: 'subscribe' }, 'subscribe without topics'],
    [{ type: 'subscribe', topics: 'room' }, 'topics is a string'],
    [{ type: 'subscribe', topics: { 0: 'room' } }, 'topics is an object'],
    [{ type: 'subscribe', topics: ['ok', 7] }, 'topics holds a number'],
    [{ type: 'unsubscribe', topics: [null] }, 'unsubscribe topics holds null'],
    [{ type: 'publish', data: 1 }, 'publish without topic'],
    [{ type: 'publish', topic: 42, data: 1 }, 'numeric topic'],
    [{ type: 'publish', topic: ['room'], data: 1 }, 'array topic'],
  ])('wrong field types: %j (%s)', async (message) => {
    await start();
    const good = await goodClient();
    const bad = await connect();
    bad.send(message);
    expect(await bad.next()).toEqual({ type: 'error', reason: 'bad-field' });
    await bad.sync();
    await assertRelayWorks(good);
    expect(rejected('bad-field')).toBe(1);
    expect(server!.stats().topics).toBe(0); // nothing half-subscribed
  });

  it.each([
    ['subscribe to an empty name', { type: 'subscribe', topics: [''] }],
    ['subscribe to a 257-char name', { type: 'subscribe', topics: ['ok', 'x'.repeat(257)] }],
    ['publish to an empty name', { type: 'publish', topic: '', data: 1 }],
    ['publish to a 257-char name', { type: 'publish', topic: 'x'.repeat(257), data: 1 }],
  ])('bad topic names: %s', async (_label, message) => {
    await start({ maxTopicLength: 256 });
    const good = await goodClient();
    const bad = await connect();
    bad.send(message);
    expect(await bad.next()).toEqual({ type: 'error', reason: 'bad-topic' });
    await bad.sync();
    await assertRelayWorks(good);
    expect(rejected('bad-topic')).toBe(1);
    expect(server!.stats().topics).toBe(0);
  });

  it('nesting deep enough to overflow JSON.stringify (30,000 levels in 60 KB): error, not a crash', async () => {
    await start();
    const good = await goodClient();
    const bad = await connect();
    bad.send({ type: 'subscribe', topics: ['deep'] });
    const depth = 30_000;
    bad.sendRaw(`{"type":"publish","topic":"deep","data":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    expect(await bad.next()).toEqual({ type: 'error', reason: 'too-deep' });
    const ok = { type: 'publish', topic: 'deep', data: JSON.parse('['.repeat(31) + ']'.repeat(31)) }; // depth 32
    bad.send(ok);
    expect(await bad.next()).toEqual({ ...ok, clients: 1 });
    await assertRelayWorks(good);
    expect(rejected('too-deep')).toBe(1);
    expect(rejected('internal-error')).toBe(0);
  });

  it('a topic name of exactly maxTopicLength is accepted', async () => {
    await start({ maxTopicLength: 256 });
    const a = await connect();
    const topic = 't'.repeat(256);
    a.send({ type: 'subscribe', topics: [topic] });
    a.send({ type: 'publish', topic, n: 1 });
    expect(await a.next()).toMatchObject({ type: 'publish', topic, n: 1, clients: 1 });
  });
});

describe('frames that close the offending connection', () => {
  it('binary frame: closed with 1003', async () => {
    await start();
    const good = await goodClient();
    const bad = await connect();
    bad.sendRaw(Buffer.from(JSON.stringify({ type: 'ping' })), true);
    expect((await bad.closed).code).toBe(1003);
    await assertRelayWorks(good);
    expect(rejected('binary')).toBe(1);
  });

  it('frame over maxFrameBytes: closed with 1009, never buffered; a frame just under passes', async () => {
    await start(); // default limit, 64 KiB
    const good = await goodClient();
    const topic = 'big';
    good.send({ type: 'subscribe', topics: [topic] });
    await good.sync();

    const fits = await connect();
    const head = JSON.stringify({ type: 'publish', topic, pad: '' });
    fits.sendRaw(JSON.stringify({ type: 'publish', topic, pad: 'p'.repeat(64 * 1024 - head.length) })); // exactly 64 KiB
    expect((await good.next((m) => m.topic === topic)).pad.length).toBe(64 * 1024 - head.length);

    const bad = await connect();
    bad.sendRaw(JSON.stringify({ type: 'publish', topic, pad: 'p'.repeat(64 * 1024 - head.length + 1) }));
    expect((await bad.closed).code).toBe(1009);
    await fits.sync();
    await assertRelayWorks(good);
    expect(rejected('oversized')).toBe(1);
  });

  it('invalid UTF-8 in a text frame: closed by the WebSocket layer (1007), counted', async () => {
    const srv = await start();
    const good = await goodClient();
    const raw = await rawWebSocket(srv.port);
    const closedByServer = new Promise<void>((resolve) => raw.on('close', () => resolve()));
    raw.on('data', () => undefined);
    raw.write(clientFrame(0x1, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])));
    await closedByServer;
    await assertRelayWorks(good);
    expect(rejected('protocol-error')).toBe(1);
  });
});

describe('floods and resource caps', () => {
  it('a burst within the bucket is served in full', async () => {
    await start({ rateBurst: 50, ratePerSec: 0 });
    const a = await connect();
    for (let i = 0; i < 50; i++) a.send({ type: 'ping' });
    for (let i = 0; i < 50; i++) expect(await a.next()).toEqual({ type: 'pong' });
    expect(rejected('rate-limited')).toBe(0);
  });

  it('flood: frames over the bucket are dropped with one error, sustained abuse closes (1008)', async () => {
    await start({ rateBurst: 20, ratePerSec: 0, rateDropsBeforeClose: 100 });
    const good = await goodClient();
    const bad = await connect();
    for (let i = 0; i < 1000; i++) bad.send({ type: 'ping' });
    expect((await bad.closed).code).toBe(1008);
    const pongs = bad.inbox.filter((m) => m.type === 'pong').length;
    const errors = bad.inbox.filter((m) => m.type === 'error');
    expect(pongs).toBe(20);
    expect(errors).toEqual([{ type: 'error', reason: 'rate-limited' }]);
    await assertRelayWorks(good);
    expect(rejected('rate-limited')).toBe(100);
    expect(rejected('flood')).toBe(1);
  });

  it('a flood of garbage cannot flood the log', async () => {
    await start({ rateBurst: 10_000, logBurst: 5, logPerSec: 0 });
    const good = await goodClient();
    const bad = await connect();
    for (let i = 0; i < 2000; i++) bad.sendRaw(`garbage ${i}`);
    for (let i = 0; i < 2000; i++) await bad.nextOfType('error');
    await assertRelayWorks(good);
    expect(rejected('not-json')).toBe(2000);
    expect(logLines.length).toBe(5);
    expect(server!.stats().logSuppressed).toBe(1995);
  });

  it('too many topics on one connection: error, the topics up to the cap stay', async () => {
    await start({ maxTopicsPerConnection: 4 });
    const good = await goodClient();
    const bad = await connect();
    bad.send({ type: 'subscribe', topics: ['t1', 't2', 't3'] });
    bad.send({ type: 'subscribe', topics: ['t4', 't5'] });
    expect(await bad.next()).toEqual({ type: 'error', reason: 'too-many-topics' });
    bad.send({ type: 'subscribe', topics: ['a', 'b', 'c', 'd', 'e'] }); // longer than the cap on its own
    expect(await bad.next()).toEqual({ type: 'error', reason: 'too-many-topics' });
    bad.send({ type: 'publish', topic: 't4', n: 4 });
    bad.send({ type: 'publish', topic: 't5', n: 5 });
    expect(await bad.next()).toMatchObject({ topic: 't4', n: 4, clients: 1 });
    await bad.sync();
    expect(bad.inbox).toEqual([]); // t5 was refused
    await assertRelayWorks(good);
    expect(rejected('too-many-topics')).toBe(2);
  });

  it('global topic cap: new topics refused while full; existing ones joinable; freed when emptied', async () => {
    await start({ maxTopics: 3 });
    const a = await connect();
    const b = await connect();
    a.send({ type: 'subscribe', topics: ['t1', 't2', 't3'] });
    await a.sync();
    b.send({ type: 'subscribe', topics: ['t4'] });
    expect(await b.next()).toEqual({ type: 'error', reason: 'server-topic-limit' });
    b.send({ type: 'subscribe', topics: ['t1'] });
    b.send({ type: 'publish', topic: 't1', n: 1 });
    expect(await b.next()).toMatchObject({ topic: 't1', clients: 2 });
    a.send({ type: 'unsubscribe', topics: ['t2'] });
    await a.sync();
    expect(server!.stats().topics).toBe(2); // the empty topic is gone
    b.send({ type: 'subscribe', topics: ['t4'] });
    b.send({ type: 'publish', topic: 't4', n: 4 });
    expect(await b.next()).toMatchObject({ topic: 't4', clients: 1 });
    expect(rejected('server-topic-limit')).toBe(1);
  });

  it('connections per IP (a smaller limit): the extra upgrade gets HTTP 429; others unaffected', async () => {
    await start({ maxConnectionsPerIp: 2 });
    const good = await goodClient();
    const second = await connect();
    await expect(TestClient.open(wsUrl(server!.url))).rejects.toThrow('HTTP 429');
    await assertRelayWorks(good);
    await second.close();
    // Our side of the close is seen by the server asynchronously; retry until freed.
    let third: TestClient | undefined;
    for (let i = 0; i < 200 && !third; i++) {
      third = await TestClient.open(wsUrl(server!.url)).catch(() => undefined);
    }
    clients.push(third!);
    await assertRelayWorks(third!);
    expect(rejected('ip-connection-limit')).toBeGreaterThanOrEqual(1);
  });

  it('global connection cap: the extra upgrade gets HTTP 503', async () => {
    await start({ maxConnections: 2 });
    const good = await goodClient();
    await connect();
    await expect(TestClient.open(wsUrl(server!.url))).rejects.toThrow('HTTP 503');
    await assertRelayWorks(good);
    expect(rejected('connection-limit')).toBe(1);
  });
});

describe('dead and slow peers', () => {
  it('a connection that vanished (no pong) is terminated and unsubscribed', async () => {
    await start({ pingIntervalMs: 100 });
    const good = await goodClient();
    good.send({ type: 'subscribe', topics: ['room'] });
    await good.sync();
    const ghost = await connect('/', { autoPong: false });
    ghost.send({ type: 'subscribe', topics: ['room'] });
    await ghost.sync();
    good.send({ type: 'publish', topic: 'room', n: 1 });
    expect(await good.next((m) => m.topic === 'room')).toMatchObject({ clients: 2 });

    expect((await ghost.closed).code).toBe(1006); // terminated, no close frame
    await until(() => server!.stats().connections === 1);
    good.send({ type: 'publish', topic: 'room', n: 2 });
    expect(await good.next((m) => m.topic === 'room')).toMatchObject({ n: 2, clients: 1 });
    expect(rejected('ping-timeout')).toBe(1);
  });

  it('a subscriber that stops reading is terminated once its queue passes maxBufferedBytes', async () => {
    const srv = await start({ maxBufferedBytes: 256 * 1024, ...NO_RATE_LIMIT });
    const good = await goodClient();
    const slow = await rawWebSocket(srv.port);
    const slowClosed = new Promise<void>((resolve) => slow.on('close', () => resolve()));
    slow.on('error', () => undefined); // reset by the server's terminate
    slow.write(clientFrame(0x1, Buffer.from(JSON.stringify({ type: 'subscribe', topics: ['firehose'] }))));
    slow.pause(); // stop reading: the kernel buffers fill, then the server's queue grows

    const publisher = await connect();
    await publisher.sync();
    const pad = 'x'.repeat(60 * 1024);
    // Bounded: 2,000 × 60 KiB = 120 MiB would be far past any socket buffer.
    for (let round = 0; round < 200 && rejected('slow-consumer') === 0; round++) {
      for (let i = 0; i < 10; i++) publisher.send({ type: 'publish', topic: 'firehose', pad });
      await publisher.sync();
    }
    expect(rejected('slow-consumer')).toBe(1);
    slow.resume();
    await slowClosed;
    await assertRelayWorks(good);
    await until(() => server!.stats().topics === 0); // firehose lost its only subscriber
  });
});
