/**
 * Watches (watch.ts) on the simulator's KvNet: a watcher sees every acknowledged write
 * under its prefix once per version, across replica crashes, restarts and joins; an idle
 * watch sends nothing; notes lost with a member are caught up from the replicas; a watcher
 * that does not keep up, or whose catch-up cannot complete, gets `watchResync`, and the
 * notifier's buffer stays bounded.
 */
import { describe, expect, it } from 'vitest';
import { KvNet } from '../../sim/kv';
import { viewOf } from '../placement';
import { compareVersions, type Entry, type KvConfig, type Version } from './types';
import { WATCH_BUFFER } from './watch';

const CONFIG: Partial<KvConfig> = {
  requestTimeoutMs: 3000,
  hintAfterMs: 1000,
  antiEntropyIntervalMs: 2000,
  handoffRetryMs: 500,
  handoffBatch: 20,
};

interface Seen {
  entries: Map<string, Entry[]>;
  resyncs: string[];
}

function record(net: KvNet, watcher: string): Seen {
  const seen: Seen = { entries: new Map(), resyncs: [] };
  net.onEvent((node, e) => {
    if (node !== watcher) return;
    if (e.type === 'watch') {
      const list = seen.entries.get(e.entry.key) ?? [];
      list.push(e.entry);
      seen.entries.set(e.entry.key, list);
    } else if (e.type === 'watchResync') seen.resyncs.push(e.reason);
  });
  return seen;
}

/** The newest version of `key` on any live node: right after an acknowledged write with no other write in flight, that write's version. */
function newestVersion(net: KvNet, key: string): Version {
  let best: Version | undefined;
  for (const id of net.liveIds()) {
    const v = net.store(id).localEntry(key)?.version;
    if (v && (!best || compareVersions(v, best) > 0)) best = v;
  }
  if (!best) throw new Error(`acknowledged ${key} is on no live node`);
  return best;
}

const show = (v: Version) => `${v.ts}@${v.node}`;

describe.each([
  { loss: 0, duplicate: 0 },
  { loss: 0.03, duplicate: 0.02 },
])('watch under replica churn (loss $loss)', ({ loss, duplicate }) => {
  it.each([1, 2, 3, 4])('every acknowledged write is seen once per version, in version order (seed %i)', (seed) => {
    const net = new KvNet({ seed, nodes: 7, config: CONFIG, latency: [1, 40], loss, duplicate, detection: [300, 1500] });
    // n0 watches; n1 and n2 write and never crash; every other node is a replica that may crash, restart or join
    const seen = record(net, 'n0');
    expect(net.watch('n0', ['w/']).ok).toBe(true);
    const keys = Array.from({ length: 20 }, (_, i) => `w/${i}`);
    const acked = new Map<string, Version[]>(keys.map((k) => [k, []]));
    const log: string[] = [];
    let next = 7;
    for (let round = 0; round < 120; round++) {
      const r = net.rng.next();
      const victims = net.liveIds().filter((id) => !['n0', 'n1', 'n2'].includes(id));
      if (r < 0.7) {
        const key = keys[Math.floor(net.rng.next() * keys.length)]!;
        const writer = net.rng.next() < 0.5 ? 'n1' : 'n2';
        const del = net.rng.next() < 0.15;
        const reply = del ? net.del(writer, key) : net.put(writer, key, { round });
        // a write outside the prefix must not reach the watcher
        if (round % 10 === 0) net.put(writer, `other/${round}`, round);
        if (reply.ok) acked.get(key)!.push(newestVersion(net, key));
      } else if (r < 0.8 && victims.length > 2) {
        const v = victims[Math.floor(net.rng.next() * victims.length)]!;
        log.push(`t=${net.now} crash ${v}`);
        net.crash(v);
        net.runFor(2000);
      } else if (r < 0.9) {
        const dead = net.allIds().filter((id) => !net.isAlive(id));
        const id = dead.length > 0 && net.rng.next() < 0.5 ? dead[0]! : `n${next++}`;
        log.push(`t=${net.now} start ${id}`);
        net.restart(id);
        net.runFor(2000);
      } else net.runFor(300);
    }
    net.config.lossRate = 0;
    net.runFor(10_000);
    const context = `seed ${seed}\n${log.join('\n')}`;
    expect([...seen.entries.keys()].filter((k) => !k.startsWith('w/')), context).toEqual([]);
    // nothing the watcher heard of came from a crashed member
    expect(seen.resyncs, context).toEqual([]);
    for (const key of keys) {
      const got = (seen.entries.get(key) ?? []).map((e) => e.version);
      for (let i = 1; i < got.length; i++) expect(compareVersions(got[i]!, got[i - 1]!), `${key} ${got.map(show)} ${context}`).toBe(1);
      const want = acked.get(key)!;
      if (want.length > 0) expect(show(got[got.length - 1]!), `${key}: last acknowledged version delivered. ${context}`).toBe(show(want[want.length - 1]!));
      if (loss === 0) {
        // no loss: nothing superseded in flight, so every acknowledged version exactly once
        expect(got.map(show), `${key} ${context}`).toEqual(want.map(show));
      } else {
        // under loss a note retried after a newer one arrived is skipped (version order)
        for (const v of got) expect(want.map(show), `${key} ${context}`).toContain(show(v));
      }
    }
  });
});

describe('watch cost and limits', () => {
  it('an idle watch sends nothing, and writes outside the prefix send nothing', () => {
    const net = new KvNet({ seed: 7, nodes: 6, config: { ...CONFIG, antiEntropyIntervalMs: 60_000 } });
    expect(net.watch('n0', ['users/']).ok).toBe(true);
    net.runFor(5000);
    const watchSent = () => {
      let n = 0;
      for (const id of net.liveIds()) {
        const sent = net.store(id).counters().sent;
        n += (sent['kv.watch'] ?? 0) + (sent['kv.watchAck'] ?? 0) + (sent['kv.note'] ?? 0) + (sent['kv.noteAck'] ?? 0);
      }
      return n;
    };
    const before = watchSent();
    // registration: one kv.watch and one ack per other member
    expect(before).toBe(2 * 5);
    net.runFor(120_000);
    for (let i = 0; i < 10; i++) expect(net.put(`n${1 + (i % 5)}`, `orders/${i}`, i).ok).toBe(true);
    net.runFor(5000);
    expect(watchSent()).toBe(before);
    // one matching write: one note to the one watcher, one ack back
    expect(net.put('n3', 'users/ada', 1).ok).toBe(true);
    net.runFor(5000);
    expect(watchSent()).toBe(before + 2);
  });

  it('a watcher that cannot keep up gets watchResync; the notifier holds at most WATCH_BUFFER notes', () => {
    const net = new KvNet({ seed: 8, nodes: 5, config: CONFIG });
    const seen = record(net, 'n0');
    expect(net.watch('n0', ['']).ok).toBe(true);
    net.runFor(2000);
    net.block('n1', 'n0');
    let maxPending = 0;
    for (let i = 0; i < WATCH_BUFFER + 200; i++) {
      expect(net.put('n1', `k/${i}`, i).ok).toBe(true);
      maxPending = Math.max(maxPending, net.store('n1').stats().watchPending);
    }
    expect(maxPending).toBeLessThanOrEqual(WATCH_BUFFER);
    expect(seen.resyncs).toEqual([]);
    net.block('n1', 'n0', false);
    net.runFor(5000);
    expect(seen.resyncs).toEqual(['overflow']);
    expect(net.store('n1').stats().watchPending).toBe(0);
    // after the resync, notes flow again
    expect(net.put('n1', 'k/after', 1).ok).toBe(true);
    net.runFor(1000);
    expect(seen.entries.get('k/after')?.map((e) => e.value)).toEqual([1]);
  });

  it('a notifying member that crashes with notes the watcher never got: the watcher catches them up from the replicas, no resync', () => {
    const net = new KvNet({ seed: 9, nodes: 5, config: CONFIG });
    const seen = record(net, 'n0');
    expect(net.watch('n0', ['a/']).ok).toBe(true);
    expect(net.put('n2', 'a/1', 1).ok).toBe(true);
    net.runFor(1000);
    expect(seen.entries.get('a/1')?.length).toBe(1);
    // n2's next notes never reach n0, then n2 crashes with them: the writes are on their replicas
    net.block('n2', 'n0');
    expect(net.put('n2', 'a/2', 2).ok).toBe(true);
    expect(net.del('n2', 'a/1').ok).toBe(true);
    expect(net.put('n2', 'b/1', 1).ok).toBe(true);
    net.runFor(500);
    expect(seen.entries.get('a/2')).toBeUndefined();
    net.crash('n2');
    net.runFor(3000);
    expect(seen.entries.get('a/2')?.map((e) => e.value)).toEqual([2]);
    expect(seen.entries.get('a/1')?.map((e) => e.deleted)).toEqual([false, true]);
    expect(seen.entries.has('b/1')).toBe(false);
    expect(seen.resyncs).toEqual([]);
    expect(net.store('n0').counters().watchCatchUps).toBe(1);
    // a member that never notified n0 crashing costs nothing
    net.crash('n3');
    net.runFor(3000);
    expect(net.store('n0').counters().watchCatchUps).toBe(1);
    expect(seen.resyncs).toEqual([]);
  });

  it('a catch-up some member does not answer ends in watchResync: the application re-lists', () => {
    const net = new KvNet({ seed: 12, nodes: 5, config: CONFIG });
    const seen = record(net, 'n0');
    expect(net.watch('n0', ['a/']).ok).toBe(true);
    expect(net.put('n2', 'a/1', 1).ok).toBe(true);
    net.runFor(1000);
    // n4's answers never reach n0 (n4 stays in n0's view): the catch-up cannot complete
    net.block('n4', 'n0');
    net.crash('n2');
    net.runFor(CONFIG.requestTimeoutMs! + 2000);
    expect(seen.resyncs).toEqual(['member-lost']);
  });

  it('a notifier that declared the watcher gone and sees it again keeps notifying it, though the watcher saw nothing', () => {
    const net = new KvNet({ seed: 11, nodes: 5, config: CONFIG });
    const seen = record(net, 'n0');
    expect(net.watch('n0', ['a/']).ok).toBe(true);
    net.runFor(1000);
    const all = net.allIds();
    // n3 declares n0 dead for a moment (n0 stays in placement, away); n0's own view is unchanged
    net.input('n3', { type: 'members', view: viewOf(all, ['n0']) });
    net.runFor(100);
    expect(net.put('n3', 'a/1', 1).ok).toBe(true);
    net.input('n3', { type: 'members', view: viewOf(all) });
    net.runFor(2000);
    expect(seen.entries.get('a/1')?.map((e) => e.value)).toEqual([1]);
    expect(seen.resyncs).toEqual([]);
    // n3 drops n0 from placement altogether and writes: that note is never sent
    net.input('n3', { type: 'members', view: viewOf(all.filter((id) => id !== 'n0')) });
    net.runFor(100);
    expect(net.store('n3').watchers()).toEqual([]);
    expect(net.put('n3', 'a/missed', 3).ok).toBe(true);
    net.runFor(1000);
    expect(seen.entries.has('a/missed')).toBe(false);
    // n3 sees n0 again: n0 registers again and catches up what n3 wrote meanwhile
    net.input('n3', { type: 'members', view: viewOf(all) });
    net.runFor(2000);
    expect(seen.entries.get('a/missed')?.map((e) => e.value)).toEqual([3]);
    expect(seen.resyncs).toEqual([]);
    expect(net.store('n3').watchers()).toEqual(['n0']);
    expect(net.put('n3', 'a/2', 2).ok).toBe(true);
    net.runFor(1000);
    expect(seen.entries.get('a/2')?.map((e) => e.value)).toEqual([2]);
  });

  it('rejects more than 16 prefixes or an over-long prefix, keeping the previous set', () => {
    const net = new KvNet({ seed: 10, nodes: 3, config: CONFIG });
    expect(net.watch('n0', ['a/']).ok).toBe(true);
    const many = net.watch('n0', Array.from({ length: 17 }, (_, i) => `p${i}/`));
    expect(many.ok).toBe(false);
    expect(net.watch('n0', ['x'.repeat(300)]).ok).toBe(false);
    expect(net.store('n0').watchedPrefixes()).toEqual(['a/']);
    net.runFor(2000);
    expect(net.store('n1').watchers()).toEqual(['n0']);
    expect(net.watch('n0', []).ok).toBe(true);
    net.runFor(2000);
    expect(net.store('n1').watchers()).toEqual([]);
  });
});

describe('watch notes under pipelined writes', () => {
  it.each([1, 2, 3])('writes coordinated in one turn reach each watcher as one note, every one delivered once (seed %i)', (seed) => {
    const net = new KvNet({ seed, nodes: 6, config: { ...CONFIG, deferFlush: true, handoffBatch: 500 }, latency: [1, 30], loss: 0 });
    const watchers = ['n3', 'n4'];
    const seen = watchers.map((w) => record(net, w));
    for (const w of watchers) expect(net.watch(w, ['p/']).ok).toBe(true);
    const notesBefore = net.store('n0').stats().sent['kv.note'] ?? 0;
    const reqs = Array.from({ length: 150 }, (_, i) => net.request('n0', { type: 'put', key: `p/${i}`, value: i }));
    expect(net.runUntilTrue(() => reqs.every((r) => net.reply('n0', r) !== undefined), 10_000)).toBe(true);
    net.runFor(3000);
    // one note per watcher per turn of acknowledgements, not 150 each
    const notes = (net.store('n0').stats().sent['kv.note'] ?? 0) - notesBefore;
    expect(notes, `seed ${seed}`).toBeLessThanOrEqual(2 * 10);
    for (const s of seen) {
      expect(s.resyncs).toEqual([]);
      for (let i = 0; i < 150; i++) expect(s.entries.get(`p/${i}`)?.map((e) => e.value), `seed ${seed} p/${i}`).toEqual([i]);
    }
    // and the notifier holds nothing unacknowledged
    expect(net.store('n0').stats().watchPending).toBe(0);
  });
});
