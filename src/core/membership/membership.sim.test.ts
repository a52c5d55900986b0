import { describe, expect, it } from 'vitest';
import type { NodeId } from '../types';
import { randInt, sample, shuffled } from '../rng';
import { FIXED_OVERLAY, createPlumtreeNetwork, memberNode, type PlumtreeNetwork, type PlumtreeNode } from '../../sim/plumtree';
import { linkComponents as components } from '../../sim/overlay';

/**
 * Property tests of Membership over Plumtree on the simulator's 'fixed' links (the test
 * lays the overlay, as HyParView would). The seed is in each test's name and in every
 * assertion message.
 */

const idOf = (i: number) => `m${String(i).padStart(4, '0')}`;

interface Cluster {
  net: PlumtreeNetwork;
  ids: NodeId[];
  seed: number;
}

/** Nodes start 20 ms apart; each links to up to 4 random earlier nodes (HyParView join). */
function cluster(seed: number, n: number): Cluster {
  const net = createPlumtreeNetwork({ seed, ...FIXED_OVERLAY });
  const ids: NodeId[] = [];
  for (let i = 0; i < n; i++) {
    const id = idOf(i);
    net.later(i * 20, () => {
      const earlier = [...ids];
      ids.push(id);
      net.add(id, memberNode(id, seed));
      net.handle(id, { type: 'start' });
      for (const peer of sample(net.rng, earlier, 4)) net.link(id, peer, randInt(net.rng, 30));
    });
  }
  net.runUntil(n * 20);
  return { net, ids, seed };
}

const node = (c: Cluster, id: NodeId): PlumtreeNode => c.net.node(id)!;
const mem = (c: Cluster, id: NodeId) => node(c, id).membership!;
const survivors = (c: Cluster) => c.ids.filter((id) => c.net.isAlive(id));

/** Nodes among `at` whose live() differs from `expected`. */
function disagreeing(c: Cluster, at: NodeId[], expected: NodeId[]): NodeId[] {
  const want = [...expected].sort().join(',');
  return at.filter((id) => mem(c, id).live().join(',') !== want);
}

/** Keep the live overlay connected with every node at >= 2 live links (HyParView's job). */
function repairOverlay(c: Cluster): void {
  const live = survivors(c);
  for (const s of live) {
    for (let t = 0; t < 50 && c.net.neighbors(s).filter((p) => c.net.isAlive(p)).length < 2; t++) {
      const o = live[randInt(c.net.rng, live.length)]!;
      if (o !== s) c.net.link(s, o, 50);
    }
  }
  const comps = components(c.net);
  for (let i = 1; i < comps.length; i++) c.net.link(comps[0]![0]!, comps[i]![0]!, 50);
}

const totalStat = (c: Cluster, key: 'suspicionsRaised' | 'refutations' | 'deathsDeclared' | 'expired') =>
  survivors(c).reduce((a, id) => a + mem(c, id).stats()[key], 0);

describe('Membership convergence', () => {
  it.each([1, 2, 3])('150 nodes, seed %i: every node converges to the same live set; a joiner knows everyone after one round trip', (seed) => {
    const c = cluster(seed, 150);
    c.net.runFor(10_000);
    expect(disagreeing(c, c.ids, c.ids), `seed ${seed}`).toEqual([]);
    for (const id of c.ids) expect(mem(c, id).placement(), `seed ${seed}`).toEqual([...c.ids].sort());
    const convergedAt = Math.max(...c.ids.map((id) => node(c, id).lastChange));
    expect(totalStat(c, 'suspicionsRaised'), `seed ${seed}`).toBe(0);
    expect(c.ids.reduce((a, id) => a + node(c, id).invalid, 0), `seed ${seed}`).toBe(0);

    // A late joiner linked to one member: the full table arrives in one sync.
    const joinAt = c.net.now;
    c.net.add('joiner', memberNode('joiner', seed));
    c.net.handle('joiner', { type: 'start' });
    const j = node(c, 'joiner');
    c.net.link('joiner', c.ids[randInt(c.net.rng, c.ids.length)]!);
    c.net.runFor(100); // latency <= 43 ms each way
    const all = [...c.ids, 'joiner'];
    expect(j.membership!.live().length, `seed ${seed}`).toBe(all.length);
    c.net.runFor(1000);
    expect(disagreeing(c, all, all), `seed ${seed}`).toEqual([]);
    console.log(
      `[membership converge seed=${seed}] n=150 joined over 3 s, live sets equal by t=${convergedAt} ms; ` +
        `joiner saw all ${all.length} members after ${j.lastChange - joinAt} ms, all saw it within 1.1 s`,
    );
  });
});

describe('Membership failure detection', () => {
  it.each([1, 2, 3])('100 nodes, seed %i: crashed nodes are detected as dead everywhere; survivors stay alive', (seed) => {
    const c = cluster(seed, 100);
    c.net.runFor(10_000);
    expect(disagreeing(c, c.ids, c.ids), `seed ${seed}`).toEqual([]);
    const crashAt = c.net.now;
    const crashed = sample(c.net.rng, c.ids, 5);
    for (const id of crashed) c.net.crash(id, { silent: true });
    repairOverlay(c);
    for (const id of crashed) c.net.detect(id, { min: 500, max: 2000 });
    let detectedAt = -1;
    for (let t = 0; t < 20_000 && detectedAt < 0; t += 100) {
      c.net.runFor(100);
      if (disagreeing(c, survivors(c), survivors(c)).length === 0) detectedAt = c.net.now - crashAt;
    }
    c.net.runFor(2_000);
    const live = survivors(c);
    expect(disagreeing(c, live, live), `seed ${seed}`).toEqual([]);
    for (const s of live) {
      for (const x of crashed) expect(mem(c, s).get(x)?.status, `seed ${seed}: ${x} at ${s}`).toBe('dead');
      for (const y of live) expect(mem(c, s).get(y)?.status, `seed ${seed}: ${y} at ${s}`).toBe('alive');
    }
    const declared = totalStat(c, 'deathsDeclared');
    console.log(
      `[membership crash seed=${seed}] 5 of 100 crashed: all survivors agree after ${detectedAt} ms ` +
        `(detection 0.5-2 s + probe 3 s + suspect 5 s); suspicions raised=${totalStat(c, 'suspicionsRaised')} deaths declared=${declared} expiries=${totalStat(c, 'expired')}`,
    );
    expect(detectedAt, `seed ${seed}`).toBeGreaterThan(0);
    expect(totalStat(c, 'expired'), `seed ${seed}`).toBe(0);
  });

  it.each([1, 2, 3])('60 nodes, seed %i: a voluntary disconnect raises no suspicion; a false suspicion is refuted', (seed) => {
    const c = cluster(seed, 60);
    c.net.runFor(10_000);
    const x = c.ids[randInt(c.net.rng, c.ids.length)]!;
    const [y, z] = c.net.neighbors(x);
    // HyParView drops a live link: the ping is answered, nobody suspects x.
    c.net.unlink(x, y!, 10, 10);
    c.net.runFor(10_000);
    expect(totalStat(c, 'suspicionsRaised'), `seed ${seed}`).toBe(0);
    // Another link drops and the ack is lost: z suspects x, x hears it and refutes.
    const before = mem(c, x).incarnation();
    c.net.dropIf = (from, _to, msg) => from === x && (msg as { type?: string }).type === 'mem.ack';
    c.net.unlink(x, z!, 10, 10);
    c.net.runFor(15_000);
    c.net.dropIf = null;
    expect(mem(c, z!).stats().suspicionsRaised, `seed ${seed}`).toBe(1);
    expect(mem(c, x).stats().refutations, `seed ${seed}`).toBeGreaterThanOrEqual(1);
    for (const id of c.ids) {
      const info = mem(c, id).get(x);
      expect(info?.status, `seed ${seed}: ${x} at ${id}`).toBe('alive');
      expect(info!.incarnation, `seed ${seed}`).toBeGreaterThan(before);
    }
    expect(disagreeing(c, c.ids, c.ids), `seed ${seed}`).toEqual([]);
  });
});

describe('Membership leave, restart and partitions', () => {
  it.each([1, 2])('80 nodes, seed %i: a graceful leave is seen as left everywhere without suspicion', (seed) => {
    const c = cluster(seed, 80);
    c.net.runFor(10_000);
    const x = c.ids[randInt(c.net.rng, c.ids.length)]!;
    c.net.handle(x, { type: 'leave' });
    c.net.runFor(20);
    c.net.crash(x, { detectDelay: { min: 50, max: 300 } });
    repairOverlay(c);
    c.net.runFor(10_000);
    const live = survivors(c);
    for (const s of live) expect(mem(c, s).get(x)?.status, `seed ${seed}: at ${s}`).toBe('left');
    expect(totalStat(c, 'suspicionsRaised'), `seed ${seed}`).toBe(0);
    expect(disagreeing(c, live, live), `seed ${seed}`).toEqual([]);
  });

  it.each([1, 2])('80 nodes, seed %i: a crashed node reloaded with the same id comes back', (seed) => {
    const c = cluster(seed, 80);
    c.net.runFor(10_000);
    const x = c.ids[randInt(c.net.rng, c.ids.length)]!;
    const oldIncarnation = mem(c, x).incarnation();
    c.net.crash(x, { silent: true });
    repairOverlay(c);
    c.net.detect(x, { min: 200, max: 1000 });
    c.net.runFor(12_000);
    for (const s of survivors(c)) expect(mem(c, s).get(x)?.status, `seed ${seed}`).toBe('dead');
    c.net.restart(x, memberNode(x, seed + 1000));
    c.net.handle(x, { type: 'start' });
    const reloaded = node(c, x);
    for (const p of sample(c.net.rng, survivors(c).filter((s) => s !== x), 3)) c.net.link(x, p, 20);
    c.net.runFor(3_000);
    expect(reloaded.membership!.incarnation(), `seed ${seed}`).toBeGreaterThan(oldIncarnation);
    expect(disagreeing(c, c.ids, c.ids), `seed ${seed}`).toEqual([]);
  });

  it.each([1, 2])('80 nodes, seed %i: after a partition heals, both sides agree on everyone again', (seed) => {
    const c = cluster(seed, 80);
    c.net.runFor(10_000);
    const half = new Set(shuffled(c.net.rng, c.ids).slice(0, 40));
    const side = (id: NodeId) => half.has(id);
    // Cut every link across: each side detects failures, suspects and kills the other.
    const cut: [NodeId, NodeId][] = [];
    for (const a of c.ids) for (const b of c.net.neighbors(a)) if (a < b && side(a) !== side(b)) cut.push([a, b]);
    c.net.dropIf = (from, to) => side(from) !== side(to);
    for (const [a, b] of cut) c.net.unlink(a, b, 500, 500);
    for (const s of [true, false]) {
      const mine = c.ids.filter((id) => side(id) === s);
      for (const a of mine) {
        for (let t = 0; t < 50 && c.net.neighbors(a).length < 2; t++) c.net.link(a, mine[randInt(c.net.rng, mine.length)]!, 50);
      }
    }
    c.net.runFor(30_000);
    const left = c.ids.filter(side);
    const right = c.ids.filter((id) => !side(id));
    expect(components(c.net).length, `seed ${seed}`).toBeGreaterThanOrEqual(2);
    expect(disagreeing(c, left, left), `seed ${seed}`).toEqual([]);
    expect(disagreeing(c, right, right), `seed ${seed}`).toEqual([]);
    // Heal: a few links across; syncs tell each side it was declared dead, it refutes.
    c.net.dropIf = null;
    for (let k = 0; k < 4; k++) c.net.link(left[randInt(c.net.rng, left.length)]!, right[randInt(c.net.rng, right.length)]!, 20);
    const healAt = c.net.now;
    let agreedAt = -1;
    for (let t = 0; t < 30_000 && agreedAt < 0; t += 100) {
      c.net.runFor(100);
      if (disagreeing(c, c.ids, c.ids).length === 0) agreedAt = c.net.now - healAt;
    }
    console.log(`[membership partition seed=${seed}] 40/40 split for 30 s; after healing with 4 links all agree after ${agreedAt} ms`);
    expect(agreedAt, `seed ${seed}`).toBeGreaterThanOrEqual(0);
  });
});
