import { nodeIdentity } from './node-identity';
import { describe, expect, it } from 'vitest';
import { decodeAll, encode } from '../wire/codec';
import { validateWire, type WireMessage } from '../core/node';
import { generateIdentity, type Identity } from '../trust/keys';
import { LinkOrder, ROUTE_SKEW_MS, Sealer, stripSealed } from './seals';
import { broadcastTranscript } from '../trust/transcripts';
import { concatBytes } from '../trust/bytes';
import { ROUTE_BUNDLE_MAX } from './route-bundles';

const CLUSTER = 'c1';

/** Over the wire as PeerLinks sends and receives it: encoded, decoded and validated. */
function wire(msg: unknown): WireMessage {
  const r = decodeAll<WireMessage>(encode(msg), validateWire);
  expect(r.errors).toEqual([]);
  return r.msgs[0]!;
}

async function node(now = () => Date.now()): Promise<{ who: Identity; s: Sealer }> {
  const who = await generateIdentity();
  return { who, s: new Sealer(nodeIdentity(who), CLUSTER, now) };
}

const tell = (from: string, to: string, text: string) => ({
  type: 'chat.tell',
  message: { id: `${from}:1`, room: '@direct', from, nick: 'n1', text, ts: 1, to },
});

describe('Sealer: broadcasts', () => {
  it('a sealed gossip travels with its payload inside the seal and opens to what its origin signed', async () => {
    const a = await node();
    const b = await node();
    const id = `${a.who.id}:t:1`;
    const data = { type: 'chat.message', message: { text: 'hi' } };
    const seal = await a.s.sealBroadcast(id, 'chat', data);
    const sent = wire(stripSealed({ type: 'pt.gossip', id, origin: a.who.id, round: 1, kind: 'chat', data, seal } as unknown as WireMessage));
    expect((sent as { data: unknown }).data).toBeNull();
    const got = await b.s.inbound(sent);
    expect((got as { data: unknown }).data).toEqual(data);
    expect(b.s.counters.verified).toBe(1);
  });

  it('a chat message is signed in its compact form, opens to the full message, and cannot be replayed as another author\'s', async () => {
    const a = await node();
    const b = await node();
    const evil = await node();
    const ts = 1_700_000_000_000 * 1024;
    const message = { id: `${a.who.id}:${ts.toString(36)}`, room: 'lobby', from: a.who.id, nick: 'ann', text: 'hello', ts };
    const data = { type: 'chat.message', message };
    const id = `${a.who.id}:c:1`;
    const seal = await a.s.sealBroadcast(id, 'chat', data);
    // the author's id, the message id and the field names are not in the signed body
    expect(seal.b.byteLength).toBeLessThan(encode(data).byteLength / 4);
    const gossip = { type: 'pt.gossip', id, origin: a.who.id, round: 1, kind: 'chat', data, seal };
    const got = await b.s.inbound(wire(stripSealed(gossip as unknown as WireMessage)));
    expect((got as { data: unknown }).data).toEqual(data);
    // the same signed body under another origin does not verify: from is the signer
    const moved = { ...gossip, id: `${evil.who.id}:c:1`, origin: evil.who.id, data: null };
    expect(await b.s.inbound(wire(moved))).toBeNull();
    // a body signed in full, as version-2 tabs did (history stored before the change), still opens
    const full = encode(data);
    const fullSeal = { b: full, k: a.who.pub, s: await nodeIdentity(a.who).sign(broadcastTranscript(CLUSTER, `${a.who.id}:c:2`, a.who.id, 'chat', full)) };
    const old = await b.s.inbound(wire({ ...gossip, id: `${a.who.id}:c:2`, data: null, seal: fullSeal }));
    expect((old as { data: unknown }).data).toEqual(data);
  });

  it('refuses a gossip whose payload, origin, kind or key was changed, or that has no seal', async () => {
    const a = await node();
    const evil = await node();
    const b = await node();
    const id = `${a.who.id}:t:1`;
    const seal = await a.s.sealBroadcast(id, 'member', { type: 'alive', id: a.who.id });
    const base = { type: 'pt.gossip', id, origin: a.who.id, round: 1, kind: 'member', data: null };
    const evilSeal = await evil.s.sealBroadcast(id, 'member', { type: 'left', id: a.who.id, incarnation: 9 });
    const bad = [
      { ...base, seal: { ...seal, b: encode({ type: 'left', id: a.who.id, incarnation: 9 }) } },
      { ...base, kind: 'chat', seal },
      { ...base, id: `${evil.who.id}:t:1`, origin: evil.who.id, seal },
      // the attacker's own signature, claimed as the origin's
      { ...base, seal: evilSeal },
      { ...base, seal: { ...seal, k: evil.who.pub } },
      base,
    ];
    for (const m of bad) expect(await b.s.inbound(wire(m))).toBeNull();
    expect(b.s.counters.refused).toBe(bad.length);
    expect(b.s.counters.verified).toBe(0);
  });

  it('strips forged proofs from sync rows (100 forged ALIVE rows keep no proof) and keeps genuine ones', async () => {
    const a = await node();
    const evil = await node();
    const b = await node();
    const realId = `${a.who.id}:t:1`;
    const realData = { type: 'alive', id: a.who.id, incarnation: 1, nick: 'a', active: [], meta: {} };
    const records: unknown[] = [{ id: a.who.id, incarnation: 1, status: 'alive', age: 0, proof: { id: realId, data: realData, seal: await a.s.sealBroadcast(realId, 'member', realData) } }];
    for (let i = 0; i < 100; i++) {
      const fake = `nfake${String(i).padStart(12, 'a')}`.slice(0, 17);
      const pid = `${fake}:t:1`;
      const data = { type: 'alive', id: fake, incarnation: 1, nick: 'x', active: [], meta: {} };
      records.push({ id: fake, incarnation: 1, status: 'alive', age: 0, proof: { id: pid, data, seal: await evil.s.sealBroadcast(pid, 'member', data) } });
    }
    const got = (await b.s.inbound(wire(stripSealed({ type: 'mem.sync', records } as unknown as WireMessage)))) as unknown as {
      records: { id: string; proof?: { data: unknown } }[];
    };
    expect(got.records.filter((r) => r.proof).map((r) => r.id)).toEqual([a.who.id]);
    expect(got.records[0]!.proof!.data).toEqual(realData);
    expect(b.s.counters.proofsStripped).toBe(100);
  });
});

describe('Sealer: routed envelopes', () => {
  it('the destination opens an envelope its source signed; hops forward it without opening', async () => {
    const n1 = await node();
    const hop = await node();
    const dst = await node();
    const env = await n1.s.sealRoute({ src: n1.who.id, dst: dst.who.id, ttl: 12, msg: tell(n1.who.id, dst.who.id, 'hello') });
    const atHop = wire(env);
    expect(hop.s.needsCheck(atHop)).toBe(false);
    const forwarded = wire({ ...(atHop as object), ttl: 11 });
    const opened = await dst.s.openRoute(forwarded as never);
    expect(opened).toMatchObject({ type: 'rt.route', src: n1.who.id, msg: tell(n1.who.id, dst.who.id, 'hello') });
  });

  it('a bundle opens as its messages in order under one signature; a message that fails its own checks is dropped alone', async () => {
    const n1 = await node();
    const dst = await node();
    const texts = ['one', 'two', 'three'];
    const parts = texts.map((t) => encode(tell(n1.who.id, dst.who.id, t)));
    // a malformed message among them: the source is proven, so only it is lost
    parts.splice(1, 0, encode({ type: 'chat.tell', message: { text: 'no author' } }));
    const env = wire(await n1.s.sealRouteParts(n1.who.id, dst.who.id, 12, parts));
    expect(n1.s.counters.routesSealed).toBe(1);
    const opened = (await dst.s.inbound(env)) as unknown as { src: string; msg: { message: { text: string } } }[];
    expect(opened.map((o) => [o.src, o.msg.message.text])).toEqual(texts.map((t) => [n1.who.id, t]));
    expect(dst.s.counters.verified).toBe(1);
    expect(dst.s.counters.refused).toBe(1);
  });

  it('refuses a bundle with a message swapped, added or dropped, and one over ROUTE_BUNDLE_MAX messages', async () => {
    const n1 = await node();
    const dst = await node();
    const parts = ['a', 'b'].map((t) => encode(tell(n1.who.id, dst.who.id, t)));
    const genuine = (await n1.s.sealRouteParts(n1.who.id, dst.who.id, 12, parts)) as unknown as { seal: { m: Uint8Array } };
    const forged = encode(tell(n1.who.id, dst.who.id, 'send me your password'));
    const altered = [concatBytes([parts[0]!, forged]), concatBytes([...parts, forged]), parts[0]!];
    for (const m of altered) expect(await dst.s.inbound(wire({ ...genuine, seal: { ...genuine.seal, m } }))).toBeNull();
    const many = Array.from({ length: ROUTE_BUNDLE_MAX + 1 }, (_, i) => encode(tell(n1.who.id, dst.who.id, `m${i}`)));
    expect(await dst.s.inbound(wire(await n1.s.sealRouteParts(n1.who.id, dst.who.id, 12, many)))).toBeNull();
    expect(dst.s.counters.refused).toBe(4);
  });

  it('refuses a forged /tell "from n1" routed by a neighbour, an unsigned one, a tampered one, and a stale one', async () => {
    const n1 = await node();
    const evil = await node();
    const dst = await node();
    const forged = tell(n1.who.id, dst.who.id, 'send me your password');
    // the neighbour signs with its own key and names n1 as the source
    const bySelf = await evil.s.sealRoute({ src: evil.who.id, dst: dst.who.id, ttl: 12, msg: forged });
    const asN1 = { ...(bySelf as object), src: n1.who.id };
    const unsigned = { type: 'rt.route', src: n1.who.id, dst: dst.who.id, ttl: 12, msg: forged };
    const genuine = (await n1.s.sealRoute({ src: n1.who.id, dst: dst.who.id, ttl: 12, msg: tell(n1.who.id, dst.who.id, 'hi') })) as unknown as { seal: { m: Uint8Array } };
    const tampered = { ...genuine, seal: { ...genuine.seal, m: encode(forged) } };
    for (const m of [asN1, unsigned, tampered]) expect(await dst.s.inbound(wire(m))).toBeNull();

    const late = await node(() => Date.now() + ROUTE_SKEW_MS + 5_000);
    const old = await n1.s.sealRoute({ src: n1.who.id, dst: late.who.id, ttl: 12, msg: tell(n1.who.id, late.who.id, 'hi') });
    expect(await late.s.inbound(wire(old))).toBeNull();
    expect(dst.s.counters.refused).toBe(3);
  });
});

describe('LinkOrder', () => {
  it('hands on each link\'s items in the order queued though later checks finish first; links do not wait for each other', async () => {
    const errors: unknown[] = [];
    const order = new LinkOrder<string>((e) => errors.push(e));
    const seen: string[] = [];
    const later = (v: string, ms: number) => new Promise<string>((r) => setTimeout(() => r(v), ms));
    order.push('a', later('a1', 30), (v) => seen.push(v));
    order.push('a', later('a2', 1), (v) => seen.push(v));
    order.push('b', later('b1', 5), (v) => seen.push(v));
    expect(order.busy('a')).toBe(true);
    order.push('a', Promise.reject(new Error('broken check')), (v) => seen.push(v));
    order.push('a', Promise.resolve('a4'), (v) => seen.push(v));
    await later('', 60);
    expect(seen).toEqual(['b1', 'a1', 'a2', 'a4']);
    expect(errors.map((e) => (e as Error).message)).toEqual(['broken check']);
    expect(order.busy('a')).toBe(false);
    expect(order.busy('b')).toBe(false);
  });
});

describe('Sealer: KV entries carry their writer\'s seal', () => {
  async function sealed(w: { who: Identity; s: Sealer }, key: string, value: unknown, ts = 1000, deleted = false) {
    const entry = { key, value: deleted ? null : value, version: { ts, node: w.who.id }, deleted };
    return { ...entry, seal: await w.s.sealEntry(entry) };
  }

  it('a replica answer holding the writer\'s entry counts; the same entry altered by the replica that serves it is "not found"', async () => {
    const writer = await node();
    const replica = await node();
    const reader = await node();
    const e = await sealed(writer, 'k', { text: 'honest' });
    const honest = await reader.s.inbound(wire({ type: 'kv.getReply', op: 1, entry: e }), replica.who.id);
    expect((honest as unknown as { entry: unknown }).entry).toEqual(e);
    // same version, same seal, another value: the replica's lie, refused
    const altered = { ...e, value: { text: 'HACKED' } };
    const got = await reader.s.inbound(wire({ type: 'kv.getReply', op: 2, entry: altered }), replica.who.id);
    expect((got as unknown as { entry: unknown }).entry).toBeNull();
    // no seal, another writer's seal, a tombstone claimed for a live entry
    const other = await node();
    const cases = [
      { ...e, seal: undefined },
      { ...e, seal: (await sealed(other, 'k', { text: 'honest' })).seal },
      { ...e, deleted: true, value: null },
    ];
    for (const c of cases) {
      const r = await reader.s.inbound(wire({ type: 'kv.getReplies', items: [[3, c], [4, null]] }), replica.who.id);
      expect((r as unknown as { items: unknown[][] }).items).toEqual([[3, null], [4, null]]);
    }
    expect(reader.s.counters.entriesRefused).toBe(1 + cases.length);
  });

  it('the same entry answered again costs no second verification, the same signature on other bytes is checked afresh', async () => {
    const writer = await node();
    const reader = await node();
    const e = await sealed(writer, 'k', 'v');
    for (let i = 0; i < 3; i++) await reader.s.inbound(wire({ type: 'kv.getReply', op: i, entry: e }), 'someone');
    expect(reader.s.counters.entriesVerified).toBe(1);
    expect(reader.s.counters.entriesCached).toBe(2);
    const r = await reader.s.inbound(wire({ type: 'kv.getReply', op: 9, entry: { ...e, value: 'w' } }), 'someone');
    expect((r as unknown as { entry: unknown }).entry).toBeNull();
  });

  it('an entry equal to the copy this node holds needs no verification; one that differs from it in any byte is checked', async () => {
    const writer = await node();
    const e = await sealed(writer, 'k', { text: 'v' });
    const who = await generateIdentity();
    const holder = new Sealer(nodeIdentity(who), CLUSTER, Date.now, (key) => (key === 'k' ? (e as never) : undefined));
    const same = await holder.inbound(wire({ type: 'kv.getReply', op: 1, entry: e }), 'replica');
    expect((same as unknown as { entry: unknown }).entry).toEqual(e);
    expect(holder.counters).toMatchObject({ entriesHeld: 1, entriesVerified: 0 });
    const other = await holder.inbound(wire({ type: 'kv.getReply', op: 2, entry: { ...e, value: { text: 'w' } } }), 'replica');
    expect((other as unknown as { entry: unknown }).entry).toBeNull();
    expect(holder.counters).toMatchObject({ entriesHeld: 1, entriesRefused: 1 });
  });

  it('what the writer sends itself needs no seal check; a handoff push with one altered entry is dropped whole, so it is not acknowledged', async () => {
    const writer = await node();
    const standIn = await node();
    const owner = await node();
    const a = await sealed(writer, 'a', 1);
    const b = await sealed(writer, 'b', 2);
    const put = wire({ type: 'kv.puts', items: [[1, 'a', 1, 1000, writer.who.id, 0, null, a.seal]] });
    expect(owner.s.needsCheck(put, writer.who.id)).toBe(false);
    expect(owner.s.needsCheck(put, standIn.who.id)).toBe(true);
    // a stand-in passing the writer's puts on: the altered item is removed, the honest one kept
    const relayed = wire({ type: 'kv.puts', items: [[1, 'a', 1, 1000, writer.who.id, 0, null, a.seal], [2, 'b', 666, 1000, writer.who.id, 0, null, b.seal]] });
    const kept = (await owner.s.inbound(relayed, standIn.who.id)) as unknown as { items: unknown[][] };
    expect(kept.items.map((it) => it[1])).toEqual(['a']);
    expect(await owner.s.inbound(wire({ type: 'kv.push', op: 1, entries: [a, { ...b, value: 666 }] }), standIn.who.id)).toBeNull();
    const ok = (await owner.s.inbound(wire({ type: 'kv.push', op: 2, entries: [a, b] }), standIn.who.id)) as unknown as { entries: unknown[] };
    expect(ok.entries).toHaveLength(2);
  });

  it('checks the entries inside a routed envelope against its proven source', async () => {
    const writer = await node();
    const src = await node();
    const dst = await node();
    const e = await sealed(writer, 'k', 'v');
    const send = async (entry: unknown) => {
      const env = wire(await src.s.sealRoute({ src: src.who.id, dst: dst.who.id, ttl: 8, msg: { type: 'kv.getReply', op: 1, entry } }));
      return (await dst.s.inbound(env, 'hop')) as unknown as { msg: { entry: unknown } };
    };
    expect((await send(e)).msg.entry).toEqual(e);
    expect((await send({ ...e, value: 'x' })).msg.entry).toBeNull();
  });
});
