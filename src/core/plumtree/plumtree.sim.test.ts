import { describe, expect, it } from 'vitest';
import type { NodeId } from '../types';
import { randInt, sample, shuffled } from '../rng';
import type { PlumtreeConfig } from './plumtree';
import { FIXED_OVERLAY, PtTally, createPlumtreeNetwork, ptNode, type PlumtreeNetwork, type PlumtreeNode } from '../../sim/plumtree';
import { linkComponents as components, randomOverlay } from '../../sim/overlay';

/**
 * Property tests of Plumtree alone on the simulator's 'fixed' links (src/sim: the test
 * lays the overlay, nodes hear neighborUp/neighborDown). Each test
 * name carries its seed; `describe` output and the thrown message repeat it.
 * Metrics as in the paper: RMR = payload sends / (n - 1) - 1 (IHAVE not counted), LDH =
 * the largest hop count at which a broadcast is delivered.
 */

interface World {
  net: PlumtreeNetwork;
  tally: PtTally;
  ids: NodeId[];
}

function world(seed: number, n: number, degree: number, config: Partial<PlumtreeConfig> = {}): World {
  const net = createPlumtreeNetwork({ seed, ...FIXED_OVERLAY });
  const tally = new PtTally();
  const ids = Array.from({ length: n }, (_, i) => `n${String(i).padStart(4, '0')}`);
  for (const id of ids) net.add(id, ptNode(id, seed, tally, config));
  for (const [a, b] of randomOverlay(ids, degree, net.rng)) net.link(a, b);
  net.runFor(10);
  return { net, tally, ids };
}

const liveIds = (w: World) => w.ids.filter((id) => w.net.isAlive(id));
const ptAt = (w: World, id: NodeId): PlumtreeNode => w.net.node(id)!;

/** `id` originates a broadcast now; returns the new message's id (its own delivery, hops 0). */
function broadcastAt(w: World, id: NodeId, kind: string, data: unknown): string {
  const node = ptAt(w, id);
  let msgId = '';
  const prev = node.onDeliver;
  node.onDeliver = (d) => {
    if (d.hops === 0) msgId = d.id;
  };
  w.net.handle(id, { type: 'broadcast', kind, data });
  node.onDeliver = prev;
  return msgId;
}

/** Broadcast from a random live node (of `from`, if given); returns the new message id. */
function broadcastFromRandom(w: World, data: unknown, from?: NodeId[]): string {
  const live = (from ?? w.ids).filter((id) => w.net.isAlive(id));
  const origin = live[randInt(w.net.rng, live.length)]!;
  const before = ptAt(w, origin).plumtree.stats().broadcasts;
  const id = broadcastAt(w, origin, 'test', data);
  expect(ptAt(w, origin).plumtree.stats().broadcasts).toBe(before + 1);
  return id;
}

/** Each live node of `origins` broadcasts once, `gap` ms apart: builds its tree. */
function everyOriginOnce(w: World, gap: number, origins: NodeId[] = w.ids): string[] {
  const out: string[] = [];
  for (const id of origins.filter((o) => w.net.isAlive(o))) {
    out.push(broadcastAt(w, id, 'warm', id));
    w.net.runFor(gap);
  }
  return out;
}

/** Sequential broadcasts from random live nodes (of `from`), `gap` ms apart; returns their ids. */
function broadcasts(w: World, count: number, gap: number, from?: NodeId[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    out.push(broadcastFromRandom(w, i, from));
    w.net.runFor(gap);
  }
  return out;
}

/** Nodes in `among` that did not deliver `id` exactly once: [missing, duplicated]. */
function deliveryErrors(w: World, ids: string[], among: NodeId[]): { missing: number; duplicated: number } {
  let missing = 0;
  let duplicated = 0;
  for (const id of ids) {
    const per = w.tally.deliveries.get(id) ?? new Map<NodeId, number>();
    for (const node of among) {
      const c = per.get(node) ?? 0;
      if (c === 0) missing++;
      if (c > 1) duplicated++;
    }
    for (const c of per.values()) if (c > 1) duplicated++;
  }
  return { missing, duplicated };
}

const rmr = (w: World, id: string, n: number) => (w.tally.payloadSends.get(id) ?? 0) / (n - 1) - 1;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const fmt = (x: number) => x.toFixed(4);

const SEEDS = [1, 2, 3, 4, 5];

describe('Plumtree on a stable overlay', () => {
  it.each(SEEDS)('300 nodes, seed %i: exactly-once delivery, RMR <= 0.05 once the trees settle, bounded LDH', (seed) => {
    const n = 300;
    const w = world(seed, n, 5);
    // An origin's first broadcast floods and prunes its tree (per-origin trees): use 40
    // origins, each warmed up once.
    const origins = sample(w.net.rng, w.ids, 40);
    const warm = everyOriginOnce(w, 20, origins);
    w.net.runFor(2000);
    const measured = broadcasts(w, 60, 200, origins);
    w.net.runFor(5000);
    const errors = deliveryErrors(w, [...warm, ...measured], w.ids);
    const rmrs = measured.map((id) => rmr(w, id, n));
    const ldhs = measured.map((id) => w.tally.ldh.get(id)!);
    console.log(
      `[plumtree stable seed=${seed}] n=${n} first broadcast per origin RMR mean=${fmt(mean(warm.map((id) => rmr(w, id, n))))}; ` +
        `settled RMR mean=${fmt(mean(rmrs))} max=${fmt(Math.max(...rmrs))} LDH mean=${mean(ldhs).toFixed(1)} max=${Math.max(...ldhs)}`,
    );
    expect(errors, `seed ${seed}`).toEqual({ missing: 0, duplicated: 0 });
    expect(mean(rmrs), `seed ${seed}`).toBeLessThanOrEqual(0.05);
    expect(Math.max(...ldhs), `seed ${seed}`).toBeLessThanOrEqual(Math.ceil(2.5 * Math.log2(n)));
    expect(w.ids.reduce((a, id) => a + ptAt(w, id).invalid, 0), `seed ${seed}`).toBe(0);
  });

  it.each([1, 2, 3])('150 nodes, seed %i: many concurrent broadcasts from all origins: exactly once, trees stay put', (seed) => {
    const n = 150;
    const w = world(seed, n, 5);
    // All origins start within 0.3 s (heartbeat-like), then 100 broadcasts/s for 3 s.
    const warm = everyOriginOnce(w, 2);
    const busy = broadcasts(w, 300, 10);
    w.net.runFor(5000);
    const rmrs = busy.map((id) => rmr(w, id, n));
    const grafts = w.ids.reduce((a, id) => a + ptAt(w, id).plumtree.stats().graftSent, 0);
    console.log(
      `[plumtree concurrent seed=${seed}] n=${n} all origins within 0.3 s, then 100 broadcasts/s: ` +
        `RMR mean=${fmt(mean(rmrs))} max=${fmt(Math.max(...rmrs))} grafts=${grafts}`,
    );
    expect(deliveryErrors(w, [...warm, ...busy], w.ids), `seed ${seed}`).toEqual({ missing: 0, duplicated: 0 });
    expect(mean(rmrs), `seed ${seed}`).toBeLessThanOrEqual(0.05);
  });
});

describe('Plumtree after crashing half the nodes', () => {
  it.each([1, 2, 3, 4])('300 nodes, seed %i: broadcasts right after the crash reach every survivor (GRAFT recovery)', (seed) => {
    const n = 300;
    const w = world(seed, n, 6);
    const origins = sample(w.net.rng, w.ids, 40);
    everyOriginOnce(w, 20, origins);
    broadcasts(w, 20, 200, origins);
    const { net } = w;
    const crashed = shuffled(net.rng, w.ids).slice(0, n / 2);
    for (const id of crashed) net.crash(id, { silent: true });
    // HyParView would refill active views from the passive view: give survivors left
    // with fewer than 3 live neighbours new links at once, and join any islands.
    const survivors = liveIds(w);
    let relinks = 0;
    for (const s of survivors) {
      for (let t = 0; t < 100 && net.neighbors(s).filter((p) => net.isAlive(p)).length < 3; t++) {
        const o = survivors[randInt(net.rng, survivors.length)]!;
        if (o !== s && !net.linked(s, o)) {
          net.link(s, o);
          relinks++;
        }
      }
    }
    const comps = components(net);
    for (let i = 1; i < comps.length; i++) net.link(comps[0]![0]!, comps[i]![0]!);
    expect(components(net), `seed ${seed}`).toHaveLength(1);
    // Failure detection takes a while: eager pushes to the dead are lost meanwhile.
    for (const id of crashed) net.detect(id, { min: 200, max: 3000 });
    const grafts0 = survivors.reduce((a, s) => a + ptAt(w, s).plumtree.stats().graftSent, 0);
    const after: string[] = [];
    for (let i = 0; i < 20; i++) {
      net.runFor(i === 0 ? 1 : 50);
      after.push(broadcastFromRandom(w, `after${i}`, origins));
    }
    net.runFor(20_000);
    const grafts = survivors.reduce((a, s) => a + ptAt(w, s).plumtree.stats().graftSent, 0) - grafts0;
    const errors = deliveryErrors(w, after, survivors);
    const m = survivors.length;
    const ldhAfter = Math.max(...after.map((id) => w.tally.ldh.get(id)!));
    // Trees of origins that did not broadcast since the crash still hold new links as
    // eager: one broadcast per origin settles them.
    everyOriginOnce(w, 20, origins);
    net.runFor(2000);
    const settled = broadcasts(w, 40, 200, origins);
    net.runFor(5000);
    const rmrs = settled.map((id) => rmr(w, id, m));
    console.log(
      `[plumtree crash seed=${seed}] n=${n} survivors=${m} relinks=${relinks} grafts=${grafts} ` +
        `post-crash RMR mean=${fmt(mean(after.map((id) => rmr(w, id, m))))} LDH max=${ldhAfter}; ` +
        `re-settled RMR mean=${fmt(mean(rmrs))} LDH mean=${mean(settled.map((id) => w.tally.ldh.get(id)!)).toFixed(1)}`,
    );
    expect(errors, `seed ${seed}`).toEqual({ missing: 0, duplicated: 0 });
    expect(grafts, `seed ${seed}`).toBeGreaterThan(0);
    expect(deliveryErrors(w, settled, survivors), `seed ${seed}`).toEqual({ missing: 0, duplicated: 0 });
    expect(mean(rmrs), `seed ${seed}`).toBeLessThanOrEqual(0.05);
  });
});

describe('Plumtree under link churn', () => {
  it.each([1, 2, 3])('200 nodes, seed %i: links replaced while broadcasting; no duplicate deliveries, nothing lost', (seed) => {
    const n = 200;
    const w = world(seed, n, 5);
    const { net } = w;
    const origins = sample(net.rng, w.ids, 30);
    everyOriginOnce(w, 10, origins);
    const during: string[] = [];
    for (let step = 0; step < 40; step++) {
      // Replace two random links every 250 ms (HyParView shuffles, evictions).
      for (let k = 0; k < 2; k++) {
        const a = w.ids[randInt(net.rng, n)]!;
        const peers = net.neighbors(a);
        if (peers.length > 3) net.unlink(a, peers[randInt(net.rng, peers.length)]!, randInt(net.rng, 200), randInt(net.rng, 200));
        const b = w.ids[randInt(net.rng, n)]!;
        net.link(a, b, randInt(net.rng, 50));
      }
      if (step % 2 === 0) during.push(broadcastFromRandom(w, `c${step}`, origins));
      net.runFor(250);
    }
    net.runFor(10_000);
    expect(components(net), `seed ${seed}`).toHaveLength(1);
    const errors = deliveryErrors(w, during, w.ids);
    console.log(`[plumtree churn seed=${seed}] n=${n} broadcasts=${during.length} missing=${errors.missing} duplicated=${errors.duplicated}`);
    expect(errors, `seed ${seed}`).toEqual({ missing: 0, duplicated: 0 });
  });
});
