/**
 * The whole stack (HyParView + Plumtree + membership + router + KVS + chat) of CoreNode,
 * many nodes at once in the deterministic simulator: what the browser runtime runs,
 * minus WebRTC and IndexedDB.
 */
import { describe, expect, it } from 'vitest';
import { validateWire, type CoreConfig, type NodeIn } from './node';
import { createCoreNetwork, type CoreNetwork } from '../sim/core';

interface Harness {
  net: CoreNetwork;
  chats: Map<string, string[]>;
  req: number;
}

function cluster(seed: number, n: number, configOf?: (id: string) => CoreConfig | undefined): Harness {
  const chats = new Map<string, string[]>();
  const net = createCoreNetwork({
    seed,
    configOf,
    onEffect: (id, e) => {
      if (e.type === 'event' && e.event.type === 'chat') {
        const l = chats.get(id) ?? [];
        l.push(e.event.message.text);
        chats.set(id, l);
      }
    },
  });
  for (let i = 0; i < n; i++) {
    const id = `n${i}`;
    net.add(id);
    net.input(id, { type: 'start', nick: `nick${i}` });
    net.runFor(300);
  }
  net.runFor(20_000);
  return { net, chats, req: 0 };
}

/** Queues a client call at `node`; the key its reply is read under (see reply()). */
function call(h: Harness, node: string, input: Omit<Extract<NodeIn, { type: 'api' }>, 'req'>['call']): string {
  const req = ++h.req;
  h.net.input(node, { type: 'api', req, call: input });
  return `${node}/${req}`;
}

/** The reply to a call() as the API sees it: `{ ok, value }` or `{ ok, error }`. */
function reply(h: Harness, key: string): { ok: boolean; value?: unknown; error?: string } | undefined {
  const [node, req] = key.split('/');
  const r = h.net.reply(node!, Number(req));
  if (r === undefined) return undefined;
  return r.ok ? { ok: true, value: r.value } : { ok: false, error: r.error };
}

describe('CoreNode in the simulator', () => {
  for (const seed of [1, 2, 3]) {
    it(`12 nodes: one overlay, full membership, routed KV requests, chat everywhere, survives 2 crashes (seed ${seed})`, () => {
      const h = cluster(seed, 12);
      const ids = h.net.liveIds();
      for (const id of ids) {
        const node = h.net.node(id)!;
        expect(node.query.members.live(), `seed ${seed} ${id} members`).toEqual([...ids].sort());
        expect(node.activeView().length, `seed ${seed} ${id} active`).toBeGreaterThan(0);
        expect(node.activeView().length).toBeLessThanOrEqual(5);
      }

      const puts = Array.from({ length: 40 }, (_, i) => call(h, 'n0', { type: 'kv.put', key: `k${i}`, value: { i } }));
      h.net.runFor(5_000);
      for (const p of puts) expect(reply(h, p), `seed ${seed} ${p}`).toEqual({ ok: true, value: undefined });

      const gets = Array.from({ length: 40 }, (_, i) => call(h, 'n7', { type: 'kv.get', key: `k${i}` }));
      h.net.runFor(5_000);
      gets.forEach((g, i) => expect(reply(h, g)).toEqual({ ok: true, value: { i } }));

      const said = call(h, 'n3', { type: 'chat.send', room: 'lobby', text: 'hello all' });
      h.net.runFor(3_000);
      expect(reply(h, said)?.ok).toBe(true);
      for (const id of ids) expect(h.chats.get(id) ?? [], `seed ${seed} chat at ${id}`).toContain('hello all');

      // rooms travel in membership meta: a room exists while a live member is in it
      const joined = call(h, 'n2', { type: 'chat.join', room: 'ops' });
      h.net.runFor(2_000);
      expect(reply(h, joined)?.ok).toBe(true);
      expect(h.net.node('n8')!.query.chat.rooms(), `seed ${seed} ops visible`).toContain('ops');
      expect(h.net.node('n8')!.query.chat.members('ops')).toEqual(['n2']);
      call(h, 'n2', { type: 'chat.leave', room: 'ops' });
      h.net.runFor(2_000);
      expect(h.net.node('n8')!.query.chat.rooms(), `seed ${seed} ops gone`).not.toContain('ops');

      h.net.crash('n0');
      h.net.crash('n5');
      h.net.runFor(60_000);
      const alive = h.net.liveIds();
      for (const id of alive) expect(h.net.node(id)!.query.members.live(), `seed ${seed} ${id} after crash`).toEqual([...alive].sort());
      const copies = new Map<string, number>();
      for (const id of alive) for (const k of h.net.node(id)!.query.kv.localKeys()) copies.set(k, (copies.get(k) ?? 0) + 1);
      for (let i = 0; i < 40; i++) expect(copies.get(`k${i}`), `seed ${seed} replicas of k${i}`).toBeGreaterThanOrEqual(3);
      const after = Array.from({ length: 40 }, (_, i) => call(h, 'n9', { type: 'kv.get', key: `k${i}` }));
      h.net.runFor(5_000);
      after.forEach((g, i) => expect(reply(h, g)).toEqual({ ok: true, value: { i } }));
    });
  }

  it('data segments: concurrent takers on several nodes get every item exactly once, ids increasing', () => {
    const seed = 7;
    const h = cluster(seed, 8);
    const puts = Array.from({ length: 60 }, (_, i) => call(h, `n${i % 3}`, { type: 'seg.put', key: 'jobs', value: { i } }));
    h.net.runFor(5_000);
    const ids = puts.map((p) => reply(h, p));
    for (const r of ids) expect(r?.ok, `seed ${seed}`).toBe(true);
    expect(new Set(ids.map((r) => r!.value)).size).toBe(60);
    const takes = Array.from({ length: 60 }, (_, i) => call(h, `n${3 + (i % 4)}`, { type: 'seg.take', key: 'jobs', afterId: 0 }));
    h.net.runFor(10_000);
    const got = takes.map((t) => reply(h, t)?.value as { id: number; value: { i: number } });
    expect(got.every(Boolean), `seed ${seed} all takes answered`).toBe(true);
    expect(new Set(got.map((g) => g.value.i)).size, `seed ${seed} exactly once`).toBe(60);
    // one more taker waits for an item that does not exist yet
    const waiting = call(h, 'n7', { type: 'seg.take', key: 'jobs', afterId: 0 });
    h.net.runFor(3_000);
    expect(reply(h, waiting)).toBeUndefined();
    const late = call(h, 'n1', { type: 'seg.put', key: 'jobs', value: { i: 99 } });
    h.net.runFor(3_000);
    expect(reply(h, late)?.ok).toBe(true);
    expect((reply(h, waiting)?.value as { value: { i: number } }).value).toEqual({ i: 99 });
  });

  it('KV replies reach the caller in API shape: inspect gives value and version, keys the sorted list', () => {
    const seed = 4;
    const h = cluster(seed, 4);
    const put = call(h, 'n0', { type: 'kv.put', key: 'b/1', value: 'one' });
    call(h, 'n1', { type: 'kv.put', key: 'b/0', value: 'zero' });
    h.net.runFor(3_000);
    const seen = call(h, 'n2', { type: 'kv.inspect', key: 'b/1' });
    const absent = call(h, 'n2', { type: 'kv.inspect', key: 'b/2' });
    const keys = call(h, 'n3', { type: 'kv.keys', prefix: 'b/' });
    h.net.runFor(3_000);
    expect(reply(h, put)).toEqual({ ok: true, value: undefined });
    expect(reply(h, seen)).toEqual({ ok: true, value: { value: 'one', version: { ts: expect.any(Number), node: 'n0' } } });
    expect(reply(h, absent)).toEqual({ ok: true, value: undefined });
    expect(reply(h, keys)).toEqual({ ok: true, value: ['b/0', 'b/1'] });
  });

  it('rejects malformed and unroutable messages without throwing', () => {
    expect(validateWire(null)).toBeTruthy();
    expect(validateWire({ type: 'nope.x' })).toMatch(/unknown/);
    expect(validateWire({ type: 'rt.route', src: 'a', dst: 'b', ttl: 3, msg: { type: 'rt.route', src: 'a', dst: 'b', ttl: 3, msg: {} } })).toMatch(/nested/);
    expect(validateWire({ type: 'rt.route', src: 'a', dst: 'b', ttl: 3, msg: { type: 'hpv.join' } })).toMatch(/cannot be routed/);
    expect(validateWire({ type: 'rt.route', src: 'a', dst: 'b', ttl: 3, msg: { type: 'kv.get', op: 'x' } })).toBeTruthy();
  });

  it('with sealed broadcasts (the runtime signs them, 2 ms later): membership, chat and a graceful leave work', () => {
    const chats = new Map<string, string[]>();
    const sealedBy = new Map<string, number>();
    let net: CoreNetwork | null = null;
    net = createCoreNetwork({
      seed: 5,
      config: { sealBroadcasts: true },
      onEffect: (id, e) => {
        // what the runtime's Sealer does, without cryptography: the seal is opaque to the core
        if (e.type === 'seal') {
          sealedBy.set(id, (sealedBy.get(id) ?? 0) + 1);
          net!.input(id, { type: 'sealed', id: e.id, kind: e.kind, data: e.data, seal: { by: id, id: e.id } }, { delay: 2 });
        }
        if (e.type === 'event' && e.event.type === 'chat') chats.set(id, [...(chats.get(id) ?? []), e.event.message.text]);
      },
    });
    for (let i = 0; i < 8; i++) {
      net.add(`n${i}`);
      net.input(`n${i}`, { type: 'start', nick: `nick${i}` });
      net.runFor(300);
    }
    net.runFor(20_000);
    const ids = net.liveIds();
    for (const id of ids) expect(net.node(id)!.query.members.live(), `${id} members`).toEqual([...ids].sort());
    for (const id of ids) expect(sealedBy.get(id), `${id} sealed its broadcasts`).toBeGreaterThan(0);

    const h: Harness = { net, chats, req: 0 };
    const said = call(h, 'n3', { type: 'chat.send', room: 'lobby', text: 'sealed hello' });
    net.runFor(3_000);
    expect(reply(h, said)?.ok).toBe(true);
    for (const id of ids) expect(chats.get(id) ?? [], `chat at ${id}`).toContain('sealed hello');

    // a graceful leave goes out at once (its LEFT was sealed in advance)
    net.handle('n4', { type: 'leave' });
    net.runFor(1_000);
    for (const id of ids.filter((x) => x !== 'n4')) expect(net.node(id)!.query.members.live(), `${id} after leave`).not.toContain('n4');
  });
});

describe('the cluster replica count', () => {
  it('is one value cluster-wide: the largest any live member asks for, and back when it leaves', () => {
    const h = cluster(7, 8, (id) => (id === 'n5' ? { kv: { n: 6 } } : undefined));
    const n = (id: string) => h.net.node(id)!.query.kv.replication();
    for (const id of h.net.liveIds()) {
      expect(n(id), id).toEqual({ n: 6, w: 4, r: 4 });
      expect(h.net.node(id)!.query.kv.replicas('some/key')).toHaveLength(6);
    }
    const puts = Array.from({ length: 20 }, (_, i) => call(h, 'n0', { type: 'kv.put', key: `r${i}`, value: i }));
    h.net.runFor(20_000);
    for (const p of puts) expect(reply(h, p)).toEqual({ ok: true, value: undefined });
    const copies = (k: string) => h.net.liveIds().filter((id) => h.net.node(id)!.query.kv.localKeys().includes(k)).length;
    for (let i = 0; i < 20; i++) expect(copies(`r${i}`), `r${i} with 6 asked`).toBe(6);
    // the member that asked for 6 leaves: the default (4) again, extra copies handed back and dropped
    h.net.input('n5', { type: 'leave' });
    h.net.runFor(1_000);
    h.net.crash('n5');
    h.net.runFor(60_000);
    for (const id of h.net.liveIds()) expect(n(id), id).toEqual({ n: 4, w: 3, r: 3 });
    for (let i = 0; i < 20; i++) expect(copies(`r${i}`), `r${i} back to 4`).toBe(4);
    const gets = Array.from({ length: 20 }, (_, i) => call(h, 'n3', { type: 'kv.get', key: `r${i}` }));
    h.net.runFor(5_000);
    gets.forEach((g, i) => expect(reply(h, g)).toEqual({ ok: true, value: i }));
  });
});
