import type { NodeId } from '../core/types';
import { SeededRng } from '../core/rng';
import { draw, type Dist } from './dist';
import { EventQueue } from './queue';

/**
 * Deterministic in-process network of pure protocol nodes (see README.md).
 *
 * It runs the effects the browser runtime runs, with the same semantics:
 * - `send`: over the link to the peer if one is open at our end; otherwise a `transient`
 *   send is relayed by the signaling server (no link), and any other send dials the peer
 *   (a WebRTC handshake: the link opens after `dialDelay`, messages queue until then).
 *   A dial to a dead node fails after `dialFailDelay` with `linkDown` at the dialer.
 *   Links are reliable and FIFO (one latency per link, ties broken by schedule order).
 * - `disconnect`: closes our end at once; the other end gets `linkDown` one latency later,
 *   after everything we sent before closing. Messages reaching a closed end are dropped.
 * - `timer`: the input comes back after `delayMs`.
 * - `announce` (an `announce` effect, or an `event` whose event is `{ type: 'announce' }`,
 *   as HyParView emits it): the signaling server delivers `announce` to every live node (announcer
 *   included, as the y-webrtc server echoes publishes) with `clients` = live nodes.
 *   `known` models membership: listener and announcer are in the same connected
 *   component of the active-view graph, as computed at most `knownStaleness` ms ago.
 * Crash: the node stops; each peer holding a link gets `linkDown` after `detectDelay`
 * (the runtime's heartbeat). Leave: the node handles its leave input, then its remaining
 * links close gracefully. Partition: groups of nodes that cannot reach each other at all
 * (links, relays, dials, announces), until heal().
 */

/** A node as the network sees it: one pure state machine plus its current neighbours. */
export interface SimNode<In, Out> {
  handle(input: In, now: number, out: Out[]): void;
  /** Overlay neighbours (HyParView active view); used for metrics and `known`/`isolated`. */
  activeView(): NodeId[];
}

/**
 * How the network talks to one kind of node: it builds the node's inputs and classifies
 * its timers. Effects are recognised by `type`: 'send' {to, msg, transient?},
 * 'timer' {delayMs, timer}, 'disconnect' {peer}, 'announce' {isolated?} or 'event'
 * {event: {type: 'announce', isolated?}}; anything else goes to `onEffect`.
 */
export interface SimStack<In, Out> {
  message(from: NodeId, msg: unknown): In;
  timer(timer: unknown): In;
  /** The link to `peer` failed (crash detected, dial failed, or the peer closed it). */
  linkDown(peer: NodeId): In;
  announce(from: NodeId, clients: number, known: boolean, isolated: boolean): In;
  /**
   * Periodic timers that never quiesce (shuffle, ...). They are held during `settle()`,
   * and work they start is not charged to the cause (e.g. a join) that armed them.
   */
  isBackgroundTimer?(timer: unknown): boolean;
  /** Effects the network does not execute (events other than announce: neighborUp, deliveries, ...). */
  onEffect?(node: NodeId, effect: Out, now: number): void;
}

export interface NetworkConfig {
  seed: number;
  /** One-way latency of a link, drawn once per link. */
  linkLatency: Dist;
  /** One-way latency of a message relayed by the signaling server (transient, no link). */
  relayLatency: Dist;
  /** From the first send to an open link (offer/answer through signaling, ICE, DTLS). */
  dialDelay: Dist;
  /** Until a dial to a dead node reports `linkDown`. */
  dialFailDelay: Dist;
  /** Until a crash is noticed by a peer holding a link (heartbeat timeout). */
  detectDelay: Dist;
  /** Until an announce reaches the other nodes. */
  signalingLatency: Dist;
  /** Probability that any one message is lost (links are reliable in WebRTC; this models relay loss and stress). */
  lossRate: number;
  /** Maximum age of the connected components used for announce `known`. */
  knownStaleness: number;
}

export const DEFAULT_NETWORK_CONFIG: Omit<NetworkConfig, 'seed'> = {
  linkLatency: { min: 10, max: 100 },
  relayLatency: { min: 30, max: 150 },
  dialDelay: { min: 150, max: 600 },
  dialFailDelay: { min: 3_000, max: 5_000 },
  detectDelay: { min: 4_000, max: 5_000 },
  signalingLatency: { min: 20, max: 100 },
  lossRate: 0,
  knownStaleness: 1_000,
};

export interface NetworkStats {
  /** Send effects executed (including relayed and lost ones). */
  sent: number;
  delivered: number;
  /** Lost to `lossRate`, to a dead receiver, or to a closed link end. */
  dropped: number;
  relayed: number;
  dials: number;
  dialFailures: number;
  announces: number;
  /** Sends by message `type`. */
  byType: Map<string, number>;
}

const enum Kind {
  Input,
  Message,
  Timer,
  LinkDown,
  Announce,
  Leave,
}

class Link {
  aOpen = true;
  bOpen = true;
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

/** A queued event. Dispatched events are recycled (see Network.schedule), so fields are mutable. */
class Ev {
  constructor(
    public time: number,
    public seq: number,
    public kind: Kind,
    public node: number,
    public peer: number,
    public payload: unknown,
    public link: Link | null,
    public cause: number,
    /** When it was scheduled. */
    public born: number,
  ) {}
}

/** Recycled events kept at most (beyond it they are left to the GC). */
const EV_POOL_MAX = 1 << 16;

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
}

export class Network<In, Out extends { type: string }, N extends SimNode<In, Out> = SimNode<In, Out>> {
  readonly config: NetworkConfig;
  /** The simulator's own randomness (latencies, loss, scenario choices). Nodes get their own. */
  readonly rng: SeededRng;
  readonly stats: NetworkStats = {
    sent: 0,
    delivered: 0,
    dropped: 0,
    relayed: 0,
    dials: 0,
    dialFailures: 0,
    announces: 0,
    byType: new Map(),
  };
  now = 0;

  private readonly queue = new EventQueue<Ev>();
  private seq = 0;
  private readonly ids: NodeId[] = [];
  private readonly index = new Map<NodeId, number>();
  private readonly nodes: N[] = [];
  private readonly alive: boolean[] = [];
  private readonly adj: Map<number, Link>[] = [];
  /** Partition side per node (see partition()); all 0 when whole. */
  private readonly side: number[] = [];
  private live = 0;
  private readonly out: Out[] = [];
  private readonly causeSent: number[] = [];
  private hold = false;
  private holdStart = 0;
  private held: Ev[] = [];
  /**
   * Dispatched events, reused by schedule(): in-flight messages outlive several young-
   * generation GCs, so allocating one object per event made the GC copy and promote
   * millions of them at 10,000 nodes.
   */
  private readonly pool: Ev[] = [];
  /** Set by dispatch() when it keeps the event (a held background timer): not recycled. */
  private kept = false;
  private component: Int32Array | null = null;
  private componentAt = -Infinity;

  constructor(
    readonly stack: SimStack<In, Out>,
    config: Partial<NetworkConfig> & { seed: number },
  ) {
    this.config = { ...DEFAULT_NETWORK_CONFIG, ...config };
    this.rng = new SeededRng(this.config.seed);
  }

  // --- population ---

  /** Add a live node. It gets no input until the caller injects one (e.g. 'start'). */
  add(id: NodeId, node: N): void {
    if (this.index.has(id)) throw new Error(`duplicate node ${id}`);
    this.index.set(id, this.ids.length);
    this.ids.push(id);
    this.nodes.push(node);
    this.alive.push(true);
    this.adj.push(new Map());
    this.side.push(0);
    this.live++;
  }

  /** Deliver `input` to `id` after `delay` ms; work it causes is charged to `cause` (see messagesCausedBy). */
  input(id: NodeId, input: In, opts: { delay?: number; cause?: number } = {}): void {
    const i = this.mustIndex(id);
    this.schedule(this.now + (opts.delay ?? 0), Kind.Input, i, -1, input, null, opts.cause ?? 0);
  }

  /** The node stops now; peers holding a link notice after `detectDelay`. */
  crash(id: NodeId): void {
    const i = this.mustIndex(id);
    if (!this.alive[i]) return;
    this.alive[i] = false;
    this.live--;
    for (const [peer, link] of this.adj[i]!) {
      link.close(i);
      if (link.isOpen(peer) && this.alive[peer]) {
        this.schedule(this.now + draw(this.config.detectDelay, this.rng), Kind.LinkDown, peer, i, null, link, 0);
      }
    }
    this.adj[i]!.clear();
  }

  /** Graceful leave: the node handles `leaveInput` (its goodbyes), then its links close. */
  leave(id: NodeId, leaveInput: In, opts: { delay?: number; cause?: number } = {}): void {
    const i = this.mustIndex(id);
    this.schedule(this.now + (opts.delay ?? 0), Kind.Leave, i, -1, leaveInput, null, opts.cause ?? 0);
  }

  /**
   * Split the network: nodes in different groups (unlisted nodes form group 0) can no
   * longer reach each other by link, relay, dial or announce; each side's signaling
   * server reports only its own subscribers. Links across the cut die as on a real
   * partition: both ends get `linkDown` after `detectDelay`.
   */
  partition(groups: NodeId[][]): void {
    groups.forEach((g, k) => {
      for (const id of g) this.side[this.mustIndex(id)] = k + 1;
    });
    for (let i = 0; i < this.adj.length; i++) {
      for (const [peer, link] of this.adj[i]!) {
        if (this.side[peer] === this.side[i] || !link.isOpen(i)) continue;
        this.schedule(this.now + draw(this.config.detectDelay, this.rng), Kind.LinkDown, i, peer, null, link, 0);
      }
    }
  }

  /** Undo partition(): everyone can reach everyone again. */
  heal(): void {
    this.side.fill(0);
  }

  isAlive(id: NodeId): boolean {
    const i = this.index.get(id);
    return i !== undefined && this.alive[i]!;
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

  /** Messages sent while handling work caused by `cause` (an id passed to input()). */
  messagesCausedBy(cause: number): number {
    return this.causeSent[cause] ?? 0;
  }

  // --- running ---

  /** Process one event; false when the queue is empty. */
  step(): boolean {
    const ev = this.queue.pop();
    if (!ev) return false;
    this.now = ev.time;
    this.dispatch(ev);
    if (this.kept) this.kept = false;
    else if (this.pool.length < EV_POOL_MAX) {
      ev.payload = null;
      ev.link = null;
      this.pool.push(ev);
    }
    return true;
  }

  /** Process every event due at or before `time`, then set the clock to `time`. */
  runUntil(time: number): void {
    for (;;) {
      const next = this.queue.peek();
      if (!next || next.time > time) break;
      this.step();
    }
    if (time > this.now) this.now = time;
  }

  runFor(ms: number): void {
    this.runUntil(this.now + ms);
  }

  /**
   * Hold background timers (see SimStack.isBackgroundTimer) from now on: due ones are set
   * aside instead of running. resumeBackground() puts them back with the delay they had
   * left when the pause began (or, if armed during the pause, their whole delay).
   */
  pauseBackground(): void {
    if (this.hold) return;
    this.hold = true;
    this.holdStart = this.now;
  }

  resumeBackground(): void {
    if (!this.hold) return;
    this.hold = false;
    for (const ev of this.held) {
      // What was left of its delay when the pause (or its life) began.
      ev.time = this.now + (ev.time - Math.max(this.holdStart, ev.born));
      ev.seq = this.seq++;
      this.queue.push(ev);
    }
    this.held = [];
  }

  /** Run until nothing is queued or `maxMs` passed; true if the queue emptied. */
  drain(maxMs = Infinity): boolean {
    const end = this.now + maxMs;
    for (;;) {
      const next = this.queue.peek();
      if (!next) return true;
      if (next.time > end) return false;
      this.step();
    }
  }

  /**
   * Let in-flight work finish with background timers held, then resume them. Measuring
   * right after settle() sees the overlay at quiescence. True if it drained.
   */
  settle(maxMs = 60_000): boolean {
    const paused = this.hold;
    this.pauseBackground();
    const drained = this.drain(maxMs);
    if (!paused) this.resumeBackground();
    return drained;
  }

  get pendingEvents(): number {
    return this.queue.size;
  }

  // --- internals ---

  private mustIndex(id: NodeId): number {
    const i = this.index.get(id);
    if (i === undefined) throw new Error(`unknown node ${id}`);
    return i;
  }

  private schedule(time: number, kind: Kind, node: number, peer: number, payload: unknown, link: Link | null, cause: number): void {
    const ev = this.pool.pop();
    if (ev === undefined) {
      this.queue.push(new Ev(time, this.seq++, kind, node, peer, payload, link, cause, this.now));
      return;
    }
    ev.time = time;
    ev.seq = this.seq++;
    ev.kind = kind;
    ev.node = node;
    ev.peer = peer;
    ev.payload = payload;
    ev.link = link;
    ev.cause = cause;
    ev.born = this.now;
    this.queue.push(ev);
  }

  private dispatch(ev: Ev): void {
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
        this.run(i, this.stack.message(this.ids[ev.peer]!, ev.payload), ev.cause);
        return;
      }
      case Kind.Timer:
        if (!this.alive[i]) return;
        if (this.hold && this.stack.isBackgroundTimer?.(ev.payload)) {
          this.held.push(ev);
          this.kept = true;
          return;
        }
        this.run(i, this.stack.timer(ev.payload), ev.cause);
        return;
      case Kind.LinkDown: {
        const link = ev.link!;
        if (!link.isOpen(i)) return;
        link.close(i);
        if (this.adj[i]!.get(ev.peer) === link) this.adj[i]!.delete(ev.peer);
        if (this.alive[i]) this.run(i, this.stack.linkDown(this.ids[ev.peer]!), ev.cause);
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
        return;
    }
  }

  private run(i: number, input: In, cause: number): void {
    // Executing an effect never re-enters handle(), so one buffer serves every call. It
    // is emptied only once it grows: `length = 0` drops the backing store, and the
    // next push would allocate a new one (an allocation per event).
    const out = this.out;
    const start = out.length;
    this.nodes[i]!.handle(input, this.now, out);
    for (let k = start; k < out.length; k++) this.execute(i, out[k]!, cause);
    if (out.length > 1024) out.length = 0;
  }

  private execute(i: number, effect: Out, cause: number): void {
    const e = effect as unknown as NetEffect;
    switch (e.type) {
      case 'send':
        return this.send(i, e.to!, e.msg, e.transient === true, cause);
      case 'timer': {
        const background = this.stack.isBackgroundTimer?.(e.timer) === true;
        this.schedule(this.now + Math.max(0, e.delayMs ?? 0), Kind.Timer, i, -1, e.timer, null, background ? 0 : cause);
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
        this.stack.onEffect?.(this.ids[i]!, effect, this.now);
        return;
      default:
        this.stack.onEffect?.(this.ids[i]!, effect, this.now);
    }
  }

  /** Publish an announce of node `i` on the modelled signaling server. */
  private announce(i: number, isolated: unknown, cause: number): void {
    this.stats.announces++;
    const iso = typeof isolated === 'boolean' ? isolated : this.nodes[i]!.activeView().length === 0;
    this.schedule(this.now + draw(this.config.signalingLatency, this.rng), Kind.Announce, -1, i, iso, null, cause);
  }

  private send(from: number, toId: NodeId, msg: unknown, transient: boolean, cause: number): void {
    this.stats.sent++;
    this.causeSent[cause] = (this.causeSent[cause] ?? 0) + 1;
    const type = typeof msg === 'object' && msg !== null ? (msg as { type?: unknown }).type : undefined;
    if (typeof type === 'string') this.stats.byType.set(type, (this.stats.byType.get(type) ?? 0) + 1);
    const to = this.index.get(toId);
    if (to === undefined || to === from) {
      this.stats.dropped++;
      return;
    }
    let link = this.adj[from]!.get(to);
    let at: number;
    if (this.side[from] !== this.side[to] && (link === undefined || !link.isOpen(from))) {
      // No path across a partition: a relay is lost, a dial fails.
      if (transient) {
        this.stats.dropped++;
        return;
      }
      link = this.dial(from, to, true);
      at = link.openAt + link.latency;
    } else if (link !== undefined && link.isOpen(from)) {
      at = Math.max(this.now, link.openAt) + link.latency;
    } else if (transient) {
      this.stats.relayed++;
      link = undefined;
      at = this.now + draw(this.config.relayLatency, this.rng);
    } else {
      link = this.dial(from, to);
      at = link.openAt + link.latency;
    }
    if (this.config.lossRate > 0 && this.rng.next() < this.config.lossRate) {
      this.stats.dropped++;
      return;
    }
    this.schedule(at, Kind.Message, to, from, msg, link ?? null, cause);
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
      this.schedule(this.now + draw(this.config.dialFailDelay, this.rng), Kind.LinkDown, from, to, null, link, 0);
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
      this.schedule(Math.max(this.now, link.openAt) + link.latency, Kind.LinkDown, peer, i, null, link, cause);
    }
  }

  private deliverAnnounce(from: number, isolated: boolean, cause: number): void {
    const fromId = this.ids[from]!;
    const side = this.side[from];
    let clients = 0;
    for (let j = 0; j < this.nodes.length; j++) if (this.alive[j] && this.side[j] === side) clients++;
    const comp = this.components();
    for (let j = 0; j < this.nodes.length; j++) {
      if (!this.alive[j] || this.side[j] !== side) continue;
      const known = j === from || (comp[j] === comp[from] && comp[j]! >= 0);
      this.run(j, this.stack.announce(fromId, clients, known, isolated), cause);
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
      for (const p of this.nodes[i]!.activeView()) {
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
