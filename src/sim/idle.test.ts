/**
 * The idle cost of a formed cluster of whole CoreNodes does not grow with its size:
 * membership heartbeats every max(5 s, live / 0.03 per s), KV and Plumtree anti-entropy
 * and HyParView shuffles backing off while nothing changes. Virtual time, fixed seeds:
 * a property of the protocols, not a timing.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_HYPARVIEW_CONFIG } from '../core/hyparview/config';
import { runIdleScenario, type IdleReport } from './idle';

const SCENARIO = { seed: 3, joinGapMs: 200, keys: 100, chats: 3, settleMs: 200_000, windowMs: 300_000, topTypes: 100 } as const;

const SHUFFLE_TYPES = new Set(['hpv.shuffle', 'hpv.shuffleReply']);
/**
 * Shuffle messages a node sends per second at most: one walk per shuffle interval per
 * node (the backoff only stretches it), each at most ttl + 1 hops and a reply. While
 * passive views cannot hold the whole cluster (N above about activeSize + passiveSize),
 * replies keep bringing new ids and the walks stay at this rate: that is the step
 * between 30 nodes (every walk backs off) and 60, flat above.
 */
const SHUFFLE_BOUND = (DEFAULT_HYPARVIEW_CONFIG.shuffleTtl + 2) / (DEFAULT_HYPARVIEW_CONFIG.shuffleIntervalMs / 1000);

const rateOf = (r: IdleReport, pick: (type: string) => boolean): number => r.byType.filter((t) => pick(t.type)).reduce((s, t) => s + t.msgs, 0);

/** Messages a node sends per second while idle, at most (cluster mean and every single node). */
const MEAN_MSGS_BOUND = 2;
const NODE_MSGS_BOUND = 4;
/** Bytes a node sends per second while idle, at most (cluster mean). */
const MEAN_BYTES_BOUND = 200;
/**
 * Doubling the cluster may raise the per-node rate by at most this factor, plus
 * GROWTH_SLACK messages per node per second: routed messages (KV anti-entropy between
 * replicas that are not neighbours) cross a path that lengthens with log N, and with
 * heartbeats as rare as 0.03 per node per second what else is left is small enough for
 * one broadcast more or less in the window to show.
 */
const GROWTH_BOUND = 1.25;
const GROWTH_SLACK = 0.02;

describe('idle CoreNode cluster', () => {
  const reports = new Map<number, IdleReport>();
  const run = (nodes: number): IdleReport => {
    let r = reports.get(nodes);
    if (r === undefined) {
      r = runIdleScenario({ ...SCENARIO, nodes });
      reports.set(nodes, r);
    }
    return r;
  };

  for (const nodes of [30, 60]) {
    it(`${nodes} nodes: converged, and each node sends under ${MEAN_MSGS_BOUND} msgs/s and ${MEAN_BYTES_BOUND} bytes/s while idle`, () => {
      const r = run(nodes);
      expect(r.membersMin, 'every node sees every member').toBe(nodes);
      expect(r.activeMin).toBeGreaterThan(0);
      expect(r.sentMsgs.mean).toBeGreaterThan(0);
      expect(r.sentMsgs.mean).toBeLessThan(MEAN_MSGS_BOUND);
      expect(r.sentMsgs.max, 'the busiest node').toBeLessThan(NODE_MSGS_BOUND);
      expect(r.sentBytes.mean).toBeLessThan(MEAN_BYTES_BOUND);
      // what one node sends another receives: the window's totals agree up to what is in flight at its edges
      expect(Math.abs(r.recvMsgs.mean - r.sentMsgs.mean)).toBeLessThan(0.05 * r.sentMsgs.mean + 0.01);
    }, 300_000);
  }

  it(`doubling the cluster (30 -> 60 nodes): shuffles stay under one walk per interval, everything else grows by at most ${GROWTH_BOUND}x per node`, () => {
    const small = run(30);
    const large = run(60);
    for (const r of [small, large]) {
      expect(rateOf(r, (t) => SHUFFLE_TYPES.has(t)), `${r.nodes} nodes: shuffle msgs/s per node`).toBeLessThanOrEqual(SHUFFLE_BOUND);
      // the listed types are all of them (topTypes 100): they add up to the total
      expect(rateOf(r, () => true)).toBeCloseTo(r.sentMsgs.mean, 1);
    }
    const rest = (r: IdleReport) => rateOf(r, (t) => !SHUFFLE_TYPES.has(t));
    expect(rest(large), `non-shuffle msgs/s per node: 30 nodes ${rest(small)}, 60 nodes ${rest(large)}`).toBeLessThanOrEqual(rest(small) * GROWTH_BOUND + GROWTH_SLACK);
    expect(large.sentMsgs.mean, 'the whole rate at 60 nodes stays within the small cluster\'s rest plus the shuffle bound').toBeLessThanOrEqual(
      rest(small) * GROWTH_BOUND + GROWTH_SLACK + SHUFFLE_BOUND,
    );
    expect(large.recvMsgs.max, 'the busiest receiver').toBeLessThan(NODE_MSGS_BOUND);
  }, 600_000);
});
