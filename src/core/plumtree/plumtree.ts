import type { NodeId, Rng, Seal } from '../types';
import { Protocol, type Effect } from '../protocol';
import { randInt } from '../rng';
import { AgedMap } from './aged-map';
import { TokenBuckets, type RateConfig } from '../limits/rate';
import { MAX_IHAVE_ENTRIES, MAX_ROUND, makeMessageId, originOf, type PtGossip, type PtMessage, type PtTimer } from './messages';

/**
 * Plumtree: epidemic broadcast trees (Leitão, Pereira, Rodrigues, SRDS 2007) over the
 * HyParView active view.
 *
 * One tree per origin, as in Partisan/riak_core (`eager_sets`/`lazy_sets` per root),
 * not one split shared by all origins as in the paper and iroh-gossip. Why: every member
 * broadcasts heartbeats, so broadcasts from different origins are always in flight at
 * once. With a shared split, two of them can detect the same redundant cycle at two
 * different nodes and PRUNE two of its links, cutting the tree; every node of the cut-off
 * part then GRAFTs on its own timer, adding several links back, i.e. new cycles. In the
 * test network that loop kept RMR at 0.5-0.7 with 10-30 broadcasts/s (150 nodes), with
 * or without the optimisation; per-origin trees bring it back to ~0. The cost: the first
 * broadcast of each origin floods (every neighbour starts eager in a new tree), and state
 * is O(origins x degree), bounded by maxTrees (least recently used tree dropped).
 * A tree is stored as its lazy set; eager = neighbours minus lazy.
 *
 * Rules (paper §4, Algorithm 1-2), per origin:
 * - neighbour up -> eager in every tree; neighbour down -> forgotten, also as an
 *   announcer of missing ids;
 * - first copy of a message: deliver, sender becomes eager, GOSSIP to the other eager
 *   peers, queue IHAVE for the lazy peers (flushed in batches every ihaveBatchDelayMs);
 * - duplicate copy: sender becomes lazy and gets a PRUNE (which makes us lazy there);
 * - IHAVE of an unknown id: wait graftTimeout1Ms, then GRAFT the first announcer (it becomes
 *   eager and answers from its cache); after graftTimeout2Ms without the message, GRAFT the
 *   next announcer, until none are left;
 * - optimisation: when the eager copy arrives with round r and a lazy announcer had
 *   offered round r' with r - r' >= optimizationThreshold, GRAFT that announcer (no ids)
 *   and PRUNE the eager sender: the tree shortens without a payload exchange.
 *
 * Control traffic goes to neighbours only: IHAVE and PRUNE from a peer that is not (or
 * no longer) a neighbour are ignored, and neighbour sets change only for neighbours. A
 * GRAFT is answered whoever sends it (answering costs a cached payload and helps a peer
 * that raced ahead of our neighborUp).
 *
 * Anti-entropy (riak_core_broadcast's exchange; the lazy IHAVE of the paper stretched
 * over time): the tree repairs itself, not the past, so a member cut off while a message
 * spread never gets it from the tree. Messages of `antiEntropyKinds` are kept for
 * antiEntropyMaxAgeMs. A node sends `pt.aeSum` (count and XOR of id hashes: a few bytes)
 * to a new neighbour, to one random neighbour every antiEntropyIntervalMs (doubled, up to
 * 2^AE_MAX_BACKOFF times, while its own sum stays the same from one tick to the next: a
 * quiet cluster exchanges almost nothing), and to one
 * more neighbour whenever an exchange brought it something new (so a repair spreads
 * through a healed region like a rumour). A receiver whose sum differs answers with
 * `pt.aeIds` (its ids); the first side then sends the messages the other lacks and a
 * `pt.aeWant` for those it lacks itself. Copies travel as the stored original record
 * with `ae: true`: delivered once (the seen check), cached, never a tree change.
 * Ids fetched this way stay known for 2 x antiEntropyMaxAgeMs, so an expired message
 * offered again by a slower peer is never delivered twice.
 *
 * Protocol contract (core/protocol.ts): inputs `neighborUp`, `neighborDown`, `message`,
 * `broadcast` (originate), `timer`; effects `send`, `timer` and the event `deliver` (a
 * broadcast new to this node, its own included, for the handler of its `kind`).
 */
export interface PlumtreeConfig {
  /**
   * Wait after the first IHAVE of a missing id before grafting (ms). It must exceed the
   * usual lag of the eager path behind the lazy one, or every such lag costs an extra
   * payload and a tree change. 200 ms: a few WebRTC hops between machines on a
   * continent (links 10-50 ms) plus the IHAVE batching delay; tabs on one machine see
   * 1-5 ms links and never approach it. iroh-gossip uses 80 ms for native QUIC links.
   */
  graftTimeout1Ms: number;
  /** Wait for a GRAFT's answer before grafting the next announcer: about one RTT. */
  graftTimeout2Ms: number;
  /** IHAVE announcements queued for a lazy peer are sent together after this. */
  ihaveBatchDelayMs: number;
  /** Payloads kept to answer GRAFTs: count bound ... */
  cacheMaxMessages: number;
  /** ... and age bound. A GRAFT comes within about graftTimeout1Ms + k * graftTimeout2Ms. */
  cacheMaxAgeMs: number;
  /** How long ids of delivered messages are kept to drop duplicates; must exceed cacheMaxAgeMs. */
  seenMaxAgeMs: number;
  /** Count bound on the seen set (protects memory under a broadcast flood). */
  seenMaxMessages: number;
  /**
   * Hops a lazy announcer must be ahead of the eager path to replace it. The paper's
   * experiments and iroh-gossip use 7. In a settled per-origin tree it never fires; after
   * repairs it shortens grafted detours: with half of 300 nodes crashed, the re-settled
   * mean LDH was 8.9 with 4, 10.5 with 7 and 11.6 with none, RMR alike (~0.01).
   */
  optimizationThreshold: number;
  /** Missing ids tracked at once (an IHAVE flood cannot grow state beyond this). */
  maxMissing: number;
  /** Announcers remembered per missing id. */
  maxAnnouncers: number;
  /** Per-origin trees kept; set it above the number of origins that broadcast. */
  maxTrees: number;
  /**
   * Broadcast kinds repaired by anti-entropy (see "Anti-entropy" below): messages of
   * these kinds are kept for exchange and fetched by members that missed them. Kinds
   * whose loss is harmless (membership heartbeats, superseded by the next one) stay out.
   */
  antiEntropyKinds: readonly string[];
  /** Period of the exchange with one random neighbour (ms); 0 turns the periodic exchange off. */
  antiEntropyIntervalMs: number;
  /** How long a message stays in the exchange (ms): the longest partition it repairs. */
  antiEntropyMaxAgeMs: number;
  /** Count bound of the exchange (at most MAX_IHAVE_ENTRIES: one `pt.aeIds` holds them all). */
  antiEntropyMaxMessages: number;
  /**
   * New broadcasts accepted per origin: at most `burst` at once, then `perSec` a second;
   * past it a gossip is dropped before it is cached, delivered or forwarded (and fetched
   * again from an IHAVE once the bucket refills, like any lost copy). An honest origin
   * sends a few membership updates a minute and chat at human (or bench: 20/s) pace.
   */
  originRate: RateConfig;
}

/**
 * The composer's admission check of a new gossip (kind known, payload valid, sealed when
 * sealing is on): a reason to drop it, or null. Runs before the gossip is cached,
 * delivered or forwarded, so nothing invalid costs memory or travels further.
 */
export type GossipAdmission = (msg: PtGossip) => string | null;

/** Doublings of the anti-entropy period while nothing new arrives (5 s -> 40 s). */
export const AE_MAX_BACKOFF = 3;

export const DEFAULT_PLUMTREE_CONFIG: Readonly<PlumtreeConfig> = Object.freeze({
  graftTimeout1Ms: 200,
  graftTimeout2Ms: 100,
  ihaveBatchDelayMs: 100,
  cacheMaxMessages: 2_000,
  cacheMaxAgeMs: 30_000,
  seenMaxAgeMs: 120_000,
  seenMaxMessages: 100_000,
  optimizationThreshold: 4,
  maxMissing: 4_096,
  maxAnnouncers: 16,
  maxTrees: 2_048,
  antiEntropyKinds: ['chat'],
  antiEntropyIntervalMs: 5_000,
  antiEntropyMaxAgeMs: 600_000,
  antiEntropyMaxMessages: MAX_IHAVE_ENTRIES,
  originRate: Object.freeze({ burst: 500, perSec: 100 }),
});

export type PtIn =
  | { type: 'neighborUp'; peer: NodeId }
  | { type: 'neighborDown'; peer: NodeId }
  | { type: 'message'; from: NodeId; msg: PtMessage }
  /**
   * Originate a broadcast. It is also delivered here, as a `deliver` event with hops 0 and
   * from = me. `id`: one taken from newMessageId() (to seal the message before it is
   * broadcast); a fresh one when absent. `seal`: kept and sent with every copy.
   */
  | { type: 'broadcast'; kind: string; data: unknown; id?: string; seal?: Seal }
  | { type: 'timer'; timer: PtTimer };

export interface PtDeliver {
  type: 'deliver';
  id: string;
  origin: NodeId;
  kind: string;
  data: unknown;
  /** Path length of the copy delivered (0 for our own broadcasts). */
  hops: number;
  /** The neighbour it came from (me for our own broadcasts). */
  from: NodeId;
  /** Set when anti-entropy fetched it (the tree had not brought it). */
  repaired?: true;
  /** The origin's seal, as it came with the message. */
  seal?: Seal;
}

/** Plumtree's events: only `deliver`. */
export type PtEvent = PtDeliver;

export type PtOut = Effect<PtMessage, PtTimer, PtEvent>;

export interface PlumtreeStats {
  broadcasts: number;
  delivered: number;
  duplicates: number;
  gossipSent: number;
  gossipReceived: number;
  ihaveSent: number;
  ihaveEntriesSent: number;
  /** IHAVE entries dropped from the queue before the flush: the peer showed it has the message (its own IHAVE or a copy). */
  ihaveEntriesSuppressed: number;
  ihaveReceived: number;
  graftSent: number;
  graftReceived: number;
  /** GRAFTed ids we could not answer (no longer cached). */
  graftMisses: number;
  pruneSent: number;
  pruneReceived: number;
  /** Tree optimisations performed (lazy announcer grafted, eager parent pruned). */
  optimizations: number;
  /** Control messages from non-neighbours or IHAVE entries dropped by bounds. */
  ignored: number;
  /** New gossips refused by the admission check (unknown kind, invalid payload, no seal). */
  refused: number;
  /** New gossips dropped by their origin's rate limit (`originRate`). */
  rateLimited: number;
  /** Largest hop count of a delivered message (last delivery hop, LDH). */
  maxHops: number;
  /** Anti-entropy: sums sent, id lists sent (a sum differed), wants sent, copies pushed, messages delivered by it. */
  aeSumSent: number;
  aeIdsSent: number;
  aeWantSent: number;
  aePushed: number;
  aeDelivered: number;
  /** Seen ids dropped by the count bound before their age limit (risk of duplicates). */
  seenEvictedEarly: number;
  /** Neighbours (the HyParView active view as reported). */
  neighbors: number;
  /** Eager / lazy peers in this node's own tree (the one its broadcasts use). */
  eager: number;
  lazy: number;
  trees: number;
  cached: number;
  seen: number;
  missing: number;
  /** Messages held for the anti-entropy exchange. */
  aeHeld: number;
}

type Counters = Omit<PlumtreeStats, 'seenEvictedEarly' | 'neighbors' | 'eager' | 'lazy' | 'trees' | 'cached' | 'seen' | 'missing' | 'aeHeld'>;

interface Missing {
  origin: NodeId;
  /** Neighbours that announced the id, in announcement order. */
  announcers: { peer: NodeId; round: number }[];
  armed: boolean;
}

const TAG_CHARS = 8;

export class Plumtree extends Protocol<PtIn, PtMessage, PtTimer, PtEvent> {
  readonly me: NodeId;
  readonly config: Readonly<PlumtreeConfig>;
  /** Random per-incarnation tag: ids stay unique when a reloaded tab reuses its node id. */
  private readonly tag: string;
  private counter = 0;

  private readonly neighbors = new Set<NodeId>();
  /** origin -> lazy peers of its tree, in least-recently-used order. */
  private readonly trees = new Map<NodeId, Set<NodeId>>();
  private readonly ihaveQueue = new Map<NodeId, [string, number][]>();
  private flushArmed = false;
  private readonly missing = new Map<string, Missing>();
  private readonly seen: AgedMap<string, true>;
  /** Forwardable copies (round already incremented) for answering GRAFTs. */
  private readonly cache: AgedMap<string, PtGossip>;
  /** Messages of antiEntropyKinds kept for exchange, with the hash of their id. */
  private readonly aeStore: AgedMap<string, { msg: PtGossip; h: number }>;
  /** Ids ever held for exchange (2 x its age): never fetched or delivered again. */
  private readonly aeKnown: AgedMap<string, true>;
  private readonly aeKinds: ReadonlySet<string>;
  private aeArmed = false;
  /** Ticks in a row at which this node's exchange sum had not changed, and that sum. */
  private aeQuiet = 0;
  private aeLastTick = { n: -1, h: 0 };
  private aeSpreadArmed = false;
  private readonly rng: Rng;
  private readonly counters: Counters = {
    broadcasts: 0, delivered: 0, duplicates: 0, gossipSent: 0, gossipReceived: 0,
    ihaveSent: 0, ihaveEntriesSent: 0, ihaveEntriesSuppressed: 0, ihaveReceived: 0, graftSent: 0, graftReceived: 0,
    graftMisses: 0, pruneSent: 0, pruneReceived: 0, optimizations: 0, ignored: 0, refused: 0, rateLimited: 0, maxHops: 0,
    aeSumSent: 0, aeIdsSent: 0, aeWantSent: 0, aePushed: 0, aeDelivered: 0,
  };

  private readonly originBuckets: TokenBuckets;

  constructor(
    me: NodeId,
    config: Partial<PlumtreeConfig>,
    rng: Rng,
    private readonly admission: GossipAdmission = () => null,
  ) {
    super();
    this.me = me;
    this.config = Object.freeze({ ...DEFAULT_PLUMTREE_CONFIG, ...config });
    let tag = '';
    for (let i = 0; i < TAG_CHARS; i++) tag += randInt(rng, 36).toString(36);
    this.tag = tag;
    this.seen = new AgedMap(this.config.seenMaxAgeMs, this.config.seenMaxMessages);
    this.cache = new AgedMap(this.config.cacheMaxAgeMs, this.config.cacheMaxMessages);
    const aeMax = Math.min(MAX_IHAVE_ENTRIES, this.config.antiEntropyMaxMessages);
    this.aeStore = new AgedMap(this.config.antiEntropyMaxAgeMs, aeMax);
    this.aeKnown = new AgedMap(2 * this.config.antiEntropyMaxAgeMs, this.config.seenMaxMessages);
    this.aeKinds = new Set(this.config.antiEntropyKinds);
    this.rng = rng;
    this.originBuckets = new TokenBuckets(this.config.originRate);
  }

  /** A new gossip may be cached, delivered and forwarded: it passes admission and its origin's rate. */
  private admit(msg: PtGossip): boolean {
    if (this.admission(msg) !== null) {
      this.counters.refused++;
      return false;
    }
    if (!this.originBuckets.take(msg.origin, this.now)) {
      this.counters.rateLimited++;
      return false;
    }
    return true;
  }

  protected onInput(input: PtIn): void {
    this.seen.expire(this.now);
    this.cache.expire(this.now);
    this.aeStore.expire(this.now);
    this.aeKnown.expire(this.now);
    switch (input.type) {
      case 'neighborUp':
        this.onNeighborUp(input.peer);
        break;
      case 'neighborDown':
        this.onNeighborDown(input.peer);
        break;
      case 'broadcast':
        this.onBroadcast(input.kind, input.data, input.id, input.seal);
        break;
      case 'timer':
        if (input.timer.type === 'pt.graftTimeout') this.onGraftTimeout(input.timer.id);
        else if (input.timer.type === 'pt.aeTick') this.onAeTick();
        else if (input.timer.type === 'pt.aeSpread') this.onAeSpread(input.timer.from);
        else this.onIhaveFlush();
        break;
      case 'message':
        this.onMessage(input.from, input.msg);
        break;
    }
  }

  /** Eager peers of `origin`'s tree (default: this node's own, the one its broadcasts use). */
  eagerPeers(origin: NodeId = this.me): NodeId[] {
    const lazy = this.trees.get(origin);
    return [...this.neighbors].filter((p) => !lazy?.has(p)).sort();
  }

  /** Lazy peers of `origin`'s tree (default: this node's own). */
  lazyPeers(origin: NodeId = this.me): NodeId[] {
    const lazy = this.trees.get(origin);
    return lazy ? [...lazy].sort() : [];
  }

  /** Origins whose tree this node holds, least recently used first. */
  origins(): NodeId[] {
    return [...this.trees.keys()];
  }

  stats(): PlumtreeStats {
    return {
      ...this.counters,
      seenEvictedEarly: this.seen.evictedEarly,
      neighbors: this.neighbors.size,
      eager: this.neighbors.size - (this.trees.get(this.me)?.size ?? 0),
      lazy: this.trees.get(this.me)?.size ?? 0,
      trees: this.trees.size,
      cached: this.cache.size,
      seen: this.seen.size,
      missing: this.missing.size,
      aeHeld: this.aeStore.size,
    };
  }

  private isNeighbor(peer: NodeId): boolean {
    return this.neighbors.has(peer);
  }

  /** Paper §4.4: a new neighbour is eager (it is in no lazy set). Anti-entropy: exchange sums with it. */
  private onNeighborUp(peer: NodeId): void {
    if (peer === this.me || this.neighbors.has(peer)) return;
    this.neighbors.add(peer);
    if (this.aeKinds.size === 0) return;
    this.sendAeSum(peer);
    if (!this.aeArmed && this.config.antiEntropyIntervalMs > 0) {
      this.aeArmed = true;
      this.io.setTimer(this.config.antiEntropyIntervalMs, { type: 'pt.aeTick' });
    }
  }

  /** Ids of messages this node has delivered or holds for exchange. */
  private known(id: string): boolean {
    return this.seen.has(id) || this.aeKnown.has(id);
  }

  private keepForExchange(msg: PtGossip): void {
    if (!this.aeKinds.has(msg.kind)) return;
    const { ae: _, ...record } = msg;
    this.aeStore.set(msg.id, { msg: record, h: hashId(msg.id) }, this.now);
    this.aeKnown.set(msg.id, true, this.now);
  }

  private aeSum(): { n: number; h: number } {
    let h = 0;
    let n = 0;
    for (const [, e] of this.aeStore.items()) {
      h ^= e.h;
      n++;
    }
    return { n, h: h >>> 0 };
  }

  private sendAeSum(peer: NodeId, sum = this.aeSum()): void {
    this.counters.aeSumSent++;
    this.io.send(peer, { type: 'pt.aeSum', ...sum });
  }

  private randomNeighbor(except?: NodeId): NodeId | undefined {
    const peers = [...this.neighbors].filter((p) => p !== except);
    return peers.length === 0 ? undefined : peers[randInt(this.rng, peers.length)];
  }

  /** Periodic exchange with one random neighbour; stops while there is none (neighborUp re-arms it). */
  private onAeTick(): void {
    this.aeArmed = false;
    const peer = this.randomNeighbor();
    if (peer === undefined) return;
    const sum = this.aeSum();
    this.aeQuiet = sum.n === this.aeLastTick.n && sum.h === this.aeLastTick.h ? this.aeQuiet + 1 : 0;
    this.aeLastTick = sum;
    this.sendAeSum(peer, sum);
    this.aeArmed = true;
    this.io.setTimer(this.config.antiEntropyIntervalMs * 2 ** Math.min(this.aeQuiet, AE_MAX_BACKOFF), { type: 'pt.aeTick' });
  }

  private onAeSum(from: NodeId, n: number, h: number): void {
    if (!this.isNeighbor(from)) return void this.counters.ignored++;
    const mine = this.aeSum();
    if (mine.n === n && mine.h === h) return;
    this.counters.aeIdsSent++;
    this.io.send(from, { type: 'pt.aeIds', ids: [...this.aeStore.keys()] });
  }

  /** The peer's ids: push what it lacks, want what we lack. */
  private onAeIds(from: NodeId, ids: string[]): void {
    if (!this.isNeighbor(from)) return void this.counters.ignored++;
    const theirs = new Set(ids);
    for (const [id, e] of this.aeStore.items()) {
      if (theirs.has(id)) continue;
      this.counters.aePushed++;
      this.counters.gossipSent++;
      this.io.send(from, { ...e.msg, ae: true });
    }
    const want = ids.filter((id) => !this.known(id));
    if (want.length > 0) {
      this.counters.aeWantSent++;
      this.io.send(from, { type: 'pt.aeWant', ids: want });
    }
  }

  /** Answered whoever asks, like a GRAFT (a copy costs only the payload). */
  private onAeWant(from: NodeId, ids: string[]): void {
    for (const id of ids) {
      const e = this.aeStore.get(id);
      if (!e) continue;
      this.counters.aePushed++;
      this.counters.gossipSent++;
      this.io.send(from, { ...e.msg, ae: true });
    }
  }

  /** A copy fetched by anti-entropy: delivered once, kept, no tree change; then spread the repair one more hop. */
  private onAeGossip(from: NodeId, msg: PtGossip): void {
    this.counters.gossipReceived++;
    if (this.known(msg.id) || !this.aeKinds.has(msg.kind)) {
      this.counters.duplicates++;
      return;
    }
    if (!this.admit(msg)) return;
    const { ae: _, ...record } = msg;
    this.seen.set(msg.id, true, this.now);
    this.cache.set(msg.id, { ...record, round: Math.min(msg.round + 1, MAX_ROUND) }, this.now);
    this.keepForExchange(record);
    this.counters.delivered++;
    this.counters.aeDelivered++;
    const d: PtDeliver = { type: 'deliver', id: msg.id, origin: msg.origin, kind: msg.kind, data: msg.data, hops: msg.round, from, repaired: true };
    if (msg.seal) d.seal = msg.seal;
    this.io.event(d);
    this.missing.delete(msg.id);
    if (!this.aeSpreadArmed) {
      this.aeSpreadArmed = true;
      this.io.setTimer(this.config.ihaveBatchDelayMs, { type: 'pt.aeSpread', from });
    }
  }

  /** Something new came by anti-entropy: offer the sum to another neighbour (it may lack it too). */
  private onAeSpread(from: NodeId): void {
    this.aeSpreadArmed = false;
    const next = this.randomNeighbor(from);
    if (next !== undefined) this.sendAeSum(next);
  }

  /** Paper §4.4: forget the neighbour and the IHAVEs it sent (no GRAFT to a dead peer). */
  private onNeighborDown(peer: NodeId): void {
    if (!this.neighbors.delete(peer)) return;
    for (const lazy of this.trees.values()) lazy.delete(peer);
    this.ihaveQueue.delete(peer);
    for (const m of this.missing.values()) {
      if (m.announcers.some((a) => a.peer === peer)) m.announcers = m.announcers.filter((a) => a.peer !== peer);
    }
  }

  /** The id of a broadcast of ours to come: pass it with the `broadcast` input. */
  newMessageId(): string {
    return makeMessageId(this.me, this.tag, this.counter++);
  }

  private onBroadcast(kind: string, data: unknown, given: string | undefined, seal: Seal | undefined): void {
    const id = given !== undefined && originOf(given) === this.me ? given : this.newMessageId();
    if (this.seen.has(id)) return;
    const msg: PtGossip = seal ? { type: 'pt.gossip', id, origin: this.me, round: 1, kind, data, seal } : { type: 'pt.gossip', id, origin: this.me, round: 1, kind, data };
    this.counters.broadcasts++;
    this.seen.set(id, true, this.now);
    this.cache.set(id, msg, this.now);
    this.keepForExchange(msg);
    this.io.event(seal ? { type: 'deliver', id, origin: this.me, kind, data, hops: 0, from: this.me, seal } : { type: 'deliver', id, origin: this.me, kind, data, hops: 0, from: this.me });
    this.eagerPush(msg, this.me);
    this.lazyPush(msg, this.me);
  }

  private onMessage(from: NodeId, msg: PtMessage): void {
    switch (msg.type) {
      case 'pt.gossip':
        this.onGossip(from, msg);
        break;
      case 'pt.ihave':
        this.onIhave(from, msg.entries);
        break;
      case 'pt.graft':
        this.onGraft(from, msg.origin, msg.ids);
        break;
      case 'pt.prune':
        this.counters.pruneReceived++;
        if (this.isNeighbor(from)) this.setLazy(msg.origin, from);
        else this.counters.ignored++;
        break;
      case 'pt.aeSum':
        this.onAeSum(from, msg.n, msg.h);
        break;
      case 'pt.aeIds':
        this.onAeIds(from, msg.ids);
        break;
      case 'pt.aeWant':
        this.onAeWant(from, msg.ids);
        break;
    }
  }

  private onGossip(from: NodeId, msg: PtGossip): void {
    if (msg.ae === true) return this.onAeGossip(from, msg);
    this.counters.gossipReceived++;
    if (this.known(msg.id)) {
      this.counters.duplicates++;
      if (this.ihaveQueue.has(from)) this.suppressIhaves(from, [msg.id]);
      // A redundant link of the tree: both ends stop pushing payloads over it.
      if (this.isNeighbor(from)) this.prune(msg.origin, from);
      return;
    }
    if (!this.admit(msg)) return;
    this.seen.set(msg.id, true, this.now);
    const forward: PtGossip = { ...msg, round: Math.min(msg.round + 1, MAX_ROUND) };
    this.cache.set(msg.id, forward, this.now);
    this.keepForExchange(msg);
    if (this.isNeighbor(from)) this.setEager(msg.origin, from);
    this.counters.delivered++;
    this.counters.maxHops = Math.max(this.counters.maxHops, msg.round);
    const d: PtDeliver = { type: 'deliver', id: msg.id, origin: msg.origin, kind: msg.kind, data: msg.data, hops: msg.round, from };
    if (msg.seal) d.seal = msg.seal;
    this.io.event(d);
    this.eagerPush(forward, from);
    this.lazyPush(forward, from);
    const missing = this.missing.get(msg.id);
    if (missing) {
      this.missing.delete(msg.id);
      this.optimize(from, msg.round, missing);
    }
  }

  /** Paper §4.4 (optimisation): swap a long eager path for a much shorter lazy one. */
  private optimize(from: NodeId, round: number, missing: Missing): void {
    let best: { peer: NodeId; round: number } | undefined;
    for (const a of missing.announcers) if (!best || a.round < best.round) best = a;
    if (!best || best.peer === from || round - best.round < this.config.optimizationThreshold) return;
    if (!this.isNeighbor(best.peer) || !this.isNeighbor(from)) return;
    this.counters.optimizations++;
    if (this.trees.get(missing.origin)?.has(best.peer)) {
      this.setEager(missing.origin, best.peer);
      this.counters.graftSent++;
      this.io.send(best.peer, { type: 'pt.graft', origin: missing.origin, ids: [], round: best.round });
    }
    this.prune(missing.origin, from);
  }

  private onIhave(from: NodeId, entries: [string, number][]): void {
    this.counters.ihaveReceived++;
    if (!this.isNeighbor(from)) {
      this.counters.ignored++;
      return;
    }
    if (this.ihaveQueue.has(from)) this.suppressIhaves(from, entries.map(([id]) => id));
    for (const [id, round] of entries) {
      if (this.known(id)) continue;
      let m = this.missing.get(id);
      if (!m) {
        if (this.missing.size >= this.config.maxMissing) {
          this.counters.ignored++;
          continue;
        }
        m = { origin: originOf(id), announcers: [], armed: false };
        this.missing.set(id, m);
      }
      if (m.announcers.length < this.config.maxAnnouncers && !m.announcers.some((a) => a.peer === from)) {
        m.announcers.push({ peer: from, round });
      }
      if (!m.armed) {
        m.armed = true;
        this.io.setTimer(this.config.graftTimeout1Ms, { type: 'pt.graftTimeout', id });
      }
    }
  }

  private onGraftTimeout(id: string): void {
    const m = this.missing.get(id);
    if (!m) return;
    const next = this.seen.has(id) ? undefined : m.announcers.shift();
    if (!next) {
      // Delivered meanwhile, or nobody left to ask: a later IHAVE starts over.
      this.missing.delete(id);
      return;
    }
    if (this.isNeighbor(next.peer)) this.setEager(m.origin, next.peer);
    this.counters.graftSent++;
    this.io.send(next.peer, { type: 'pt.graft', origin: m.origin, ids: [id], round: next.round });
    this.io.setTimer(this.config.graftTimeout2Ms, { type: 'pt.graftTimeout', id });
  }

  private onGraft(from: NodeId, origin: NodeId, ids: string[]): void {
    this.counters.graftReceived++;
    if (this.isNeighbor(from)) this.setEager(origin, from);
    for (const id of ids) {
      const msg = this.cache.get(id);
      if (!msg) {
        this.counters.graftMisses++;
        continue;
      }
      this.counters.gossipSent++;
      this.io.send(from, msg);
    }
  }

  /**
   * `peer` has these messages (it announced them, or pushed a copy): announcing them to it
   * would tell it nothing. Both ends of a lazy link queue an IHAVE for each message that
   * crosses the cluster; with the flush delay jittered, the first to flush spares the other.
   */
  private suppressIhaves(peer: NodeId, ids: string[]): void {
    const q = this.ihaveQueue.get(peer);
    if (!q) return;
    const has = new Set(ids);
    const kept = q.filter(([id]) => !has.has(id));
    this.counters.ihaveEntriesSuppressed += q.length - kept.length;
    if (kept.length > 0) this.ihaveQueue.set(peer, kept);
    else this.ihaveQueue.delete(peer);
  }

  private onIhaveFlush(): void {
    this.flushArmed = false;
    for (const [peer, entries] of this.ihaveQueue) {
      for (let i = 0; i < entries.length; i += MAX_IHAVE_ENTRIES) {
        const chunk = entries.slice(i, i + MAX_IHAVE_ENTRIES);
        this.counters.ihaveSent++;
        this.counters.ihaveEntriesSent += chunk.length;
        this.io.send(peer, { type: 'pt.ihave', entries: chunk });
      }
    }
    this.ihaveQueue.clear();
  }

  private eagerPush(msg: PtGossip, except: NodeId): void {
    const lazy = this.tree(msg.origin);
    for (const peer of this.neighbors) {
      if (peer === except || lazy.has(peer)) continue;
      this.counters.gossipSent++;
      this.io.send(peer, msg);
    }
  }

  private lazyPush(msg: PtGossip, except: NodeId): void {
    let queued = false;
    for (const peer of this.tree(msg.origin)) {
      if (peer === except) continue;
      let q = this.ihaveQueue.get(peer);
      if (!q) this.ihaveQueue.set(peer, (q = []));
      q.push([msg.id, msg.round]);
      queued = true;
    }
    if (queued && !this.flushArmed) {
      this.flushArmed = true;
      // jittered up to twice the delay, so the two ends of a lazy link rarely flush together
      this.io.setTimer(Math.round(this.config.ihaveBatchDelayMs * (1 + this.rng.next())), { type: 'pt.ihaveFlush' });
    }
  }

  private prune(origin: NodeId, peer: NodeId): void {
    this.setLazy(origin, peer);
    this.counters.pruneSent++;
    this.io.send(peer, { type: 'pt.prune', origin });
  }

  private setEager(origin: NodeId, peer: NodeId): void {
    this.trees.get(origin)?.delete(peer);
  }

  private setLazy(origin: NodeId, peer: NodeId): void {
    this.tree(origin).add(peer);
  }

  /** The lazy set of `origin`'s tree, created empty (all eager) and marked recently used. */
  private tree(origin: NodeId): Set<NodeId> {
    let lazy = this.trees.get(origin);
    if (lazy) {
      this.trees.delete(origin);
    } else {
      lazy = new Set();
      if (this.trees.size >= this.config.maxTrees) {
        const oldest = this.trees.keys().next().value;
        if (oldest !== undefined) this.trees.delete(oldest);
      }
    }
    this.trees.set(origin, lazy);
    return lazy;
  }
}

/** FNV-1a (32 bits) of a message id: the anti-entropy sum XORs these. */
function hashId(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
