import { describe, expect, it } from 'vitest';
import type { NodeId } from '../core/types';
import type { HyParViewConfig } from '../core/hyparview';
import { addHpvNode, createHpvNetwork, overlayMetrics, runOverlayScenario, type HpvNetwork, type OverlayMetrics } from './hyparview';

/**
 * Overlay properties in the simulator. Every run is seeded; the seed is in the test name
 * and in every assertion message, so a failure can be replayed exactly.
 */

function expectHealthy(m: OverlayMetrics, where: string, activeSize = 5): void {
  expect(m.connected, `${where}: largest component`).toBe(1);
  expect(m.symmetric, `${where}: symmetry`).toBe(1);
  expect(m.activeMin, `${where}: smallest active view`).toBeGreaterThanOrEqual(1);
  expect(m.activeMax, `${where}: largest active view`).toBeLessThanOrEqual(activeSize);
  expect(m.leakedLinks, `${where}: open links in no active view`).toBe(0);
}

/** Disables every announce a connected node makes (small-cluster checks and island probes). */
const NO_ISLAND_HEALING: Partial<HyParViewConfig> = { islandAnnounceMinMs: 1e12, islandAnnounceMaxMs: 1e12, islandProbeSpacingMs: 1e12 };

describe('HyParView overlay, a few hundred nodes', () => {
  it.each([1, 2, 3])('settles connected and symmetric, then heals after half the nodes crash (seed %i)', (seed) => {
    const r = runOverlayScenario({ nodes: 300, fail: 0.5, seed, healMaxMs: 60_000 });
    const where = `seed ${seed}`;
    expect(r.connectedBefore, where).toBe(1);
    expect(r.symmetric, where).toBe(1);
    expect(r.activeMin, where).toBeGreaterThanOrEqual(1);
    expect(r.activeMax, where).toBeLessThanOrEqual(5);
    expect(r.passiveMean, where).toBeGreaterThan(20);
    expect(r.leakedLinks, where).toBe(0);
    expect(r.failed, where).toBe(150);
    expect(r.healMs, where).not.toBeNull();
    expect(r.connectedAfterHeal, where).toBe(1);
    expect(r.symmetricAfterHeal, where).toBe(1);
    expect(r.activeMinAfterHeal, where).toBeGreaterThanOrEqual(1);
    expect(r.leakedLinksAfterHeal, where).toBe(0);
  });

  it.each([4, 5])('concurrent joins with shuffles running and one message in a hundred lost (seed %i)', (seed) => {
    const r = runOverlayScenario({ nodes: 300, fail: 0.3, seed, joinInterval: 20, network: { lossRate: 0.01 }, healMaxMs: 60_000 });
    const where = `seed ${seed}`;
    expect(r.connectedBefore, where).toBe(1);
    expect(r.symmetric, where).toBe(1);
    expect(r.leakedLinks, where).toBe(0);
    expect(r.connectedAfterHeal, where).toBe(1);
    expect(r.symmetricAfterHeal, where).toBe(1);
  });

  it.each([6, 7])('every newcomer bootstraps through signaling announces (seed %i)', (seed) => {
    const r = runOverlayScenario({ nodes: 200, fail: 0.5, seed, bootstrap: 'announce', joinInterval: 25, healMaxMs: 60_000 });
    const where = `seed ${seed}`;
    expect(r.connectedBefore, where).toBe(1);
    expect(r.symmetric, where).toBe(1);
    expect(r.leakedLinks, where).toBe(0);
    expect(r.connectedAfterHeal, where).toBe(1);
    // O(1) welcomes per announce, not O(N).
    expect(r.messagesByType['hpv.welcome'] ?? 0, where).toBeLessThan(10 * 200);
  });

  it('the cost of a join does not grow with the cluster', () => {
    const small = runOverlayScenario({ nodes: 200, fail: 0, seed: 8, settleMs: 1_000, healSettleMs: 0 });
    const large = runOverlayScenario({ nodes: 800, fail: 0, seed: 8, settleMs: 1_000, healSettleMs: 0 });
    expect(large.joinMessagesMean).toBeLessThan(70);
    expect(large.joinMessagesMean / small.joinMessagesMean).toBeLessThan(1.4);
    expect(large.joinMessagesMax).toBeLessThan(150);
  });
});

describe('HyParView small clusters (2 to 12 tabs) through the announce path', () => {
  const sizes = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const seeds = [1, 2, 3, 4, 5];

  function run(n: number, seed: number, delay: (i: number) => number): HpvNetwork {
    const net = createHpvNetwork({ seed: seed * 1000 + n });
    for (let i = 0; i < n; i++) addHpvNode(net, `tab${i}`, { delay: delay(i) });
    net.runFor(30_000);
    net.settle();
    return net;
  }

  it.each(seeds)('all tabs opened at the same instant end connected (seed %i)', (seed) => {
    for (const n of sizes) expectHealthy(overlayMetrics(run(n, seed, () => 0)), `${n} tabs, seed ${seed}`);
  });

  it.each(seeds)('tabs opened one after another end connected (seed %i)', (seed) => {
    for (const n of sizes) expectHealthy(overlayMetrics(run(n, seed, (i) => i * 700)), `${n} tabs, seed ${seed}`);
  });

  it.each(seeds)('tabs opened in a burst while one tab already runs end connected (seed %i)', (seed) => {
    for (const n of sizes) expectHealthy(overlayMetrics(run(n, seed, (i) => (i === 0 ? 0 : 5_000 + i * 3))), `${n} tabs, seed ${seed}`);
  });

  it.each(seeds)('a burst of tabs opened next to a running cluster of three ends connected (seed %i)', (seed) => {
    for (const n of sizes) expectHealthy(overlayMetrics(run(n, seed, (i) => (i < 3 ? i * 500 : 5_000))), `${n} tabs, seed ${seed}`);
  });

  it.each(seeds)('closing tabs gracefully, one by one, keeps the rest connected (seed %i)', (seed) => {
    const net = run(12, seed, (i) => i * 300);
    for (let k = 0; k < 10; k++) {
      net.leave(`tab${k}`, { type: 'leave' });
      net.runFor(15_000);
      net.settle();
      expectHealthy(overlayMetrics(net), `after ${k + 1} leaves, seed ${seed}`);
    }
  });
});

describe('HyParView: many nodes joining through one contact at once', () => {
  it.each([1, 2, 3, 4, 5, 6])('30 simultaneous JOINs to one contact end in one symmetric overlay (seed %i)', (seed) => {
    const net = createHpvNetwork({ seed });
    addHpvNode(net, 'c');
    net.runFor(2_000);
    for (let i = 1; i <= 30; i++) addHpvNode(net, `j${i}`, { contact: 'c', clients: 31 });
    // Before any island check could run: the join itself must not strand anyone.
    net.settle();
    const early = overlayMetrics(net);
    expect(early.activeMin, `seed ${seed}`).toBeGreaterThanOrEqual(1);
    net.runFor(30_000);
    net.settle();
    expectHealthy(overlayMetrics(net), `seed ${seed}`);
    expect(net.node('c')!.activeView().length, `seed ${seed}`).toBeLessThanOrEqual(5);
  });

  it.each([1, 2, 3])('without a size hint the joiners still end connected (seed %i)', (seed) => {
    const net = createHpvNetwork({ seed });
    addHpvNode(net, 'c');
    net.runFor(2_000);
    for (let i = 1; i <= 11; i++) addHpvNode(net, `j${i}`, { contact: 'c' });
    net.runFor(30_000);
    net.settle();
    expectHealthy(overlayMetrics(net), `seed ${seed}`);
  });
});

describe('HyParView island healing', () => {
  /** Two groups that could not see each other (e.g. a split signaling service) form two islands; then the split heals. */
  function islands(a: number, b: number, seed: number, config: Partial<HyParViewConfig> = {}): HpvNetwork {
    const net = createHpvNetwork({ seed });
    const A: NodeId[] = Array.from({ length: a }, (_, i) => `a${i}`);
    const B: NodeId[] = Array.from({ length: b }, (_, i) => `b${i}`);
    A.forEach((id, i) => addHpvNode(net, id, { delay: i * 300, config }));
    B.forEach((id, i) => addHpvNode(net, id, { delay: i * 300, config }));
    net.partition([A, B]);
    net.runFor(30_000);
    net.settle();
    const split = overlayMetrics(net);
    expect(split.components, `seed ${seed}: two islands before the heal`).toBe(2);
    net.heal();
    return net;
  }

  it.each([1, 2, 3, 4])('two full islands of 6 merge once they can hear each other (seed %i)', (seed) => {
    const net = islands(6, 6, seed);
    net.runFor(60_000);
    net.settle();
    expectHealthy(overlayMetrics(net), `seed ${seed}`);
  });

  it.each([1, 2])('a tiny island merges into a larger cluster (seed %i)', (seed) => {
    const net = islands(2, 60, seed);
    net.runFor(90_000);
    net.settle();
    expectHealthy(overlayMetrics(net), `seed ${seed}`);
  });

  it('without island announces the two islands stay apart (the failure the mechanism fixes)', () => {
    const net = islands(6, 6, 1, NO_ISLAND_HEALING);
    net.runFor(60_000);
    net.settle();
    expect(overlayMetrics(net).components).toBe(2);
  });
});

describe('HyParView under churn', () => {
  it.each([1, 2, 3])('joins, graceful leaves and crashes interleaved: healthy at quiescence (seed %i)', (seed) => {
    const net = createHpvNetwork({ seed });
    const live: NodeId[] = [];
    let next = 0;
    const join = () => {
      const id = `n${next++}`;
      const contact = live.length > 0 ? live[Math.floor(net.rng.next() * live.length)] : undefined;
      addHpvNode(net, id, { contact });
      live.push(id);
    };
    for (let i = 0; i < 150; i++) {
      join();
      net.runFor(20);
    }
    net.runFor(20_000);
    for (let t = 0; t < 120; t++) {
      const r = net.rng.next();
      if (r < 0.4 || live.length < 50) join();
      else {
        const k = Math.floor(net.rng.next() * live.length);
        const [victim] = live.splice(k, 1);
        if (r < 0.7) net.leave(victim!, { type: 'leave' });
        else net.crash(victim!);
      }
      net.runFor(500);
    }
    net.runFor(60_000);
    net.settle();
    const m = overlayMetrics(net);
    expect(m.nodes, `seed ${seed}`).toBe(live.length);
    expectHealthy(m, `seed ${seed}`);
  });
});
