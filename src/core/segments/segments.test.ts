/**
 * API semantics of data segments on one node and on a small quiet cluster: ids, order,
 * peek/take/update, waiting calls, cancel and timeout, input validation, persistence,
 * purity. All time is virtual; the seed is in the test names.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { viewOf } from '../placement';
import { SeededRng } from '../rng';
import { Segments } from './segments';
import { SegNet } from '../../sim/segments';
import type { SegItem, SegOut, SegReply } from './types';

function ok(r: SegReply | undefined, what: string): Extract<SegReply, { ok: true }> {
  if (!r) throw new Error(`${what}: no reply`);
  if (!r.ok) throw new Error(`${what} failed: ${r.error}`);
  return r;
}

function err(r: SegReply | undefined, what: string): string {
  if (!r) throw new Error(`${what}: no reply`);
  if (r.ok) throw new Error(`${what} unexpectedly succeeded: ${JSON.stringify(r)}`);
  return r.error;
}

describe.each([1, 3])('queue semantics on %i node(s) (seed 11)', (size) => {
  const seed = 11;
  const setup = () => {
    const net = new SegNet({ seed, nodes: size });
    const here = net.liveIds()[size - 1]!;
    return { net, here };
  };

  it('put returns strictly increasing ids; peek reads the oldest without removing it', () => {
    const { net, here } = setup();
    expect(ok(net.put(here, 'q', 'a'), 'put a').value).toBe(1);
    expect(ok(net.put(here, 'q', 'b'), 'put b').value).toBe(2);
    expect(ok(net.put(here, 'q', { c: [1, 2] }), 'put c').value).toBe(3);
    expect(ok(net.peek(here, 'q'), 'peek').value).toMatchObject({ id: 1, value: 'a' });
    expect(ok(net.peek(here, 'q'), 'peek again').value).toMatchObject({ id: 1, value: 'a' });
    expect(ok(net.peek(here, 'q', 1), 'peek after 1').value).toMatchObject({ id: 2, value: 'b' });
    expect(ok(net.peek(here, 'q', 2), 'peek after 2').value).toMatchObject({ id: 3, value: { c: [1, 2] } });
  });

  it('take removes in order; afterId skips older items; ids keep increasing after takes', () => {
    const { net, here } = setup();
    for (const v of ['a', 'b', 'c', 'd']) net.put(here, 'q', v);
    expect(ok(net.take(here, 'q'), 'take').value).toMatchObject({ id: 1, value: 'a' });
    expect(ok(net.take(here, 'q', 2), 'take after 2').value).toMatchObject({ id: 3, value: 'c' });
    expect(ok(net.take(here, 'q'), 'take').value).toMatchObject({ id: 2, value: 'b' });
    expect(ok(net.take(here, 'q'), 'take').value).toMatchObject({ id: 4, value: 'd' });
    expect(ok(net.put(here, 'q', 'e'), 'put e').value).toBe(5);
    expect(net.seg(here).queues().find((q) => q.key === 'q')?.items).toEqual([{ id: 5, value: 'e' }]);
  });

  it('update removes the head and appends', () => {
    const { net, here } = setup();
    net.put(here, 'q', 'a');
    net.put(here, 'q', 'b');
    expect(ok(net.update(here, 'q', 'c'), 'update').value).toBe(3);
    expect(ok(net.peek(here, 'q'), 'peek').value).toMatchObject({ id: 2, value: 'b' });
    expect(ok(net.update(here, 'empty', 'x'), 'update of an empty queue').value).toBe(1);
    expect(ok(net.peek(here, 'empty'), 'peek').value).toMatchObject({ id: 1, value: 'x' });
  });

  it('a waiting peek and a waiting take resolve when an item arrives', () => {
    const { net, here } = setup();
    const peek = net.request(here, { type: 'peek', key: 'w', afterId: 0 });
    const take = net.request(here, { type: 'take', key: 'w', afterId: 0 });
    const later = net.request(here, { type: 'peek', key: 'w', afterId: 1 });
    net.runFor(3000);
    expect(net.reply(here, peek)).toBeUndefined();
    expect(net.reply(here, take)).toBeUndefined();
    expect(net.seg(net.ownerOf('w')).queues().find((q) => q.key === 'w')?.waiting).toBe(3);
    net.put(here, 'w', 'first');
    net.runFor(200);
    expect(ok(net.reply(here, peek), 'peek').value).toMatchObject({ id: 1, value: 'first' });
    expect(ok(net.reply(here, take), 'take').value).toMatchObject({ id: 1, value: 'first' });
    expect(net.reply(here, later)).toBeUndefined();
    net.put(here, 'w', 'second');
    net.runFor(200);
    expect(ok(net.reply(here, later), 'peek after 1').value).toMatchObject({ id: 2, value: 'second' });
    // the take consumed item 1, the peek did not consume item 2
    expect(net.seg(net.ownerOf('w')).queues().find((q) => q.key === 'w')?.items).toEqual([{ id: 2, value: 'second' }]);
  });

  it('cancel rejects a waiting call with a clear error and the cancelled take consumes nothing', () => {
    const { net, here } = setup();
    const take = net.request(here, { type: 'take', key: 'c', afterId: 0 });
    net.runFor(500);
    net.cancel(here, take);
    expect(err(net.reply(here, take), 'cancelled take')).toMatch(/^cancelled: take on segment 'c' was aborted/);
    net.runFor(500);
    net.put(here, 'c', 'kept');
    net.runFor(500);
    expect(ok(net.take(here, 'c'), 'take after cancel').value).toMatchObject({ id: 1, value: 'kept' });
    // cancelling a finished or unknown request is harmless
    net.cancel(here, take);
    net.cancel(here, 99_999);
  });

  it('timeoutMs rejects a waiting call with a clear error', () => {
    const { net, here } = setup();
    const r = net.take(here, 't', 4, 750);
    expect(err(r, 'take with timeout')).toBe("timeout: take on segment 't' found no item after id 4 within 750 ms");
    expect(err(net.peek(here, 't', 0, 0), 'peek with timeout 0')).toMatch(/^timeout: peek/);
    net.put(here, 't', 'x');
    expect(ok(net.peek(here, 't', 0, 5000), 'peek with a timeout that does not fire').value).toMatchObject({ id: 1 });
    expect(ok(net.take(here, 't', 0, 5000), 'take').value).toMatchObject({ id: 1 });
  });

  it('rejects invalid requests at once with clear errors and stores nothing', () => {
    const { net, here } = setup();
    expect(err(net.put(here, '', 1), 'empty key')).toMatch(/non-empty string/);
    expect(err(net.put(here, 'k'.repeat(300), 1), 'long key')).toMatch(/longer than 256/);
    expect(err(net.put(here, 'v', undefined), 'undefined')).toMatch(/undefined \(use null\)/);
    expect(err(net.put(here, 'v', 'x'.repeat(70_000)), 'large')).toMatch(/exceeds the 65536-byte limit/);
    expect(err(net.put(here, 'v', () => 1), 'function')).toMatch(/cannot be stored/);
    expect(err(net.take(here, 'v', -1), 'negative afterId')).toMatch(/afterId must be a non-negative integer/);
    expect(err(net.peek(here, 'v', 0, -5), 'negative timeout')).toMatch(/timeoutMs/);
    expect(net.liveIds().every((id) => net.seg(id).queues().length === 0)).toBe(true);
    expect(ok(net.put(here, 'v', null), 'null value').value).toBe(1);
  });

  it('cancel does not affect put', () => {
    const { net, here } = setup();
    const req = net.request(here, { type: 'put', key: 'p', value: 1 });
    net.cancel(here, req);
    net.runFor(500);
    expect(ok(net.reply(here, req), 'put').value).toBe(1);
  });

  it('values are copied: mutating what was put or taken does not change the queue', () => {
    const { net, here } = setup();
    const v = { n: 1 };
    const req = net.request(here, { type: 'put', key: 'm', value: v });
    v.n = 2;
    net.runFor(500);
    ok(net.reply(here, req), 'put');
    const got = (ok(net.peek(here, 'm'), 'peek').value as SegItem).value as { n: number };
    expect(got.n).toBe(1);
    got.n = 3;
    expect(((ok(net.peek(here, 'm'), 'peek').value as SegItem).value as { n: number }).n).toBe(1);
  });
});

describe('single node details (seed 5)', () => {
  afterEach(() => vi.restoreAllMocks());

  it('never reads the clock or Math.random', () => {
    vi.spyOn(Date, 'now').mockImplementation(() => {
      throw new Error('Date.now called');
    });
    vi.spyOn(Math, 'random').mockImplementation(() => {
      throw new Error('Math.random called');
    });
    const net = new SegNet({ seed: 5, nodes: 4 });
    net.put('n1', 'q', 1);
    const t = net.request('n2', { type: 'take', key: 'q', afterId: 1 });
    net.put('n3', 'q', 2);
    net.runFor(1000);
    expect(ok(net.reply('n2', t), 'take').value).toMatchObject({ id: 2 });
    net.crash(net.ownerOf('q'));
    net.runFor(5000);
    const alive = net.liveIds()[0]!;
    expect(ok(net.take(alive, 'q'), 'take after crash').value).toMatchObject({ id: 1 });
  });

  it('drops and counts malformed peer messages without throwing', () => {
    const s = new Segments('a', {}, new SeededRng(1));
    const out: SegOut[] = [];
    s.handle({ type: 'members', view: viewOf(['a', 'b']) }, 1000, out);
    for (const msg of [null, 42, { type: 'seg.req' }, { type: 'seg.ops', key: 'q', b: [1, 'b'], seq: 1, ops: [{ k: 'x' }] }, { type: 'nope' }]) {
      expect(() => s.handle({ type: 'message', from: 'b', msg: msg as never }, 1001, out)).not.toThrow();
    }
    expect(s.stats().invalidMessages).toBe(5);
    expect(out.filter((e) => e.type === 'send')).toHaveLength(0);
  });

  it('answers stale and duplicate protocol messages harmlessly', () => {
    const net = new SegNet({ seed: 5, nodes: 3, duplicate: 0.5 });
    for (let i = 0; i < 20; i++) ok(net.put('n0', 'd', i), `put ${i}`);
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) ids.push((ok(net.take('n1', 'd'), `take ${i}`).value as SegItem).id);
    expect(ids).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    // a late ack for an unknown ballot and a release for a newer ballot do nothing
    net.handle('n2', { type: 'message', from: 'n0', msg: { type: 'seg.ack', key: 'd', b: [99, 'n0'], seq: 5, ok: true } });
    net.handle('n2', { type: 'message', from: 'n0', msg: { type: 'seg.release', key: 'zz', b: [1, 'n0'] } });
    expect(ok(net.put('n2', 'd', 'again'), 'put').value).toBe(21);
  });

  it('persists its copy and restores it with load; a node reloading keeps ids increasing', () => {
    const net = new SegNet({ seed: 5, nodes: ['solo'] });
    net.put('solo', 'p', 'a');
    net.put('solo', 'p', 'b');
    net.take('solo', 'p');
    net.crash('solo');
    net.runFor(100);
    net.restart('solo');
    expect(net.seg('solo').queues()).toMatchObject([{ key: 'p', items: [{ id: 2, value: 'b' }] }]);
    expect(ok(net.put('solo', 'p', 'c'), 'put after restart').value).toBe(3);
    expect(ok(net.take('solo', 'p'), 'take').value).toMatchObject({ id: 2, value: 'b' });
    // a malformed stored record is skipped and counted
    const s = new Segments('x', {}, new SeededRng(2));
    s.handle({ type: 'load', records: [{ key: 'bad' }, 7] as never }, 0, []);
    expect(s.stats().invalidRecords).toBe(2);
  });

  it('places keys on the placement without its away members; the same placement again changes nothing', () => {
    const s = new Segments('a', {}, new SeededRng(3));
    const out: SegOut[] = [];
    s.handle({ type: 'members', view: viewOf(['a', 'b', 'c'], ['c']) }, 1000, out);
    expect(s.members()).toEqual(['a', 'b']);
    const before = s.stats().placementChanges;
    const again: SegOut[] = [];
    s.handle({ type: 'members', view: viewOf(['c', 'b', 'a'], ['c']) }, 1001, again);
    expect(again).toEqual([]);
    expect(s.stats().placementChanges).toBe(before);
    s.handle({ type: 'members', view: viewOf(['a', 'b', 'c']) }, 1002, out);
    expect(s.members()).toEqual(['a', 'b', 'c']);
  });

  it('refuses ballots too far ahead of its clock: a peer naming an epoch near MAX_SAFE_INTEGER cannot lock a key', () => {
    const net = new SegNet({ seed: 5, nodes: 3 });
    ok(net.put('n0', 'q', 'a'), 'put a');
    const owner = net.ownerOf('q');
    const epoch = net.seg(owner).queues().find((q) => q.key === 'q')!.epoch;
    const peer = net.liveIds().find((id) => id !== owner)!;
    // an epoch past the clock by more than MAX_AHEAD_MS; the owner's next claim would need
    // epoch + 1, which no honest node could accept if this one were believed
    net.handle(owner, { type: 'message', from: peer, msg: { type: 'seg.ack', key: 'q', b: [epoch, owner], seq: 0, ok: false, promised: [Number.MAX_SAFE_INTEGER, peer] } });
    net.handle(owner, { type: 'message', from: peer, msg: { type: 'seg.claim', key: 'q', b: [Number.MAX_SAFE_INTEGER - 1, peer] } });
    expect(net.seg(owner).stats().ballotsAheadRefused).toBe(2);
    expect(net.seg(owner).stats().ballotsLost).toBe(0);
    expect(ok(net.put('n1', 'q', 'b'), 'put b').value).toBe(2);
    expect(ok(net.take('n2', 'q'), 'take').value).toMatchObject({ id: 1, value: 'a' });
    expect(net.seg(owner).queues().find((q) => q.key === 'q')!.epoch).toBe(epoch);
  });

  it('holds at most maxKeys queues: a put naming one more fails with a clear error, peers cannot add more by replica writes', () => {
    const net = new SegNet({ seed: 6, nodes: 3, config: { maxKeys: 5 } });
    const errors: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = net.put('n0', `q${i}`, i);
      if (!r?.ok) errors.push(err(r, `put q${i}`));
    }
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]).toMatch(/already holds 5 segments, its limit/);
    for (const id of net.liveIds()) expect(net.seg(id).queues().length).toBeLessThanOrEqual(5);
    // a peer naming 100 new keys in replica writes adds none of them
    const victim = 'n1';
    const before = net.seg(victim).queues().length;
    for (let i = 0; i < 100; i++) {
      net.handle(victim, { type: 'message', from: 'n2', msg: { type: 'seg.ops', key: `flood${i}`, b: [Math.floor(net.now), 'n2'], seq: 1, ops: [] } });
    }
    expect(net.seg(victim).queues().length).toBe(before);
    expect(net.seg(victim).stats().keyCapRefused).toBeGreaterThanOrEqual(100);
    // the queues it holds keep working
    const held = net.seg('n0').queues().map((q) => q.key);
    expect(held.length).toBeGreaterThan(0);
    ok(net.put('n0', held[0]!, 'more'), 'put to a held queue');
  });

  it('epochs are wall-clock ms, raised by one past a higher known ballot', () => {
    const net = new SegNet({ seed: 5, nodes: 3 });
    ok(net.put('n0', 'e', 'a'), 'put');
    const owner = net.ownerOf('e');
    const q = net.seg(owner).queues().find((x) => x.key === 'e')!;
    expect(q.epoch).toBeGreaterThanOrEqual(Math.floor(net.now) - 5_000);
    expect(q.epoch).toBeLessThanOrEqual(Math.floor(net.now));
  });

  it('queues() shows items, waiting calls, owner and epoch', () => {
    const net = new SegNet({ seed: 5, nodes: 3 });
    net.put('n0', 'ui', 'x');
    const owner = net.ownerOf('ui');
    net.request('n1', { type: 'take', key: 'ui', afterId: 1 });
    net.runFor(500);
    const view = net.seg(owner).queues();
    expect(view).toEqual([{ key: 'ui', items: [{ id: 1, value: 'x' }], waiting: 1, owner, epoch: expect.any(Number) }]);
    // replicas show the same items
    for (const id of net.seg(owner).replicas('ui')) expect(net.seg(id).queues()[0]?.items).toEqual([{ id: 1, value: 'x' }]);
  });
});
