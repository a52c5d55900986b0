/**
 * How a node persists its copies: a head per key and pages of items and request-table
 * entries (messages.ts, SegHead / SegPage), so that one operation on a long queue writes a
 * page or two rather than the whole queue; what a restart loads back; records written
 * before pages; records that do not belong.
 */
import { describe, expect, it } from 'vitest';
import { viewOf } from '../placement';
import { SeededRng } from '../rng';
import { SegNet } from '../../sim/segments';
import { Segments } from './segments';
import { isSegPage, PAGE_SIZE, storageKey, validateSegMessage, validateSegRecord, type SegRecord } from './messages';
import type { SegOut, SegReply } from './types';
import { copiesOf, expectDisksHoldCopies } from './workload';

function ok(r: SegReply | undefined, what: string): Extract<SegReply, { ok: true }> {
  if (!r?.ok) throw new Error(`${what}: ${r ? r.error : 'no reply'}`);
  return r;
}

/** A node alone, its copy of every key local: each call completes within its handle(). */
function solo(): { s: Segments; call: (input: Record<string, unknown>) => SegOut[] } {
  const s = new Segments('solo', {}, new SeededRng(1));
  s.handle({ type: 'members', view: viewOf(['solo']) }, 1000, []);
  let req = 0;
  let now = 1000;
  return {
    s,
    call(input) {
      const out: SegOut[] = [];
      s.handle({ ...input, req: ++req } as never, ++now, out);
      const reply = out.find((e) => e.type === 'reply');
      if (!reply || !reply.ok) throw new Error(`call ${JSON.stringify(input)}: ${JSON.stringify(reply)}`);
      return out;
    },
  };
}

const persisted = (out: SegOut[]): { put: SegRecord[]; remove: string[] } => {
  const p = out.filter((e): e is Extract<SegOut, { type: 'persist' }> => e.type === 'persist');
  return { put: p.flatMap((e) => e.put), remove: p.flatMap((e) => e.remove) };
};

/** The request table of the copy of `key`, with the page each entry is stored in. */
function table(net: SegNet, id: string, key: string): unknown[] {
  const rep = copiesOf(net, id).get(key)!;
  return [...rep.done].map(([dk, d]) => [dk, d.kind, d.id, d.at, d.value, d.restored, Math.floor(d.n / PAGE_SIZE)]);
}

describe('segment persistence in pages', () => {
  it('an operation on a queue of 500 items writes its head and the pages it touched, not the queue', () => {
    const { call } = solo();
    for (let i = 0; i < 500; i++) call({ type: 'put', key: 'q', value: `v${i}` });
    const put = persisted(call({ type: 'put', key: 'q', value: 'last' }));
    // the head, the page of item 501, the page of the put's request-table entry
    expect(put.put.map((r) => storageKey(r)).sort()).toEqual(['q', 'q\0d7', 'q\0i7']);
    expect(put.put.reduce((n, r) => n + r.items.length + r.done.length, 0)).toBeLessThanOrEqual(2 * PAGE_SIZE);
    const take = persisted(call({ type: 'take', key: 'q', afterId: 0 }));
    expect(take.put.map((r) => storageKey(r)).sort()).toEqual(['q', 'q\0d7', 'q\0i0']);
    const head = take.put.find((r) => !isSegPage(r))!;
    expect(head.items).toEqual([]);
    expect(head.done).toEqual([]);
  });

  it('a restart loads every item and request-table entry back, after takes, updates and expiry across pages; emptied pages are removed', () => {
    const net = new SegNet({ seed: 3, nodes: ['solo'], config: { maxDone: 150 } });
    for (let i = 0; i < 300; i++) ok(net.put('solo', 'q', `v${i}`), `put ${i}`);
    for (let i = 0; i < 130; i++) ok(net.take('solo', 'q'), `take ${i}`);
    for (let i = 0; i < 20; i++) ok(net.update('solo', 'q', `u${i}`), `update ${i}`);
    ok(net.put('solo', 'other', { nested: [1, 2] }), 'put other');
    expectDisksHoldCopies(net, 3);
    // the first two item pages are taken empty, and the oldest request-table pages expired
    const disk = net.disk('solo');
    expect(disk.has('q\0i0')).toBe(false);
    expect(disk.has('q\0i1')).toBe(false);
    expect(disk.has('q\0d0')).toBe(false);
    const items = net.seg('solo').queues();
    const done = table(net, 'solo', 'q');
    expect(done.length).toBe(150);
    net.crash('solo');
    net.restart('solo');
    expect(net.seg('solo').queues()).toEqual(items);
    expect(table(net, 'solo', 'q')).toEqual(done);
    // the request table still answers, and ids go on from where they were
    expect(ok(net.put('solo', 'q', 'after'), 'put after restart').value).toBe(321);
    expectDisksHoldCopies(net, 3);
  });

  it('a record from before pages (items and table in the record) loads, and is written back as a head and pages', () => {
    const s = new Segments('solo', {}, new SeededRng(2));
    const legacy = {
      key: 'old',
      promised: [5, 'solo'],
      acc: [5, 'solo'],
      seq: 3,
      lastId: 100,
      items: Array.from({ length: 100 }, (_, i) => [i + 1, `v${i + 1}`]),
      done: [['x|1', 0, 100, 4, null, 0]],
    };
    expect(validateSegRecord(legacy)).toBeNull();
    const out: SegOut[] = [];
    s.handle({ type: 'load', records: [legacy] as never }, 1000, out);
    const { put, remove } = persisted(out);
    expect(remove).toEqual([]);
    expect(put.map((r) => storageKey(r)).sort()).toEqual(['old', 'old\0d0', 'old\0i0', 'old\0i1']);
    expect(put.find((r) => r.key === 'old' && !isSegPage(r))).toMatchObject({ acc: [5, 'solo'], seq: 3, lastId: 100, items: [], done: [] });
    // what was written loads back to the same queue
    const again = new Segments('solo', {}, new SeededRng(3));
    again.handle({ type: 'load', records: put as never }, 1000, []);
    expect(again.queues()).toEqual(s.queues());
    expect(again.queues()[0]!.items).toHaveLength(100);
  });

  it('pages that do not belong are refused or removed: an id outside its page, an items page with table entries, a page without its head', () => {
    expect(validateSegRecord({ key: 'q', page: ['i', 1], items: [[3, 'x']], done: [] })).toMatch(/outside 64\.\.127/);
    expect(validateSegRecord({ key: 'q', page: ['i', 0], items: [], done: [['x|1', 0, 1, 1, null, 0]] })).toMatch(/items page/);
    expect(validateSegRecord({ key: 'q', page: ['d', 0], items: [[1, 'x']], done: [] })).toMatch(/request-table page/);
    expect(validateSegRecord({ key: 'q', page: ['i', 0], items: Array.from({ length: PAGE_SIZE + 1 }, (_, i) => [i, 'x']), done: [] })).not.toBeNull();
    const s = new Segments('solo', {}, new SeededRng(4));
    const out: SegOut[] = [];
    const orphan = { key: 'gone', page: ['i', 0], items: [[1, 'x']], done: [] };
    const bad = { key: 'q', page: ['i', 1], items: [[3, 'x']], done: [] };
    s.handle({ type: 'load', records: [orphan, bad] as never }, 1000, out);
    expect(s.stats().invalidRecords).toBe(1);
    expect(persisted(out)).toEqual({ put: [], remove: ['gone\0i0'] });
    expect(s.queues()).toEqual([]);
  });

  it('keys with U+0000 are refused, by the API and on the wire (pages are stored under key + U+0000)', () => {
    const { s } = solo();
    const out: SegOut[] = [];
    s.handle({ type: 'put', req: 1, key: 'a\0i0', value: 1 }, 2000, out);
    expect(out.find((e) => e.type === 'reply')).toMatchObject({ ok: false, error: 'segment key must not contain U+0000' });
    expect(validateSegMessage({ type: 'seg.nudge', key: 'a\0i0', acc: [1, 'x'] })).toMatch(/U\+0000/);
  });
});
