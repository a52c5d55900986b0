import type { NodeId } from '../core/types';
import { SeededRng, hashString, sample } from '../core/rng';
import type { PlumtreeConfig, PtDeliver } from '../core/plumtree';
import { componentLabels, snapshot, type OverlaySnapshot } from './metrics';
import { percentileSorted } from '../util/percentile';
import { DEFAULT_SCENARIO, runOverlayPhases, type OverlayReport, type OverlayScenario } from './hyparview';
import { createPlumtreeNetwork, hpvPtNode, type BroadcastSink, type PlumtreeNetwork, type PlumtreeNode } from './plumtree';

/**
 * Broadcast measurements: HyParView + Plumtree (plumtree.ts, `hpvPtNode`) through the overlay scenario
 * (join, settle, crash a fraction F at once, heal), with broadcasts in batches. A batch
 * sends its broadcasts `broadcastGapMs` apart, each from its origin's node. Origins are
 * drawn with the simulator's Rng once the overlay has settled: K "pre" origins among all
 * nodes and K "post" origins among the nodes that will survive the crash (the victims
 * are already drawn) and are not pre origins; K = `origins` (default ceil(B / 2)).
 *
 * 1. warmup: every pre and post origin broadcasts once, then settle(). Plumtree keeps
 *    one tree per origin, and an origin's first broadcast floods (all neighbours start
 *    eager; each duplicate prunes a link), so this is the flooding cost. Afterwards each
 *    of these origins has a spanning tree.
 * 2. pre: B broadcasts, round-robin over the pre origins, on their settled trees;
 *    settle(). Reliability, RMR, LDH and delivery delay "before".
 * 3. afterFailure: the victims crash; at that same instant B broadcasts start, round-
 *    robin over the post origins (all sent within B x broadcastGapMs). Peers notice a
 *    crash only after the network's detectDelay (4-5 s), so these run on trees and views
 *    that still hold dead nodes: eager pushes into dead links are lost, and the lazy
 *    links (IHAVE) and GRAFTs must recover them. Survivors cut off from the origin in
 *    the live overlay cannot get them at all (Plumtree has no anti-entropy, and views
 *    change only after detection), hence `reachableAfterFailure` and `...OfReachable`.
 * 4. atHeal: at the first heal check (every healCheckMs) that finds the survivors in one
 *    component, each surviving pre origin (about K(1 - F); their trees are untouched
 *    since the crash: dead neighbours gone, new neighbours eager in every tree) broadcast.
 * 5. repair, resettled: after the heal settle, the same origins broadcast once per round,
 *    settle() after each. The first round meets the links HyParView made since batch 4
 *    (eager in every tree: duplicates, PRUNEs); the second is the re-settled tree.
 *
 * Per broadcast: reliability = live nodes that delivered it / live nodes (nobody crashes
 * after the crash, so "live" is the same set throughout each batch); RMR = payload
 * (GOSSIP) sends / (nodes that delivered it - 1) - 1, as in the paper (n = nodes reached),
 * counting every GOSSIP send of that id, GRAFT answers and pushes into dead links
 * included, IHAVE not counted; LDH = the largest hop count among its deliveries; delivery
 * delay = time from the broadcast to each other node's delivery. A batch reports min and
 * mean reliability, mean and max RMR, max and mean LDH, and delay percentiles over all its
 * (message, receiver) pairs. Duplicates: deliveries of a message to the application at a
 * node that had already delivered it, over all batches.
 */

export interface BroadcastScenario extends OverlayScenario {
  /** Broadcasts per batch (B); 0 runs the overlay scenario alone. */
  broadcasts: number;
  /**
   * Distinct origins (K) of the pre batch and of the after-failure batch: their B
   * broadcasts go round-robin over K origins (the k-th from origin k mod K). 0: K =
   * ceil(B / 2), each origin sending two. Every origin costs one warm-up flood (about
   * 66,000 messages at 10,000 nodes: the bulk of the run), so K = B takes about 1.6x the
   * time of the default.
   */
  origins: number;
  /** Between two broadcasts of one batch (simulated ms). */
  broadcastGapMs: number;
  /**
   * Between two warm-up broadcasts (simulated ms). Trees are per origin, so this only
   * sets how long the trees idle before batch 2: HyParView keeps adding a few links
   * (passive promotions of nodes below a full active view, about one a second per 1,000
   * nodes), each eager in every tree until that origin's next broadcast prunes it, so
   * RMR grows with the idle time (10 ms here: warm-up over ~1 s; 200 ms: RMR ~0.05).
   */
  warmupGapMs: number;
  /** Exact hop diameter (BFS from every node) up to this many live nodes; above, a lower bound from sampled BFS sources. */
  exactDiameterMax: number;
  plumtree: Partial<PlumtreeConfig>;
}

export const DEFAULT_BROADCAST_SCENARIO: BroadcastScenario = {
  ...DEFAULT_SCENARIO,
  broadcasts: 50,
  origins: 0,
  broadcastGapMs: 10,
  warmupGapMs: 10,
  exactDiameterMax: 2_000,
  // the scenario's broadcasts are what anti-entropy repairs (as chat in the app)
  plumtree: { antiEntropyKinds: ['sim'] },
};

export type Batch = 'warmup' | 'pre' | 'afterFailure' | 'atHeal' | 'repair' | 'resettled';

interface Tag {
  batch: Batch;
  k: number;
}

/** One broadcast as the tally saw it. */
export interface MessageRecord {
  id: string;
  batch: Batch;
  origin: number;
  sentAt: number;
  /** Per node index: 0, or 1 once delivered. */
  readonly got: Uint8Array;
  /** Per node index: 1 once delivered by the tree (GOSSIP, GRAFT answers), not by anti-entropy. */
  readonly tree: Uint8Array;
  /** Distinct nodes that delivered it (origin included). */
  delivered: number;
  duplicates: number;
  payloadSends: number;
  /** Last delivery hop (max hop count of a delivery). */
  ldh: number;
  /** Delivery delays at every node but the origin (ms). */
  readonly delays: number[];
}

/** Collects the deliveries and payload sends of every node of a HyParView + Plumtree network. */
export class BroadcastTally implements BroadcastSink {
  readonly messages = new Map<string, MessageRecord>();
  /** Deliveries of an id the tally never saw originate (must stay 0). */
  unknown = 0;
  duplicates = 0;

  constructor(private readonly size: number) {}

  deliver(at: PlumtreeNode, d: PtDeliver, now: number): void {
    const node = at.index;
    let r = this.messages.get(d.id);
    if (r === undefined) {
      if (d.hops !== 0) {
        this.unknown++;
        return;
      }
      const tag = d.data as Tag;
      r = {
        id: d.id,
        batch: tag.batch,
        origin: node,
        sentAt: now,
        got: new Uint8Array(this.size),
        tree: new Uint8Array(this.size),
        delivered: 0,
        duplicates: 0,
        payloadSends: 0,
        ldh: 0,
        delays: [],
      };
      this.messages.set(d.id, r);
    }
    if (r.got[node] !== 0) {
      r.duplicates++;
      this.duplicates++;
      return;
    }
    r.got[node] = 1;
    r.delivered++;
    if (d.repaired === true) return;
    r.tree[node] = 1;
    if (d.hops > r.ldh) r.ldh = d.hops;
    if (d.hops > 0) r.delays.push(now - r.sentAt);
  }

  payloadSent(id: string): void {
    const r = this.messages.get(id);
    if (r) r.payloadSends++;
    else this.unknown++;
  }

  batch(b: Batch): MessageRecord[] {
    const r: MessageRecord[] = [];
    for (const m of this.messages.values()) if (m.batch === b) r.push(m);
    return r;
  }
}

/** Figures of one batch of broadcasts. */
export interface BatchStats {
  messages: number;
  /** Min and mean over the batch of (live nodes that delivered it / live nodes). */
  reliabilityMin: number;
  reliabilityMean: number;
  rmrMean: number;
  rmrMax: number;
  ldhMax: number;
  ldhMean: number;
  /** Delivery delays over every (message, receiving node) of the batch, ms. */
  delayP50: number;
  delayP99: number;
  delayMax: number;
}

/** `byTree`: count deliveries by the tree only (anti-entropy's left out); else every delivery. */
export function batchStats(records: readonly MessageRecord[], live: Uint8Array, liveCount: number, byTree = false): BatchStats {
  let relMin = 1;
  let relSum = 0;
  let rmrSum = 0;
  let rmrMax = -Infinity;
  let ldhMax = 0;
  let ldhSum = 0;
  const delays: number[] = [];
  for (const r of records) {
    let got = 0;
    const have = byTree ? r.tree : r.got;
    for (let i = 0; i < live.length; i++) if (live[i] !== 0 && have[i] !== 0) got++;
    const rel = liveCount === 0 ? 1 : got / liveCount;
    relMin = Math.min(relMin, rel);
    relSum += rel;
    const rmr = r.delivered > 1 ? r.payloadSends / (r.delivered - 1) - 1 : 0;
    rmrSum += rmr;
    rmrMax = Math.max(rmrMax, rmr);
    ldhMax = Math.max(ldhMax, r.ldh);
    ldhSum += r.ldh;
    for (const d of r.delays) delays.push(d);
  }
  const n = Math.max(1, records.length);
  delays.sort((a, b) => a - b);
  return {
    messages: records.length,
    reliabilityMin: records.length ? relMin : 1,
    reliabilityMean: records.length ? relSum / n : 1,
    rmrMean: rmrSum / n,
    rmrMax: records.length ? rmrMax : 0,
    ldhMax,
    ldhMean: ldhSum / n,
    delayP50: percentileSorted(delays, 50) ?? 0,
    delayP99: percentileSorted(delays, 99) ?? 0,
    delayMax: delays.length ? delays[delays.length - 1]! : 0,
  };
}

/**
 * Hop eccentricities in the snapshot's graph (edges taken as undirected: a link carries
 * both ways), each within its node's component, by BFS over a compact adjacency.
 * `sources` null: BFS from every node, `diameter` exact. Otherwise BFS from `sources`,
 * SAMPLED_SOURCES random nodes, and, repeatedly, the farthest node found so far (double
 * sweep): `diameter` is then a lower bound (on random overlays, in practice the diameter
 * or one less), and `of` holds -1 for nodes not used as a source.
 */
export function eccentricities(s: OverlaySnapshot, sources: number[] | null = null, rng?: { next(): number }): { of: Int32Array; diameter: number } {
  const n = s.ids.length;
  const start = new Int32Array(n + 1);
  const lists: number[][] = s.out.map(() => []);
  for (let u = 0; u < n; u++) {
    for (const v of s.out[u]!) {
      lists[u]!.push(v);
      lists[v]!.push(u);
    }
  }
  for (let u = 0; u < n; u++) {
    const uniq = [...new Set(lists[u]!)];
    lists[u] = uniq;
    start[u + 1] = start[u]! + uniq.length;
  }
  const adj = new Int32Array(start[n]!);
  for (let u = 0; u < n; u++) adj.set(lists[u]!, start[u]!);
  const dist = new Int32Array(n).fill(-1);
  const queue = new Int32Array(n);
  const of = new Int32Array(n).fill(-1);
  let diameter = 0;
  let farthest = 0;
  const bfs = (src: number): void => {
    if (of[src] !== -1) return;
    let head = 0;
    let tail = 0;
    queue[tail++] = src;
    dist[src] = 0;
    while (head < tail) {
      const u = queue[head++]!;
      const du = dist[u]!;
      for (let k = start[u]!; k < start[u + 1]!; k++) {
        const v = adj[k]!;
        if (dist[v] === -1) {
          dist[v] = du + 1;
          queue[tail++] = v;
        }
      }
    }
    const last = queue[tail - 1]!;
    of[src] = dist[last]!;
    if (of[src]! > diameter) farthest = last;
    diameter = Math.max(diameter, of[src]!);
    for (let k = 0; k < tail; k++) dist[queue[k]!] = -1;
  };
  if (sources === null) {
    for (let u = 0; u < n; u++) bfs(u);
    return { of, diameter };
  }
  for (const u of sources) bfs(u);
  for (let k = 0; k < SAMPLED_SOURCES && n > 0; k++) bfs(Math.floor((rng?.next() ?? k / SAMPLED_SOURCES) * n));
  // Double sweep: BFS from the farthest node found until that stops finding longer paths.
  for (let k = 0; k < 16 && n > 0 && of[farthest] === -1; k++) bfs(farthest);
  return { of, diameter };
}

const SAMPLED_SOURCES = 64;

export interface BroadcastReport extends OverlayReport {
  broadcasts: number;
  /** Distinct origins of the pre and after-failure batches (K). */
  origins: number;
  broadcastGapMs: number;
  /** Hop diameter of the settled overlay before the crash (exact up to exactDiameterMax live nodes, else a sampled lower bound). */
  diameter: number;
  /** Mean hop eccentricity of the pre-crash origins (no delivery path can be shorter). */
  originEccentricityMean: number;
  /** Warm-up: each origin's first broadcast (floods). */
  rmrWarmup: number;
  ldhWarmupMax: number;
  ldhWarmupMean: number;
  reliabilityWarmup: number;
  /** Pre-crash, settled trees. */
  reliability: number;
  rmr: number;
  rmrMax: number;
  ldh: number;
  ldhMean: number;
  deliveryMsP50: number;
  deliveryMsP99: number;
  deliveryMsMax: number;
  /** Sent from the crash instant on, before any crash is detected. */
  reliabilityAfterFailure: number;
  reliabilityAfterFailureMean: number;
  /**
   * Min over those messages of (live nodes that delivered it / live nodes) at the end of
   * the heal settle: what Plumtree's anti-entropy exchange brought to the survivors the
   * tree could not reach. Must be 1.
   */
  reliabilityAfterFailureEventual: number;
  /**
   * Min over those messages of (live nodes in the origin's component of the live overlay
   * at the crash / live nodes). Others can only be reached over links HyParView makes
   * after it detects the crash (4-5 s later), when the broadcast is nearly over.
   */
  reachableAfterFailure: number;
  reachableAfterFailureMean: number;
  /** Min over those messages of (nodes of the origin's component at the crash that delivered it / that component's size). */
  reliabilityAfterFailureOfReachable: number;
  deliveryMsAfterFailureP50: number;
  deliveryMsAfterFailureP99: number;
  deliveryMsAfterFailureMax: number;
  rmrAfterFailure: number;
  ldhAfterFailure: number;
  /** Sent when the survivors first form one component (null: never within healMaxMs). */
  reliabilityAtHeal: number | null;
  deliveryMsAtHealP50: number | null;
  deliveryMsAtHealP99: number | null;
  deliveryMsAtHealMax: number | null;
  rmrAtHeal: number | null;
  ldhAtHeal: number | null;
  /** After the heal settle: first round (meets the new links), then the re-settled round. */
  reliabilityRepair: number;
  rmrRepair: number;
  reliabilityResettled: number;
  rmrResettled: number;
  ldhResettled: number;
  ldhResettledMean: number;
  diameterAfterHeal: number;
  /** Deliveries of a message more than once at one node, all batches (must be 0). */
  duplicates: number;
  /** Broadcasts sent in all (warm-up and repair rounds included). */
  broadcastsSent: number;
}

/** The overlay scenario with HyParView + Plumtree and the broadcast batches described above. */
export function runBroadcastScenario(options: Partial<BroadcastScenario>): BroadcastReport {
  const o: BroadcastScenario = { ...DEFAULT_BROADCAST_SCENARIO, ...options };
  const B = Math.max(0, Math.floor(o.broadcasts));
  const gap = o.broadcastGapMs;
  const net: PlumtreeNetwork = createPlumtreeNetwork({ seed: o.seed, ...o.network });
  const tally = new BroadcastTally(o.nodes);
  const index = new Map<NodeId, number>();
  let nextIndex = 0;

  const liveMask = (): [Uint8Array, number] => {
    const m = new Uint8Array(o.nodes);
    let c = 0;
    for (const id of net.liveIds()) {
      m[index.get(id)!] = 1;
      c++;
    }
    return [m, c];
  };
  /** Inject one broadcast per origin, `spacing` apart from now. */
  const send = (batch: Batch, origins: NodeId[], spacing = gap) => {
    origins.forEach((id, k) => {
      const data: Tag = { batch, k };
      net.input(id, { type: 'broadcast', kind: 'sim', data }, { delay: k * spacing });
    });
  };
  /**
   * Send a batch now, then settle(): background timers held, everything due within the
   * next 60 s runs (Plumtree's graft and IHAVE timers are all far shorter; what stays
   * queued are HyParView's long one-off island-probe timers, as in the overlay scenario).
   */
  const sendAndSettle = (batch: Batch, origins: NodeId[], spacing = gap) => {
    send(batch, origins, spacing);
    net.runFor(origins.length * spacing);
    net.settle();
  };

  let preOrigins: NodeId[] = [];
  let postOrigins: NodeId[] = [];
  let healOrigins: NodeId[] = [];
  let diameter = 0;
  let originEcc = 0;
  let warm: BatchStats | null = null;
  let pre: BatchStats | null = null;
  let atHeal: BatchStats | null = null;
  /** Component label (at the crash) per node index, -1 for the dead. */
  let labelAtCrash: Int32Array | null = null;
  let result: Partial<BroadcastReport> = {};

  const report = runOverlayPhases(
    o,
    net,
    (id, opts) => {
      const i = nextIndex++;
      index.set(id, i);
      net.add(id, hpvPtNode(id, i, o.seed, { hyparview: opts.config, plumtree: o.plumtree }, tally));
      net.input(id, { type: 'start' }, { cause: opts.cause });
      if (opts.contact !== undefined) net.input(id, { type: 'join', contact: opts.contact }, { cause: opts.cause });
    },
    {
      beforeCrash(victims) {
        if (B === 0) return;
        const s = snapshot(net);
        const dead = new Set(victims);
        const live = net.liveIds();
        const survivors = live.filter((id) => !dead.has(id));
        const K = o.origins > 0 ? Math.min(B, Math.floor(o.origins)) : Math.ceil(B / 2);
        preOrigins = sample(net.rng, live, K);
        // Batch 3: K survivors that are not batch 2's origins. Batch 4 wants settled trees
        // untouched since the crash: batch 2's surviving origins (about K(1 - F)) qualify
        // and cost no extra warm-up flood (if none survives, tiny runs: batch 3's origins).
        const preSet = new Set(preOrigins);
        postOrigins = sample(net.rng, survivors.filter((id) => !preSet.has(id)), K);
        healOrigins = preOrigins.filter((id) => !dead.has(id));
        if (healOrigins.length === 0) healOrigins = postOrigins.slice();
        const pos = new Map<NodeId, number>(s.ids.map((id, k) => [id, k]));
        const ecc = eccentricities(s, s.ids.length <= o.exactDiameterMax ? null : preOrigins.map((id) => pos.get(id)!), new SeededRng(hashString(`${o.seed}/diameter`)));
        diameter = ecc.diameter;
        originEcc = preOrigins.reduce((a, id) => a + ecc.of[pos.get(id)!]!, 0) / Math.max(1, preOrigins.length);

        sendAndSettle('warmup', [...new Set([...preOrigins, ...postOrigins, ...healOrigins])], o.warmupGapMs);
        const [mask, count] = liveMask();
        warm = batchStats(tally.batch('warmup'), mask, count);
        sendAndSettle('pre', roundRobin(preOrigins, B));
        pre = batchStats(tally.batch('pre'), mask, count);
      },
      afterCrash() {
        if (B === 0) return;
        const s = snapshot(net);
        const labels = componentLabels(s);
        labelAtCrash = new Int32Array(o.nodes).fill(-1);
        s.ids.forEach((id, k) => (labelAtCrash![index.get(id)!] = labels[k]!));
        send('afterFailure', roundRobin(postOrigins, B));
      },
      healed() {
        if (B === 0) return;
        send('atHeal', healOrigins);
      },
      end() {
        if (B === 0) return;
        const [mask, count] = liveMask();
        const after = tally.batch('afterFailure');
        // the tree's own reach (comparable with Plumtree without anti-entropy), then everything
        const failure = batchStats(after, mask, count, true);
        const eventual = batchStats(after, mask, count);
        const healRecords = tally.batch('atHeal');
        atHeal = healRecords.length ? batchStats(healRecords, mask, count) : null;
        // Reachability: the origin's component of the live overlay at the crash.
        let reachMin = 1;
        let reachSum = 0;
        let ofReachMin = 1;
        const lab = labelAtCrash!;
        for (const r of after) {
          const own = lab[r.origin]!;
          let size = 0;
          let got = 0;
          for (let i = 0; i < lab.length; i++) {
            if (lab[i] !== own) continue;
            size++;
            if (r.got[i] !== 0) got++;
          }
          reachMin = Math.min(reachMin, size / count);
          reachSum += size / count;
          ofReachMin = Math.min(ofReachMin, got / size);
        }
        const again = healOrigins;
        sendAndSettle('repair', again);
        const repair = batchStats(tally.batch('repair'), mask, count);
        sendAndSettle('resettled', again);
        const resettled = batchStats(tally.batch('resettled'), mask, count);
        const sAfter = snapshot(net);
        const eccAfter = eccentricities(sAfter, sAfter.ids.length <= o.exactDiameterMax ? null : [], new SeededRng(hashString(`${o.seed}/diameter-after`)));

        const w = warm!;
        const p = pre!;
        const h = atHeal;
        result = {
          broadcasts: B,
          origins: preOrigins.length,
          broadcastGapMs: gap,
          diameter,
          originEccentricityMean: round(originEcc),
          rmrWarmup: round(w.rmrMean, 4),
          ldhWarmupMax: w.ldhMax,
          ldhWarmupMean: round(w.ldhMean),
          reliabilityWarmup: round(w.reliabilityMin, 6),
          reliability: round(p.reliabilityMin, 6),
          rmr: round(p.rmrMean, 4),
          rmrMax: round(p.rmrMax, 4),
          ldh: p.ldhMax,
          ldhMean: round(p.ldhMean),
          deliveryMsP50: round(p.delayP50, 1),
          deliveryMsP99: round(p.delayP99, 1),
          deliveryMsMax: round(p.delayMax, 1),
          reliabilityAfterFailure: round(failure.reliabilityMin, 6),
          reliabilityAfterFailureMean: round(failure.reliabilityMean, 6),
          reliabilityAfterFailureEventual: round(eventual.reliabilityMin, 6),
          reachableAfterFailure: round(reachMin, 6),
          reachableAfterFailureMean: round(after.length ? reachSum / after.length : 1, 6),
          reliabilityAfterFailureOfReachable: round(ofReachMin, 6),
          deliveryMsAfterFailureP50: round(failure.delayP50, 1),
          deliveryMsAfterFailureP99: round(failure.delayP99, 1),
          deliveryMsAfterFailureMax: round(failure.delayMax, 1),
          rmrAfterFailure: round(failure.rmrMean, 4),
          ldhAfterFailure: failure.ldhMax,
          reliabilityAtHeal: h ? round(h.reliabilityMin, 6) : null,
          deliveryMsAtHealP50: h ? round(h.delayP50, 1) : null,
          deliveryMsAtHealP99: h ? round(h.delayP99, 1) : null,
          deliveryMsAtHealMax: h ? round(h.delayMax, 1) : null,
          rmrAtHeal: h ? round(h.rmrMean, 4) : null,
          ldhAtHeal: h ? h.ldhMax : null,
          reliabilityRepair: round(repair.reliabilityMin, 6),
          rmrRepair: round(repair.rmrMean, 4),
          reliabilityResettled: round(resettled.reliabilityMin, 6),
          rmrResettled: round(resettled.rmrMean, 4),
          ldhResettled: resettled.ldhMax,
          ldhResettledMean: round(resettled.ldhMean),
          diameterAfterHeal: eccAfter.diameter,
          duplicates: tally.duplicates,
          broadcastsSent: tally.messages.size,
        };
        if (tally.unknown !== 0) throw new Error(`${tally.unknown} deliveries or sends of unknown broadcasts (seed ${o.seed})`);
      },
    },
  );
  return { ...report, ...result } as BroadcastReport;
}

/** `count` origins: the list repeated (k-th broadcast from origins[k mod K]). */
function roundRobin(origins: NodeId[], count: number): NodeId[] {
  return origins.length === 0 ? [] : Array.from({ length: count }, (_, k) => origins[k % origins.length]!);
}

function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
