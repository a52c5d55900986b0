/** Single-node behaviour of KvStore: API validation, effects, quorum arithmetic. */
import { describe, expect, it } from 'vitest';
import { HLC_LOGICAL, makeHlc } from '../clock/hlc';
import { viewOf } from '../placement';
import { SeededRng } from '../rng';
import { KvStore } from './store';
import type { KvEvent, KvIn, KvOut } from './types';

const events = (out: KvOut[]): KvEvent[] => out.flatMap((e) => (e.type === 'event' ? [e.event] : []));

function single(config = {}) {
  const store = new KvStore('solo', config, new SeededRng(1));
  let now = 1000;
  const step = (input: KvIn) => {
    const out: KvOut[] = [];
    store.handle(input, (now += 1), out);
    return out;
  };
  return { store, step };
}

describe('KvStore API validation', () => {
  const bad: [string, unknown, unknown, RegExp][] = [
    ['empty key', '', 1, /^put: key must be a non-empty string of at most 256 characters \(got an empty string\)$/],
    ['long key', 'k'.repeat(257), 1, /^put: key must be a non-empty string of at most 256 characters \(got a string of 257 characters\)$/],
    ['number key', 42, 1, /^put: key must be .* \(got a number\)$/],
    ['null key', null, 1, /\(got a null\)$/],
    ['oversized value', 'big', 'x'.repeat(30_000), /^put 'big': value is \d+ bytes; the limit is 65536 bytes$/],
    ['undefined value', 'u', undefined, /^put 'u': value is undefined \(use delete to remove a key\)$/],
    ['function value', 'f', () => 1, /^put 'f': value cannot be stored: a function cannot be stored$/],
  ];
  it.each(bad)('rejects %s with a clear error and stores nothing', (_name, key, value, error) => {
    const { store, step } = single();
    const out = step({ type: 'put', req: 7, key: key as string, value });
    expect(out).toEqual([{ type: 'reply', req: 7, ok: false, error: expect.stringMatching(error) }]);
    expect(store.localKeys()).toEqual([]);
  });

  it('rejects a cyclic value', () => {
    const { step } = single();
    const v: Record<string, unknown> = {};
    v.self = v;
    const out = step({ type: 'put', req: 1, key: 'c', value: v });
    expect(out).toEqual([{ type: 'reply', req: 1, ok: false, error: "put 'c': value cannot be stored: value contains a cycle at .self" }]);
  });

  it('measures values with the caller-provided sizeOf', () => {
    const { step } = single({ sizeOf: () => 100, maxValueBytes: 99 });
    expect(step({ type: 'put', req: 1, key: 'a', value: 1 })[0]).toMatchObject({ ok: false, error: "put 'a': value is 100 bytes; the limit is 99 bytes" });
    const thrower = single({
      sizeOf: () => {
        throw new Error('unsupported type');
      },
    });
    expect(thrower.step({ type: 'put', req: 1, key: 'a', value: 1 })[0]).toMatchObject({ error: "put 'a': value cannot be stored: unsupported type" });
  });

  it('rejects invalid keys on get and delete too', () => {
    const { step } = single();
    expect(step({ type: 'get', req: 1, key: '' })[0]).toMatchObject({ ok: false, error: expect.stringMatching(/^get: key must be/) });
    expect(step({ type: 'delete', req: 2, key: 'x'.repeat(300) })[0]).toMatchObject({ ok: false, error: expect.stringMatching(/^delete: key must be/) });
    expect(step({ type: 'keys', req: 3, prefix: 'x'.repeat(300) })[0]).toMatchObject({ ok: false });
  });

  it('a lone node is its own quorum: put persists, reports the change and succeeds at once', () => {
    const { store, step } = single();
    const out = step({ type: 'put', req: 1, key: 'a', value: { x: 1 } });
    const types = out.map((e) => e.type);
    expect(types).toContain('persist');
    expect(types.indexOf('persist')).toBeLessThan(types.indexOf('reply'));
    expect(out.find((e) => e.type === 'reply')).toEqual({ type: 'reply', req: 1, ok: true });
    expect(events(out).find((e) => e.type === 'changed')).toMatchObject({ key: 'a', entry: { value: { x: 1 }, deleted: false } });
    expect(store.localKeys()).toEqual(['a']);
    expect(store.replicas('a')).toEqual(['solo']);
    expect(step({ type: 'get', req: 2, key: 'a' }).find((e) => e.type === 'reply')).toMatchObject({ ok: true, value: { x: 1 } });
    step({ type: 'delete', req: 3, key: 'a' });
    expect(store.localKeys()).toEqual([]);
    expect(store.localEntry('a')).toMatchObject({ deleted: true, value: null });
    // a get replies the value only: a deleted key reads as undefined
    expect(step({ type: 'get', req: 4, key: 'a' }).find((e) => e.type === 'reply')).toEqual({
      type: 'reply',
      req: 4,
      ok: true,
      value: undefined,
    });
  });

  it('inspect replies the value with its version, undefined once the key is deleted or when absent', () => {
    const { store, step } = single();
    step({ type: 'put', req: 1, key: 'a', value: [1, 2] });
    const version = store.localEntry('a')!.version;
    expect(step({ type: 'inspect', req: 2, key: 'a' }).find((e) => e.type === 'reply')).toEqual({
      type: 'reply',
      req: 2,
      ok: true,
      value: { value: [1, 2], version },
    });
    step({ type: 'delete', req: 3, key: 'a' });
    expect(step({ type: 'inspect', req: 4, key: 'a' }).find((e) => e.type === 'reply')).toEqual({ type: 'reply', req: 4, ok: true });
    expect(step({ type: 'inspect', req: 5, key: 'never' }).find((e) => e.type === 'reply')).toEqual({ type: 'reply', req: 5, ok: true });
    expect(step({ type: 'inspect', req: 6, key: '' })[0]).toMatchObject({ ok: false, error: expect.stringMatching(/^inspect: key must be/) });
    expect(store.counters().requests).toMatchObject({ put: 1, delete: 1, inspect: 4 });
  });

  it('the same placement sent again changes nothing', () => {
    const { store, step } = single();
    step({ type: 'put', req: 1, key: 'a', value: 1 });
    expect(step({ type: 'members', view: viewOf(['solo', 'x', 'y']) }).length).toBeGreaterThan(0);
    const changes = store.counters().placementChanges;
    expect(step({ type: 'members', view: viewOf(['y', 'solo', 'x']) })).toEqual([]);
    expect(store.counters().placementChanges).toBe(changes);
  });

  it('later writes get higher versions even when the wall clock goes back', () => {
    const store = new KvStore('me', {}, new SeededRng(3));
    const out: KvOut[] = [];
    store.handle({ type: 'put', req: 1, key: 'a', value: 1 }, 5000, out);
    const v1 = store.localEntry('a')!.version;
    store.handle({ type: 'put', req: 2, key: 'a', value: 2 }, 4000, out);
    expect(store.localEntry('a')!.version.ts).toBeGreaterThan(v1.ts);
    expect(store.localEntry('a')!.value).toBe(2);
  });

  it('load restores entries and keeps the newest version of a key', () => {
    const { store, step } = single();
    const out = step({
      type: 'load',
      records: [
        { key: 'a', value: 1, version: { ts: 10, node: 'x' }, deleted: false },
        { key: 'a', value: 2, version: { ts: 20, node: 'x' }, deleted: false },
        { key: 'b', value: null, version: { ts: 5, node: 'y' }, deleted: true },
        { key: '', value: 1, version: { ts: 1, node: 'x' }, deleted: false } as never,
      ],
    });
    expect(out.some((e) => e.type === 'persist')).toBe(false);
    expect(store.localEntry('a')!.value).toBe(2);
    expect(store.localKeys()).toEqual(['a']);
    expect(store.stats().loadInvalid).toBe(1);
  });

  it('ignores malformed messages and unknown or duplicate replies without throwing', () => {
    const { store, step } = single();
    expect(step({ type: 'message', from: 'x', msg: { type: 'kv.put', op: 1 } as never })).toEqual([]);
    expect(step({ type: 'message', from: 'x', msg: null as never })).toEqual([]);
    expect(step({ type: 'message', from: 'x', msg: { type: 'kv.putAck', op: 12345 } })).toEqual([]);
    expect(step({ type: 'timer', timer: { type: 'kv.opTimeout', ops: [999] } })).toEqual([]);
    expect(store.stats().invalidMessages).toBe(2);
    expect(store.stats().lateReplies).toBe(1);
  });

  it('rejects nonsense configuration', () => {
    expect(() => new KvStore('a', { w: 4 }, new SeededRng(1))).toThrow(/w and r must not exceed n/);
    expect(() => new KvStore('a', { vnodes: 0 }, new SeededRng(1))).toThrow(/vnodes/);
  });
});

describe('KvStore quorums with an away member (left within the leave grace)', () => {
  const replies = (out: KvOut[]) => out.filter((e) => e.type === 'reply');
  it('does not wait for it: the last node left answers alone, and nothing moves', () => {
    const { store, step } = single();
    step({ type: 'members', view: viewOf(['solo', 'x']) });
    // x is there: a put needs its ack (W = 2 of the 2 replicas)
    expect(replies(step({ type: 'put', req: 1, key: 'a', value: 1 }))).toEqual([]);
    // x left gracefully and may come back: it keeps its ranges, quorums no longer wait for it
    const moved = step({ type: 'members', view: viewOf(['solo', 'x'], ['x']) });
    expect(moved.filter((e) => e.type === 'send')).toEqual([]);
    expect(replies(step({ type: 'put', req: 2, key: 'b', value: 2 }))).toEqual([{ type: 'reply', req: 2, ok: true }]);
    expect(replies(step({ type: 'inspect', req: 3, key: 'b' }))).toEqual([{ type: 'reply', req: 3, ok: true, value: { value: 2, version: expect.anything() } }]);
    expect(replies(step({ type: 'get', req: 4, key: 'missing' }))).toEqual([{ type: 'reply', req: 4, ok: true }]);
    expect(replies(step({ type: 'keys', req: 5, prefix: '' }))).toEqual([{ type: 'reply', req: 5, ok: true, value: ['a', 'b'] }]);
    expect(store.replicas('b')).toEqual(['solo', 'x'].sort());
  });
});

describe('KvStore with wall-clock-sized timestamps', () => {
  it('writes in the same millisecond get distinct, increasing versions', () => {
    const store = new KvStore('me', {}, new SeededRng(5));
    const now = 1_760_000_000_000; // present-day wall clock: HLC values near 2^51, 1024 ticks per ms
    const out: KvOut[] = [];
    const seen: number[] = [];
    for (let i = 0; i < 50; i++) {
      store.handle({ type: 'put', req: i, key: 'k', value: i }, now, out);
      seen.push(store.localEntry('k')!.version.ts);
      expect(store.localEntry('k')!.value).toBe(i);
    }
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]!);
  });

  it('after merging a peer timestamp up to 60 s ahead, writes stay exact, distinct and above it', () => {
    const store = new KvStore('me', {}, new SeededRng(6));
    const now = 1_760_000_000_000;
    const out: KvOut[] = [];
    store.handle({ type: 'members', view: viewOf(['me', 'peer']) }, now, out);
    const ahead = makeHlc(now + 59_000, HLC_LOGICAL - 1);
    const entry = (key: string, ts: number) => ({ key, value: 1, version: { ts, node: 'peer' }, deleted: false });
    store.handle({ type: 'message', from: 'peer', msg: { type: 'kv.put', op: 1, entry: entry('a', ahead) } }, now, out);
    expect(store.localEntry('a')!.version.ts).toBe(ahead);
    let last = ahead;
    for (let i = 0; i < 2000; i++) {
      store.handle({ type: 'put', req: i, key: `k${i % 7}`, value: i }, now, out);
      const ts = store.localEntry(`k${i % 7}`)!.version.ts;
      expect(Number.isSafeInteger(ts)).toBe(true);
      expect(ts).toBeGreaterThan(last);
      last = ts;
    }
  });

  it('refuses far-future versions from peers on every path: replica writes (not acknowledged), pushes, offers, read answers, loads', () => {
    const store = new KvStore('me', {}, new SeededRng(6));
    const now = 1_760_000_000_000;
    const out: KvOut[] = [];
    store.handle({ type: 'members', view: viewOf(['me', 'peer']) }, now, out);
    const far = makeHlc(now + 61_000, 0);
    const max = Number.MAX_SAFE_INTEGER;
    const entry = (key: string, ts: number, deleted = false) => ({ key, value: deleted ? null : 'forged', version: { ts, node: 'peer' }, deleted });
    out.length = 0;
    store.handle({ type: 'message', from: 'peer', msg: { type: 'kv.put', op: 1, entry: entry('a', far) } }, now, out);
    store.handle({ type: 'message', from: 'peer', msg: { type: 'kv.puts', items: [[2, 'b', 'forged', max, 'peer', 0, null], [3, 'c', null, far, 'peer', 1, null]] } }, now, out);
    store.handle({ type: 'message', from: 'peer', msg: { type: 'kv.push', op: 4, entries: [entry('d', far)] } }, now, out);
    store.handle({ type: 'load', records: [entry('e', max)] }, now, out);
    store.handle({ type: 'flush' }, now, out);
    for (const k of ['a', 'b', 'c', 'd', 'e']) expect(store.localEntry(k)).toBeUndefined();
    const acks = out.filter((o) => o.type === 'send' && ((o.msg as { type: string }).type === 'kv.putAck' || (o.msg as { type: string }).type === 'kv.putAcks'));
    expect(acks).toEqual([]);
    out.length = 0;
    store.handle({ type: 'message', from: 'peer', msg: { type: 'kv.offer', op: 5, items: [['f', far, 'peer']] } }, now, out);
    const want = out.find((o) => o.type === 'send' && (o.msg as { type: string }).type === 'kv.want');
    expect(want && (want as { msg: { want: string[] } }).msg.want).not.toContain('f');
    expect(store.counters().futureRefused).toBe(6);
    // a later honest write of the same key succeeds and reads back
    store.handle({ type: 'put', req: 7, key: 'a', value: 'honest' }, now, out);
    expect(store.localEntry('a')!.value).toBe('honest');
  });
});

describe('KvStore receive-side bounds', () => {
  const now = 1_760_000_000_000;
  const acksIn = (out: KvOut[]) =>
    out.flatMap((o) => (o.type === 'send' && o.msg.type === 'kv.putAcks' ? o.msg.ops : o.type === 'send' && o.msg.type === 'kv.putAck' ? [o.msg.op] : []));

  it('stores at most maxKeys keys: replica writes past it are not acknowledged, pushes skip them, a local put fails with an error', () => {
    const store = new KvStore('me', { maxKeys: 100 }, new SeededRng(7));
    const out: KvOut[] = [];
    store.handle({ type: 'members', view: viewOf(['me', 'peer']) }, now, out);
    out.length = 0;
    const ts = makeHlc(now, 0);
    const items = Array.from({ length: 300 }, (_, i) => [i + 1, `k${i}`, 'v', ts, 'peer', 0, null] as [number, string, unknown, number, string, 0, null]);
    store.handle({ type: 'message', from: 'peer', msg: { type: 'kv.puts', items } }, now, out);
    store.handle({ type: 'message', from: 'peer', msg: { type: 'kv.push', op: 9, entries: [{ key: 'pushed', value: 1, version: { ts, node: 'peer' }, deleted: false }] } }, now, out);
    store.handle({ type: 'flush' }, now, out);
    expect(store.localCount()).toBe(100);
    expect(acksIn(out)).toHaveLength(100);
    expect(store.localEntry('pushed')).toBeUndefined();
    expect(store.counters().keyCapRefused).toBe(201);
    // a key already held still takes new versions
    out.length = 0;
    store.handle({ type: 'message', from: 'peer', msg: { type: 'kv.put', op: 500, entry: { key: 'k0', value: 'new', version: { ts: ts + 1, node: 'peer' }, deleted: false } } }, now, out);
    store.handle({ type: 'flush' }, now, out);
    expect(store.localEntry('k0')!.value).toBe('new');
    expect(acksIn(out)).toEqual([500]);
    out.length = 0;
    store.handle({ type: 'put', req: 1, key: 'mine', value: 1 }, now, out);
    expect(out).toContainEqual({ type: 'reply', req: 1, ok: false, error: "put 'mine': this node already stores 100 keys, its limit" });
  });

  it("stores no value from a peer over its own maxValueBytes: the replica write is not acknowledged, pushes skip it", () => {
    const store = new KvStore('me', { maxValueBytes: 1024 }, new SeededRng(9));
    const out: KvOut[] = [];
    store.handle({ type: 'members', view: viewOf(['me', 'peer']) }, now, out);
    out.length = 0;
    const ts = makeHlc(now, 0);
    const big = 'x'.repeat(4096);
    store.handle({ type: 'message', from: 'peer', msg: { type: 'kv.puts', items: [[1, 'big', big, ts, 'peer', 0, null], [2, 'small', 'ok', ts, 'peer', 0, null], [3, 'gone', null, ts, 'peer', 1, null]] } }, now, out);
    store.handle({ type: 'message', from: 'peer', msg: { type: 'kv.put', op: 4, entry: { key: 'big2', value: big, version: { ts, node: 'peer' }, deleted: false } } }, now, out);
    store.handle({ type: 'message', from: 'peer', msg: { type: 'kv.push', op: 9, entries: [{ key: 'pushed', value: big, version: { ts, node: 'peer' }, deleted: false }] } }, now, out);
    store.handle({ type: 'flush' }, now, out);
    expect(store.localEntry('big')).toBeUndefined();
    expect(store.localEntry('big2')).toBeUndefined();
    expect(store.localEntry('pushed')).toBeUndefined();
    expect(store.localEntry('small')?.value).toBe('ok');
    expect(store.localEntry('gone')?.deleted).toBe(true);
    expect(acksIn(out).sort()).toEqual([2, 3]);
    expect(store.counters().tooLargeRefused).toBe(3);
  });

  it('kv.gcDrop counts only from a replica of the key and only for a tombstone past its grace', () => {
    const store = new KvStore('me', { tombstoneGraceMs: 60_000 }, new SeededRng(8));
    const out: KvOut[] = [];
    store.handle({ type: 'members', view: viewOf(['me', 'peer']) }, now, out);
    const ts = makeHlc(now - 120_000, 0);
    const fresh = makeHlc(now - 1_000, 0);
    store.handle({ type: 'message', from: 'peer', msg: { type: 'kv.puts', items: [[1, 'old', null, ts, 'peer', 1, null], [2, 'new', null, fresh, 'peer', 1, null]] } }, now, out);
    // 'evil' is not a replica (not even a member): its drop is refused
    store.handle({ type: 'message', from: 'evil', msg: { type: 'kv.gcDrop', items: [['old', ts, 'peer']] } }, now, out);
    expect(store.localEntry('old')?.deleted).toBe(true);
    // a replica asking to drop a tombstone still within its grace is refused too
    store.handle({ type: 'message', from: 'peer', msg: { type: 'kv.gcDrop', items: [['new', fresh, 'peer']] } }, now, out);
    expect(store.localEntry('new')?.deleted).toBe(true);
    expect(store.counters().gcDropRefused).toBe(2);
    // the replica's drop past the grace is applied
    store.handle({ type: 'message', from: 'peer', msg: { type: 'kv.gcDrop', items: [['old', ts, 'peer']] } }, now, out);
    expect(store.localEntry('old')).toBeUndefined();
  });
});

/** A store at node 'me' whose clock the test moves (`later(ms)`), and the kv.get sends among effects. */
function clocked(seed: number) {
  const store = new KvStore('me', {}, new SeededRng(seed));
  let now = 1000;
  const step = (input: KvIn) => {
    const out: KvOut[] = [];
    store.handle(input, now, out);
    return out;
  };
  const later = (ms: number) => void (now += ms);
  return { store, step, later };
}

const gets = (out: KvOut[]) => out.flatMap((e) => (e.type === 'send' && e.msg.type === 'kv.get' ? [{ to: e.to, op: e.msg.op }] : []));
/** Head reads among effects: one per (node, op). */
const heads = (out: KvOut[]) => out.flatMap((e) => (e.type === 'send' && e.msg.type === 'kv.heads' ? e.msg.items.map(([op]) => ({ to: e.to, op })) : []));
const replyOf = (out: KvOut[], req: number) => out.find((e) => e.type === 'reply' && e.req === req);

describe('KvStore reads during a failure', () => {
  it('"not found" from nodes asked beyond the preference list never makes an absent answer: silent replicas end in an error', () => {
    const { store, step, later } = clocked(4);
    const ids = ['me', 'a', 'b', 'c', 'd', 'e', 'f'];
    step({ type: 'members', view: { placement: ids, away: [], live: ids.map((id) => ({ id, nick: id, rooms: [] })) } });
    const key = [...Array(200).keys()].map((i) => `k${i}`).find((k) => !store.replicas(k).includes('me'))!;
    const first = step({ type: 'get', req: 1, key });
    const op = gets(first)[0]!.op;
    // the whole preference list is silent (dead, or its routes cut); the read speculates further
    later(200);
    const pref = store.replicas(key);
    const late = gets(step({ type: 'timer', timer: { type: 'kv.hint', ops: [op] } }));
    // the silent replicas are asked once more, and nodes past the preference list for the first time
    expect(late.filter((g) => pref.includes(g.to)).map((g) => g.to).sort()).toEqual([...pref].sort());
    const further = late.filter((g) => !pref.includes(g.to));
    expect(further.length).toBeGreaterThan(0);
    for (const g of further) step({ type: 'message', from: g.to, msg: { type: 'kv.getReply', op, entry: null } });
    later(3000);
    const end = step({ type: 'timer', timer: { type: 'kv.opTimeout', ops: [op] } });
    const reply = end.find((e) => e.type === 'reply');
    expect(reply).toMatchObject({ ok: false, error: expect.stringMatching(/only 0 of 2 required replicas answered/) });
  });

  it('a read that finds no copy asks the suspects (live, out of placement) once replicas are late, and takes their copy', () => {
    const { store, step, later } = clocked(3);
    const live = ['me', 'a', 'b', 'c', 'sus'].map((id) => ({ id, nick: id, rooms: [] }));
    // 'sus' is suspected (a tab slow under load): out of the placement, still live, and it holds the key
    step({ type: 'members', view: { placement: ['a', 'b', 'c', 'me'], away: [], live } });
    const key = [...Array(200).keys()].map((i) => `k${i}`).find((k) => !store.replicas(k).includes('me'))!;
    const pref = store.replicas(key);
    const first = step({ type: 'get', req: 1, key });
    // not a replica: the entry from one replica, the version only from the others
    expect(gets(first).length).toBe(1);
    expect([...gets(first), ...heads(first)].map((g) => g.to).sort()).toEqual([...pref].sort());
    const op = gets(first)[0]!.op;
    // one replica crashed unnoticed (the one asked for the entry), the other two are new owners without the key
    const crashed = gets(first)[0]!.to;
    later(5);
    for (const p of pref.filter((x) => x !== crashed)) step({ type: 'message', from: p, msg: { type: 'kv.headReplies', items: [[op, null]] } });
    later(200);
    const late = step({ type: 'timer', timer: { type: 'kv.hint', ops: [op] } });
    expect(gets(late).map((g) => g.to)).toContain('sus');
    const entry = { key, value: 'kept', version: { ts: makeHlc(900, 0), node: 'a' }, deleted: false };
    later(5);
    const answered = step({ type: 'message', from: 'sus', msg: { type: 'kv.getReply', op, entry } });
    expect(answered).toContainEqual({ type: 'reply', req: 1, ok: true, value: 'kept' });
  });
});

describe('digest reads (a read takes one entry; the other replicas send only their version)', () => {
  const ids = ['me', 'a', 'b', 'c', 'd'];
  const setup = (config = {}) => {
    const store = new KvStore('me', { n: 3, r: 2, w: 2, ...config }, new SeededRng(5));
    let now = 1000;
    const step = (input: KvIn) => {
      const out: KvOut[] = [];
      store.handle(input, (now += 1), out);
      return out;
    };
    step({ type: 'members', view: viewOf(ids) });
    const keys = [...Array(400).keys()].map((i) => `k${i}`);
    return { store, step, mine: keys.find((k) => store.replicas(k).includes('me'))!, theirs: keys.find((k) => !store.replicas(k).includes('me'))! };
  };
  const entry = (key: string, value: string, ms: number, node = 'a') => ({ key, value, version: { ts: makeHlc(ms, 0), node }, deleted: false });
  /** The message that puts `e` on this node as a replica write from its writer. */
  const held = (e: ReturnType<typeof entry>): KvIn => ({ type: 'message', from: e.version.node, msg: { type: 'kv.put', op: 9, entry: e } });
  const sentEntries = (out: KvOut[]) => out.filter((e) => e.type === 'send' && (e.msg.type === 'kv.getReply' || e.msg.type === 'kv.getReplies')).length;

  it('a replica holding the key asks the others for their version only, and answers from its copy when they agree', () => {
    const { store, step, mine } = setup();
    const e = entry(mine, 'v1', 900);
    step(held(e));
    const out = step({ type: 'get', req: 1, key: mine });
    const others = store.replicas(mine).filter((p) => p !== 'me');
    expect(gets(out)).toEqual([]);
    expect(heads(out).map((h) => h.to).sort()).toEqual([...others].sort());
    const op = heads(out)[0]!.op;
    const r = step({ type: 'message', from: others[0]!, msg: { type: 'kv.headReplies', items: [[op, [e.version.ts, 'a', 0]]] } });
    expect(replyOf(r, 1)).toMatchObject({ ok: true, value: 'v1' });
  });

  it('a replica answers a head read with its version, or null, and never with the value', () => {
    const { step, mine } = setup();
    const e = entry(mine, 'secret-sized value', 900);
    step(held(e));
    const out = step({ type: 'message', from: 'b', msg: { type: 'kv.heads', items: [[4, mine], [5, 'absent']] } });
    const sent = out.flatMap((x) => (x.type === 'send' ? [x.msg] : []));
    expect(sent).toEqual([{ type: 'kv.headReplies', items: [[4, [e.version.ts, 'a', 0]], [5, null]] }]);
    expect(sentEntries(out)).toBe(0);
  });

  it('a head newer than the local copy: the entry is fetched from that replica, returned, and repairs the local copy', () => {
    const { store, step, mine } = setup();
    step(held(entry(mine, 'old', 900)));
    const out = step({ type: 'get', req: 1, key: mine });
    const [h1, h2] = heads(out);
    const newer = entry(mine, 'new', 950, 'b');
    const r1 = step({ type: 'message', from: h1!.to, msg: { type: 'kv.headReplies', items: [[h1!.op, [newer.version.ts, 'b', 0]]] } });
    // quorum reached (2 of 3), but the newest version is known only from a head: no reply yet, its entry is asked for
    expect(replyOf(r1, 1)).toBeUndefined();
    expect(gets(r1)).toEqual([{ to: h1!.to, op: h1!.op }]);
    const r2 = step({ type: 'message', from: h1!.to, msg: { type: 'kv.getReply', op: h1!.op, entry: newer } });
    expect(replyOf(r2, 1)).toMatchObject({ ok: true, value: 'new' });
    step({ type: 'message', from: h2!.to, msg: { type: 'kv.headReplies', items: [[h2!.op, [newer.version.ts, 'b', 0]]] } });
    expect(store.localEntry(mine)?.value).toBe('new');
    expect(store.counters().headFetches).toBe(1);
  });

  it('not a replica: one replica sends the entry; if it is silent, the entry comes from a replica that showed the newest version', () => {
    const { store, step, theirs } = setup();
    const out = step({ type: 'get', req: 1, key: theirs });
    expect(gets(out).length).toBe(1);
    const silent = gets(out)[0]!.to;
    const e = entry(theirs, 'v', 900);
    const others = heads(out);
    expect(others.map((h) => h.to).sort()).toEqual(store.replicas(theirs).filter((p) => p !== silent).sort());
    let last: KvOut[] = [];
    for (const h of others) last = step({ type: 'message', from: h.to, msg: { type: 'kv.headReplies', items: [[h.op, [e.version.ts, 'a', 0]]] } });
    // the replica asked for the entry usually sends that very version: it is waited for until late
    expect(gets(last)).toEqual([]);
    const late = step({ type: 'timer', timer: { type: 'kv.hint', ops: [others[0]!.op] } });
    // then the entry is asked for from a replica that showed it (and once more from the silent one)
    const fetched = gets(late).filter((g) => g.to !== silent);
    expect(fetched.length).toBe(1);
    const done = step({ type: 'message', from: fetched[0]!.to, msg: { type: 'kv.getReply', op: fetched[0]!.op, entry: e } });
    expect(replyOf(done, 1)).toMatchObject({ ok: true, value: 'v' });
  });

  it('a newest version whose entry never comes ends in a clear error, not in an older value', () => {
    const { step, mine } = setup({ requestTimeoutMs: 1000 });
    step(held(entry(mine, 'old', 900)));
    const out = step({ type: 'get', req: 1, key: mine });
    const op = heads(out)[0]!.op;
    for (const h of heads(out)) step({ type: 'message', from: h.to, msg: { type: 'kv.headReplies', items: [[h.op, [makeHlc(950, 0), 'b', 0]]] } });
    const end = step({ type: 'timer', timer: { type: 'kv.opTimeout', ops: [op] } });
    expect(replyOf(end, 1)).toMatchObject({ ok: false, error: expect.stringMatching(/holds a newer version than the copies received/) });
  });

  it('a head claiming a newer version that its replica then does not hold: the newest entry in hand is returned', () => {
    const { step, mine } = setup();
    step(held(entry(mine, 'real', 900)));
    const out = step({ type: 'get', req: 1, key: mine });
    const [h1, h2] = heads(out);
    const r1 = step({ type: 'message', from: h1!.to, msg: { type: 'kv.headReplies', items: [[h1!.op, [makeHlc(990, 0), 'b', 0]]] } });
    expect(gets(r1).length).toBe(1);
    // the liar (or a replica whose copy was collected meanwhile) sends nothing for it
    const r2 = step({ type: 'message', from: h1!.to, msg: { type: 'kv.getReply', op: h1!.op, entry: null } });
    const r3 = step({ type: 'message', from: h2!.to, msg: { type: 'kv.headReplies', items: [[h2!.op, [makeHlc(900, 0), 'a', 0]]] } });
    expect(replyOf([...r2, ...r3], 1)).toMatchObject({ ok: true, value: 'real' });
  });

  it('a silent replica that keeps answering other requests is waited for, not re-asked; once it falls silent, the read moves on', () => {
    const { store, step, later } = clocked(6);
    step({ type: 'members', view: viewOf(ids) });
    const key = [...Array(400).keys()].map((i) => `k${i}`).find((k) => !store.replicas(k).includes('me'))!;
    const out = step({ type: 'get', req: 1, key });
    const full = gets(out)[0]!;
    const [h1] = heads(out);
    const e = entry(key, 'v', 900);
    later(20);
    step({ type: 'message', from: h1!.to, msg: { type: 'kv.headReplies', items: [[h1!.op, [e.version.ts, 'a', 0]]] } });
    // the replica asked for the entry answers something else (its queue is long): alive and busy
    later(30);
    step({ type: 'message', from: full.to, msg: { type: 'kv.headReplies', items: [[777, null]] } });
    later(60);
    const waited = step({ type: 'timer', timer: { type: 'kv.hint', ops: [full.op] } });
    expect(gets(waited)).toEqual([]);
    expect(heads(waited)).toEqual([]);
    expect(store.counters().readsWaitedForBusy).toBe(1);
    expect(waited.some((x) => x.type === 'timer' && x.timer.type === 'kv.hint')).toBe(true);
    // now it says nothing more (crashed): the next look gives up on it and fetches the entry from h1
    later(400);
    const moved = step({ type: 'timer', timer: { type: 'kv.hint', ops: [full.op] } });
    expect(gets(moved).map((g) => g.to)).toContain(h1!.to);
    const done = step({ type: 'message', from: h1!.to, msg: { type: 'kv.getReply', op: full.op, entry: e } });
    expect(replyOf(done, 1)).toMatchObject({ ok: true, value: 'v' });
  });

  it('not a replica: the entry is asked of the replica heard from last (a crashed one falls silent)', () => {
    const { store, step, later } = clocked(7);
    step({ type: 'members', view: viewOf(ids) });
    const key = [...Array(400).keys()].map((i) => `k${i}`).find((k) => !store.replicas(k).includes('me'))!;
    const pref = store.replicas(key);
    // every replica was heard from; the last one in preference order most recently
    for (const p of pref) {
      later(10);
      step({ type: 'message', from: p, msg: { type: 'kv.headReplies', items: [[999, null]] } });
    }
    const out = step({ type: 'get', req: 1, key });
    expect(gets(out)).toEqual([{ to: pref[pref.length - 1], op: expect.any(Number) }]);
  });

  it('an entry asked for after the read went late, from a replica that then falls silent, is asked of another that showed it', () => {
    const { store, step, later } = clocked(8);
    step({ type: 'members', view: viewOf(ids) });
    const key = [...Array(400).keys()].map((i) => `k${i}`).find((k) => !store.replicas(k).includes('me'))!;
    const out = step({ type: 'get', req: 1, key });
    const [h1, h2] = heads(out);
    const op = h1!.op;
    const e = entry(key, 'v', 900);
    const head = (h: { to: string }) => ({ type: 'message' as const, from: h.to, msg: { type: 'kv.headReplies' as const, items: [[op, [e.version.ts, 'a', 0]]] as [number, [number, string, 0]][] } });
    // the replica asked for the entry crashed; h1 shows the version, the read goes late and fetches from h1
    later(10);
    step(head(h1!));
    later(200);
    const late = step({ type: 'timer', timer: { type: 'kv.hint', ops: [op] } });
    expect(gets(late).map((g) => g.to)).toContain(h1!.to);
    // h1 crashes too; h2's head comes in late; the next look asks h2 for the entry
    later(10);
    step(head(h2!));
    later(300);
    const again = step({ type: 'timer', timer: { type: 'kv.hint', ops: [op] } });
    expect(gets(again).map((g) => g.to)).toContain(h2!.to);
    const done = step({ type: 'message', from: h2!.to, msg: { type: 'kv.getReply', op, entry: e } });
    expect(replyOf(done, 1)).toMatchObject({ ok: true, value: 'v' });
  });

  it('a replica that left a read unanswered past the lateness delay, saying nothing else, is not waited for by new reads, until it speaks again', () => {
    const store = new KvStore('me', { n: 4, w: 3, r: 3 }, new SeededRng(9));
    let now = 1000;
    const step = (input: KvIn) => {
      const out: KvOut[] = [];
      store.handle(input, now, out);
      return out;
    };
    step({ type: 'members', view: viewOf([...ids, 'e']) });
    const key = [...Array(400).keys()].map((i) => `k${i}`).find((k) => store.replicas(k).includes('me'))!;
    step(held(entry(key, 'v', 900)));
    const headAt = (to: string, op: number): KvIn => ({ type: 'message', from: to, msg: { type: 'kv.headReplies', items: [[op, [makeHlc(900, 0), 'a', 0]]] } });
    // a first read: one replica answers, the other two (crashed, not yet known dead) never do
    const first = heads(step({ type: 'get', req: 1, key }));
    expect(first.length).toBe(3);
    const [live, x, y] = first;
    now += 5;
    expect(replyOf(step(headAt(live!.to, live!.op)), 1)).toBeUndefined(); // 2 copies of R = 3: it waits
    // past the lateness delay (100 ms here), a new read does not wait for x and y
    now += 200;
    const second = heads(step({ type: 'get', req: 2, key }));
    now += 5;
    const without = store.counters().readsWithoutQuorum;
    expect(replyOf(step(headAt(live!.to, second[0]!.op)), 2)).toMatchObject({ ok: true, value: 'v' });
    expect(store.counters().readsWithoutQuorum).toBe(without + 1);
    // x speaks again: the next read waits for it as for any replica
    step({ type: 'message', from: x!.to, msg: { type: 'kv.headReplies', items: [[x!.op, null]] } });
    const third = heads(step({ type: 'get', req: 3, key }));
    now += 5;
    expect(replyOf(step(headAt(live!.to, third[0]!.op)), 3)).toBeUndefined();
    expect(replyOf(step(headAt(x!.to, third[0]!.op)), 3)).toMatchObject({ ok: true, value: 'v' });
    void y;
  });

  it('headReads off: every replica sends its entry', () => {
    const { store, step, mine } = setup({ headReads: false });
    step(held(entry(mine, 'v1', 900)));
    const out = step({ type: 'get', req: 1, key: mine });
    expect(heads(out)).toEqual([]);
    expect(gets(out).map((g) => g.to).sort()).toEqual(store.replicas(mine).filter((p) => p !== 'me').sort());
  });
});

describe('sealed writes (sealWrites: the runtime signs each entry of a write this node coordinates)', () => {
  function sealing() {
    const store = new KvStore('a', { sealWrites: true, n: 3, w: 2, r: 2 }, new SeededRng(1));
    let now = 1000;
    const step = (input: KvIn, dt = 1) => {
      const out: KvOut[] = [];
      store.handle(input, (now += dt), out);
      return out;
    };
    step({ type: 'members', view: viewOf(['a', 'b', 'c']) });
    return { store, step };
  }

  it('a write goes nowhere until its seal comes back; then every copy, sent and stored, carries it', () => {
    const { store, step } = sealing();
    const out = step({ type: 'put', req: 1, key: 'k', value: { x: 1 } });
    const ask = events(out).find((e) => e.type === 'sealEntry') as Extract<KvEvent, { type: 'sealEntry' }>;
    expect(ask.entry).toMatchObject({ key: 'k', value: { x: 1 }, version: { node: 'a' }, deleted: false });
    expect(out.filter((e) => e.type === 'send' || e.type === 'persist' || e.type === 'reply')).toEqual([]);
    expect(store.localKeys()).toEqual([]);
    const seal = { s: new Uint8Array([1, 2, 3]) };
    const started = step({ type: 'sealed', op: ask.op, seal });
    const puts = started.flatMap((e) => (e.type === 'send' ? [e] : []));
    expect(puts.map((p) => p.to).sort()).toEqual(['b', 'c']);
    for (const p of puts) expect(p.msg).toMatchObject({ type: 'kv.put', entry: { key: 'k', seal } });
    const persisted = started.flatMap((e) => (e.type === 'persist' ? e.put : []));
    expect(persisted).toEqual([expect.objectContaining({ key: 'k', seal })]);
    const op = (puts[0]!.msg as { op: number }).op;
    expect(step({ type: 'message', from: 'b', msg: { type: 'kv.putAck', op } })).toContainEqual({ type: 'reply', req: 1, ok: true });
    // a second answer for the same op changes nothing
    expect(step({ type: 'sealed', op: ask.op, seal: { s: new Uint8Array([9]) } }).filter((e) => e.type === 'send')).toEqual([]);
  });

  it('batched replica writes carry each seal; a reloaded store keeps them', () => {
    const { store, step } = sealing();
    const asks = [0, 1, 2].map((i) => events(step({ type: 'put', req: i, key: `k${i}`, value: i })).find((e) => e.type === 'sealEntry') as Extract<KvEvent, { type: 'sealEntry' }>);
    // sealed answers arriving together: a turn with deferFlush would batch them; here each flushes
    const seals = asks.map((a, i) => ({ s: new Uint8Array([i]) }));
    asks.forEach((a, i) => step({ type: 'sealed', op: a.op, seal: seals[i]! }));
    const stored = store.localKeys().sort();
    expect(stored).toEqual(['k0', 'k1', 'k2']);
    const again = new KvStore('a', {}, new SeededRng(2));
    const out: KvOut[] = [];
    const entries = asks.map((a, i) => ({ ...a.entry, seal: seals[i] }));
    again.handle({ type: 'load', records: entries }, 5000, out);
    const answers: KvOut[] = [];
    again.handle({ type: 'message', from: 'b', msg: { type: 'kv.get', op: 1, key: 'k1' } }, 5001, answers);
    const reply = answers.find((e) => e.type === 'send')!;
    expect((reply as { msg: { entry: { seal: unknown } } }).msg.entry.seal).toEqual(seals[1]);
  });

  it('a write gets the whole request timeout from the moment its seal comes, not from the call', () => {
    const { step } = sealing();
    const out = step({ type: 'put', req: 3, key: 'k', value: 1 });
    const ask = events(out).find((e) => e.type === 'sealEntry') as Extract<KvEvent, { type: 'sealEntry' }>;
    const first = out.find((e) => e.type === 'timer' && e.timer.type === 'kv.opTimeout')!;
    // the signature takes 2.5 s (a burst of thousands of writes)
    const started = step({ type: 'sealed', op: ask.op, seal: { s: new Uint8Array([1]) } }, 2500);
    const second = started.find((e) => e.type === 'timer' && e.timer.type === 'kv.opTimeout')!;
    expect(second).toBeDefined();
    // 3 s after the call: still waiting for its replicas
    expect(step({ type: 'timer', timer: (first as unknown as { timer: never }).timer }, 500).filter((e) => e.type === 'reply')).toEqual([]);
    const op = ((started.find((e) => e.type === 'send') as { msg: { op: number } }).msg).op;
    expect(step({ type: 'message', from: 'b', msg: { type: 'kv.putAck', op } }, 100)).toContainEqual({ type: 'reply', req: 3, ok: true });
  });

  it('a write whose seal never comes fails at the request timeout and leaves nothing behind', () => {
    const { store, step } = sealing();
    const out = step({ type: 'put', req: 5, key: 'k', value: 1 });
    const timer = out.find((e) => e.type === 'timer' && e.timer.type === 'kv.opTimeout')!;
    const late = step({ type: 'timer', timer: (timer as unknown as { timer: never }).timer }, 3000);
    expect(late).toContainEqual({ type: 'reply', req: 5, ok: false, error: expect.any(String) });
    expect(store.localKeys()).toEqual([]);
  });
});

/** A store answering offers of key 'k' (version `ts` by 'w'): its `kv.want`. */
function offers(seed: number) {
  const store = new KvStore('solo', {}, new SeededRng(seed));
  const answer = (from: string, op: number, ts: number, now: number) => {
    const out: KvOut[] = [];
    store.handle({ type: 'message', from, msg: { type: 'kv.offer', op, items: [['k', ts, 'w']] } }, now, out);
    const m = out.find((o) => o.type === 'send' && o.msg.type === 'kv.want');
    return (m as { msg: { want: string[]; transient: string[] } }).msg;
  };
  return { store, answer };
}

describe('KvStore: re-replication offers', () => {
  it('a key asked of one offerer is not asked of the next for that version; a newer version is; the ask lapses after requestTimeoutMs', () => {
    const { store, answer } = offers(3);
    expect(answer('p1', 1, 500, 1000)).toEqual({ type: 'kv.want', op: 1, want: ['k'], transient: [] });
    // the same version from another surviving owner: "later", so it is pushed once
    expect(answer('p2', 2, 500, 1010)).toEqual({ type: 'kv.want', op: 2, want: [], transient: ['k'] });
    expect(store.counters().handoffDeferred).toBe(1);
    // a newer version is wanted from whoever has it
    expect(answer('p3', 3, 600, 1020).want).toEqual(['k']);
    // p3's push never comes: after requestTimeoutMs the next offer is asked
    expect(answer('p2', 4, 600, 1030).want).toEqual([]);
    expect(answer('p2', 5, 600, 1020 + 3000).want).toEqual(['k']);
    // once a push brings it, offers of that version are not wanted
    store.handle({ type: 'message', from: 'p2', msg: { type: 'kv.push', op: 6, entries: [{ key: 'k', value: 'v', version: { ts: 600, node: 'w' }, deleted: false }] } }, 4030, []);
    expect(answer('p1', 7, 600, 4040).want).toEqual([]);
  });
});

describe('KvStore: re-replication targets', () => {
  it('after a crash, a key this node keeps is offered only to the owner new to it, not to the owner that held it along', () => {
    const store = new KvStore('a', { n: 3 }, new SeededRng(4));
    const now = 1_000_000;
    store.handle({ type: 'members', view: viewOf(['a', 'b', 'c', 'd']) }, now, []);
    // keys owned by a, b and c, and by a, b and d once c is gone
    const keys = Array.from({ length: 2000 }, (_, i) => `k${i}`).filter((k) => {
      const r = [...store.replicas(k)].sort().join();
      return r === 'a,b,c';
    });
    expect(keys.length).toBeGreaterThan(5);
    store.handle({ type: 'load', records: keys.map((key) => ({ key, value: 1, version: { ts: now - 10, node: 'w' }, deleted: false })) }, now, []);
    // the offers of the loaded keys, answered: b and c hold them all
    const first = new Set<string>();
    for (let t = 1; t <= 20 && store.stats().handoffPending > 0; t++) {
      const tick: KvOut[] = [];
      store.handle({ type: 'timer', timer: { type: 'kv.handoff' } }, now + t, tick);
      for (const e of tick) {
        if (e.type !== 'send' || e.msg.type !== 'kv.offer') continue;
        first.add(e.to);
        store.handle({ type: 'message', from: e.to, msg: { type: 'kv.want', op: e.msg.op, want: [], transient: [] } }, now + t, []);
      }
    }
    expect(first).toEqual(new Set(['b', 'c']));
    expect(store.stats().handoffPending).toBe(0);
    store.handle({ type: 'members', view: viewOf(['a', 'b', 'd']) }, now + 100, []);
    const after: KvOut[] = [];
    for (let t = 1; t <= 5; t++) store.handle({ type: 'timer', timer: { type: 'kv.handoff' } }, now + 100 + t * 60, after);
    const targets = new Set(after.flatMap((e) => (e.type === 'send' && e.msg.type === 'kv.offer' ? [e.to] : [])));
    const moved = keys.filter((k) => store.replicas(k).includes('d'));
    expect(moved.length).toBeGreaterThan(0);
    expect([...targets]).toEqual(['d']);
  });

  it('the offerer asked for a key is asked again when it offers it again (its push had no room for it)', () => {
    const { answer } = offers(5);
    expect(answer('p1', 1, 500, 1000).want).toEqual(['k']);
    expect(answer('p2', 2, 500, 1010).want).toEqual([]);
    expect(answer('p1', 3, 500, 1020).want).toEqual(['k']);
    expect(answer('p2', 4, 500, 1030).want).toEqual([]);
  });
});
