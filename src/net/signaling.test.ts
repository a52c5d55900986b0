import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startSignalingServer, type SignalingServer } from '../../signaling/server';
import { SignalingPool, type WebSocketCtor } from './signaling';

const servers: SignalingServer[] = [];
const pools: SignalingPool[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) p.close();
  for (const s of servers.splice(0)) await s.close();
});

async function server(port = 0): Promise<SignalingServer> {
  const s = await startSignalingServer({ port, staticDir: null, log: () => undefined });
  servers.push(s);
  return s;
}

function pool(urls: string[], me: string, got: { topic: string; data: Record<string, unknown>; clients: number; own?: boolean }[]) {
  const p = new SignalingPool(urls, me, {
    WebSocketImpl: WebSocket as unknown as WebSocketCtor,
    onPublish: (topic, data, clients, _url, own) => got.push({ topic, data, clients, own }),
    onState: () => undefined,
    backoffMinMs: 50,
    backoffMaxMs: 200,
  });
  pools.push(p);
  return p;
}

const until = async (f: () => boolean, what: string) => {
  for (let i = 0; i < 200 && !f(); i++) await new Promise((r) => setTimeout(r, 25));
  if (!f()) throw new Error(`never: ${what}`);
};

describe('SignalingPool', () => {
  it('relays publishes to subscribers with the subscriber count', async () => {
    const s = await server();
    const ws = s.url.replace('http', 'ws');
    const gotA: { topic: string; data: Record<string, unknown>; clients: number; own?: boolean }[] = [];
    const gotB: typeof gotA = [];
    const a = pool([ws], 'a', gotA);
    const b = pool([ws], 'b', gotB);
    a.subscribe('c');
    b.subscribe('c');
    await until(() => a.isOpen() && b.isOpen(), 'open');
    await until(() => s.stats().subscriptions === 2, 'subscribed');
    a.publish('c', { t: 'announce', from: 'a' });
    await until(() => gotB.length === 1, 'b got it');
    expect(gotB[0]).toMatchObject({ topic: 'c', clients: 2, data: { t: 'announce', from: 'a' } });
    // the sender gets its own copy once, marked as its own (that is how a node learns `clients`)
    await until(() => gotA.length === 1, 'a got its echo');
    expect(gotA[0]).toMatchObject({ topic: 'c', clients: 2, own: true });
    expect(gotB[0]!.own).toBe(false);
  });

  it('takes over a socket opened ahead of time, open or still connecting, and a closed one is redialled', async () => {
    const s = await server();
    const url = s.url.replace('http', 'ws');
    for (const state of ['open', 'connecting', 'closed'] as const) {
      const early = new WebSocket(url);
      if (state !== 'connecting') await new Promise((r) => early.once('open', r));
      if (state === 'closed') {
        early.close();
        await new Promise((r) => early.once('close', r));
      }
      const got: { topic: string; data: Record<string, unknown>; clients: number; own?: boolean }[] = [];
      const states: string[] = [];
      const p = new SignalingPool([url], `n-${state}`, {
        WebSocketImpl: WebSocket as unknown as WebSocketCtor,
        preopened: new Map([[url, early as unknown as import('./signaling').WebSocketLike]]),
        onPublish: (topic, data, clients, _url, own) => got.push({ topic, data, clients, own }),
        onState: (_u, st) => states.push(st),
        backoffMinMs: 50,
        backoffMaxMs: 200,
      });
      pools.push(p);
      p.subscribe(`t-${state}`);
      await until(() => p.isOpen(), `open (${state})`);
      expect(states).toContain('open');
      p.publish(`t-${state}`, { t: 'announce', from: 'x' });
      await until(() => got.length === 1, `own publish echoed (${state})`);
      // the socket opened ahead of time is the one in use, unless it had closed
      expect(early.readyState === WebSocket.OPEN).toBe(state !== 'closed');
    }
  });

  it('reconnects with backoff and re-subscribes after the server restarts', async () => {
    const s = await server();
    const port = s.port;
    const ws = s.url.replace('http', 'ws');
    const got: { topic: string; data: Record<string, unknown>; clients: number }[] = [];
    const a = pool([ws], 'a', got);
    const b = pool([ws], 'b', []);
    a.subscribe('room');
    await until(() => a.isOpen() && b.isOpen(), 'open');
    await servers.pop()!.close();
    await until(() => !a.isOpen(), 'noticed the restart');
    await server(port);
    await until(() => a.isOpen() && b.isOpen(), 'reconnected');
    await until(() => servers[0]!.stats().subscriptions === 1, 're-subscribed');
    b.publish('room', { t: 'x' });
    await until(() => got.length === 1, 'delivery after reconnect');
  });

  it('keeps redialling through a long outage and subscribes topics added while the server was down', async () => {
    const s = await server();
    const port = s.port;
    const ws = s.url.replace('http', 'ws');
    const gotA: { topic: string; data: Record<string, unknown>; clients: number }[] = [];
    const gotB: typeof gotA = [];
    const a = pool([ws], 'a', gotA);
    const b = pool([ws], 'b', gotB);
    a.subscribe('before');
    await until(() => a.isOpen() && b.isOpen(), 'open');
    await servers.pop()!.close();
    await until(() => !a.isOpen() && !b.isOpen(), 'noticed the outage');
    a.subscribe('during');
    b.subscribe('during');
    // several refused dials (backoff 50..200 ms) before the server is back
    await new Promise((r) => setTimeout(r, 600));
    const s2 = await server(port);
    await until(() => a.isOpen() && b.isOpen(), 'reconnected');
    await until(() => s2.stats().subscriptions === 3, 'every topic subscribed on the new server');
    b.publish('before', { n: 1 });
    a.publish('during', { n: 2 });
    await until(() => gotA.some((g) => g.topic === 'before') && gotB.some((g) => g.topic === 'during'), 'delivery on both topics');
  });

  it('connects to several servers and drops the duplicates', async () => {
    const s1 = await server();
    const s2 = await server();
    const urls = [s1.url.replace('http', 'ws'), s2.url.replace('http', 'ws')];
    const got: { topic: string; data: Record<string, unknown>; clients: number }[] = [];
    const a = pool(urls, 'a', got);
    const b = pool(urls, 'b', []);
    a.subscribe('t');
    await until(() => a.connections.every((c) => c.state === 'open') && b.connections.every((c) => c.state === 'open'), 'open');
    await until(() => s1.stats().subscriptions === 1 && s2.stats().subscriptions === 1, 'subscribed on both');
    a.publish('t', { n: 0 });
    b.publish('t', { n: 1 });
    b.publish('t', { n: 2 });
    await until(() => got.length >= 3, 'deliveries');
    await new Promise((r) => setTimeout(r, 150));
    expect(got.map((g) => g.data.n)).toEqual([0, 1, 2]);
  });

  it('gives every server its last will, re-arms it after a reconnect, and receivers get it once', async () => {
    const s1 = await server();
    const s2 = await server();
    const urls = [s1.url.replace('http', 'ws'), s2.url.replace('http', 'ws')];
    const got: { topic: string; data: Record<string, unknown>; clients: number }[] = [];
    const a = pool(urls, 'a', got);
    a.subscribe('t');
    const sockets: WebSocket[] = [];
    class Tracked extends WebSocket {
      constructor(url: string) {
        super(url);
        sockets.push(this);
      }
    }
    const b = new SignalingPool(urls, 'b', { WebSocketImpl: Tracked as unknown as WebSocketCtor, onPublish: () => undefined, onState: () => undefined, backoffMinMs: 50, backoffMaxMs: 200 });
    pools.push(b);
    b.setWill('t', { n: 'bye' });
    await until(() => s1.stats().wills === 1 && s2.stats().wills === 1, 'held by both servers');
    expect(got).toEqual([]);
    for (const ws of sockets.splice(0)) ws.terminate(); // as a crashed tab's sockets
    await until(() => got.length >= 1, 'the will');
    await new Promise((r) => setTimeout(r, 150));
    expect(got.map((g) => g.data.n)).toEqual(['bye']); // published by both servers, delivered once
    await until(() => s1.stats().wills === 1 && s2.stats().wills === 1, 're-armed after the reconnect');
    b.setWill('t', null);
    await until(() => s1.stats().wills === 0 && s2.stats().wills === 0, 'cleared');
  });

  it('does not send a frame over the server\'s limit (the server would close the connection), and stays connected', async () => {
    const s = await server();
    const ws = s.url.replace('http', 'ws');
    const got: { topic: string; data: Record<string, unknown>; clients: number }[] = [];
    const errors: string[] = [];
    const a = new SignalingPool([ws], 'a', { WebSocketImpl: WebSocket as unknown as WebSocketCtor, onPublish: () => undefined, onState: () => undefined, onError: (w) => errors.push(w) });
    pools.push(a);
    const b = pool([ws], 'b', got);
    b.subscribe('t');
    await until(() => a.isOpen() && b.isOpen() && s.stats().subscriptions === 1, 'open');
    expect(a.publish('t', { big: 'x'.repeat(66_000) })).toBe(false);
    expect(errors).toEqual([expect.stringMatching(/^signaling: a frame of \d+ bytes not sent \(over 65536\)$/)]);
    expect(a.publish('t', { n: 1 })).toBe(true);
    await until(() => got.length === 1, 'the next publish');
    expect(got[0]!.data.n).toBe(1);
    expect(s.stats().rejected.oversized).toBe(0);
    expect(a.isOpen()).toBe(true);
  });
});
