/**
 * The `will` frame: a connection's last will, held by the server and published
 * as if that connection had published it the moment it closes, whatever closed
 * it; never while it is open, once only, and not when the server itself shuts
 * down. Waits are on events (a sync answered after the close handler ran), not
 * on timers.
 */
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientOptions } from 'ws';
import type { Limits } from './limits';
import type { RejectReason } from './protocol';
import { startSignalingServer, type SignalingServer } from './server';
import { assertRelayWorks, clientFrame, rawWebSocket, TestClient, until, wsUrl, type Msg } from './testing';

let server: SignalingServer | undefined;
const clients: TestClient[] = [];
const sockets: net.Socket[] = [];

async function start(limits: Partial<Limits> = {}): Promise<SignalingServer> {
  server = await startSignalingServer({ port: 0, staticDir: null, limits, log: () => undefined });
  return server;
}

async function connect(options?: ClientOptions): Promise<TestClient> {
  const c = await TestClient.open(wsUrl(server!.url), options);
  clients.push(c);
  return c;
}

/** A client subscribed to `topic`, the subscription in place. */
async function subscriber(topic: string): Promise<TestClient> {
  const c = await connect();
  c.send({ type: 'subscribe', topics: [topic] });
  await c.sync();
  return c;
}

function rejected(reason: RejectReason): number {
  return server!.stats().rejected[reason];
}

const isPublishOn = (topic: string) => (m: Msg) => m.type === 'publish' && m.topic === topic;

/** Waits until the server has seen `n` connections close, then syncs `watcher`:
 * whatever the closes relayed to it is in its inbox. */
async function afterCloses(watcher: TestClient, connections: number): Promise<void> {
  await until(() => server!.stats().connections === connections);
  await watcher.sync();
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
});

describe('a will is published when its connection closes', () => {
  it('once, as a publish of that connection, to the subscribers of its topic but not to itself; nothing before', async () => {
    await start();
    const sub = await subscriber('T');
    const tab = await subscriber('T'); // subscribed too: must not count as a receiver of its own will
    tab.send({ type: 'will', topic: 'T', data: { gone: 'tab-1' }, clients: 99 });
    await tab.sync();
    await sub.sync();
    expect(sub.inbox).toEqual([]);
    expect(tab.inbox).toEqual([]);
    expect(server!.stats()).toMatchObject({ wills: 1, willsPublished: 0 });

    await tab.close();
    expect(await sub.next(isPublishOn('T'))).toEqual({ type: 'publish', topic: 'T', data: { gone: 'tab-1' }, clients: 1 });
    await afterCloses(sub, 1);
    expect(sub.inbox).toEqual([]); // exactly once
    expect(server!.stats()).toMatchObject({ wills: 0, willsPublished: 1, published: 1 });
  });

  it('a second will replaces the first; a will without topic clears it', async () => {
    await start();
    const sub = await subscriber('T');
    const replaced = await connect();
    replaced.send({ type: 'will', topic: 'T', data: { n: 1 } });
    replaced.send({ type: 'will', topic: 'T', data: { n: 2 } });
    await replaced.sync();
    expect(server!.stats().wills).toBe(1);
    await replaced.close();
    expect(await sub.next(isPublishOn('T'))).toMatchObject({ data: { n: 2 } });
    await afterCloses(sub, 1);
    expect(sub.inbox).toEqual([]);

    const cleared = await connect();
    cleared.send({ type: 'will', topic: 'T', data: { n: 3 } });
    cleared.send({ type: 'will' });
    await cleared.sync();
    expect(server!.stats().wills).toBe(0);
    await cleared.close();
    await afterCloses(sub, 1);
    expect(sub.inbox).toEqual([]);
    expect(server!.stats().willsPublished).toBe(1);
  });
});

describe('every way a connection ends publishes its will', () => {
  it('a dropped TCP connection (a killed tab): no close frame', async () => {
    await start();
    const sub = await subscriber('T');
    const socket = await rawWebSocket(server!.port);
    sockets.push(socket);
    socket.on('error', () => undefined);
    socket.write(clientFrame(0x1, Buffer.from(JSON.stringify({ type: 'will', topic: 'T', data: { gone: 'raw' } }))));
    await until(() => server!.stats().wills === 1);
    socket.destroy();
    expect(await sub.next(isPublishOn('T'))).toEqual({ type: 'publish', topic: 'T', data: { gone: 'raw' }, clients: 1 });
  });

  it('closed by the server for flooding (1008)', async () => {
    await start({ rateBurst: 20, ratePerSec: 0, rateDropsBeforeClose: 10 });
    const sub = await subscriber('T');
    const flooder = await connect();
    flooder.send({ type: 'will', topic: 'T', data: { gone: 'flooder' } });
    for (let i = 0; i < 100; i++) flooder.send({ type: 'ping' });
    expect((await flooder.closed).code).toBe(1008);
    expect(await sub.next(isPublishOn('T'))).toMatchObject({ data: { gone: 'flooder' }, clients: 1 });
    expect(rejected('flood')).toBe(1);
  });

  it('terminated at the ping timeout (no close handshake)', async () => {
    await start({ pingIntervalMs: 200 }); // wide enough for the subscriber's pongs on a loaded machine
    const sub = await subscriber('T');
    const ghost = await connect({ autoPong: false });
    ghost.send({ type: 'will', topic: 'T', data: { gone: 'ghost' } });
    await ghost.sync();
    expect((await ghost.closed).code).toBe(1006);
    expect(await sub.next(isPublishOn('T'))).toMatchObject({ data: { gone: 'ghost' }, clients: 1 });
    expect(rejected('ping-timeout')).toBe(1);
  });
});

describe('bad wills', () => {
  it('are refused with an error reply, keep the previous will, and leave the others served', async () => {
    await start({ maxWillBytes: 200 });
    const good = await connect();
    await assertRelayWorks(good);
    const sub = await subscriber('T');
    const tab = await connect();
    const head = JSON.stringify({ type: 'will', topic: 'T', pad: '' });
    const kept = { type: 'will', topic: 'T', pad: 'k'.repeat(200 - head.length) }; // exactly maxWillBytes
    tab.send(kept);
    tab.send({ ...kept, pad: 'x'.repeat(200 - head.length + 1) });
    expect(await tab.next()).toEqual({ type: 'error', reason: 'will-too-large' });
    tab.send({ type: 'will', topic: 42 });
    expect(await tab.next()).toEqual({ type: 'error', reason: 'bad-field' });
    tab.send({ type: 'will', topic: '' });
    expect(await tab.next()).toEqual({ type: 'error', reason: 'bad-topic' });
    await tab.sync();
    expect(rejected('will-too-large')).toBe(1);
    expect(rejected('bad-field')).toBe(1);
    expect(rejected('bad-topic')).toBe(1);
    expect(server!.stats().wills).toBe(1);

    await tab.close();
    expect(await sub.next(isPublishOn('T'))).toEqual({ ...kept, type: 'publish', clients: 1 });
    await afterCloses(sub, 2);
    expect(sub.inbox).toEqual([]);
    await assertRelayWorks(good);
  });
});

describe('server shutdown', () => {
  it('does not publish the wills of the connections it closes', async () => {
    const srv = await start();
    const sub = await subscriber('T');
    const tab = await connect();
    tab.send({ type: 'will', topic: 'T', data: { gone: 'tab' } });
    await tab.sync();
    expect(srv.stats().wills).toBe(1);
    await srv.close();
    expect((await sub.closed).code).toBe(1001);
    expect(sub.inbox).toEqual([]);
    // Locally nothing could arrive anyway (every connection is closing); the
    // count shows nothing went to the Redis bridge either.
    expect(srv.stats()).toMatchObject({ wills: 0, willsPublished: 0 });
  });
});
