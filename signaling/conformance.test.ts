/**
 * The y-webrtc signaling protocol, well-formed cases only, run against our
 * server AND the stock `y-webrtc-signaling` (as a child process): the app can
 * use either, so both must pass the same suite.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSignalingServer } from './server';
import { startStockServer, TestClient, wsUrl, type Msg } from './testing';

interface Target {
  url: string;
  close(): Promise<unknown>;
}

const targets: Array<[string, () => Promise<Target>]> = [
  ['ours', () => startSignalingServer({ port: 0, staticDir: null, log: () => undefined })],
  ['stock y-webrtc', async () => {
    const s = await startStockServer();
    return { url: s.url, close: () => s.stop() };
  }],
];

describe.each(targets)('signaling protocol conformance: %s server', (_name, start) => {
  let target: Target;
  const clients: TestClient[] = [];
  let topicSeq = 0;
  const freshTopic = (): string => `room-${++topicSeq}`;

  const connect = async (path = '/'): Promise<TestClient> => {
    const c = await TestClient.open(wsUrl(target.url, path));
    clients.push(c);
    return c;
  };

  /** Subscribes each client and makes sure the server has processed it. */
  const subscribeAll = async (topic: string, ...cs: TestClient[]): Promise<void> => {
    for (const c of cs) {
      c.send({ type: 'subscribe', topics: [topic] });
      await c.sync();
    }
  };

  const relayOn = (topic: string) => (m: Msg) => m.type === 'publish' && m.topic === topic;

  beforeAll(async () => {
    target = await start();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    await target.close();
  });

  it('answers ping with pong', async () => {
    const a = await connect();
    a.send({ type: 'ping' });
    expect(await a.next()).toEqual({ type: 'pong' });
  });

  it('relays a publish, whole object plus `clients`, to every subscriber including the sender', async () => {
    const topic = freshTopic();
    const [a, b, c] = [await connect(), await connect(), await connect()];
    await subscribeAll(topic, a, b, c);
    const message = { type: 'publish', topic, data: { type: 'announce', from: 'node-a', nested: [1, 'two', null, { x: true }] }, extra: 'kept' };
    a.send(message);
    for (const client of [a, b, c]) {
      expect(await client.next(relayOn(topic))).toEqual({ ...message, clients: 3 });
    }
  });

  it('overwrites a `clients` field sent by the publisher with the real count', async () => {
    const topic = freshTopic();
    const [a, b] = [await connect(), await connect()];
    await subscribeAll(topic, a, b);
    a.send({ type: 'publish', topic, clients: 999, data: 1 });
    expect((await b.next(relayOn(topic))).clients).toBe(2);
  });

  it('relays to subscribers from a publisher that is not subscribed, and not back to it', async () => {
    const topic = freshTopic();
    const [target1, sender] = [await connect(), await connect()];
    await subscribeAll(topic, target1);
    sender.send({ type: 'publish', topic, data: { type: 'signal', to: 'target1' } });
    expect(await target1.next(relayOn(topic))).toEqual({ type: 'publish', topic, data: { type: 'signal', to: 'target1' }, clients: 1 });
    await sender.sync();
    expect(sender.inbox).toEqual([]);
  });

  it('subscribes to several topics in one message and keeps them apart', async () => {
    const [t1, t2] = [freshTopic(), freshTopic()];
    const [a, b] = [await connect(), await connect()];
    a.send({ type: 'subscribe', topics: [t1, t2] });
    await a.sync();
    await subscribeAll(t2, b);
    b.send({ type: 'publish', topic: t1, n: 1 });
    b.send({ type: 'publish', topic: t2, n: 2 });
    expect(await a.next(relayOn(t1))).toMatchObject({ n: 1, clients: 1 });
    expect(await a.next(relayOn(t2))).toMatchObject({ n: 2, clients: 2 });
    expect(await b.next(relayOn(t2))).toMatchObject({ n: 2, clients: 2 });
    await b.sync();
    expect(b.inbox.filter(relayOn(t1))).toEqual([]);
  });

  it('stops relaying after unsubscribe and counts one subscriber fewer', async () => {
    const topic = freshTopic();
    const [a, b] = [await connect(), await connect()];
    await subscribeAll(topic, a, b);
    a.send({ type: 'unsubscribe', topics: [topic] });
    await a.sync();
    b.send({ type: 'publish', topic, n: 1 });
    expect(await b.next(relayOn(topic))).toMatchObject({ n: 1, clients: 1 });
    await a.sync(); // the relay, had there been one, would be ahead of this pong
    expect(a.inbox).toEqual([]);
  });

  it('forgets a subscriber whose connection closed', async () => {
    const topic = freshTopic();
    const [a, b] = [await connect(), await connect()];
    await subscribeAll(topic, a, b);
    await a.close();
    // The close reaches the server asynchronously; publish until it shows.
    let clientsCount = 0;
    for (let i = 0; i < 1000 && clientsCount !== 1; i++) {
      b.send({ type: 'publish', topic, n: i });
      clientsCount = (await b.next(relayOn(topic))).clients;
    }
    expect(clientsCount).toBe(1);
  });

  it('accepts WebSocket upgrades on any path', async () => {
    const topic = freshTopic();
    const a = await connect('/some/room/path?x=1');
    const b = await connect('/y-webrtc');
    await subscribeAll(topic, a, b);
    a.send({ type: 'publish', topic, n: 7 });
    expect(await b.next(relayOn(topic))).toMatchObject({ n: 7, clients: 2 });
  });

  it('ignores a message of unknown type and keeps serving the connection', async () => {
    const a = await connect();
    a.send({ type: 'no-such-type', x: 1 });
    await a.sync();
    expect(a.inbox).toEqual([]);
  });

  it('publishing to a topic nobody subscribed to is a no-op', async () => {
    const a = await connect();
    a.send({ type: 'publish', topic: freshTopic(), n: 1 });
    await a.sync();
    expect(a.inbox).toEqual([]);
  });

  it('relays a 20 KiB SDP-sized payload intact', async () => {
    const topic = freshTopic();
    const [a, b] = [await connect(), await connect()];
    await subscribeAll(topic, a, b);
    const sdp = 'v=0\r\n' + 'a=candidate:1 1 udp 2122260223 192.168.1.2 54321 typ host\r\n'.repeat(330);
    a.send({ type: 'publish', topic, data: { type: 'signal', signal: { type: 'offer', sdp } } });
    expect((await b.next(relayOn(topic))).data.signal.sdp).toBe(sdp);
  });
});
