import { describe, expect, it } from 'vitest';
import { SeededRng } from '../rng';
import { AgedMap } from './aged-map';
import { validatePlumtreeMessage, type PtGossip, type PtMessage } from './messages';
import { Plumtree, type PlumtreeConfig, type PtIn, type PtOut } from './plumtree';

const cfg: Partial<PlumtreeConfig> = { graftTimeout1Ms: 100, graftTimeout2Ms: 50, ihaveBatchDelayMs: 10, optimizationThreshold: 4 };

function make(me = 'me', config: Partial<PlumtreeConfig> = cfg, seed = 1) {
  const pt = new Plumtree(me, config, new SeededRng(seed));
  const step = (input: PtIn, now = 0): PtOut[] => {
    const out: PtOut[] = [];
    pt.handle(input, now, out);
    return out;
  };
  return { pt, step };
}

const sends = (out: PtOut[]) => out.filter((e) => e.type === 'send') as Extract<PtOut, { type: 'send' }>[];
const timers = (out: PtOut[]) => out.filter((e) => e.type === 'timer') as Extract<PtOut, { type: 'timer' }>[];
const delivers = (out: PtOut[]) => out.flatMap((e) => (e.type === 'event' ? [e.event] : []));
/** A well-formed message id of origin 'o'. */
const I = (n: string | number) => `o:t:${n}`;
const gossip = (n: string, round: number): PtGossip => ({ type: 'pt.gossip', id: I(n), origin: 'o', round, kind: 'k', data: { v: n } });
const PRUNE = { type: 'pt.prune', origin: 'o' } as const;
const msg = (from: string, m: PtMessage): PtIn => ({ type: 'message', from, msg: m });

describe('Plumtree anti-entropy period', () => {
  it('doubles while nothing new arrives (5 s up to 40 s) and is back at 5 s after a new chat message', () => {
    const { step } = make('me', { ...cfg, antiEntropyIntervalMs: 5000 });
    const tickDelay = (out: PtOut[]) => timers(out).find((t) => t.timer.type === 'pt.aeTick')?.delayMs;
    expect(tickDelay(step({ type: 'neighborUp', peer: 'p' }, 0))).toBe(5000);
    const delays: (number | undefined)[] = [];
    let now = 0;
    for (let i = 0; i < 6; i++) {
      now += 1000;
      const out = step({ type: 'timer', timer: { type: 'pt.aeTick' } }, now);
      expect(sends(out).map((s) => s.msg.type)).toEqual(['pt.aeSum']);
      delays.push(tickDelay(out));
    }
    expect(delays).toEqual([5000, 10_000, 20_000, 40_000, 40_000, 40_000]);
    step({ type: 'broadcast', kind: 'chat', data: 'news' }, now + 1);
    expect(tickDelay(step({ type: 'timer', timer: { type: 'pt.aeTick' } }, now + 2))).toBe(5000);
  });
});

describe('Plumtree', () => {
  it('delivers its own broadcast locally with hops 0 and pushes it to eager peers with round 1', () => {
    const { pt, step } = make();
    step({ type: 'neighborUp', peer: 'a' });
    step({ type: 'neighborUp', peer: 'b' });
    const out = step({ type: 'broadcast', kind: 'chat', data: 'hi' });
    const [d] = delivers(out);
    expect(d).toMatchObject({ origin: 'me', kind: 'chat', data: 'hi', hops: 0, from: 'me' });
    expect(sends(out).map((s) => s.to).sort()).toEqual(['a', 'b']);
    expect(sends(out)[0]!.msg).toMatchObject({ type: 'pt.gossip', id: d!.id, origin: 'me', round: 1 });
    expect(pt.eagerPeers()).toEqual(['a', 'b']);
  });

  it('builds ids from node id, a random tag and a counter: a restart with the same id does not reuse them', () => {
    const first = make('me', cfg, 1);
    const restarted = make('me', cfg, 2);
    const ids1 = [0, 1, 2].map(() => delivers(first.step({ type: 'broadcast', kind: 'k', data: 0 }))[0]!.id);
    const ids2 = [0, 1, 2].map(() => delivers(restarted.step({ type: 'broadcast', kind: 'k', data: 0 }))[0]!.id);
    expect(new Set([...ids1, ...ids2]).size).toBe(6);
    for (const id of [...ids1, ...ids2]) expect(id.startsWith('me:')).toBe(true);
  });

  it('forwards a first copy to the other eager peers with round + 1 and announces it to lazy peers in a batch', () => {
    const { pt, step } = make();
    for (const p of ['a', 'b', 'c']) step({ type: 'neighborUp', peer: p });
    step(msg('c', PRUNE));
    expect(pt.lazyPeers('o')).toEqual(['c']);
    const out = step(msg('a', gossip('m1', 3)));
    expect(delivers(out)).toEqual([{ type: 'deliver', id: I('m1'), origin: 'o', kind: 'k', data: { v: 'm1' }, hops: 3, from: 'a' }]);
    expect(sends(out)).toEqual([{ type: 'send', to: 'b', msg: { ...gossip('m1', 4) } }]);
    const [flush] = timers(out);
    // the batch delay, jittered up to twice it
    expect(flush).toMatchObject({ type: 'timer', timer: { type: 'pt.ihaveFlush' } });
    expect(flush!.delayMs).toBeGreaterThanOrEqual(10);
    expect(flush!.delayMs).toBeLessThanOrEqual(20);
    // A second message before the flush rides in the same IHAVE.
    const out2 = step(msg('a', gossip('m2', 1)));
    expect(timers(out2)).toEqual([]);
    const flushed = step({ type: 'timer', timer: flush!.timer }, 10);
    expect(sends(flushed)).toEqual([{ type: 'send', to: 'c', msg: { type: 'pt.ihave', entries: [[I('m1'), 4], [I('m2'), 2]] } }]);
  });

  it('does not announce a message to a lazy peer that showed it has it (its own IHAVE, or a copy) before the flush', () => {
    const { pt, step } = make();
    for (const p of ['a', 'b', 'c', 'd']) step({ type: 'neighborUp', peer: p });
    step(msg('c', PRUNE));
    step(msg('d', PRUNE));
    const out = step(msg('a', gossip('m1', 1)));
    step(msg('a', gossip('m2', 1)));
    // c announces m1 (it has it); d pushes a copy of m2
    step(msg('c', { type: 'pt.ihave', entries: [[I('m1'), 1]] }));
    step(msg('d', gossip('m2', 2)));
    const flushed = step({ type: 'timer', timer: timers(out)[0]!.timer }, 20);
    const ihaves = sends(flushed).filter((s) => s.msg.type === 'pt.ihave');
    expect(ihaves).toEqual([
      { type: 'send', to: 'c', msg: { type: 'pt.ihave', entries: [[I('m2'), 2]] } },
      { type: 'send', to: 'd', msg: { type: 'pt.ihave', entries: [[I('m1'), 2]] } },
    ]);
    expect(pt.stats().ihaveEntriesSuppressed).toBe(2);
  });

  it('answers a duplicate with PRUNE, moves the sender to lazy and delivers only once', () => {
    const { pt, step } = make();
    step({ type: 'neighborUp', peer: 'a' });
    step({ type: 'neighborUp', peer: 'b' });
    step(msg('a', gossip('m1', 1)));
    const out = step(msg('b', gossip('m1', 2)));
    expect(delivers(out)).toEqual([]);
    expect(sends(out)).toEqual([{ type: 'send', to: 'b', msg: PRUNE }]);
    expect(pt.eagerPeers('o')).toEqual(['a']);
    expect(pt.lazyPeers('o')).toEqual(['b']);
    expect(pt.stats()).toMatchObject({ delivered: 1, duplicates: 1, pruneSent: 1 });
  });

  it('moves a peer that sends a first copy back to eager (paper: sender joins the tree)', () => {
    const { pt, step } = make();
    step({ type: 'neighborUp', peer: 'a' });
    step(msg('a', PRUNE));
    expect(pt.lazyPeers('o')).toEqual(['a']);
    step(msg('a', gossip('m1', 1)));
    expect(pt.eagerPeers('o')).toEqual(['a']);
  });

  it('grafts the first announcer after graftTimeout1Ms, then the next one after graftTimeout2Ms', () => {
    const { pt, step } = make();
    for (const p of ['a', 'b']) {
      step({ type: 'neighborUp', peer: p });
      step(msg(p, PRUNE));
    }
    const out = step(msg('a', { type: 'pt.ihave', entries: [[I('m1'), 2]] }));
    expect(timers(out)).toEqual([{ type: 'timer', delayMs: 100, timer: { type: 'pt.graftTimeout', id: I('m1') } }]);
    expect(timers(step(msg('b', { type: 'pt.ihave', entries: [[I('m1'), 3]] })))).toEqual([]);

    const g1 = step({ type: 'timer', timer: { type: 'pt.graftTimeout', id: I('m1') } }, 100);
    expect(sends(g1)).toEqual([{ type: 'send', to: 'a', msg: { type: 'pt.graft', origin: 'o', ids: [I('m1')], round: 2 } }]);
    expect(timers(g1)).toEqual([{ type: 'timer', delayMs: 50, timer: { type: 'pt.graftTimeout', id: I('m1') } }]);
    expect(pt.eagerPeers('o')).toEqual(['a']);

    const g2 = step({ type: 'timer', timer: { type: 'pt.graftTimeout', id: I('m1') } }, 150);
    expect(sends(g2)).toEqual([{ type: 'send', to: 'b', msg: { type: 'pt.graft', origin: 'o', ids: [I('m1')], round: 3 } }]);

    const g3 = step({ type: 'timer', timer: { type: 'pt.graftTimeout', id: I('m1') } }, 200);
    expect(g3).toEqual([]);
    expect(pt.stats().missing).toBe(0);
  });

  it('does not graft when the message arrives before the timeout', () => {
    const { pt, step } = make();
    step({ type: 'neighborUp', peer: 'a' });
    step({ type: 'neighborUp', peer: 'b' });
    step(msg('b', PRUNE));
    step(msg('b', { type: 'pt.ihave', entries: [[I('m1'), 2]] }));
    step(msg('a', gossip('m1', 2)), 20);
    expect(step({ type: 'timer', timer: { type: 'pt.graftTimeout', id: I('m1') } }, 100)).toEqual([]);
    expect(pt.stats().graftSent).toBe(0);
  });

  it('answers a GRAFT from its cache and makes the grafter eager', () => {
    const { pt, step } = make();
    step({ type: 'neighborUp', peer: 'a' });
    step({ type: 'neighborUp', peer: 'b' });
    step(msg('b', PRUNE));
    step(msg('a', gossip('m1', 2)));
    const out = step(msg('b', { type: 'pt.graft', origin: 'o', ids: [I('m1'), I('unknown')] }));
    expect(sends(out)).toEqual([{ type: 'send', to: 'b', msg: gossip('m1', 3) }]);
    expect(pt.eagerPeers('o')).toEqual(['a', 'b']);
    expect(pt.stats().graftMisses).toBe(1);
  });

  it('forgets a neighbour that goes down: no IHAVE to it, no GRAFT to it', () => {
    const { pt, step } = make();
    for (const p of ['a', 'b', 'c']) step({ type: 'neighborUp', peer: p });
    step(msg('b', PRUNE));
    step(msg('c', PRUNE));
    const out = step(msg('a', gossip('m1', 1)));
    step(msg('b', { type: 'pt.ihave', entries: [[I('m2'), 1]] }));
    step(msg('c', { type: 'pt.ihave', entries: [[I('m2'), 1]] }));
    step({ type: 'neighborDown', peer: 'b' });
    expect(pt.lazyPeers('o')).toEqual(['c']);
    expect(sends(step({ type: 'timer', timer: timers(out)[0]!.timer }, 10)).map((s) => s.to)).toEqual(['c']);
    const g = step({ type: 'timer', timer: { type: 'pt.graftTimeout', id: I('m2') } }, 100);
    expect(sends(g).map((s) => s.to)).toEqual(['c']);
  });

  it('optimises the tree: a much shorter lazy path replaces the eager parent', () => {
    const { pt, step } = make();
    step({ type: 'neighborUp', peer: 'far' });
    step({ type: 'neighborUp', peer: 'near' });
    step(msg('near', PRUNE));
    step(msg('near', { type: 'pt.ihave', entries: [[I('m1'), 2]] }));
    const out = step(msg('far', gossip('m1', 6)), 30);
    expect(delivers(out)).toHaveLength(1);
    expect(sends(out)).toEqual([
      { type: 'send', to: 'near', msg: { type: 'pt.graft', origin: 'o', ids: [], round: 2 } },
      { type: 'send', to: 'far', msg: PRUNE },
    ]);
    expect(pt.eagerPeers('o')).toEqual(['near']);
    expect(pt.lazyPeers('o')).toEqual(['far']);
  });

  it('does not optimise below the threshold', () => {
    const { pt, step } = make();
    step({ type: 'neighborUp', peer: 'far' });
    step({ type: 'neighborUp', peer: 'near' });
    step(msg('near', PRUNE));
    step(msg('near', { type: 'pt.ihave', entries: [[I('m1'), 3]] }));
    const out = step(msg('far', gossip('m1', 6)), 30);
    expect(sends(out).filter((s) => s.msg.type !== 'pt.gossip')).toEqual([]);
    expect(pt.stats().optimizations).toBe(0);
  });

  it('ignores IHAVE and PRUNE from non-neighbours, and bounds the missing set', () => {
    const { pt, step } = make('me', { ...cfg, maxMissing: 3 });
    expect(step(msg('x', { type: 'pt.ihave', entries: [[I('m1'), 1]] }))).toEqual([]);
    step(msg('x', PRUNE));
    expect(pt.lazyPeers('o')).toEqual([]);
    step({ type: 'neighborUp', peer: 'a' });
    step(msg('a', { type: 'pt.ihave', entries: [[I('1'), 1], [I('2'), 1], [I('3'), 1], [I('4'), 1], [I('5'), 1]] }));
    expect(pt.stats().missing).toBe(3);
  });

  it('bounds the cache by count and age and the seen set by age', () => {
    const { pt, step } = make('me', { ...cfg, cacheMaxMessages: 2, cacheMaxAgeMs: 1000, seenMaxAgeMs: 5000 });
    step({ type: 'neighborUp', peer: 'a' });
    for (let i = 0; i < 3; i++) step(msg('a', gossip(`m${i}`, 1)), i);
    expect(pt.stats()).toMatchObject({ cached: 2, seen: 3 });
    expect(sends(step(msg('a', { type: 'pt.graft', origin: 'o', ids: [I('m0')] }), 3))).toEqual([]);
    expect(sends(step(msg('a', { type: 'pt.graft', origin: 'o', ids: [I('m2')] }), 4))).toHaveLength(1);
    step({ type: 'timer', timer: { type: 'pt.ihaveFlush' } }, 1500);
    expect(pt.stats()).toMatchObject({ cached: 0, seen: 3 });
    step({ type: 'timer', timer: { type: 'pt.ihaveFlush' } }, 6000);
    expect(pt.stats().seen).toBe(0);
  });

  it('splits large IHAVE batches into wire-sized messages', () => {
    // 1,100 broadcasts of one origin at once: above its default rate
    const { step } = make('me', { ...cfg, originRate: { burst: 2_000, perSec: 100 } });
    step({ type: 'neighborUp', peer: 'a' });
    step({ type: 'neighborUp', peer: 'b' });
    step(msg('b', PRUNE));
    for (let i = 0; i < 1100; i++) step(msg('a', gossip(`m${i}`, 1)));
    const out = step({ type: 'timer', timer: { type: 'pt.ihaveFlush' } }, 10);
    const sizes = sends(out).map((s) => (s.msg.type === 'pt.ihave' ? s.msg.entries.length : -1));
    expect(sizes).toEqual([512, 512, 76]);
    for (const s of sends(out)) expect(validatePlumtreeMessage(s.msg)).toBeNull();
  });
});

describe('Plumtree per-origin trees', () => {
  it('prunes a link in one origin tree only', () => {
    const { pt, step } = make();
    step({ type: 'neighborUp', peer: 'a' });
    step({ type: 'neighborUp', peer: 'b' });
    step(msg('a', PRUNE));
    expect(pt.eagerPeers('o')).toEqual(['b']);
    expect(pt.eagerPeers('p')).toEqual(['a', 'b']);
    expect(pt.eagerPeers()).toEqual(['a', 'b']);
    const out = step(msg('b', { type: 'pt.gossip', id: 'p:t:1', origin: 'p', round: 1, kind: 'k', data: 0 }));
    expect(sends(out)).toEqual([{ type: 'send', to: 'a', msg: { type: 'pt.gossip', id: 'p:t:1', origin: 'p', round: 2, kind: 'k', data: 0 } }]);
  });

  it('a neighbour that comes back is eager again in every tree', () => {
    const { pt, step } = make();
    step({ type: 'neighborUp', peer: 'a' });
    step(msg('a', PRUNE));
    step({ type: 'neighborDown', peer: 'a' });
    step({ type: 'neighborUp', peer: 'a' });
    expect(pt.eagerPeers('o')).toEqual(['a']);
  });

  it('keeps at most maxTrees trees, dropping the least recently used', () => {
    const { pt, step } = make('me', { ...cfg, maxTrees: 2 });
    step({ type: 'neighborUp', peer: 'a' });
    for (const o of ['x', 'y', 'z']) step(msg('a', { type: 'pt.prune', origin: o }));
    expect(pt.origins()).toEqual(['y', 'z']);
    expect(pt.eagerPeers('x')).toEqual(['a']);
    expect(pt.stats().trees).toBe(2);
  });
});

describe('validatePlumtreeMessage', () => {
  it('accepts every message the protocol sends', () => {
    for (const m of [
      gossip('m', 1),
      { type: 'pt.ihave', entries: [[I('m'), 2]] },
      { type: 'pt.graft', origin: 'o', ids: [I('m')], round: 3 },
      { type: 'pt.graft', origin: 'o', ids: [] },
      PRUNE,
    ]) {
      expect(validatePlumtreeMessage(m)).toBeNull();
    }
  });

  it('rejects malformed, oversized and unknown messages without throwing', () => {
    const bad: unknown[] = [
      null, undefined, 42, 'pt.prune', [], new Uint8Array(3),
      { type: 'pt.nope' },
      { type: 'pt.gossip', id: '', origin: 'o', round: 1, kind: 'k', data: 1 },
      { type: 'pt.gossip', id: 'x'.repeat(300), origin: 'o', round: 1, kind: 'k', data: 1 },
      { type: 'pt.gossip', id: I('m'), origin: 'o', round: -1, kind: 'k', data: 1 },
      { type: 'pt.gossip', id: I('m'), origin: 'o', round: 1.5, kind: 'k', data: 1 },
      { type: 'pt.gossip', id: I('m'), origin: '', round: 1, kind: 'k', data: 1 },
      { type: 'pt.gossip', id: I('m'), origin: 'o', round: 1, kind: 'k'.repeat(65), data: 1 },
      { type: 'pt.gossip', id: I('m'), origin: 'other', round: 1, kind: 'k', data: 1 },
      { type: 'pt.gossip', id: 'm', origin: 'o', round: 1, kind: 'k', data: 1 },
      { type: 'pt.gossip', id: 'o:t:', origin: 'o', round: 1, kind: 'k', data: 1 },
      { type: 'pt.gossip', id: ':t:1', origin: '', round: 1, kind: 'k', data: 1 },
      { type: 'pt.ihave', entries: [[I('m')]] },
      { type: 'pt.ihave', entries: [['m', 1]] },
      { type: 'pt.ihave', entries: 'm' },
      { type: 'pt.ihave', entries: Array.from({ length: 513 }, () => [I('m'), 1]) },
      { type: 'pt.prune' },
      { type: 'pt.graft', ids: [] },
      { type: 'pt.graft', origin: 'o', ids: [1] },
      { type: 'pt.graft', origin: 'o', ids: [I('m')], round: 'x' },
    ];
    for (const m of bad) expect(validatePlumtreeMessage(m), JSON.stringify(m)?.slice(0, 60)).not.toBeNull();
  });
});

describe('AgedMap', () => {
  it('evicts by age and by count, oldest first', () => {
    const m = new AgedMap<string, number>(100, 2);
    m.set('a', 1, 0);
    m.set('b', 2, 10);
    m.set('c', 3, 20);
    expect(m.has('a')).toBe(false);
    expect(m.evictedEarly).toBe(1);
    m.expire(110);
    expect(m.has('b')).toBe(false);
    expect(m.get('c')).toBe(3);
    m.expire(120);
    expect(m.size).toBe(0);
  });
});

describe('Plumtree admission and origin rate', () => {
  it('neither caches, delivers nor forwards a gossip the admission check refuses', () => {
    const pt = new Plumtree('me', cfg, new SeededRng(1), (m) => (m.kind === 'k' ? null : 'unknown kind'));
    const step = (input: PtIn, now = 0): PtOut[] => {
      const out: PtOut[] = [];
      pt.handle(input, now, out);
      return out;
    };
    for (const p of ['a', 'b']) step({ type: 'neighborUp', peer: p });
    const bad: PtGossip = { ...gossip('x', 1), kind: 'junk' };
    const out = step(msg('a', bad));
    expect(delivers(out)).toEqual([]);
    expect(sends(out)).toEqual([]);
    expect(pt.stats()).toMatchObject({ refused: 1, cached: 0, seen: 0 });
    // a GRAFT for it finds nothing to send
    expect(sends(step(msg('b', { type: 'pt.graft', origin: 'o', ids: [I('x')] })))).toEqual([]);
    // a valid one still goes through
    expect(delivers(step(msg('a', gossip('y', 1))))).toHaveLength(1);
  });

  it('holds one origin to originRate; other origins are not affected; the bucket refills', () => {
    const { pt, step } = make('me', { ...cfg, originRate: { burst: 10, perSec: 5 } });
    for (const p of ['a', 'b']) step({ type: 'neighborUp', peer: p });
    let delivered = 0;
    for (let i = 0; i < 1_000; i++) delivered += delivers(step(msg('a', gossip(`f${i}`, 1)), i)).length;
    // 10 at once plus 5 a second for one second
    expect(delivered).toBe(14);
    expect(pt.stats()).toMatchObject({ rateLimited: 986 });
    expect(pt.stats().cached).toBe(14);
    const other: PtGossip = { type: 'pt.gossip', id: 'p:t:1', origin: 'p', round: 1, kind: 'k', data: 1 };
    expect(delivers(step(msg('a', other), 1_000))).toHaveLength(1);
    // refused copies were not marked seen: after a refill they are accepted
    expect(delivers(step(msg('b', gossip('f999', 1)), 3_000))).toHaveLength(1);
  });
});
