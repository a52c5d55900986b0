import { describe, expect, it } from 'vitest';
import { decodeAll, encode } from '../wire/codec';
import { validateWire, type WireMessage } from '../core/node';
import { generateIdentity, type Identity } from '../trust/keys';
import { approxEncodedSize } from '../core/data-protocol';
import { nodeIdentity } from './node-identity';
import { Sealer } from './seals';
import { asSealedItem, packItem, sealedSegments } from './seg-seals';
import type { SegmentsApi } from './api';

const CLUSTER = 'c1';

/** Over the wire as PeerLinks sends and receives it: encoded, decoded and validated. */
function wire(msg: unknown): WireMessage {
  const r = decodeAll<WireMessage>(encode(msg), validateWire);
  expect(r.errors).toEqual([]);
  return r.msgs[0]!;
}

async function node(): Promise<{ who: Identity; s: Sealer }> {
  const who = await generateIdentity();
  return { who, s: new Sealer(nodeIdentity(who), CLUSTER) };
}

const altered = (i: Uint8Array, value: unknown): Uint8Array => packItem({ ...asSealedItem(i)!, b: encode(value) });
const ops = (key: string, owner: string, ...values: unknown[]) => ({
  type: 'seg.ops',
  key,
  b: [5, owner],
  seq: 1,
  ops: values.map((value, n) => ({ k: 'put', id: n + 1, value, rm: null, from: 'nw', op: n + 1, t: 1 })),
});
const snapshot = (key: string, owner: string, items: unknown[], taken: unknown[] = []) => ({
  type: 'seg.state',
  key,
  b: [5, owner],
  seq: 3,
  part: 0,
  parts: 1,
  lastId: items.length + taken.length,
  items: items.map((v, n) => [n + 1, v]),
  done: taken.map((v, n) => [`nw|${n + 1}`, 1, 100 + n, 1, v, 0]),
});

describe('SegItemSeals: queue items signed by their writer', () => {
  it('a replica takes operations holding items as their writer signed them; one altered item drops the whole batch', async () => {
    const writer = await node();
    const owner = await node();
    const replica = await node();
    const a = await writer.s.segItems.seal('jobs', { text: 'honest 1' });
    const b = await writer.s.segItems.seal('jobs', { text: 'honest 2' });
    const good = wire(ops('jobs', owner.who.id, a, b));
    expect(replica.s.needsCheck(good, owner.who.id)).toBe(true);
    expect(await replica.s.inbound(good, owner.who.id)).toEqual(good);
    expect(replica.s.segItems.counters.verified).toBe(2);
    const bad = [
      ops('jobs', owner.who.id, a, altered(b, { text: 'HACKED 2' })),
      // moved into another queue
      ops('other', owner.who.id, a),
      // a value without any seal (what a build before item seals stored)
      ops('jobs', owner.who.id, { text: 'honest 1' }),
      // the owner's own signature, claimed as the writer's
      ops('jobs', owner.who.id, packItem({ ...asSealedItem(await owner.s.segItems.seal('jobs', { text: 'HACKED' }))!, w: writer.who.id })),
    ];
    for (const m of bad) expect(await replica.s.inbound(wire(m), owner.who.id)).toBeNull();
    expect(replica.s.segItems.counters.messagesDropped).toBe(bad.length);
  });

  it('a snapshot handed on in a takeover is refused when an item or a taken value in its request table was altered', async () => {
    const writer = await node();
    const holder = await node();
    const claimer = await node();
    const items = [await writer.s.segItems.seal('q', 1), await writer.s.segItems.seal('q', 2)];
    const taken = await writer.s.segItems.seal('q', 'taken');
    expect(await claimer.s.inbound(wire(snapshot('q', claimer.who.id, items, [taken])), holder.who.id)).not.toBeNull();
    expect(await claimer.s.inbound(wire(snapshot('q', claimer.who.id, [items[0], altered(items[1]!, 3)], [taken])), holder.who.id)).toBeNull();
    expect(await claimer.s.inbound(wire(snapshot('q', claimer.who.id, items, [altered(taken, 'other')])), holder.who.id)).toBeNull();
    // the good parts were checked once: the same items again cost no verification
    const verified = claimer.s.segItems.counters.verified;
    expect(await claimer.s.inbound(wire(snapshot('q', claimer.who.id, items, [taken])), holder.who.id)).not.toBeNull();
    expect(claimer.s.segItems.counters.verified).toBe(verified);
    expect(claimer.s.segItems.counters.cached).toBeGreaterThanOrEqual(3);
  });

  it('the writer\'s own put needs no signature check; a restore of someone else\'s item does, and an unsealed put is refused', async () => {
    const writer = await node();
    const other = await node();
    const owner = await node();
    const item = await writer.s.segItems.seal('q', 'v');
    const put = wire({ type: 'seg.req', op: 1, key: 'q', kind: 'put', value: item });
    expect(await owner.s.inbound(put, writer.who.id)).toEqual(put);
    expect(owner.s.segItems.counters.verified).toBe(0);
    // a coordinator puts back an item it took, written by another node
    const restore = (value: unknown) => wire({ type: 'seg.req', op: 2, key: 'q', kind: 'restore', value, id: 4, of: 1 });
    expect(await owner.s.inbound(restore(item), other.who.id)).not.toBeNull();
    expect(owner.s.segItems.counters.verified).toBe(1);
    expect(await owner.s.inbound(restore(altered(item, 'w')), other.who.id)).toBeNull();
    expect(await owner.s.inbound(wire({ type: 'seg.req', op: 3, key: 'q', kind: 'put', value: 'raw' }), writer.who.id)).toBeNull();
    // requests without items pass untouched
    const peek = wire({ type: 'seg.req', op: 4, key: 'q', kind: 'peek', afterId: 0 });
    expect(await owner.s.inbound(peek, other.who.id)).toEqual(peek);
  });

  it('checks the items inside a routed envelope against its proven source', async () => {
    const writer = await node();
    const relay = await node();
    const owner = await node();
    const item = await writer.s.segItems.seal('q', 'v');
    const route = (src: Awaited<ReturnType<typeof node>>, value: unknown) =>
      src.s.sealRoute({ src: src.who.id, dst: owner.who.id, ttl: 4, msg: { type: 'seg.req', op: 1, key: 'q', kind: 'put', value } });
    const fromWriter = await owner.s.inbound(wire(await route(writer, item)), relay.who.id);
    expect((fromWriter as unknown as { msg: { value: unknown } }).msg.value).toEqual(item);
    expect(owner.s.segItems.counters.verified).toBe(0);
    // the relay's own envelope claiming the writer's item, altered
    expect(await owner.s.inbound(wire(await route(relay, altered(item, 'x'))), relay.who.id)).toBeNull();
  });

  it('open: a served item gives the caller its value; an altered or unsigned one rejects with the reason', async () => {
    const writer = await node();
    const taker = await node();
    const item = await writer.s.segItems.seal('q', { n: [1, 2], bin: new Uint8Array([7]) });
    expect(await taker.s.segItems.open('q', 3, item)).toEqual({ n: [1, 2], bin: new Uint8Array([7]) });
    await expect(taker.s.segItems.open('q', 3, altered(item, { n: [9] }))).rejects.toThrow(/item #3 is not as its writer .* put it/);
    await expect(taker.s.segItems.open('other', 3, item)).rejects.toThrow(/not as its writer/);
    await expect(taker.s.segItems.open('q', 4, { n: [1, 2] })).rejects.toThrow(/item #4 carries no signature/);
    expect(taker.s.segItems.counters.refused).toBe(3);
  });
});

describe('sealedSegments: the API with signed items', () => {
  /** A core stand-in: remembers what it was handed and serves it back. */
  function fakeApi() {
    const got: { kind: string; key: string; value: unknown }[] = [];
    const api: SegmentsApi = {
      put: async (key, value) => (got.push({ kind: 'put', key, value }), got.length),
      update: async (key, value) => (got.push({ kind: 'update', key, value }), got.length),
      peek: async (_key, afterId = 0) => ({ id: afterId + 1, value: got[afterId]!.value }),
      take: async (_key, afterId = 0) => ({ id: afterId + 1, value: got[afterId]!.value }),
      replicas: () => ['n1'],
    };
    return { api, got };
  }
  const limits = { maxKeyLength: 256, maxValueBytes: 1000, sizeOf: approxEncodedSize };

  it('puts reach the core sealed and in the order they were called; peek and take give back the caller\'s values', async () => {
    const me = await node();
    const { api, got } = fakeApi();
    const seg = sealedSegments(api, me.s.segItems, limits);
    const values = Array.from({ length: 20 }, (_, i) => ({ i }));
    const ids = await Promise.all(values.map((v, i) => (i % 2 ? seg.update('q', v) : seg.put('q', v))));
    expect(ids).toEqual(values.map((_, i) => i + 1));
    expect(got.map((g) => g.kind)).toEqual(values.map((_, i) => (i % 2 ? 'update' : 'put')));
    for (const g of got) expect(asSealedItem(g.value)!.w).toBe(me.who.id);
    expect((await seg.peek('q', 4)).value).toEqual({ i: 4 });
    expect(await seg.take('q', 0)).toEqual({ id: 1, value: { i: 0 } });
  });

  it('a value the API refuses gets the API\'s error and reaches nothing; a bad key goes to the core for its error', async () => {
    const me = await node();
    const { api, got } = fakeApi();
    const seg = sealedSegments(api, me.s.segItems, limits);
    await expect(seg.put('q', 'x'.repeat(2000))).rejects.toThrow(/value of \d+ bytes for segment 'q' exceeds the 1000-byte limit/);
    await expect(seg.put('q', undefined)).rejects.toThrow(/undefined \(use null\)/);
    await expect(seg.update('q', () => 1)).rejects.toThrow(/cannot be stored/);
    expect(got).toEqual([]);
    await seg.put('', 'v');
    expect(got).toEqual([{ kind: 'put', key: '', value: 'v' }]);
  });
});
