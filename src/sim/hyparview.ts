import type { NodeId } from '../core/types';
import { SeededRng, hashString, sample } from '../core/rng';
import {
  HyParView,
  type HpvIn,
  type HpvMessage,
  type HpvOut,
  type HpvTimer,
  type HyParViewConfig,
} from '../core/hyparview';
import { Network, type Adapter, type NetworkConfig, type SimNode } from './network';
import {
  degrees,
  largestComponentFraction,
  leakedLinks,
  snapshot,
  spread,
  symmetry,
  componentSizes,
} from './metrics';

/** HyParView alone as a simulated node. */
export const hyparviewAdapter: Adapter<HpvIn, HpvOut, HyParView> = {
  message: (from, msg) => ({ type: 'message', from, msg: msg as HpvMessage }),
  timer: (timer) => ({ type: 'timer', timer: timer as HpvTimer }),
  linkDown: (peer) => ({ type: 'linkDown', peer }),
  announce: (from, clients, known, isolated) => ({ type: 'announce', from, clients, known, isolated }),
  // Shuffles and re-announces run forever. The first isolation check (gen 1, armed by
  // 'start') is part of joining: in announce mode it sends the newcomer's announce.
  isBackgroundTimer: (t) => {
    const timer = t as HpvTimer;
    return timer.type === 'hpv.shuffle' || (timer.type === 'hpv.isolation' && timer.gen > 1);
  },
};

export type HpvNetwork = Network<HpvIn, HpvOut, HyParView>;

export function createHpvNetwork(config: Partial<NetworkConfig> & { seed: number }): HpvNetwork {
  return new Network<HpvIn, HpvOut, HyParView>(hyparviewAdapter, config);
}

/** Each node's own Rng, derived from the run's seed and the node id (independent of join order). */
export function nodeRng(seed: number, id: NodeId): SeededRng {
  return new SeededRng(hashString(`${seed}/${id}`));
}

/**
 * Add a node and start it. With `contact` it joins through that node (as a browser does
 * once it has a contact); without, it announces on signaling and joins the first welcomer.
 */
export function addHpvNode(
  net: HpvNetwork,
  id: NodeId,
  opts: { config?: Partial<HyParViewConfig>; contact?: NodeId; clients?: number; cause?: number; delay?: number } = {},
): HyParView {
  const node = new HyParView(id, opts.config ?? {}, nodeRng(net.config.seed, id));
  net.add(id, node);
  const at = { cause: opts.cause ?? 0, delay: opts.delay ?? 0 };
  net.input(id, { type: 'start' }, at);
  if (opts.contact !== undefined) {
    const join: HpvIn = opts.clients === undefined
      ? { type: 'join', contact: opts.contact }
      : { type: 'join', contact: opts.contact, clients: opts.clients };
    net.input(id, join, at);
  }
  return node;
}

export interface OverlayMetrics {
  nodes: number;
  activeMin: number;
  activeMean: number;
  activeMax: number;
  passiveMean: number;
  /** Fraction of active edges present in both directions. */
  symmetric: number;
  /** Fraction of live nodes in the largest component of the active-view graph. */
  connected: number;
  components: number;
  /** Open links in no active view. */
  leakedLinks: number;
}

/** A network whose nodes are HyParView (alone or inside a stack): what overlayMetrics reads. */
export interface OverlaySource {
  liveIds(): NodeId[];
  node(id: NodeId): { activeView(): NodeId[]; passiveView(): NodeId[] } | undefined;
  openLinks(): [NodeId, NodeId][];
}

export function overlayMetrics(net: OverlaySource): OverlayMetrics {
  const s = snapshot(net);
  const deg = spread(degrees(s));
  const passive = spread(s.ids.map((id) => net.node(id)!.passiveView().length));
  return {
    nodes: s.ids.length,
    activeMin: deg.min,
    activeMean: deg.mean,
    activeMax: deg.max,
    passiveMean: passive.mean,
    symmetric: symmetry(s),
    connected: largestComponentFraction(s),
    components: componentSizes(s).length,
    leakedLinks: leakedLinks(net.openLinks(), net).length,
  };
}

export interface OverlayScenario {
  nodes: number;
  /** Fraction of nodes that crash at once after the overlay settled. */
  fail: number;
  seed: number;
  /**
   * 'contact': each newcomer gets a random earlier node as contact (what a browser does
   * after its first welcome), so no announce reaches all N nodes; 'announce': newcomers
   * announce on the modelled signaling server and join their first welcomer.
   */
  bootstrap: 'contact' | 'announce';
  /**
   * 0: nodes join one by one (or wave by wave), each running to quiescence before the next
   * with shuffles paused. > 0: a join every joinInterval ms, concurrently, shuffles running.
   */
  joinInterval: number;
  /** Nodes joining simultaneously (through contacts among the earlier waves). */
  waveSize: number;
  /** With joinInterval > 0 and waveSize > 1: ms between waves. */
  waveInterval: number;
  /** Simulated time after the last join, before measuring (shuffles run). */
  settleMs: number;
  /** Give up healing after this long (simulated). */
  healMaxMs: number;
  /** After healing, run this long before measuring again. */
  healSettleMs: number;
  /** Resolution of the heal-time measurement (simulated ms). */
  healCheckMs: number;
  hyparview: Partial<HyParViewConfig>;
  network: Partial<NetworkConfig>;
}

export const DEFAULT_SCENARIO: OverlayScenario = {
  nodes: 1000,
  fail: 0.5,
  seed: 1,
  bootstrap: 'contact',
  joinInterval: 0,
  waveSize: 1,
  waveInterval: 1_000,
  settleMs: 30_000,
  healMaxMs: 120_000,
  healSettleMs: 30_000,
  healCheckMs: 100,
  hyparview: {},
  network: {},
};

export interface OverlayReport {
  nodes: number;
  seed: number;
  bootstrap: 'contact' | 'announce';
  /** Messages causally descended from one join (shuffles and re-announces excluded). */
  joinMessagesMean: number;
  joinMessagesMax: number;
  activeMin: number;
  activeMean: number;
  activeMax: number;
  passiveMean: number;
  symmetric: number;
  connectedBefore: number;
  leakedLinks: number;
  failed: number;
  connectedAfterFailure: number;
  connectedAfterHeal: number;
  /** Simulated ms from the crash until the survivors form one component; null if they never did. */
  healMs: number | null;
  activeMinAfterHeal: number;
  activeMeanAfterHeal: number;
  symmetricAfterHeal: number;
  leakedLinksAfterHeal: number;
  messages: number;
  messagesByType: Record<string, number>;
  /** Announces published on the modelled signaling server (each reaches every live node). */
  announces: number;
  simMs: number;
  wallMs: number;
}

const JOIN_DRAIN_LIMIT = 600_000;

/** N joins, settle, crash a fraction F at once, heal. Deterministic for a given seed. */
export function runOverlayScenario(options: Partial<OverlayScenario>): OverlayReport {
  const o: OverlayScenario = { ...DEFAULT_SCENARIO, ...options };
  const net = createHpvNetwork({ seed: o.seed, ...o.network });
  return runOverlayPhases(o, net, (id, opts) => addHpvNode(net, id, opts), {});
}

/** Adds node `id` to the scenario's network and starts it (joining through `contact` if given). */
export type AddOverlayNode = (id: NodeId, opts: { config: Partial<HyParViewConfig>; contact?: NodeId; cause: number }) => void;

/**
 * Hooks into the overlay scenario, for stacks that run more than HyParView (see
 * broadcast.ts). Each runs at one point of simulated time; whatever it injects or runs
 * becomes part of the scenario.
 */
export interface ScenarioPhases {
  /** The overlay has settled and been measured; `victims` are about to crash. */
  beforeCrash?(victims: NodeId[]): void;
  /** The victims have just crashed (nothing has run since). */
  afterCrash?(): void;
  /** The survivors have just formed one component (never called if they do not within healMaxMs). */
  healed?(): void;
  /** After the heal settle and the after-heal overlay measurement, before the totals are taken. */
  end?(): void;
}

/** The overlay scenario on any network of HyParView-bearing nodes, with hooks (see ScenarioPhases). */
export function runOverlayPhases<In, Out extends { type: string }, N extends SimNode<In, Out> & { activeView(): NodeId[]; passiveView(): NodeId[] }>(
  o: OverlayScenario,
  net: Network<In, Out, N>,
  addNode: AddOverlayNode,
  phases: ScenarioPhases,
): OverlayReport {
  const wallStart = performance.now();
  const ids: NodeId[] = [];

  const join = (i: number, known: number) => {
    const id = `n${i}`;
    const contact = o.bootstrap === 'contact' && known > 0 ? ids[Math.floor(net.rng.next() * known)] : undefined;
    // Cause i + 1 charges every message descending from this join to it.
    addNode(id, { config: o.hyparview, contact, cause: i + 1 });
    ids.push(id);
  };
  const wave = Math.max(1, Math.floor(o.waveSize));
  if (o.joinInterval > 0) {
    // Concurrent: a join every joinInterval ms (or a wave every waveInterval), shuffles running.
    for (let i = 0; i < o.nodes; i++) {
      net.runUntil(wave > 1 ? Math.floor(i / wave) * o.waveInterval : i * o.joinInterval);
      join(i, wave > 1 ? Math.floor(i / wave) * wave : i);
    }
  } else {
    // One by one (or wave by wave): each runs to quiescence before the next, with the
    // shuffles of the nodes already in held, so a join's cost is measured alone.
    net.pauseBackground();
    for (let i = 0; i < o.nodes; i += wave) {
      for (let k = i; k < Math.min(o.nodes, i + wave); k++) join(k, i);
      if (!net.drain(JOIN_DRAIN_LIMIT)) throw new Error(`join of n${i} did not quiesce (seed ${o.seed})`);
    }
    net.resumeBackground();
  }
  net.runFor(o.settleMs);
  net.settle();
  const before = overlayMetrics(net);

  const joinCosts: number[] = [];
  for (let i = 1; i < o.nodes; i++) joinCosts.push(net.messagesCausedBy(i + 1));
  const joins = spread(joinCosts);

  const victims = sample(net.rng, net.liveIds(), Math.floor(o.fail * o.nodes));
  phases.beforeCrash?.(victims);
  for (const v of victims) net.crash(v);
  const crashAt = net.now;
  const connectedAfterFailure = largestComponentFraction(snapshot(net));
  phases.afterCrash?.();

  let healMs: number | null = connectedAfterFailure === 1 ? 0 : null;
  if (healMs === 0) phases.healed?.();
  while (healMs === null && net.now - crashAt < o.healMaxMs) {
    net.runFor(o.healCheckMs);
    if (largestComponentFraction(snapshot(net)) === 1) {
      healMs = net.now - crashAt;
      phases.healed?.();
    }
  }
  net.runFor(o.healSettleMs);
  net.settle();
  const after = overlayMetrics(net);
  phases.end?.();

  return {
    nodes: o.nodes,
    seed: o.seed,
    bootstrap: o.bootstrap,
    joinMessagesMean: round(joins.mean),
    joinMessagesMax: joins.max,
    activeMin: before.activeMin,
    activeMean: round(before.activeMean),
    activeMax: before.activeMax,
    passiveMean: round(before.passiveMean),
    symmetric: round(before.symmetric, 6),
    connectedBefore: round(before.connected, 6),
    leakedLinks: before.leakedLinks,
    failed: victims.length,
    connectedAfterFailure: round(connectedAfterFailure, 6),
    connectedAfterHeal: round(after.connected, 6),
    healMs,
    activeMinAfterHeal: after.activeMin,
    activeMeanAfterHeal: round(after.activeMean),
    symmetricAfterHeal: round(after.symmetric, 6),
    leakedLinksAfterHeal: after.leakedLinks,
    messages: net.stats.sent,
    messagesByType: Object.fromEntries([...net.stats.byType].sort()),
    announces: net.stats.announces,
    simMs: Math.round(net.now),
    wallMs: Math.round(performance.now() - wallStart),
  };
}

function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
