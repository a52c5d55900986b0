import type { NodeId, Rng } from '../types';
import { Protocol, type Effect } from '../protocol';
import { randInt } from '../rng';
import { DEFAULT_HYPARVIEW_CONFIG, type HyParViewConfig } from './config';
import type { HpvMessage } from './messages';
import { TokenBuckets } from '../limits/rate';

/**
 * HyParView (Leitão, Pereira, Rodrigues, DSN 2007) as a pure state machine.
 *
 * Departures from the paper, each for a reason given where it is implemented:
 * - NEIGHBOR is answered by an explicit `neighborReply`, JOIN too. The requester adds the
 *   peer only on an accepting reply, and a FORWARD_JOIN end-point adds the joiner only
 *   after its NEIGHBOR is accepted (as iroh-gossip does), so nobody holds an unreachable
 *   node in its active view and the two ends of every edge agree.
 * - Every request has a timeout; a failed one removes the peer from the passive view and
 *   tries the next passive node.
 * - A periodic top-up (Partisan's "random promotion") asks passive nodes while the active
 *   view is below capacity.
 * - Bootstrap and island healing over the signaling server: `announce` / `welcome`.
 * - Links are explicit: whenever a peer we may hold a link to leaves both the active view
 *   and the set of pending requests, we emit `disconnect`.
 *
 * Protocol contract (core/protocol.ts): inputs `start`, `join`, `message`, `linkDown`,
 * `timer`, `announce` (heard on signaling), `leave`; effects `send`, `timer`,
 * `disconnect` and events `neighborUp`/`neighborDown` (the active view changed) and
 * `announce` (publish an announce on signaling).
 */

export type HpvTimer =
  | { type: 'hpv.shuffle' }
  /** Re-announce while isolated; while connected, announce now and then to find islands. `gen` voids older timers. */
  | { type: 'hpv.isolation'; gen: number }
  /** Timeout of the JOIN or NEIGHBOR request `id` to `peer`. */
  | { type: 'hpv.request'; peer: NodeId; id: number }
  /** An isolated node heard only isolated welcomers: stop waiting for a connected one. */
  | { type: 'hpv.welcomeGrace' };

export type HpvIn =
  /**
   * `contacts`: nodes to try first, e.g. the neighbours of this node's previous life (a
   * reloaded tab): they go into the passive view, which an empty active view asks at once.
   */
  | { type: 'start'; contacts?: NodeId[] }
  /** Join through `contact`. `clients`: signaling subscriber count, if the caller knows it. */
  | { type: 'join'; contact: NodeId; clients?: number }
  | { type: 'message'; from: NodeId; msg: HpvMessage }
  /** The transport link to `peer` failed, or a dial to it did (paper: the peer is taken as failed). */
  | { type: 'linkDown'; peer: NodeId }
  | { type: 'timer'; timer: HpvTimer }
  | { type: 'announce'; from: NodeId; clients: number; known: boolean; isolated: boolean }
  | { type: 'leave' };

export type HpvEvent =
  /** `peer` entered the active view: the layers above may use the link. */
  | { type: 'neighborUp'; peer: NodeId }
  /** `peer` left the active view. */
  | { type: 'neighborDown'; peer: NodeId }
  /** Publish an announce on the signaling server (bootstrap, isolation, island probes). */
  | { type: 'announce' };

export type HpvOut = Effect<HpvMessage, HpvTimer, HpvEvent>;

/** Sizes of the views and counters since construction. */
export interface HpvStats {
  active: number;
  passive: number;
  /** JOIN / NEIGHBOR requests in flight. */
  pending: number;
  /** Peers we leave alone for now (they refused or dropped us). */
  coolingDown: number;
  joinsSent: number;
  neighborRequestsSent: number;
  /** Our JOIN / NEIGHBOR requests answered with accept, with refuse, or not in time. */
  requestsAccepted: number;
  requestsRefused: number;
  requestsTimedOut: number;
  /** Low priority NEIGHBOR requests we refused (active view full). */
  refusalsSent: number;
  /** Neighbours dropped to make room for a peer that could not be refused. */
  evictions: number;
  /** High priority NEIGHBORs treated as low priority: evictions past `evictionRate`. */
  evictionsRateLimited: number;
  /** Neighbours or requested peers whose link failed (`linkDown`). */
  linkFailures: number;
  shufflesSent: number;
  shuffleRepliesReceived: number;
  announces: number;
  welcomesSent: number;
  welcomesReceived: number;
}

type Counters = Omit<HpvStats, 'active' | 'passive' | 'pending' | 'coolingDown'>;

type Priority = 'high' | 'low';

/** A JOIN or NEIGHBOR we sent and whose reply we await. */
interface Request {
  id: number;
  kind: 'join' | 'neighbor';
  priority: Priority;
}

interface Welcomer {
  id: NodeId;
  isolated: boolean;
}

const MAX_WELCOMERS = 8;
/** Requests in flight, in units of activeSize: walk ends we dial are bounded even if peers flood us with FORWARD_JOINs. */
const MAX_PENDING_FACTOR = 4;

/**
 * Doublings of the shuffle period while replies bring nothing new (10 s -> 320 s): in a
 * cluster whose views hold everyone a walk teaches nothing, and each hop costs an idle
 * tab a frame on the wire.
 */
export const SHUFFLE_MAX_BACKOFF = 5;

export class HyParView extends Protocol<HpvIn, HpvMessage, HpvTimer, HpvEvent> {
  readonly config: Readonly<HyParViewConfig>;
  private readonly active: NodeId[] = [];
  private readonly passive: NodeId[] = [];
  /** Requests in flight, by peer. A peer may be here and in the active view (crossed requests). */
  private readonly pending = new Map<NodeId, Request>();
  /** Peers that refused or dropped us, with the time until which we leave them alone. */
  private readonly cooldown = new Map<NodeId, number>();
  /** Refusals in a row per peer (reset when it becomes a neighbour). */
  private readonly refusals = new Map<NodeId, number>();
  /** Nodes that answered our announce, kept as fallback contacts while isolated. */
  private welcomers: Welcomer[] = [];
  private nextRequestId = 1;
  /** Shuffle replies in a row that brought no new id, and shuffle periods left to skip (onShuffleTimer). */
  private shuffleQuiet = 0;
  private shuffleSkip = 0;
  private started = false;
  private left = false;
  private isolationGen = 0;
  /** When the armed isolation check fires (Infinity: none armed). */
  private isolationDue = Infinity;
  private graceArmed = false;
  /** Announces sent since the active view became empty. */
  private isolatedRounds = 0;
  /** When the next island probe (announce while connected, large cluster) is due; 0: not planned. */
  private nextProbeAt = 0;
  private announceBackoff: number;
  private islandDelay: number;
  private bridgeBudget = 0;
  private lastClients = 0;
  /** Evictions for high priority NEIGHBORs (one bucket: a crowd of ids shares it). */
  private readonly evictionBudget: TokenBuckets;
  private readonly counters: Counters = {
    joinsSent: 0, neighborRequestsSent: 0, requestsAccepted: 0, requestsRefused: 0, requestsTimedOut: 0,
    refusalsSent: 0, evictions: 0, evictionsRateLimited: 0, linkFailures: 0, shufflesSent: 0, shuffleRepliesReceived: 0,
    announces: 0, welcomesSent: 0, welcomesReceived: 0,
  };

  constructor(
    readonly me: NodeId,
    config: Partial<HyParViewConfig>,
    private readonly rng: Rng,
  ) {
    super();
    this.config = Object.freeze({ ...DEFAULT_HYPARVIEW_CONFIG, ...config });
    this.announceBackoff = this.config.announceMinMs;
    this.islandDelay = this.config.islandAnnounceMinMs;
    this.evictionBudget = new TokenBuckets(this.config.evictionRate, 1);
  }

  activeView(): NodeId[] {
    return [...this.active];
  }

  passiveView(): NodeId[] {
    return [...this.passive];
  }

  /** Peers we sent a JOIN or NEIGHBOR to and await an answer from (for tests and the UI). */
  pendingRequests(): NodeId[] {
    return [...this.pending.keys()];
  }

  stats(): HpvStats {
    let coolingDown = 0;
    for (const until of this.cooldown.values()) if (until > this.now) coolingDown++;
    return { ...this.counters, active: this.active.length, passive: this.passive.length, pending: this.pending.size, coolingDown };
  }

  protected onInput(input: HpvIn): void {
    if (this.left) return;
    switch (input.type) {
      case 'start':
        return this.onStart(input.contacts ?? []);
      case 'join':
        if (input.clients !== undefined) this.noteClients(input.clients);
        if (input.contact !== this.me) this.sendJoin(input.contact);
        return;
      case 'message':
        if (input.from !== this.me) this.onMessage(input.from, input.msg);
        return;
      case 'linkDown':
        return this.onLinkDown(input.peer);
      case 'timer':
        return this.onTimer(input.timer);
      case 'announce':
        return this.onAnnounce(input.from, input.clients, input.known, input.isolated);
      case 'leave':
        return this.onLeave();
    }
  }

  // --- inputs ---

  private onStart(contacts: NodeId[]): void {
    if (this.started) return;
    this.started = true;
    for (const c of contacts.slice(0, this.config.passiveSize)) this.addPassive(c);
    this.armShuffle();
    // Delay 0: a `join` handled right after `start` makes the check skip the announce.
    this.armIsolation(0);
  }

  private onMessage(from: NodeId, msg: HpvMessage): void {
    switch (msg.type) {
      case 'hpv.join':
        return this.onJoin(from);
      case 'hpv.forwardJoin':
        this.onForwardJoin(from, msg.node, msg.ttl);
        return this.dropStrayLink(from);
      case 'hpv.neighbor':
        return this.onNeighbor(from, msg.priority);
      case 'hpv.neighborReply':
        return this.onNeighborReply(from, msg.accept);
      case 'hpv.disconnect':
        return this.onDisconnect(from, msg.alive);
      case 'hpv.shuffle':
        this.onShuffle(from, msg.origin, msg.ttl, msg.nodes);
        return this.dropStrayLink(from);
      case 'hpv.shuffleReply': {
        this.counters.shuffleRepliesReceived++;
        let fresh = false;
        for (const n of msg.nodes) if (this.addPassive(n)) fresh = true;
        this.shuffleQuiet = fresh ? 0 : this.shuffleQuiet + 1;
        return;
      }
      case 'hpv.welcome':
        return this.onWelcome(from, msg.isolated, msg.bridge, msg.clients);
    }
  }

  /**
   * Paper: the contact adds the joiner to its active view (dropping a random member if
   * full) and sends FORWARD_JOIN to every other active neighbour. Our reply tells the
   * joiner to add us.
   */
  private onJoin(joiner: NodeId): void {
    // A request of ours to the joiner is void: it (re)started and will not answer it (iroh).
    // If it was our own JOIN crossing theirs, their reply to it finds us already neighbours.
    this.pending.delete(joiner);
    this.addActive(joiner, true);
    this.send(joiner, { type: 'hpv.neighborReply', accept: true });
    for (const p of this.active) {
      if (p !== joiner) this.send(p, { type: 'hpv.forwardJoin', node: joiner, ttl: this.config.arwl });
    }
  }

  private onForwardJoin(sender: NodeId, node: NodeId, ttl: number): void {
    if (node === this.me || this.active.includes(node) || this.pending.has(node)) return;
    // Paper (i): the walk ends at ttl 0 or where the sender is our only neighbour. We ask
    // first and add the joiner on its accepting reply (iroh), never an unreachable node.
    if (ttl <= 0 || this.active.length <= 1) return this.sendNeighbor(node, 'high');
    // Paper (ii)
    if (ttl === this.config.prwl) this.addPassive(node);
    // Paper (iii, iv)
    const next = this.pickActive(sender, node);
    if (next === undefined) return this.sendNeighbor(node, 'high');
    this.send(next, { type: 'hpv.forwardJoin', node, ttl: ttl - 1 });
  }

  /**
   * Paper: a high priority request is always accepted, a low one only into a free slot.
   * Ours: a high priority one that would evict a neighbour needs a token of
   * `evictionRate`, or it is handled as low priority (no eclipse by a flood of them).
   */
  private onNeighbor(from: NodeId, priority: Priority): void {
    const known = this.active.includes(from);
    const full = this.active.length >= this.config.activeSize;
    if (!known && full && priority === 'high' && !this.evictionBudget.take('', this.now)) {
      this.counters.evictionsRateLimited++;
      priority = 'low';
    }
    if (known || priority === 'high' || !full) {
      this.addActive(from, true);
      this.send(from, { type: 'hpv.neighborReply', accept: true });
      return;
    }
    this.counters.refusalsSent++;
    this.send(from, { type: 'hpv.neighborReply', accept: false }, true);
    this.addPassive(from);
    // Crossed requests: our own request to `from` still needs the link.
    if (!this.pending.has(from)) this.disconnect(from);
  }

  private onNeighborReply(from: NodeId, accept: boolean): void {
    const req = this.pending.get(from);
    if (!req) {
      // Late (we timed out and closed) or unsolicited: make sure no link stays behind.
      if (!this.active.includes(from)) this.disconnect(from);
      return;
    }
    this.pending.delete(from);
    if (accept) {
      this.counters.requestsAccepted++;
      if (this.active.includes(from)) return;
      if (req.kind === 'join' || req.priority === 'high' || this.active.length < this.config.activeSize) {
        this.addActive(from, true);
      } else {
        // Our view filled up while the low priority request was out: undo the edge.
        this.send(from, { type: 'hpv.disconnect', alive: true });
        this.disconnect(from);
        this.addPassive(from);
      }
      return;
    }
    this.counters.requestsRefused++;
    // Each refusal in a row doubles the wait before asking this peer again (up to 32×): in a
    // small cluster where every view is full, the periodic top-up otherwise opened and
    // closed a WebRTC connection every few seconds, for nothing.
    const refusals = Math.min((this.refusals.get(from) ?? 0) + 1, 6);
    this.refusals.set(from, refusals);
    if (this.refusals.size > 4 * this.config.passiveSize) this.refusals.clear();
    this.cooldown.set(from, this.now + this.config.rejectCooldownMs * 2 ** (refusals - 1));
    if (!this.active.includes(from)) this.disconnect(from);
    this.addPassive(from);
    // A refusal comes from a healthy, full peer: do not walk the whole passive view
    // asking more full peers; the periodic top-up tries again. An empty view cannot wait.
    if (req.kind === 'join') this.joinFailed(from);
    else if (this.active.length === 0) this.refill();
  }

  /** Paper: the peer dropped us; keep it in the passive view if it stays up. */
  private onDisconnect(from: NodeId, alive: boolean): void {
    const req = this.pending.get(from);
    this.pending.delete(from);
    const wasActive = this.removeActive(from);
    this.disconnect(from);
    if (alive) {
      this.addPassive(from);
      // It is full or reshuffling: asking it right back would only bounce.
      this.cooldown.set(from, this.now + this.config.rejectCooldownMs);
    } else {
      this.removePassive(from);
      this.welcomers = this.welcomers.filter((w) => w.id !== from);
    }
    if (req?.kind === 'join') this.joinFailed(from);
    else if (wasActive || req) this.refill();
  }

  /** The link died or a dial failed: the peer is taken as failed (paper §4.3). */
  private onLinkDown(peer: NodeId): void {
    const req = this.pending.get(peer);
    this.pending.delete(peer);
    const wasActive = this.removeActive(peer);
    // A linkDown for a peer in neither set is the tail of a link we or it closed on
    // purpose (e.g. after its DISCONNECT): it says nothing about the peer being down.
    if (!wasActive && !req) return;
    this.counters.linkFailures++;
    this.removePassive(peer);
    this.cooldown.delete(peer);
    if (req?.kind === 'join') this.joinFailed(peer);
    else this.refill();
  }

  private onTimer(timer: HpvTimer): void {
    switch (timer.type) {
      case 'hpv.shuffle':
        return this.onShuffleTimer();
      case 'hpv.isolation':
        if (timer.gen === this.isolationGen) this.isolationCheck();
        return;
      case 'hpv.request':
        return this.onRequestTimeout(timer.peer, timer.id);
      case 'hpv.welcomeGrace':
        this.graceArmed = false;
        if (this.active.length === 0 && !this.joinPending() && this.mayJoinIsolated()) this.joinBestWelcomer();
        return;
    }
  }

  private onRequestTimeout(peer: NodeId, id: number): void {
    const req = this.pending.get(peer);
    if (!req || req.id !== id) return;
    this.pending.delete(peer);
    this.counters.requestsTimedOut++;
    if (this.active.includes(peer)) return;
    this.disconnect(peer);
    this.removePassive(peer);
    if (req.kind === 'join') this.joinFailed(peer);
    else this.refill();
  }

  /**
   * Paper §4.4: send a sample of both views on a random walk from a random neighbour.
   * Also the periodic top-up of an active view below capacity.
   */
  private onShuffleTimer(): void {
    this.armShuffle();
    this.pruneCooldown();
    const target = this.pickActive();
    // Replies that taught nothing new (a small cluster: everybody is in the views already)
    // space the walks out, up to one in 2^SHUFFLE_MAX_BACKOFF periods; losing an active
    // peer or a reply with a new id brings back one per period.
    // Views that hold as many ids as the signaling server counts other clients cannot learn
    // from a walk either: they walk at the slowest rate from the start (not never: the
    // count is one server's, and may be short of the cluster).
    const holdsEveryone = this.lastClients > 0 && this.active.length + this.passive.length >= this.lastClients - 1;
    const quiet = holdsEveryone ? SHUFFLE_MAX_BACKOFF : this.shuffleQuiet;
    if (target !== undefined && this.shuffleSkip > 0) this.shuffleSkip--;
    else if (target !== undefined) {
      this.shuffleSkip = 2 ** Math.min(quiet, SHUFFLE_MAX_BACKOFF) - 1;
      const nodes = [this.me];
      for (const n of this.sample(this.active, this.config.shuffleActive, target)) nodes.push(n);
      for (const n of this.sample(this.passive, this.config.shufflePassive)) nodes.push(n);
      this.counters.shufflesSent++;
      this.send(target, { type: 'hpv.shuffle', origin: this.me, ttl: this.config.shuffleTtl, nodes });
    }
    this.refill();
  }

  private onShuffle(sender: NodeId, origin: NodeId, ttl: number, nodes: NodeId[]): void {
    if (origin === this.me) return;
    const left = ttl - 1;
    if (left > 0 && this.active.length > 1) {
      const next = this.pickActive(sender, origin);
      if (next !== undefined) {
        this.send(next, { type: 'hpv.shuffle', origin, ttl: left, nodes });
        return;
      }
    }
    // The walk ends here: answer with as many ids as we got, passive first.
    const reply = this.sample(this.passive, nodes.length, origin);
    if (reply.length < nodes.length) {
      for (const n of this.sample(this.active, nodes.length - reply.length, origin)) reply.push(n);
    }
    this.send(origin, { type: 'hpv.shuffleReply', nodes: reply }, true);
    for (const n of nodes) this.addPassive(n);
  }

  /**
   * Another node announced itself on signaling. Answer with a welcome:
   * - to an isolated announcer (a newcomer or an orphan), with probability
   *   min(1, welcomeAnswers / clients), so a join costs O(1) answers. If we are isolated
   *   too, always in a small cluster (two lone nodes must find each other); in a large one
   *   with the same probability (the announcer prefers connected welcomers anyway).
   * - to a connected announcer we do not know (membership says it is in another island),
   *   asking it to bridge: always in a small cluster, else with the same probability: all
   *   but its island hear it, and they must not all answer. About welcomeAnswers of them
   *   do, and it bridges to up to bridgeMax.
   */
  private onAnnounce(from: NodeId, clients: number, known: boolean, isolated: boolean): void {
    this.noteClients(clients);
    if (from === this.me) return;
    const meIsolated = this.active.length === 0;
    if (this.active.includes(from) || this.pending.has(from)) return;
    const small = clients <= this.config.smallCluster;
    const chance = () => this.rng.next() * Math.max(1, clients) < this.config.welcomeAnswers;
    let answer: boolean;
    let bridge: boolean;
    if (isolated) {
      answer = (meIsolated && small) || chance();
      bridge = meIsolated;
    } else {
      if (known && !meIsolated) return;
      answer = small || chance();
      bridge = true;
    }
    if (!answer) return;
    this.counters.welcomesSent++;
    this.send(from, { type: 'hpv.welcome', isolated: meIsolated, bridge, clients }, true);
  }

  private onWelcome(from: NodeId, isolated: boolean, bridge: boolean, clients: number): void {
    this.counters.welcomesReceived++;
    if (clients > 0) this.noteClients(clients);
    if (this.active.includes(from)) return;
    if (this.active.length === 0) {
      this.welcomers = this.welcomers.filter((w) => w.id !== from);
      this.welcomers.push({ id: from, isolated });
      if (this.welcomers.length > MAX_WELCOMERS) this.welcomers.shift();
      if (this.joinPending()) return;
      // A connected welcomer is the best contact; an isolated one only if no connected one answers soon.
      if (!isolated) this.joinBestWelcomer();
      else if (!this.graceArmed) {
        this.graceArmed = true;
        this.timer(this.config.welcomeGraceMs, { type: 'hpv.welcomeGrace' });
      }
      return;
    }
    // We are connected: a bridge welcome comes from another island (or an isolated node).
    if (bridge && this.bridgeBudget > 0 && !this.pending.has(from)) {
      this.bridgeBudget--;
      this.sendNeighbor(from, 'high');
      return;
    }
    this.addPassive(from);
  }

  /** Graceful leave: tell every neighbour we are going (not alive) and close all links. */
  private onLeave(): void {
    for (const p of this.active) {
      this.send(p, { type: 'hpv.disconnect', alive: false });
      this.disconnect(p);
      this.io.event({ type: 'neighborDown', peer: p });
    }
    for (const p of this.pending.keys()) if (!this.active.includes(p)) this.disconnect(p);
    this.active.length = 0;
    this.passive.length = 0;
    this.pending.clear();
    this.left = true;
  }

  // --- joining and isolation ---

  private sendJoin(contact: NodeId): void {
    const req = this.pending.get(contact);
    if (req?.kind === 'join') return;
    const id = this.nextRequestId++;
    this.pending.set(contact, { id, kind: 'join', priority: 'high' });
    this.counters.joinsSent++;
    this.send(contact, { type: 'hpv.join' });
    this.timer(this.config.requestTimeoutMs, { type: 'hpv.request', peer: contact, id });
  }

  private joinPending(): boolean {
    for (const r of this.pending.values()) if (r.kind === 'join') return true;
    return false;
  }

  /** Prefer a connected welcomer; among isolated ones the smallest id, so lone nodes converge on one. */
  private joinBestWelcomer(): boolean {
    let best: Welcomer | undefined;
    for (let i = this.welcomers.length - 1; i >= 0; i--) {
      const w = this.welcomers[i]!;
      if (this.pending.has(w.id)) continue;
      if (!w.isolated) {
        best = w;
        break;
      }
      if (!best || w.id < best.id) best = w;
    }
    if (!best) return false;
    this.welcomers = this.welcomers.filter((w) => w !== best);
    this.sendJoin(best.id);
    return true;
  }

  /** The JOIN to `contact` got no neighbour: try another welcomer, the passive view, then announce. */
  private joinFailed(contact: NodeId): void {
    this.welcomers = this.welcomers.filter((w) => w.id !== contact);
    if (this.active.length > 0 || this.joinPending()) return;
    if ((this.welcomers.some((w) => !w.isolated) || this.mayJoinIsolated()) && this.joinBestWelcomer()) return;
    this.refill();
    if (this.started) this.isolationCheck();
  }

  /**
   * In a large cluster an isolated contact most likely means two orphans forming an
   * island; join one only after a few announces brought no connected welcomer (then
   * there may be no connected node at all, e.g. many tabs opened at once).
   */
  private mayJoinIsolated(): boolean {
    return this.isSmall() || this.lastClients === 0 || this.isolatedRounds >= 3;
  }

  /**
   * Isolated: announce (unless a JOIN is out), try the passive view, check again with
   * backoff. Connected: announce now and then so that islands find each other: often in
   * a small cluster or when starving (view not full and nobody left to ask), else about
   * every `clients × islandProbeSpacingMs` ms, i.e. one probe per islandProbeSpacingMs per
   * cluster, whatever its size.
   */
  private isolationCheck(): void {
    this.isolationDue = Infinity;
    if (this.active.length === 0) {
      if (!this.joinPending() && !(this.isolatedRounds >= 3 && this.joinBestWelcomer())) {
        this.announce();
        this.isolatedRounds++;
      }
      this.refill();
      const delay = this.announceBackoff;
      this.announceBackoff = Math.min(this.announceBackoff * 2, this.config.announceMaxMs);
      this.armIsolation(delay);
      return;
    }
    this.announceBackoff = this.config.announceMinMs;
    if (this.isSmall() || this.starving()) {
      this.announce();
      this.armIsolation(this.jitter(this.islandDelay));
      this.islandDelay = Math.min(this.islandDelay * 2, this.config.islandAnnounceMaxMs);
      return;
    }
    if (this.lastClients === 0) return;
    // The check may have been armed for another reason: probe only when one is due.
    if (this.nextProbeAt === 0) this.nextProbeAt = this.now + this.probeDelay();
    else if (this.nextProbeAt <= this.now) {
      this.announce();
      this.nextProbeAt = this.now + this.probeDelay();
    }
    this.armIsolation(this.nextProbeAt - this.now);
  }

  /** The active view is not full and every passive node is asked, cooling down, or gone. */
  private starving(): boolean {
    if (this.active.length >= this.config.activeSize) return false;
    for (const p of this.passive) {
      if (this.pending.has(p)) return false;
      const until = this.cooldown.get(p);
      if (until === undefined || until <= this.now) return false;
    }
    return true;
  }

  private probeDelay(): number {
    return this.jitter(Math.max(this.config.islandAnnounceMaxMs, this.lastClients * this.config.islandProbeSpacingMs));
  }

  private announce(): void {
    this.bridgeBudget = this.config.bridgeMax;
    this.counters.announces++;
    this.io.event({ type: 'announce' });
  }

  private armIsolation(delay: number): void {
    this.isolationDue = this.now + delay;
    this.timer(delay, { type: 'hpv.isolation', gen: ++this.isolationGen });
  }

  /** Make sure an isolation check runs within `delay` ms (a later armed one is replaced). */
  private checkWithin(delay: number): void {
    if (this.started && this.isolationDue > this.now + delay) this.armIsolation(delay);
  }

  private isSmall(): boolean {
    return this.lastClients > 0 && this.lastClients <= this.config.smallCluster;
  }

  private noteClients(clients: number): void {
    const first = this.lastClients === 0;
    this.lastClients = clients;
    if (this.active.length === 0) return;
    if (this.isSmall()) this.checkWithin(this.jitter(this.islandDelay));
    else if (first) this.checkWithin(0);
  }

  // --- views ---

  /**
   * Add to the active view; when full, `force` drops a random member (which gets a
   * DISCONNECT and stays in our passive view), otherwise the add fails.
   */
  private addActive(peer: NodeId, force: boolean): boolean {
    if (peer === this.me) return false;
    if (this.active.includes(peer)) return true;
    if (this.active.length >= this.config.activeSize) {
      if (!force) return false;
      const victim = this.active[randInt(this.rng, this.active.length)]!;
      this.counters.evictions++;
      this.removeActive(victim);
      this.pending.delete(victim);
      this.send(victim, { type: 'hpv.disconnect', alive: true });
      this.disconnect(victim);
      this.addPassive(victim);
      this.cooldown.set(victim, this.now + this.config.rejectCooldownMs);
    }
    this.removePassive(peer);
    this.cooldown.delete(peer);
    this.refusals.delete(peer);
    const wasEmpty = this.active.length === 0;
    this.active.push(peer);
    this.io.event({ type: 'neighborUp', peer });
    if (wasEmpty) {
      this.welcomers = [];
      this.isolatedRounds = 0;
      this.islandDelay = this.config.islandAnnounceMinMs;
      if (this.isSmall()) this.checkWithin(this.jitter(this.islandDelay));
      else if (this.lastClients > 0) this.checkWithin(0);
    }
    return true;
  }

  /** Remove from the active view (no messages); true if it was there. */
  private removeActive(peer: NodeId): boolean {
    const i = this.active.indexOf(peer);
    if (i < 0) return false;
    this.active[i] = this.active[this.active.length - 1]!;
    this.active.pop();
    this.io.event({ type: 'neighborDown', peer });
    this.shuffleQuiet = 0;
    this.shuffleSkip = 0;
    if (this.active.length === 0 && this.started) {
      this.announceBackoff = this.config.announceMinMs;
      // Give the passive view a moment before announcing.
      this.armIsolation(this.config.announceMinMs);
    }
    return true;
  }

  /** true when `peer` was new to both views. */
  private addPassive(peer: NodeId): boolean {
    if (peer === this.me || this.active.includes(peer) || this.passive.includes(peer)) return false;
    if (this.passive.length >= this.config.passiveSize) {
      const i = randInt(this.rng, this.passive.length);
      this.passive[i] = this.passive[this.passive.length - 1]!;
      this.passive.pop();
    }
    this.passive.push(peer);
    return true;
  }

  private removePassive(peer: NodeId): void {
    const i = this.passive.indexOf(peer);
    if (i < 0) return;
    this.passive[i] = this.passive[this.passive.length - 1]!;
    this.passive.pop();
  }

  /**
   * Paper §4.3: replace missing active neighbours from the passive view, high priority
   * when the active view is empty, low otherwise. Requests in flight count as filled slots.
   */
  private refill(): void {
    let missing = this.config.activeSize - this.active.length;
    let highOut = false;
    for (const [peer, req] of this.pending) {
      if (!this.active.includes(peer)) missing--;
      if (req.priority === 'high') highOut = true;
    }
    if (missing <= 0) return;
    let candidates: NodeId[] = [];
    for (const p of this.passive) {
      if (this.pending.has(p)) continue;
      const until = this.cooldown.get(p);
      if (until !== undefined && until > this.now) continue;
      candidates.push(p);
    }
    // An empty view cannot wait out cooldowns: a high priority request cannot be refused.
    if (candidates.length === 0 && this.active.length === 0) candidates = this.passive.filter((p) => !this.pending.has(p));
    // Nobody left to ask: look for more nodes on signaling (see isolationCheck).
    if (candidates.length === 0 && this.active.length > 0) this.checkWithin(this.jitter(this.islandDelay));
    for (let i = 0; i < missing && candidates.length > 0; i++) {
      const j = randInt(this.rng, candidates.length);
      const peer = candidates[j]!;
      candidates[j] = candidates[candidates.length - 1]!;
      candidates.pop();
      const high = this.active.length === 0 && !highOut;
      if (high) highOut = true;
      this.sendNeighbor(peer, high ? 'high' : 'low');
    }
  }

  private sendNeighbor(peer: NodeId, priority: Priority): void {
    if (peer === this.me || this.pending.has(peer)) return;
    if (this.pending.size >= MAX_PENDING_FACTOR * this.config.activeSize) return void this.addPassive(peer);
    const id = this.nextRequestId++;
    this.pending.set(peer, { id, kind: 'neighbor', priority });
    this.counters.neighborRequestsSent++;
    this.send(peer, { type: 'hpv.neighbor', priority });
    this.timer(this.config.requestTimeoutMs, { type: 'hpv.request', peer, id });
  }

  /** A peer that is neither our neighbour nor asked by us sent us walk traffic: it holds a stale edge. Close it. */
  private dropStrayLink(from: NodeId): void {
    if (!this.active.includes(from) && !this.pending.has(from)) this.disconnect(from);
  }

  private pruneCooldown(): void {
    for (const [p, until] of this.cooldown) if (until <= this.now) this.cooldown.delete(p);
  }

  // --- helpers ---

  /** A random active neighbour other than `a` and `b`. */
  private pickActive(a?: NodeId, b?: NodeId): NodeId | undefined {
    let n = 0;
    for (const p of this.active) if (p !== a && p !== b) n++;
    if (n === 0) return undefined;
    let k = randInt(this.rng, n);
    for (const p of this.active) {
      if (p === a || p === b) continue;
      if (k-- === 0) return p;
    }
    return undefined;
  }

  /** Up to k distinct elements of `from`, other than `except`, uniformly. */
  private sample(from: readonly NodeId[], k: number, except?: NodeId): NodeId[] {
    const pool = except === undefined ? from.slice() : from.filter((x) => x !== except);
    const n = Math.min(k, pool.length);
    for (let i = 0; i < n; i++) {
      const j = i + randInt(this.rng, pool.length - i);
      const t = pool[i]!;
      pool[i] = pool[j]!;
      pool[j] = t;
    }
    pool.length = Math.max(0, n);
    return pool;
  }

  private jitter(ms: number): number {
    return ms * (0.5 + this.rng.next());
  }

  private armShuffle(): void {
    this.timer(this.jitter(this.config.shuffleIntervalMs), { type: 'hpv.shuffle' });
  }

  private send(to: NodeId, msg: HpvMessage, transient = false): void {
    if (to !== this.me) this.io.send(to, msg, transient);
  }

  private disconnect(peer: NodeId): void {
    this.io.disconnect(peer);
  }

  private timer(delayMs: number, timer: HpvTimer): void {
    this.io.setTimer(delayMs, timer);
  }
}
