import type { NodeId } from '../core/types';
import { SeededRng } from '../core/rng';
import { draw, type Dist } from './dist';
import { DEFAULT_NETWORK_CONFIG, type Adapter, type LinkMode, type NetworkConfig, type NetworkStats, type Reply, type SimNode } from './adapter';
import { EventLoop, type Ev } from './loop';

export { DEFAULT_NETWORK_CONFIG, type Adapter, type LinkMode, type NetworkConfig, type NetworkStats, type Reply, type SimNode } from './adapter';

/**
 * The deterministic in-process network every simulation and cluster test runs on (see
 * README.md). It hosts any pure node (one protocol alone, several composed, or the whole
 * CoreNode) behind an `Adapter`, and runs the effects the browser runtime runs, with the
 * same semantics:
 * - `send`: over the link to the peer if one is open at our end. Otherwise, by link mode:
 *   'dial' (nodes make their own links, as HyParView does): a `transient` send is relayed
 *   by the signaling server, any other send dials the peer (the link opens after
 *   `dialDelay`, messages queue until then; a dial to a dead node fails after
 *   `dialFailDelay` with `linkDown`); 'fixed' (the test lays the links, nodes hear
 *   `neighborUp`/`neighborDown`): a transient send is relayed, any other is dropped;
 *   'mesh' (no links: every node reaches every other, as the data protocols assume):
 *   every message draws its own latency, so messages between two nodes may overtake.
 *   Links are FIFO (one latency per link, drawn once, plus optional per-message jitter;
 *   ties keep their scheduling order).
 * - `disconnect`: closes our end at once; the other end hears one latency later, after
 *   everything we sent before closing. Messages reaching a closed end are dropped.
 * - `timer`: the input comes back after `delayMs` (to the same incarnation only).
 * - `reply`: recorded per node and request (`reply()`, `call()`), and handed to `onReply`.
 * - `persist` (with `Adapter.storageKey`): written to the node's disk, which survives
 *   crashes; `restart()` hands it back as a `load` input.
 * - `announce` (an `announce` effect, or an `event` whose event is `{ type: 'announce' }`,
 *   as HyParView emits it): the signaling server delivers `announce` to every live node
 *   (announcer included, as the y-webrtc server echoes publishes) with `clients` = live
 *   nodes; `known` models membership: listener and announcer are in the same connected
 *   component of the active-view graph, as computed at most `knownStaleness` ms ago.
 * Faults: crash (peers holding a link hear after `detectDelay`, or never: `silent`),
 * leave (the node's goodbyes go out, then its links close), restart from disk, partitions
 * (groups that cannot reach each other at all), blocked pairs, a drop predicate, message
 * loss and duplication, and per-node clock skew. With `Adapter.members`, the network is
 * also the membership oracle of protocols that take a member list as input (KV,
 * segments): every change of the set of up nodes reaches each live node after its own
 * `detectDelay`, so views disagree for a while, as in a real cluster.
 */

/** Event kinds (0 is the loop's CALL). */
const enum Kind {
  Input = 1,
  Message,
  Timer,
  LinkDown,
  Announce,
  Leave,
  NeighborUp,
  NeighborDown,
  Members,
  Flush,
}

class Link {
  aOpen = true;
  bOpen = true;
  /** Arrival time of the last message each way (FIFO under jitter). */
  lastA = 0;
  lastB = 0;
  constructor(
    readonly a: number,
    readonly b: number,
    readonly latency: number,
    readonly openAt: number,
  ) {}
  isOpen(end: number): boolean {
    return end === this.a ? this.aOpen : this.bOpen;
  }
  close(end: number): void {
    if (end === this.a) this.aOpen = false;
    else this.bOpen = false;
  }
}

interface NetEffect {
  type: string;
  to?: NodeId;
  msg?: unknown;
  transient?: boolean;
  delayMs?: number;
  timer?: unknown;
  peer?: NodeId;
  isolated?: boolean;
  event?: { type?: unknown; isolated?: unknown };
  req?: number;
  put?: unknown[];
  remove?: string[];
}

export class Network<In, Out extends { type: string }, N extends SimNode<In, Out> = SimNode<In, Out>, C = never> extends EventLoop<Link> {
  readonly config: NetworkConfig;
  /** The simulator's own randomness (latencies, loss, scenario choices). Nodes get their own. */
  readonly rng: SeededRng;
  readonly stats: NetworkStats = {
    sent: 0,
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    relayed: 0,
    dials: 0,
    dialFailures: 0,
    announces: 0,
    byType: new Map(),
  };
  /** Test hook: messages for which this returns true are lost (counted as dropped). */
  dropIf: ((from: NodeId, to: NodeId, msg: unknown) => boolean) | null = null;
  /** Called for every reply, from the event queue at the instant it was given. */
  onReply: ((node: NodeId, req: number, reply: Reply) => void) | null = null;

  private readonly ids: NodeId[] = [];
  private readonly index = new Map<NodeId, number>();
  private readonly nodes: N[] = [];
  private readonly alive: boolean[] = [];
  private readonly inc: number[] = [];
  private readonly skew: number[] = [];
  private readonly adj: Map<number, Link>[] = [];
  /** Partition side per node (see partition()); all 0 when whole. */
  private readonly side: number[] = [];
  private readonly disks: Map<string, unknown>[] = [];
  private readonly replyMaps: Map<number, Reply>[] = [];
  private readonly flushQueued: boolean[] = [];
  /** Directed pairs `from>to` that drop everything (block(), isolate()). */
  private readonly blocked = new Set<string>();
  /** The membership oracle's set of nodes up (null without Adapter.members). */
  private readonly up: Set<NodeId> | null;
  private upSorted: NodeId[] | null = null;
  private nextReq = 1;
  private live = 0;
  private readonly out: Out[] = [];
  private depth = 0;
  private readonly causeSent: number[] = [];
  private component: Int32Array | null = null;
  private componentAt = -Infinity;
  private readonly mode: LinkMode;
  private readonly jitterOn: boolean;

  constructor(
    readonly adapter: Adapter<In, Out, N, C>,
    config: Partial<NetworkConfig> & { seed: number },
    /** Builds incarnation `incarnation` of node `id`, for add() and restart() without a node. */
    private readonly make: ((id: NodeId, incarnation: number) => N) | null = null,
  ) {
    const c = { ...DEFAULT_NETWORK_CONFIG, ...config };
    super(c.start);
    this.config = c;
    this.rng = new SeededRng(this.config.seed);
    this.mode = this.config.links;
    this.jitterOn = this.config.jitter !== 0;
    this.up = adapter.members ? new Set() : null;
    if (this.mode === 'fixed' && (!adapter.neighborUp || !adapter.neighborDown)) throw new Error("'fixed' links need Adapter.neighborUp and neighborDown");
  }

  // --- population ---

  /** Add a live node. It gets no input until the caller injects one (e.g. 'start'); the oracle counts it as up. */
  add(id: NodeId, node: N = this.build(id, 0)): void {
    if (this.index.has(id)) throw new Error(`duplicate node ${id}`);
    this.index.set(id, this.ids.length);
    this.ids.push(id);
    this.nodes.push(node);
    this.alive.push(true);
    this.inc.push(0);
    this.skew.push(this.config.clockSkew > 0 ? Math.floor(this.rng.next() * this.config.clockSkew) : 0);
    this.adj.push(new Map());
    this.side.push(0);
    this.disks.push(new Map());
    this.replyMaps.push(new Map());
    this.flushQueued.push(false);
    this.live++;
    if (this.up) this.setUp(id, true);
  }

  /** Deliver `input` to `id` after `delay` ms; work it causes is charged to `cause` (see messagesCausedBy). */
  input(id: NodeId, input: In, opts: { delay?: number; cause?: number } = {}): void {
    const i = this.mustIndex(id);
    this.post(this.now + (opts.delay ?? 0), Kind.Input, i, -1, input, null, opts.cause ?? 0);
  }

  /** The node handles `input` now (if it is alive), and its effects run, before this returns. */
  handle(id: NodeId, input: In): void {
    const i = this.mustIndex(id);
    if (this.alive[i]) this.run(i, input, 0);
  }

  /**
   * Stop nodes now. Peers holding a link notice after `detectDelay` (or the given one) and,
   * with the oracle, every member learns it after its own `detectDelay`. `silent`: nobody
   * notices until detect() (a failure the detectors miss).
   */
  crash(ids: NodeId | Iterable<NodeId>, opts: { silent?: boolean; detectDelay?: Dist } = {}): void {
    const list = typeof ids === 'string' ? [ids] : [...ids];
    for (const id of list) {
      const i = this.mustIndex(id);
      if (!this.alive[i]) continue;
      this.alive[i] = false;
      this.live--;
      for (const link of this.adj[i]!.values()) link.close(i);
    }
    if (!opts.silent) this.detect(list, opts.detectDelay);
  }

  /** Peers still holding links to the crashed `ids` notice after `delay` (default `detectDelay`); the oracle drops them. */
  detect(ids: NodeId | Iterable<NodeId>, delay: Dist = this.config.detectDelay): void {
    const list = typeof ids === 'string' ? [ids] : [...ids];
    let changed = false;
    for (const id of list) {
      const i = this.mustIndex(id);
      if (this.alive[i]) continue;
      for (const [peer, link] of this.adj[i]!) {
        if (link.isOpen(peer) && this.alive[peer]) this.post(this.now + draw(delay, this.rng), Kind.LinkDown, peer, i, null, link, 0);
      }
      this.adj[i]!.clear();
      if (this.up) changed = this.setUp(id, false) || changed;
    }
    if (changed) this.spreadMembers(-1);
  }

  /** Graceful leave: the node handles `leaveInput` (its goodbyes), then its links close. */
  leave(id: NodeId, leaveInput: In, opts: { delay?: number; cause?: number } = {}): void {
    const i = this.mustIndex(id);
    this.post(this.now + (opts.delay ?? 0), Kind.Leave, i, -1, leaveInput, null, opts.cause ?? 0);
  }

  /**
   * Start `node` as `id`: a new node, or the next incarnation of a known one (crashed
   * first if it is running: a reload). It starts from its disk (`load`, unless `wipe`),
   * learns the members at once and the others learn of it after their `detectDelay`.
   * Links the old incarnation still had close; their peers hear one latency later.
   */
  restart(id: NodeId, node?: N, opts: { wipe?: boolean } = {}): void {
    let i = this.index.get(id);
    if (i === undefined) {
      this.add(id, node ?? this.build(id, 0));
      i = this.index.get(id)!;
    } else {
      node ??= this.build(id, this.inc[i]! + 1);
      if (this.alive[i]) this.crash(id, { silent: true });
      for (const [peer, link] of this.adj[i]!) {
        if (link.isOpen(peer) && this.alive[peer]) this.post(Math.max(this.now, link.openAt) + link.latency, Kind.LinkDown, peer, i, null, link, 0);
      }
      this.adj[i]!.clear();
      this.nodes[i] = node;
      this.inc[i]!++;
      this.alive[i] = true;
      this.live++;
      this.flushQueued[i] = false;
      this.replyMaps[i] = new Map();
      if (opts.wipe) this.disks[i] = new Map();
      if (this.up) this.setUp(id, true);
    }
    const disk = this.disks[i]!;
    if (disk.size > 0 && this.adapter.load) this.run(i, this.adapter.load([...disk.values()].map((r) => structuredClone(r))), 0);
    if (this.up) {
      this.tellMembers(id);
      this.spreadMembers(i);
    }
  }

  /**
   * Split the network: nodes in different groups (unlisted nodes form group 0) can no
   * longer reach each other by link, relay, dial or announce; each side's signaling
   * server reports only its own subscribers. Links across the cut die as on a real
   * partition: both ends hear after `detectDelay`.
   */
  partition(groups: NodeId[][]): void {
    groups.forEach((g, k) => {
      for (const id of g) this.side[this.mustIndex(id)] = k + 1;
    });
    for (let i = 0; i < this.adj.length; i++) {
      for (const [peer, link] of this.adj[i]!) {
        if (this.side[peer] === this.side[i] || !link.isOpen(i)) continue;
        this.post(this.now + draw(this.config.detectDelay, this.rng), Kind.LinkDown, i, peer, null, link, 0);
      }
    }
  }

  /** Undo partition(): everyone can reach everyone again. */
  heal(): void {
    this.side.fill(0);
  }

  /** Drop every message between `a` and `b`, both ways (`on` false lifts it). Links stay up: a silent path failure. */
  block(a: NodeId, b: NodeId, on = true): void {
    for (const k of [`${a}>${b}`, `${b}>${a}`]) {
      if (on) this.blocked.add(k);
      else this.blocked.delete(k);
    }
  }

  /** block() between `id` and every other node. */
  isolate(id: NodeId, on = true): void {
    for (const other of this.ids) if (other !== id) this.block(id, other, on);
  }

  // --- fixed links ---

  /** 'fixed' links: open a link; both ends hear `neighborUp` after `delay` (one may hear first, as in reality). */
  link(a: NodeId, b: NodeId, delay = 0): void {
    const i = this.mustIndex(a);
    const j = this.mustIndex(b);
    if (i === j || this.linked(a, b)) return;
    const link = new Link(i, j, draw(this.config.linkLatency, this.rng), this.now);
    this.adj[i]!.set(j, link);
    this.adj[j]!.set(i, link);
    this.post(this.now + delay, Kind.NeighborUp, i, j, null, link, 0);
    this.post(this.now + delay, Kind.NeighborUp, j, i, null, link, 0);
  }

  /** 'fixed' links: close a link now (what is in flight is lost); each live end hears `neighborDown` after its own delay. */
  unlink(a: NodeId, b: NodeId, delayA = 0, delayB = delayA): void {
    const i = this.mustIndex(a);
    const j = this.mustIndex(b);
    const link = this.adj[i]!.get(j);
    if (link === undefined || !link.isOpen(i) || !link.isOpen(j)) return;
    link.close(i);
    link.close(j);
    this.adj[i]!.delete(j);
    this.adj[j]!.delete(i);
    this.post(this.now + delayA, Kind.NeighborDown, i, j, null, null, 0);
    this.post(this.now + delayB, Kind.NeighborDown, j, i, null, null, 0);
  }

  /** True while a link between `a` and `b` is open at both ends. */
  linked(a: NodeId, b: NodeId): boolean {
    const i = this.index.get(a);
    const j = this.index.get(b);
    if (i === undefined || j === undefined) return false;
    const link = this.adj[i]!.get(j);
    return link !== undefined && link.isOpen(i) && link.isOpen(j) && this.adj[j]!.get(i) === link;
  }

  /** Peers `id` has an open link to (at its end), in the order the links were made. */
  neighbors(id: NodeId): NodeId[] {
    const i = this.mustIndex(id);
    const r: NodeId[] = [];
    for (const [peer, link] of this.adj[i]!) if (link.isOpen(i)) r.push(this.ids[peer]!);
    return r;
  }

  // --- reading ---

  isAlive(id: NodeId): boolean {
    const i = this.index.get(id);
    return i !== undefined && this.alive[i]!;
  }

  /** The current incarnation of `id` (0 until its first restart). */
  incarnation(id: NodeId): number {
    return this.inc[this.mustIndex(id)]!;
  }

  node(id: NodeId): N | undefined {
    const i = this.index.get(id);
    return i === undefined ? undefined : this.nodes[i];
  }

  /** Every node ever added, in insertion order. */
  allIds(): NodeId[] {
    return this.ids.slice();
  }

  liveIds(): NodeId[] {
    const r: NodeId[] = [];
    for (let i = 0; i < this.ids.length; i++) if (this.alive[i]) r.push(this.ids[i]!);
    return r;
  }

  get liveCount(): number {
    return this.live;
  }

  /** The membership oracle's nodes up (crashed nodes leave it once detected), sorted. */
  members(): readonly NodeId[] {
    if (!this.up) throw new Error('this network has no membership oracle (Adapter.members)');
    this.upSorted ??= [...this.up].sort();
    return this.upSorted;
  }

  /** Records `id` persisted (its disk survives crashes), by storage key. */
  disk(id: NodeId): ReadonlyMap<string, unknown> {
    return this.disks[this.mustIndex(id)]!;
  }

  /** Links open at both ends, each once, as [dialer, other]. */
  openLinks(): [NodeId, NodeId][] {
    const r: [NodeId, NodeId][] = [];
    for (let i = 0; i < this.adj.length; i++) {
      for (const [peer, link] of this.adj[i]!) {
        if (link.a === i && link.aOpen && link.bOpen && this.adj[peer]!.get(i) === link) r.push([this.ids[i]!, this.ids[peer]!]);
      }
    }
    return r;
  }

  /** `id`'s links open at its end: the peer, the one-way latency, since when (a dial: until when) it is open. */
  linksOf(id: NodeId): { peer: NodeId; latency: number; openAt: number }[] {
    const i = this.mustIndex(id);
    const r: { peer: NodeId; latency: number; openAt: number }[] = [];
    for (const [peer, link] of this.adj[i]!) if (link.isOpen(i)) r.push({ peer: this.ids[peer]!, latency: link.latency, openAt: link.openAt });
    return r;
  }

  /** Messages sent while handling work caused by `cause` (an id passed to input()). */
  messagesCausedBy(cause: number): number {
    return this.causeSent[cause] ?? 0;
  }

  // --- client requests ---

  /** Issue a client request to `id` now (it handles it before this returns); see reply(). */
  request(id: NodeId, call: C): number {
    if (!this.adapter.request) throw new Error('this adapter takes no client requests');
    const req = this.nextReq++;
    this.handle(id, this.adapter.request(req, call));
    return req;
  }

  /** The reply the current incarnation of `id` gave to `req`, if any yet. */
  reply(id: NodeId, req: number): Reply | undefined {
    return this.replyMaps[this.mustIndex(id)]!.get(req);
  }

  /** reply(), forgetting it (long runs that would otherwise keep every reply). */
  takeReply(id: NodeId, req: number): Reply | undefined {
    const m = this.replyMaps[this.mustIndex(id)]!;
    const r = m.get(req);
    m.delete(req);
    return r;
  }

  /** Every reply the current incarnation of `id` gave, by request. */
  replies(id: NodeId): ReadonlyMap<number, Reply> {
    return this.replyMaps[this.mustIndex(id)]!;
  }

  /** Issue a request and run until its reply; throws if none comes within `maxMs` or the node dies first. */
  call(id: NodeId, call: C, maxMs = 60_000): Reply {
    const i = this.mustIndex(id);
    const req = this.request(id, call);
    const inc = this.inc[i];
    const answered = () => this.replyMaps[i]!.has(req) || !this.alive[i] || this.inc[i] !== inc;
    if (!this.runUntilTrue(answered, maxMs)) {
      throw new Error(`seed ${this.config.seed}: ${JSON.stringify(call).slice(0, 120)} at ${id} got no reply within ${maxMs} ms`);
    }
    const r = this.inc[i] === inc ? this.replyMaps[i]!.get(req) : undefined;
    if (!r) throw new Error(`seed ${this.config.seed}: node ${id} died before answering`);
    return r;
  }

  // --- internals ---

  private build(id: NodeId, incarnation: number): N {
    if (!this.make) throw new Error(`no node given for ${id}, and the network has no node factory`);
    return this.make(id, incarnation);
  }

  private mustIndex(id: NodeId): number {
    const i = this.index.get(id);
    if (i === undefined) throw new Error(`unknown node ${id}`);
    return i;
  }

  /** Queue an event for node `node` (its current incarnation). */
  private post(time: number, kind: Kind, node: number, peer: number, payload: unknown, link: Link | null, cause: number): void {
    this.schedule(time, kind, node, peer, payload, link, cause, node >= 0 ? this.inc[node]! : 0);
  }

  protected dispatch(ev: Ev<Link>): void {
    const i = ev.node;
    switch (ev.kind) {
      case Kind.Input:
        if (this.alive[i]) this.run(i, ev.payload as In, ev.cause);
        return;
      case Kind.Message: {
        const link = ev.link;
        if (!this.alive[i] || (link !== null && !link.isOpen(i)) || this.side[i] !== this.side[ev.peer]) {
          this.stats.dropped++;
          return;
        }
        this.stats.delivered++;
        this.run(i, this.adapter.message(this.ids[ev.peer]!, ev.payload, this.ids[i]!), ev.cause);
        return;
      }
      case Kind.Timer:
        if (!this.alive[i] || ev.inc !== this.inc[i]) return;
        if (this.holding && this.adapter.isBackgroundTimer?.(ev.payload)) return this.holdAside(ev);
        this.run(i, this.adapter.timer(ev.payload), ev.cause);
        return;
      case Kind.LinkDown: {
        const link = ev.link!;
        if (!link.isOpen(i)) return;
        link.close(i);
        if (this.adj[i]!.get(ev.peer) === link) this.adj[i]!.delete(ev.peer);
        if (this.alive[i]) this.run(i, this.linkLost(this.ids[ev.peer]!), ev.cause);
        return;
      }
      case Kind.Announce:
        return this.deliverAnnounce(ev.peer, ev.payload as boolean, ev.cause);
      case Kind.Leave:
        if (!this.alive[i]) return;
        this.run(i, ev.payload as In, ev.cause);
        this.alive[i] = false;
        this.live--;
        for (const peer of [...this.adj[i]!.keys()]) this.closeLink(i, peer, 0);
        if (this.up && this.setUp(this.ids[i]!, false)) this.spreadMembers(-1);
        return;
      case Kind.NeighborUp: {
        const link = ev.link!;
        if (this.alive[i] && ev.inc === this.inc[i] && link.isOpen(i) && this.adj[i]!.get(ev.peer) === link) {
          this.run(i, this.adapter.neighborUp!(this.ids[ev.peer]!), ev.cause);
        }
        return;
      }
      case Kind.NeighborDown:
        if (this.alive[i] && ev.inc === this.inc[i]) this.run(i, this.adapter.neighborDown!(this.ids[ev.peer]!), ev.cause);
        return;
      case Kind.Members:
        if (this.alive[i] && ev.inc === this.inc[i]) this.run(i, this.adapter.members!(this.members()), 0);
        return;
      case Kind.Flush:
        if (ev.inc !== this.inc[i]) return;
        this.flushQueued[i] = false;
        if (this.alive[i]) this.run(i, this.adapter.flush!.input, ev.cause);
        return;
    }
  }

  /** What a node hears when a link fails: `linkDown` ('dial'), `neighborDown` ('fixed'). */
  private linkLost(peer: NodeId): In {
    if (this.mode === 'fixed') return this.adapter.neighborDown!(peer);
    if (!this.adapter.linkDown) throw new Error('a link failed, and the adapter has no linkDown');
    return this.adapter.linkDown(peer);
  }

  private run(i: number, input: In, cause: number): void {
    // Executing an effect does not re-enter handle() (onEffect and onReply hooks that
    // call back into the network get a buffer of their own), so one buffer serves every
    // call. It is emptied only once it grows: `length = 0` drops the backing store, and
    // the next push would allocate a new one (an allocation per event).
    const out = this.depth === 0 ? this.out : [];
    const start = out.length;
    this.depth++;
    try {
      this.nodes[i]!.handle(input, this.now + this.skew[i]!, out);
      for (let k = start; k < out.length; k++) this.execute(i, out[k]!, cause);
    } finally {
      this.depth--;
    }
    if (this.depth === 0 && out.length > 1024) out.length = 0;
    const flush = this.adapter.flush;
    if (flush !== undefined && input !== flush.input && !this.flushQueued[i] && this.alive[i] && flush.pending(this.nodes[i]!)) {
      this.flushQueued[i] = true;
      this.post(this.now, Kind.Flush, i, -1, null, null, cause);
    }
  }

  private execute(i: number, effect: Out, cause: number): void {
    const e = effect as unknown as NetEffect;
    switch (e.type) {
      case 'send':
        return this.send(i, e.to!, e.msg, e.transient === true, cause);
      case 'timer': {
        const background = this.adapter.isBackgroundTimer?.(e.timer) === true;
        this.post(this.now + Math.max(0, e.delayMs ?? 0), Kind.Timer, i, -1, e.timer, null, background ? 0 : cause);
        return;
      }
      case 'disconnect': {
        const peer = this.index.get(e.peer!);
        if (peer !== undefined) this.closeLink(i, peer, cause);
        return;
      }
      case 'announce':
        return this.announce(i, e.isolated, cause);
      case 'event':
        if (e.event?.type === 'announce') return this.announce(i, e.event.isolated, cause);
        this.adapter.onEffect?.(this.ids[i]!, effect, this.now);
        return;
      case 'reply':
        return this.recordReply(i, effect as unknown as Reply);
      case 'persist': {
        const key = this.adapter.storageKey;
        if (key === undefined) break;
        const disk = this.disks[i]!;
        for (const r of e.put!) disk.set(key(r), structuredClone(r));
        for (const k of e.remove!) disk.delete(k);
        return;
      }
    }
    this.adapter.onEffect?.(this.ids[i]!, effect, this.now);
  }

  private recordReply(i: number, reply: Reply): void {
    const replies = this.replyMaps[i]!;
    if (replies.has(reply.req)) throw new Error(`seed ${this.config.seed}: node ${this.ids[i]} answered request ${reply.req} twice`);
    replies.set(reply.req, reply);
    const hook = this.onReply;
    if (hook !== null) {
      const id = this.ids[i]!;
      this.later(0, () => hook(id, reply.req, reply));
    }
  }

  /** Publish an announce of node `i` on the modelled signaling server. */
  private announce(i: number, isolated: unknown, cause: number): void {
    this.stats.announces++;
    const iso = typeof isolated === 'boolean' ? isolated : this.viewOf(i).length === 0;
    this.post(this.now + draw(this.config.signalingLatency, this.rng), Kind.Announce, -1, i, iso, null, cause);
  }

  private send(from: number, toId: NodeId, msg: unknown, transient: boolean, cause: number): void {
    this.stats.sent++;
    this.causeSent[cause] = (this.causeSent[cause] ?? 0) + 1;
    const type = typeof msg === 'object' && msg !== null ? (msg as { type?: unknown }).type : undefined;
    if (typeof type === 'string') this.stats.byType.set(type, (this.stats.byType.get(type) ?? 0) + 1);
    const wire = this.adapter.encode === undefined ? msg : this.adapter.encode(this.ids[from]!, msg);
    const to = this.index.get(toId);
    if (to === undefined || to === from) {
      this.stats.dropped++;
      return;
    }
    if (this.mode === 'mesh') return this.sendMesh(from, to, msg, wire, cause);
    let link = this.adj[from]!.get(to);
    let at: number;
    if (link !== undefined && link.isOpen(from)) {
      at = Math.max(this.now, link.openAt) + link.latency;
    } else if (this.side[from] !== this.side[to] && this.mode === 'dial' && !transient) {
      // No path across a partition: a dial fails (a relay is lost below).
      link = this.dial(from, to, true);
      at = link.openAt + link.latency;
    } else if (transient) {
      if (this.side[from] !== this.side[to]) {
        this.stats.dropped++;
        return;
      }
      this.stats.relayed++;
      link = undefined;
      at = this.now + draw(this.config.relayLatency, this.rng);
    } else if (this.mode === 'dial') {
      link = this.dial(from, to);
      at = link.openAt + link.latency;
    } else {
      // 'fixed': no link, no message.
      this.stats.dropped++;
      return;
    }
    if (this.lost(from, to, msg)) return;
    const copies = this.config.duplicateRate > 0 && this.rng.next() < this.config.duplicateRate ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    if (this.jitterOn) at += draw(this.config.jitter, this.rng);
    if (link !== undefined) {
      // FIFO per direction: with jitter a message never overtakes the one before it.
      if (link.a === from) {
        if (at < link.lastA) at = link.lastA;
        link.lastA = at;
      } else {
        if (at < link.lastB) at = link.lastB;
        link.lastB = at;
      }
    }
    for (let c = 0; c < copies; c++) this.post(at, Kind.Message, to, from, wire, link ?? null, cause);
  }

  /** 'mesh': straight to the node, each copy with its own latency. */
  private sendMesh(from: number, to: number, msg: unknown, wire: unknown, cause: number): void {
    if (this.side[from] !== this.side[to] || this.lost(from, to, msg)) {
      if (this.side[from] !== this.side[to]) this.stats.dropped++;
      return;
    }
    const copies = this.config.duplicateRate > 0 && this.rng.next() < this.config.duplicateRate ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let c = 0; c < copies; c++) {
      const latency = draw(this.config.linkLatency, this.rng) + (this.jitterOn ? draw(this.config.jitter, this.rng) : 0);
      this.post(this.now + latency, Kind.Message, to, from, wire, null, cause);
    }
  }

  /** A blocked pair, the drop predicate (it sees the message as sent) or `lossRate` loses this message (counted as dropped). */
  private lost(from: number, to: number, msg: unknown): boolean {
    if (
      (this.blocked.size > 0 && this.blocked.has(`${this.ids[from]}>${this.ids[to]}`)) ||
      (this.dropIf !== null && this.dropIf(this.ids[from]!, this.ids[to]!, msg)) ||
      (this.config.lossRate > 0 && this.rng.next() < this.config.lossRate)
    ) {
      this.stats.dropped++;
      return true;
    }
    return false;
  }

  private dial(from: number, to: number, unreachable = false): Link {
    this.stats.dials++;
    const link = new Link(from, to, draw(this.config.linkLatency, this.rng), this.now + draw(this.config.dialDelay, this.rng));
    this.adj[from]!.set(to, link);
    if (this.alive[to] && !unreachable) {
      // Replaces a half-closed older link at `to`; that one's close still reaches `to` first.
      this.adj[to]!.set(from, link);
    } else {
      this.stats.dialFailures++;
      link.close(to);
      this.post(this.now + draw(this.config.dialFailDelay, this.rng), Kind.LinkDown, from, to, null, link, 0);
    }
    return link;
  }

  /** Close `i`'s end of its link to `peer`; the peer hears of it after what we already sent. */
  private closeLink(i: number, peer: number, cause: number): void {
    const link = this.adj[i]!.get(peer);
    if (link === undefined || !link.isOpen(i)) return;
    link.close(i);
    this.adj[i]!.delete(peer);
    if (link.isOpen(peer) && this.alive[peer]) {
      const last = link.a === i ? link.lastA : link.lastB;
      this.post(Math.max(Math.max(this.now, link.openAt) + link.latency, last), Kind.LinkDown, peer, i, null, link, cause);
    }
  }

  /** The oracle's set changes; false if `id` was already in (out of) it. */
  private setUp(id: NodeId, up: boolean): boolean {
    const set = this.up!;
    if (set.has(id) === up) return false;
    if (up) set.add(id);
    else set.delete(id);
    this.upSorted = null;
    return true;
  }

  /** Node `id` learns the oracle's member set now (e.g. the nodes of a formed cluster, once all are added). */
  tellMembers(id: NodeId): void {
    const i = this.mustIndex(id);
    if (this.alive[i]) this.run(i, this.adapter.members!(this.members()), 0);
  }

  /** Every live node but `except` learns the member set after its own `detectDelay`. */
  private spreadMembers(except: number): void {
    for (let j = 0; j < this.nodes.length; j++) {
      if (j === except || !this.alive[j]) continue;
      this.post(this.now + draw(this.config.detectDelay, this.rng), Kind.Members, j, -1, null, null, 0);
    }
  }

  /** A node's overlay neighbours: its own active view, else its open links. */
  private viewOf(i: number): NodeId[] {
    const view = this.nodes[i]!.activeView?.();
    if (view !== undefined) return view;
    const r: NodeId[] = [];
    for (const [peer, link] of this.adj[i]!) if (link.isOpen(i)) r.push(this.ids[peer]!);
    return r;
  }

  private deliverAnnounce(from: number, isolated: boolean, cause: number): void {
    const announce = this.adapter.announce;
    if (announce === undefined) return;
    const fromId = this.ids[from]!;
    const side = this.side[from];
    let clients = 0;
    for (let j = 0; j < this.nodes.length; j++) if (this.alive[j] && this.side[j] === side) clients++;
    const comp = this.components();
    for (let j = 0; j < this.nodes.length; j++) {
      if (!this.alive[j] || this.side[j] !== side) continue;
      const known = j === from || (comp[j] === comp[from] && comp[j]! >= 0);
      this.run(j, announce(fromId, clients, known, isolated, this.ids[j]!), cause);
    }
  }

  /** Connected components of the live active-view graph, recomputed at most every knownStaleness ms. */
  private components(): Int32Array {
    if (this.component && this.component.length === this.nodes.length && this.now - this.componentAt < this.config.knownStaleness) {
      return this.component;
    }
    const n = this.nodes.length;
    const parent = new Int32Array(n);
    for (let i = 0; i < n; i++) parent[i] = i;
    const find = (x: number): number => {
      while (parent[x] !== x) {
        parent[x] = parent[parent[x]!]!;
        x = parent[x]!;
      }
      return x;
    };
    for (let i = 0; i < n; i++) {
      if (!this.alive[i]) continue;
      for (const p of this.viewOf(i)) {
        const j = this.index.get(p);
        if (j === undefined || !this.alive[j]) continue;
        const a = find(i);
        const b = find(j);
        if (a !== b) parent[a] = b;
      }
    }
    const comp = new Int32Array(n);
    for (let i = 0; i < n; i++) comp[i] = this.alive[i] ? find(i) : -1;
    this.component = comp;
    this.componentAt = this.now;
    return comp;
  }
}
