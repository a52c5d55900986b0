import { describe, expect, it } from 'vitest';
import type { NodeId } from '../core/types';
import { sample } from '../core/rng';
import { BroadcastTally, batchStats, runBroadcastScenario } from './broadcast';
import { createPlumtreeNetwork, hpvPtNode, type PlumtreeNetwork } from './plumtree';

/**
 * Broadcast properties of HyParView + Plumtree in the simulator. Every run is seeded; the
 * seed is in the test name, in every assertion message and in the line each run prints,
 * so a failure can be replayed exactly (npx tsx scripts/sim.ts --nodes N --seed S
 * --broadcasts B replays a scenario run).
 */

const fmt = (x: number | null) => (x === null ? 'null' : String(x));

describe('HyParView + Plumtree: join, settle, crash half, heal', () => {
  it.each([1, 2, 3, 4, 5])('300 nodes, seed %i: exactly once, settled RMR <= 0.05, every reachable survivor gets what is sent right after the crash', (seed) => {
    const r = runBroadcastScenario({ nodes: 300, fail: 0.5, seed, broadcasts: 20, healMaxMs: 60_000 });
    const where = `seed ${seed}`;
    console.log(
      `[sim broadcast seed=${seed}] n=300 diameter=${r.diameter} rmrWarmup=${r.rmrWarmup} rmr=${r.rmr} ldh=${r.ldh} (mean ${r.ldhMean}) ` +
        `afterFailure: reliability=${r.reliabilityAfterFailure} reachable=${r.reachableAfterFailure} ofReachable=${r.reliabilityAfterFailureOfReachable} ` +
        `p99=${r.deliveryMsAfterFailureP99}ms; atHeal reliability=${fmt(r.reliabilityAtHeal)}; resettled rmr=${r.rmrResettled} ldh=${r.ldhResettled} duplicates=${r.duplicates}`,
    );
    expect(r.duplicates, where).toBe(0);
    expect(r.reliabilityWarmup, where).toBe(1);
    expect(r.reliability, where).toBe(1);
    expect(r.rmr, where).toBeLessThanOrEqual(0.05);
    // The first broadcast of an origin floods (one tree per origin): about degree - 2.
    expect(r.rmrWarmup, where).toBeGreaterThan(1);
    // LDH: no delivery path is shorter than the origin's eccentricity; the tree follows
    // the fastest paths, which are longer in hops, but not unboundedly.
    expect(r.ldh, where).toBeGreaterThanOrEqual(Math.ceil(r.originEccentricityMean));
    expect(r.ldh, where).toBeLessThanOrEqual(2 * r.diameter);
    expect(r.ldh, where).toBeLessThanOrEqual(r.ldhWarmupMax);
    // Right after the crash: Plumtree (lazy links, GRAFT) reaches every survivor in the
    // origin's component of the live overlay; nobody outside it can be reached (no
    // anti-entropy, and crashes are noticed only 4-5 s later).
    expect(r.reliabilityAfterFailureOfReachable, where).toBe(1);
    // (reliabilityAfterFailure counts tree deliveries only: anti-entropy can beat the tree
    // to a reachable node, so the bound is on every delivery.)
    // Anti-entropy brings every survivor what the tree could not, by the end of the heal settle.
    expect(r.reliabilityAfterFailureEventual, where).toBe(1);
    // Once the survivors form one component, broadcasts on the broken trees reach everyone.
    expect(r.healMs, where).not.toBeNull();
    expect(r.reliabilityAtHeal, where).toBe(1);
    expect(r.reliabilityRepair, where).toBe(1);
    expect(r.reliabilityResettled, where).toBe(1);
    // The trees repair themselves: one round after the overlay healed, RMR is low again.
    expect(r.rmrResettled, where).toBeLessThanOrEqual(0.05);
    expect(r.ldhResettled, where).toBeLessThanOrEqual(2 * r.diameterAfterHeal);
  });

  it.each([4, 5])('200 nodes, seed %i, 20 %% crash leaving the survivors connected: everything sent right after the crash reaches every survivor', (seed) => {
    const r = runBroadcastScenario({ nodes: 200, fail: 0.2, seed, broadcasts: 10, healMaxMs: 60_000 });
    const where = `seed ${seed}`;
    console.log(`[sim broadcast 20% seed=${seed}] connectedAfterFailure=${r.connectedAfterFailure} reliabilityAfterFailure=${r.reliabilityAfterFailure} rmrAfterFailure=${r.rmrAfterFailure} p99=${r.deliveryMsAfterFailureP99}ms`);
    // Precondition of these seeds (a property of the overlay, not of Plumtree).
    expect(r.connectedAfterFailure, `${where}: survivors connected right after the crash`).toBe(1);
    expect(r.duplicates, where).toBe(0);
    expect(r.reliabilityAfterFailure, where).toBe(1);
    expect(r.reliabilityAtHeal, where).toBe(1);
  });

  it.each([9, 10])('300 nodes, seed %i, equal link latencies: the tree is a BFS tree, LDH = the origin eccentricity <= the diameter', (seed) => {
    const r = runBroadcastScenario({ nodes: 300, fail: 0.5, seed, broadcasts: 10, healMaxMs: 60_000, network: { linkLatency: 50 } });
    const where = `seed ${seed}`;
    console.log(`[sim broadcast 50ms links seed=${seed}] diameter=${r.diameter} origin eccentricity mean=${r.originEccentricityMean} ldh=${r.ldh} mean=${r.ldhMean} rmr=${r.rmr}`);
    expect(r.duplicates, where).toBe(0);
    expect(r.reliability, where).toBe(1);
    expect(r.rmr, where).toBeLessThanOrEqual(0.05);
    expect(r.ldh, where).toBeLessThanOrEqual(r.diameter);
    expect(r.ldhMean, where).toBe(r.originEccentricityMean);
  });
});

/** A settled overlay of n HyParView + Plumtree nodes joined one by one through random earlier contacts. */
function settledStack(n: number, seed: number): { net: PlumtreeNetwork; tally: BroadcastTally; ids: NodeId[] } {
  const net = createPlumtreeNetwork({ seed });
  const tally = new BroadcastTally(n);
  const ids: NodeId[] = [];
  net.pauseBackground();
  for (let i = 0; i < n; i++) {
    const id = `n${i}`;
    net.add(id, hpvPtNode(id, i, seed, {}, tally));
    net.input(id, { type: 'start' });
    if (i > 0) net.input(id, { type: 'join', contact: ids[Math.floor(net.rng.next() * i)]! });
    ids.push(id);
    net.drain(600_000);
  }
  net.resumeBackground();
  net.runFor(30_000);
  net.settle();
  return { net, tally, ids };
}

/** Broadcast once from each origin, 10 ms apart, settle; the new records' stats. */
function round(net: PlumtreeNetwork, tally: BroadcastTally, origins: NodeId[], n: number): { ldh: Map<number, number>; rmr: number; ldhMax: number; ldhMean: number; reliability: number } {
  const before = new Set(tally.messages.keys());
  origins.forEach((id, j) => net.input(id, { type: 'broadcast', kind: 'sim', data: { batch: 'pre', k: j } }, { delay: j * 10 }));
  net.runFor(origins.length * 10);
  net.settle();
  const records = [...tally.messages.values()].filter((m) => !before.has(m.id));
  const s = batchStats(records, new Uint8Array(n).fill(1), n);
  return { ldh: new Map(records.map((m) => [m.origin, m.ldh])), rmr: s.rmrMean, ldhMax: s.ldhMax, ldhMean: s.ldhMean, reliability: s.reliabilityMin };
}

describe('Plumtree trees in the simulator under repeated broadcasts', () => {
  it.each([6, 7, 8])('300 nodes, seed %i, overlay frozen: after the first (flooding) round every tree is a spanning tree and LDH never changes', (seed) => {
    const n = 300;
    const { net, tally, ids } = settledStack(n, seed);
    const origins = sample(net.rng, ids, 12);
    net.pauseBackground(); // no shuffles or promotions: the active views stay as they are
    const rounds = Array.from({ length: 8 }, () => round(net, tally, origins, n));
    net.resumeBackground();
    console.log(`[sim trees frozen seed=${seed}] n=${n} RMR per round ${rounds.map((r) => r.rmr.toFixed(4)).join(' ')}; LDH max ${rounds.map((r) => r.ldhMax).join(' ')}`);
    expect(tally.duplicates, `seed ${seed}`).toBe(0);
    expect(rounds[0]!.rmr, `seed ${seed}: the first round floods`).toBeGreaterThan(1);
    for (let k = 0; k < rounds.length; k++) {
      expect(rounds[k]!.reliability, `seed ${seed} round ${k}`).toBe(1);
      if (k === 0) continue;
      expect(rounds[k]!.rmr, `seed ${seed} round ${k}`).toBe(0);
      // The tree keeps the flood's first-arrival paths, so each origin's LDH is the flood's.
      for (const [origin, ldh] of rounds[k]!.ldh) expect(ldh, `seed ${seed} round ${k} origin ${ids[origin]}`).toBe(rounds[0]!.ldh.get(origin));
    }
  });

  it.each([6, 7, 8])('300 nodes, seed %i, shuffles and promotions running 10 s between rounds: RMR stays low, LDH does not grow', (seed) => {
    const n = 300;
    const { net, tally, ids } = settledStack(n, seed);
    const origins = sample(net.rng, ids, 12);
    const rounds = [];
    for (let k = 0; k < 8; k++) {
      rounds.push(round(net, tally, origins, n));
      net.runFor(10_000);
    }
    console.log(`[sim trees churn seed=${seed}] n=${n} RMR per round ${rounds.map((r) => r.rmr.toFixed(4)).join(' ')}; LDH max ${rounds.map((r) => r.ldhMax).join(' ')}, mean ${rounds.map((r) => r.ldhMean.toFixed(2)).join(' ')}`);
    expect(tally.duplicates, `seed ${seed}`).toBe(0);
    for (let k = 1; k < rounds.length; k++) {
      expect(rounds[k]!.reliability, `seed ${seed} round ${k}`).toBe(1);
      // Each link HyParView adds between two rounds is eager in every tree until the next
      // broadcast of that origin prunes it: a few duplicates per round, no accumulation.
      expect(rounds[k]!.rmr, `seed ${seed} round ${k}`).toBeLessThanOrEqual(0.1);
      // A new link can re-route part of a tree onto a faster, not shorter, path: LDH may
      // move by a hop, but does not drift upward.
      expect(rounds[k]!.ldhMax, `seed ${seed} round ${k}`).toBeLessThanOrEqual(rounds[0]!.ldhMax + 1);
      expect(rounds[k]!.ldhMean, `seed ${seed} round ${k}`).toBeLessThanOrEqual(rounds[0]!.ldhMean + 0.5);
    }
  });
});
