/**
 * Signaling scaled out over Redis: the count table and message parsing on their own,
 * then two servers sharing one real redis-server (relay across servers, `clients`
 * summed over both), a Redis outage (each server serves its own clients, /healthz
 * says so) and the recovery when Redis is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBridgeMessage, redactRedisUrl, RemoteCounts } from './redis-bridge';
import { startSignalingServer, type SignalingServer } from './server';
import { startRedis, type RedisService } from './services';
import { TestClient, wsUrl, type Msg } from './testing';

describe('RemoteCounts', () => {
  it('sums the other servers’ counts per topic and forgets a server at once or when it goes quiet', () => {
    const c = new RemoteCounts();
    c.seen('a', 0);
    c.seen('b', 0);
    c.set('room', 'a', 2);
    c.set('room', 'b', 3);
    c.set('other', 'b', 1);
    expect(c.total('room')).toBe(5);
    c.set('room', 'a', 0);
    expect(c.total('room')).toBe(3);
    c.dropServer('b');
    expect(c.total('room')).toBe(0);
    expect(c.total('other')).toBe(0);
    c.seen('c', 1000);
    c.set('room', 'c', 4);
    expect(c.expire(10_000, 15_000)).toEqual([]);
    expect(c.expire(17_000, 15_000)).toEqual(['a', 'c']);
    expect(c.total('room')).toBe(0);
    expect(c.servers()).toBe(0);
  });

  it('dropTopic forgets one topic of every server', () => {
    const c = new RemoteCounts();
    c.set('t', 'a', 1);
    c.set('u', 'a', 1);
    c.dropTopic('t');
    expect(c.total('t')).toBe(0);
    expect(c.total('u')).toBe(1);
  });
});

describe('bridge messages', () => {
  it('parses the four kinds and refuses anything else', () => {
    expect(parseBridgeMessage('{"s":"x","n":2,"b":{"type":"publish"}}')).toEqual({ kind: 'publish', s: 'x', n: 2, b: { type: 'publish' } });
    expect(parseBridgeMessage('{"s":"x","n":0,"q":1}')).toEqual({ kind: 'count', s: 'x', n: 0, q: true });
    expect(parseBridgeMessage('{"s":"x","hb":1}')).toEqual({ kind: 'heartbeat', s: 'x' });
    expect(parseBridgeMessage('{"s":"x","bye":1}')).toEqual({ kind: 'bye', s: 'x' });
    expect(parseBridgeMessage('nope')).toMatch(/not JSON/);
    expect(parseBridgeMessage('[1]')).toBe('not an object');
    expect(parseBridgeMessage('{"n":1}')).toBe('bad server id');
    expect(parseBridgeMessage('{"s":"x","n":-1}')).toBe('bad count');
    expect(parseBridgeMessage('{"s":"x","n":1,"b":[1]}')).toBe('bad body');
  });

  it('hides the password of a Redis URL in logs', () => {
    expect(redactRedisUrl('redis://user:hunter2@db.example.org:6379/0')).toBe('redis://user:***@db.example.org:6379/0');
  });
});

interface Health {
  ok: boolean;
  redis?: { state: string; servers: number };
}

async function health(server: SignalingServer): Promise<Health> {
  return (await (await fetch(`${server.url}healthz`)).json()) as Health;
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const isPublish = (topic: string, mark: string) => (m: Msg) => m.type === 'publish' && m.topic === topic && m.data?.mark === mark;

/** Publishes from `from` until `to` receives it (counts may still be settling on the other side). */
async function crossDelivery(from: TestClient, to: TestClient, topic: string, timeoutMs = 15_000): Promise<Msg> {
  const until = Date.now() + timeoutMs;
  for (let i = 0; ; i++) {
    const mark = `m${i}-${Math.random().toString(36).slice(2)}`;
    from.send({ type: 'publish', topic, data: { mark } });
    const got = await Promise.race([to.next(isPublish(topic, mark)), new Promise<null>((r) => setTimeout(() => r(null), 200))]);
    if (got) return got;
    if (Date.now() > until) throw new Error(`no publish crossed from one server to the other on ${topic} within ${timeoutMs} ms`);
  }
}

describe('two servers sharing one redis-server', () => {
  let redis: RedisService;
  let a: SignalingServer;
  let b: SignalingServer;
  const lines: string[] = [];
  const clients: TestClient[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    const log = (line: string): void => void lines.push(line);
    a = await startSignalingServer({ port: 0, staticDir: null, log, redis: { url: redis.url, heartbeatMs: 500, serverTimeoutMs: 2000 } });
    b = await startSignalingServer({ port: 0, staticDir: null, log, redis: { url: redis.url, heartbeatMs: 500, serverTimeoutMs: 2000 } });
    await eventually(() => Promise.all([health(a), health(b)]), (h) => h.every((x) => x.redis?.state === 'up'), 'both bridges up');
  });
  afterAll(async () => {
    for (const c of clients) await c.close();
    await a?.close();
    await b?.close();
    await redis?.stop();
  });

  const open = async (server: SignalingServer, topics: string[]): Promise<TestClient> => {
    const c = await TestClient.open(wsUrl(server.url));
    clients.push(c);
    c.send({ type: 'subscribe', topics });
    await c.sync();
    return c;
  };

  it('relays across servers, with `clients` counting the subscribers of both', async () => {
    const topic = 'cluster-x';
    const a1 = await open(a, [topic]);
    const a2 = await open(a, [topic]);
    const b1 = await open(b, [topic]);
    const got = await crossDelivery(a1, b1, topic);
    // once the counts have reached both sides: 3 subscribers, whichever server relays
    await eventually(async () => {
      const mark = `count-${Math.random()}`;
      b1.send({ type: 'publish', topic, data: { mark } });
      const [atA, atB] = await Promise.all([a2.next(isPublish(topic, mark)), b1.next(isPublish(topic, mark))]);
      return [atA.clients, atB.clients];
    }, (v) => v[0] === 3 && v[1] === 3, 'clients = 3 on both servers');
    expect(got.data).toHaveProperty('mark');
    // a subscriber leaving on one server is seen by the other
    await a2.close();
    await eventually(async () => {
      const mark = `count-${Math.random()}`;
      b1.send({ type: 'publish', topic, data: { mark } });
      return (await b1.next(isPublish(topic, mark))).clients as number;
    }, (n) => n === 2, 'clients = 2 after one left');
    // a topic nobody on B subscribes to stays on A (nothing arrives at B)
    const lonely = await open(a, ['only-on-a']);
    lonely.send({ type: 'publish', topic: 'only-on-a', data: { mark: 'solo' } });
    expect((await lonely.next(isPublish('only-on-a', 'solo'))).clients).toBe(1);
    expect((await health(a)).redis?.servers).toBe(1);
  });

  it('a Redis outage leaves each server serving its own clients, and everything recovers when it is back', async () => {
    const topic = 'cluster-outage';
    const a1 = await open(a, [topic]);
    const b1 = await open(b, [topic]);
    const b2 = await open(b, [topic]);
    await crossDelivery(a1, b1, topic);

    await redis.stop();
    await eventually(() => Promise.all([health(a), health(b)]), (h) => h.every((x) => x.ok && x.redis?.state === 'down'), 'both report redis down');
    expect(lines.some((l) => /redis: connection to redis:\/\/127\.0\.0\.1:\d+ lost .*serving the tabs of this server only/.test(l))).toBe(true);
    // B still relays among its own clients, and counts only them
    b1.send({ type: 'publish', topic, data: { mark: 'during' } });
    expect((await b2.next(isPublish(topic, 'during'))).clients).toBe(2);
    a1.send({ type: 'publish', topic, data: { mark: 'lost' } });
    expect((await a1.next(isPublish(topic, 'lost'))).clients).toBe(1);

    await redis.start();
    await eventually(() => Promise.all([health(a), health(b)]), (h) => h.every((x) => x.redis?.state === 'up'), 'both report redis up again');
    await crossDelivery(a1, b2, topic);
    await crossDelivery(b1, a1, topic);
    await eventually(async () => {
      const mark = `count-${Math.random()}`;
      a1.send({ type: 'publish', topic, data: { mark } });
      return (await a1.next(isPublish(topic, mark))).clients as number;
    }, (n) => n === 3, 'clients = 3 again after the outage');
    // a subscriber arriving after the outage is reached too
    const b3 = await open(b, [topic]);
    await crossDelivery(a1, b3, topic);
    expect(lines.some((l) => /redis: connected to/.test(l))).toBe(true);
  });

  it('a will set on one server reaches the subscribers on the other when its connection closes, but not when its server shuts down', async () => {
    const topic = 'cluster-will';
    const b1 = await open(b, [topic]);
    const a1 = await open(a, []);
    await crossDelivery(a1, b1, topic); // B's subscription to the topic has reached Redis
    a1.send({ type: 'will', topic, data: { mark: 'will-a1' } });
    await a1.sync();
    await a1.close();
    expect(await b1.next(isPublish(topic, 'will-a1'))).toMatchObject({ type: 'publish', topic, clients: 1 });

    // A third server that shuts down: its bridge says goodbye after its
    // connections closed, on the same Redis connection, so a will it published
    // would reach B before B forgets that server.
    const c = await startSignalingServer({ port: 0, staticDir: null, log: (line) => void lines.push(line), redis: { url: redis.url, heartbeatMs: 500, serverTimeoutMs: 2000 } });
    await eventually(() => health(c), (h) => h.redis?.state === 'up', 'third bridge up');
    const c1 = await TestClient.open(wsUrl(c.url));
    await crossDelivery(c1, b1, topic);
    await eventually(() => health(b), (h) => h.redis?.servers === 2, 'B sees both other servers');
    c1.send({ type: 'will', topic, data: { mark: 'will-c1' } });
    await c1.sync();
    await c.close();
    await eventually(() => health(b), (h) => h.redis?.servers === 1, 'B forgot the server that shut down');
    await b1.sync();
    expect(b1.inbox.filter(isPublish(topic, 'will-c1'))).toEqual([]);
    expect(c.stats().willsPublished).toBe(0);
  });
});
