import type { NodeId, Rng, Seal } from '../types';
import { Protocol, type ClusterView, type Effect, type MemberSummary } from '../protocol';
import { MAX_AHEAD_MS } from '../clock/hlc';
import { randInt } from '../rng';
import { nodeId as nodeIdCheck } from '../validate';
import { askedReplicas } from '../placement';
import { originOf, type BroadcastProof } from '../plumtree/messages';
import {
  MAX_ACTIVE,
  MAX_NICK_LENGTH,
  MAX_ALIVE_PERIOD_MS,
  MAX_SYNC_RECORDS,
  approxSize,
  validateMemberUpdate,
  type MemberInfo,
  type MemberMessage,
  type MemberRecord,
  type MemberStatus,
  type MemberTimer,
  type MemberUpdate,
} from './messages';
import { reachableFrom } from './reachability';

/**
 * Full membership, SWIM-style (Das, Gupta, Motivala 2002) with Plumtree as the
 * dissemination layer instead of piggybacking:
 *
 * - every member broadcasts ALIVE (incarnation, nick, active view, meta) when it starts
 *   and when its info changes, LEFT on a graceful leave, and otherwise a heartbeat ALIVE
 *   whose period grows with the cluster: max(aliveIntervalMs, live / heartbeatsPerSecond),
 *   so each node handles about heartbeatsPerSecond heartbeats a second whatever the
 *   cluster size (SWIM's O(1) per member). Each ALIVE carries its period (`every`), and
 *   receivers expire a member after EXPIRE_PERIODS of its own periods of silence;
 * - failure detection comes from HyParView: when a neighbour goes down we ping it
 *   directly (a transient send, relayed by signaling when no channel is left). An ack
 *   means a voluntary disconnect (HyParView evicts live peers too); a LEFT arriving
 *   meanwhile means a graceful leave; otherwise after probeTimeoutMs we broadcast SUSPECT;
 * - a suspect not refuted within suspectTimeoutMs turns DEAD at every node that holds
 *   the suspicion; the nodes that raised it also broadcast DEAD;
 * - a member hearing itself suspected or dead refutes with a higher incarnation;
 * - a member not heard from for its expiry (max(expireAfterMs, EXPIRE_PERIODS x its
 *   period)) is marked dead locally (no broadcast: every node reaches the same conclusion
 *   at about the same time). This is the backstop for members no neighbour reported (a
 *   whole neighbourhood crashing at once, a partition); a crash is otherwise detected by
 *   the neighbours in probeTimeoutMs + suspectTimeoutMs. Such an `expired` entry is
 *   revived by fresh evidence at the same incarnation (its own ALIVE, or a sync row heard
 *   less than half its expiry ago), since nobody told the member to refute;
 * - precedence: higher incarnation wins; at equal incarnation left > dead > suspect > alive;
 * - dead/left entries stay tombstoneTtlMs as tombstones, then are dropped;
 * - a new neighbour gets our full table directly, so a joiner knows everyone after one
 *   round trip.
 *
 * Who may say what (docs/security.md): an ALIVE or LEFT about X counts only when X itself
 * broadcast it (the Plumtree origin, which the runtime proved by X's signature); SUSPECT
 * and DEAD speak for their accuser (`by` must be the origin) and never for a higher
 * incarnation than X's own latest word (they are capped at it), so an accusation can be
 * refuted with one step up and never pushes anyone's incarnation out of bounds. Every
 * entry keeps, as `proof`, the member's own latest ALIVE or LEFT as broadcast, and sync
 * rows carry it: a member is known (listed, live, placed) only through its own word, so
 * forged rows or rumours about members that do not exist place nobody. A row without a
 * proof is hearsay and only degrades a member already known (suspect, dead).
 *
 * Incarnations: only the member raises its own. The base is its start time (`now` of
 * the 'start' input, in ms), and every raise sets it to max(incarnation + 1, now): a tab
 * reloaded with the same id therefore starts above anything its previous life used,
 * as long as the wall clock did not step back across the reload (and if it did, the
 * old incarnation reaches it in a sync row or rumour and it refutes above it).
 * Local changes (nick, active view, meta) raise the incarnation too, so same-incarnation
 * ALIVEs are pure heartbeats and the newest info always wins.
 *
 * Protocol contract (core/protocol.ts): inputs `start`, `deliver` (a Plumtree broadcast of
 * kind 'member'), `message`, `neighborUp`, `neighborDown`, `local`, `timer`, `leave`;
 * effects `send` and `timer`, and events `broadcast` (send `data` through Plumtree with
 * kind 'member'), `changed` and `placementChanged`. `view()` is the `ClusterView` the
 * composer hands to the protocols above.
 */
export interface MembershipConfig {
  /** Shortest heartbeat period (small clusters). */
  aliveIntervalMs: number;
  /**
   * Heartbeats each node handles per second, about, whatever the cluster size: a member's
   * period is max(aliveIntervalMs, live members / heartbeatsPerSecond).
   */
  heartbeatsPerSecond: number;
  /** Each period is drawn from period * [1 - jitter, 1 + jitter]. */
  aliveJitter: number;
  /**
   * Silence after which a member is considered dead at the shortest period; a member
   * announcing a longer period gets the same number of its own periods
   * (expireAfterMs / aliveIntervalMs of them).
   */
  expireAfterMs: number;
  /** Wait for the ping answer of a neighbour that went down before suspecting it. */
  probeTimeoutMs: number;
  /**
   * A neighbour whose link goes down this soon after its will came (the runtime checks
   * the link when a will comes, and drops it after 1 s of silence) is suspected without
   * a probe.
   */
  willTrustMs: number;
  /** Time a suspect has to refute before it is declared dead. */
  suspectTimeoutMs: number;
  /**
   * A live member that no path of announced links joins to this node for this long is
   * expired locally (see findUnreachable): more than an announcement's trip, so a member
   * that lost its neighbours and announced new ones is not cut by mistake.
   */
  unreachableAfterMs: number;
  /** How long dead/left entries are kept to stop older rumours resurrecting them. */
  tombstoneTtlMs: number;
  /**
   * A member that leaves gracefully is out of live() at once but stays in placement()
   * this long: a reloaded tab (same id, back with a higher incarnation within the grace)
   * then moves no data at all. Its LEFT and its return used to move about 3 / n of the
   * keys away and back, which kept every tab busy while the reloaded one rejoined.
   * 0: out of placement at once.
   */
  leaveGraceMs: number;
  sweepIntervalMs: number;
  /** Debounce of the ALIVE sent after a local change or on getting a first neighbour. */
  announceDelayMs: number;
  maxMembers: number;
  maxMetaBytes: number;
  /** Approximate size budget of one sync message (below wire's 256 KiB frame limit). */
  syncChunkBytes: number;
}

/** At most this many pings per sweep from a node with no neighbour (probeWhileAlone). */
const LONE_PROBES_PER_SWEEP = 8;

export const DEFAULT_MEMBERSHIP_CONFIG: Readonly<MembershipConfig> = Object.freeze({
  aliveIntervalMs: 5_000,
  heartbeatsPerSecond: 0.03,
  aliveJitter: 0.2,
  expireAfterMs: 20_000,
  probeTimeoutMs: 1_000,
  willTrustMs: 3_000,
  suspectTimeoutMs: 5_000,
  unreachableAfterMs: 10_000,
  tombstoneTtlMs: 60_000,
  leaveGraceMs: 10_000,
  sweepIntervalMs: 1_000,
  announceDelayMs: 100,
  maxMembers: 10_000,
  maxMetaBytes: 4_096,
  syncChunkBytes: 64 * 1024,
});

export type MemberIn =
  | { type: 'start'; nick: string }
  /**
   * A Plumtree broadcast of kind 'member' (validated here: untrusted): its Plumtree id,
   * `origin` (who broadcast it) and seal, kept as the member's proof when it is its own
   * ALIVE or LEFT.
   */
  | { type: 'deliver'; origin: NodeId; id: string; data: unknown; seal?: Seal }
  /** A direct message, already checked with validateMemberMessage by the wire layer. */
  | { type: 'message'; from: NodeId; msg: MemberMessage }
  | { type: 'neighborUp'; peer: NodeId }
  | { type: 'neighborDown'; peer: NodeId }
  /**
   * `peer`'s last will (verified by the runtime): its signaling connection closed. A hint,
   * not a proof: a neighbour whose link goes down within willTrustMs of it is suspected at
   * once rather than probed, since the probe would be relayed through a signaling
   * connection it no longer has.
   */
  | { type: 'will'; peer: NodeId }
  /** Our own info changed: raise the incarnation and rebroadcast (debounced). */
  | { type: 'local'; nick?: string; active?: NodeId[]; meta?: Record<string, unknown> }
  | { type: 'timer'; timer: MemberTimer }
  | { type: 'leave' };

export type MemberEvent =
  /** Broadcast `data` through Plumtree with kind 'member'. */
  | { type: 'broadcast'; data: MemberUpdate }
  /**
   * Live members (alive + suspect, see live()) changed: `joined` became live, `left` are no
   * longer live, `updated` stayed live and announce other info (nick, active view or
   * meta; this node included). `updated` is absent when empty. Emitted at the end of the
   * handle() call that made the changes, at most once per call.
   */
  | { type: 'changed'; joined: NodeId[]; left: NodeId[]; updated?: NodeId[] }
  /** placement() changed (a member turned suspect, was refuted, joined, died...). */
  | { type: 'placementChanged'; members: NodeId[] };

export type MemberOut = Effect<MemberMessage, MemberTimer, MemberEvent>;

export interface MembershipStats {
  members: number;
  live: number;
  broadcasts: number;
  suspicionsRaised: number;
  deathsDeclared: number;
  refutations: number;
  expired: number;
  /** Of `expired`: members no path of announced links joined to us (findUnreachable). */
  cutOff: number;
  syncSent: number;
  /** Sync messages passing on what a sync row taught us (spreadLearned). */
  syncForwarded: number;
  syncRecordsReceived: number;
  probes: number;
  probesAnswered: number;
  /** Neighbours suspected without a probe: their link went down right after their will. */
  suspectedAfterWill: number;
  invalid: number;
  rejected: number;
  /** Claims with an incarnation too far ahead of our clock (see `merge`), refused. */
  futureRefused: number;
  /** ALIVE/LEFT about another node than their origin, or SUSPECT/DEAD whose accuser is not their origin. */
  forged: number;
  /** Rumours and sync rows about a member never heard from itself (no proof): ignored. */
  unproven: number;
}

interface Entry extends MemberInfo {
  /** Local time we last had evidence the member was alive. */
  heardAt: number;
  /** Dead by local expiry, not by a DEAD rumour (see class comment). */
  expired: boolean;
  /** We raised the current suspicion, so we also announce the death. */
  accused: boolean;
  /** Left gracefully less than leaveGraceMs ago: still placed (see MembershipConfig.leaveGraceMs). */
  graced: boolean;
  /**
   * The member's own latest ALIVE or LEFT, as broadcast (at `incarnation`): what our sync
   * rows carry about it. Every entry but our own has one; ours gets it when our ALIVE
   * comes back through Plumtree (sealed, in the runtime).
   */
  proof?: MemberProof;
}

/** A member's own ALIVE or LEFT with the Plumtree id and seal it was broadcast with. */
interface MemberProof {
  id: string;
  update: Extract<MemberUpdate, { type: 'alive' | 'left' }>;
  seal?: Seal;
}

/** An entry as it was before its first change in the current handle() call. */
interface Before {
  live: boolean;
  placed: boolean;
  nick: string;
  active: NodeId[];
  meta: Record<string, unknown>;
}

const RANK: Record<MemberStatus, number> = { alive: 0, suspect: 1, dead: 2, left: 3 };
const isLive = (s: MemberStatus) => s === 'alive' || s === 'suspect';
/** In placement(): alive, or left within the grace. */
const isPlaced = (e: Entry) => e.status === 'alive' || (e.status === 'left' && e.graced);

/**
 * Rumour or sync row, normalised. With `proof` it is the member's own word (ALIVE, or
 * LEFT), carrying its info; without, an accusation (SUSPECT, DEAD) by someone else.
 */
interface Claim {
  id: NodeId;
  incarnation: number;
  status: MemberStatus;
  proof?: MemberProof;
}

export class Membership extends Protocol<MemberIn, MemberMessage, MemberTimer, MemberEvent> {
  readonly me: NodeId;
  readonly config: Readonly<MembershipConfig>;
  private readonly rng: Rng;
  private readonly members = new Map<NodeId, Entry>();
  private readonly neighbors = new Set<NodeId>();
  private readonly probes = new Map<NodeId, number>();
  /** Neighbours whose will came (onWill), and when: their link going down soon after needs no probe. */
  private readonly wills = new Map<NodeId, number>();
  private started = false;
  private leaving = false;
  private announceArmed = false;
  /** When the current heartbeat timer fires; earlier ones are stale. */
  private aliveDueAt = 0;
  /** Live members no announced path joins to us, since when (findUnreachable). */
  private readonly unreachable = new Map<NodeId, number>();
  /** Since when this node has had no neighbour (undefined while it has one); see probeWhileAlone. */
  private aloneSince: number | undefined = undefined;
  /** When probeWhileAlone last pinged each member. */
  private readonly aloneProbedAt = new Map<NodeId, number>();
  private graphDirty = false;
  /** Members a sync row taught us something about in this handle() call, and who sent it (spreadLearned). */
  private readonly learned = new Map<NodeId, NodeId>();
  /** Highest incarnation of ours heard before 'start' (a previous life). */
  private selfSeenBeforeStart = 0;
  /** Entries changed in this handle() call, as they were before the call. */
  private readonly touched = new Map<NodeId, Before>();
  private liveCache: NodeId[] | null = null;
  private placementCache: NodeId[] | null = null;
  private readonly counters = {
    broadcasts: 0, suspicionsRaised: 0, deathsDeclared: 0, refutations: 0, expired: 0, syncSent: 0, cutOff: 0, syncForwarded: 0,
    syncRecordsReceived: 0, probes: 0, probesAnswered: 0, suspectedAfterWill: 0, invalid: 0, rejected: 0, futureRefused: 0, forged: 0, unproven: 0,
  };

  constructor(me: NodeId, config: Partial<MembershipConfig>, rng: Rng) {
    super();
    this.me = me;
    this.config = Object.freeze({ ...DEFAULT_MEMBERSHIP_CONFIG, ...config });
    this.rng = rng;
    this.members.set(me, {
      id: me, incarnation: 0, status: 'alive', nick: '', active: [], meta: {}, updatedAt: 0,
      heardAt: 0, expired: false, accused: false, graced: false,
    });
  }

  protected onInput(input: MemberIn): void {
    switch (input.type) {
      case 'start':
        this.onStart(input.nick);
        break;
      case 'deliver':
        this.onDeliver(input.origin, input.id, input.data, input.seal);
        break;
      case 'message':
        this.onMessage(input.from, input.msg);
        break;
      case 'neighborUp':
        this.onNeighborUp(input.peer);
        break;
      case 'neighborDown':
        this.onNeighborDown(input.peer);
        break;
      case 'will':
        this.onWill(input.peer);
        break;
      case 'local':
        this.onLocal(input);
        break;
      case 'timer':
        this.onTimer(input.timer);
        break;
      case 'leave':
        this.onLeave();
        break;
    }
    this.flushChanges();
  }

  /** Alive and suspect members, sorted, this node included (until it leaves). For the UI. */
  live(): NodeId[] {
    if (!this.liveCache) this.liveCache = this.select((e) => isLive(e.status));
    return [...this.liveCache];
  }

  /**
   * Alive members only, sorted, this node included: for KVS placement. A suspect drops
   * out at once (its keys get new owners ~suspectTimeoutMs before it is declared dead)
   * and comes back if it refutes; re-replication must tolerate that flap. A member that
   * left stays in for leaveGraceMs (a reload comes back within it and moves nothing).
   */
  placement(): NodeId[] {
    if (!this.placementCache) this.placementCache = this.select(isPlaced);
    return [...this.placementCache];
  }

  /** Members that left within leaveGraceMs: in placement(), but not there to answer. */
  away(): NodeId[] {
    return this.select((e) => e.status === 'left' && e.graced);
  }

  /**
   * What the protocols above need of the membership: placement() and away() for the
   * stores, the live members with their nick and rooms (`meta.rooms`) for chat.
   */
  view(): ClusterView {
    const live: MemberSummary[] = [];
    let replicas = 0;
    for (const id of this.live()) {
      const e = this.members.get(id)!;
      live.push({ id, nick: e.nick, rooms: roomsOf(e.meta) });
      replicas = Math.max(replicas, askedReplicas(e.meta) ?? 0);
    }
    const view: ClusterView = { placement: this.placement(), away: this.away(), live };
    if (replicas > 0) view.replicas = replicas;
    return view;
  }

  get(id: NodeId): MemberInfo | undefined {
    const e = this.members.get(id);
    return e ? publicInfo(e) : undefined;
  }

  /** Every entry, tombstones included, sorted by id. */
  all(): MemberInfo[] {
    return [...this.members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(publicInfo);
  }

  incarnation(): number {
    return this.self().incarnation;
  }

  stats(): MembershipStats {
    return { ...this.counters, members: this.members.size, live: this.live().length };
  }

  // ---- inputs ----

  private onStart(nick: string): void {
    if (this.started || this.leaving) return;
    this.started = true;
    const self = this.self();
    this.noteInfo(this.me);
    self.incarnation = Math.max(Math.floor(this.now), this.selfSeenBeforeStart + 1, 1);
    self.nick = nick.slice(0, MAX_NICK_LENGTH);
    self.updatedAt = this.now;
    self.heardAt = this.now;
    if (this.neighbors.size === 0) this.aloneSince = this.now;
    this.scheduleAlive();
    this.io.setTimer(this.config.sweepIntervalMs, { type: 'mem.sweep' });
    for (const peer of this.neighbors) this.sendTable(peer);
    if (this.neighbors.size > 0) this.scheduleAnnounce();
  }

  private onDeliver(origin: NodeId, id: string, data: unknown, seal: Seal | undefined): void {
    if (validateMemberUpdate(data) !== null) {
      this.counters.invalid++;
      return;
    }
    const u = data as MemberUpdate;
    // ALIVE and LEFT speak for the member itself; SUSPECT and DEAD for their accuser
    if ((u.type === 'alive' || u.type === 'left' ? u.id : u.by) !== origin) {
      this.counters.forged++;
      return;
    }
    if (u.type === 'alive' || u.type === 'left') {
      const proof: MemberProof = seal ? { id, update: u, seal } : { id, update: u };
      const ev = u.type === 'alive' ? { heardAt: this.now, fresh: true, since: this.now } : { heardAt: null, fresh: false, since: this.now };
      this.merge({ id: u.id, incarnation: u.incarnation, status: u.type, proof }, ev);
    } else {
      this.merge({ id: u.id, incarnation: u.incarnation, status: u.type }, { heardAt: null, fresh: false, since: this.now });
    }
    // A LEFT ends any probe of that member.
    if (u.type === 'left') this.probes.delete(u.id);
  }

  private onMessage(from: NodeId, msg: MemberMessage): void {
    switch (msg.type) {
      case 'mem.sync':
        for (const r of msg.records) {
          this.counters.syncRecordsReceived++;
          const e = this.members.get(r.id);
          const [inc, status, expired] = e ? [e.incarnation, e.status, e.expired] : [];
          this.applyRecord(r);
          const after = this.members.get(r.id);
          if (after && r.id !== this.me && (!e || inc !== after.incarnation || status !== after.status || expired !== after.expired)) this.learned.set(r.id, from);
        }
        break;
      case 'mem.ping':
        if (!this.leaving) this.io.send(from, { type: 'mem.ack', nonce: msg.nonce }, true);
        break;
      case 'mem.ack':
        if (this.probes.get(from) === msg.nonce) {
          this.probes.delete(from);
          this.counters.probesAnswered++;
        }
        break;
    }
  }

  private onNeighborUp(peer: NodeId): void {
    if (peer === this.me || this.neighbors.has(peer)) return;
    this.neighbors.add(peer);
    this.graphDirty = true;
    this.probes.delete(peer);
    this.aloneSince = undefined;
    this.aloneProbedAt.clear();
    if (!this.started || this.leaving) return;
    this.sendTable(peer);
    // Out of isolation (or just joined): tell everyone now rather than at the next period.
    if (this.neighbors.size === 1) this.scheduleAnnounce();
  }

  private onNeighborDown(peer: NodeId): void {
    if (!this.neighbors.delete(peer)) return;
    this.graphDirty = true;
    if (this.neighbors.size === 0) this.aloneSince = this.now;
    if (!this.started || this.leaving) return;
    const e = this.members.get(peer);
    if (!e || e.status !== 'alive') return;
    const willAt = this.wills.get(peer);
    this.wills.delete(peer);
    if (willAt !== undefined && this.now - willAt <= this.config.willTrustMs) {
      this.counters.suspectedAfterWill++;
      return this.accuse(e);
    }
    this.probe(peer);
  }

  /** Kept for neighbours only (bounded by the active view); a probe already waiting is cut short. */
  private onWill(peer: NodeId): void {
    const e = this.members.get(peer);
    if (!this.started || this.leaving || !e || e.status !== 'alive') return;
    if (this.neighbors.has(peer)) {
      this.wills.set(peer, this.now);
    } else if (this.probes.has(peer)) {
      this.probes.delete(peer);
      this.counters.suspectedAfterWill++;
      this.accuse(e);
    }
  }

  /** Ping `peer` directly (relayed by signaling when no channel is left); silence until probeTimeoutMs makes it a suspect. */
  private probe(peer: NodeId): void {
    const nonce = randInt(this.rng, 2 ** 32);
    this.probes.set(peer, nonce);
    this.counters.probes++;
    this.io.send(peer, { type: 'mem.ping', nonce }, true);
    this.io.setTimer(this.config.probeTimeoutMs, { type: 'mem.probe', peer, nonce });
  }

  private onLocal(input: Extract<MemberIn, { type: 'local' }>): void {
    if (this.leaving) return;
    const self = this.self();
    this.noteInfo(this.me);
    let changed = false;
    if (input.nick !== undefined) {
      const nick = String(input.nick).slice(0, MAX_NICK_LENGTH);
      if (nick !== self.nick) {
        self.nick = nick;
        changed = true;
      }
    }
    if (input.active !== undefined) {
      const active = input.active.filter((p) => nodeIdCheck(p) === null).slice(0, MAX_ACTIVE).sort();
      if (active.join('\n') !== self.active.join('\n')) {
        self.active = active;
        changed = true;
      }
    }
    if (input.meta !== undefined) {
      if (approxSize(input.meta, this.config.maxMetaBytes) > this.config.maxMetaBytes) {
        this.counters.rejected++;
      } else {
        self.meta = input.meta;
        changed = true;
      }
    }
    if (!changed) return;
    self.updatedAt = this.now;
    if (!this.started) return;
    self.incarnation = Math.max(self.incarnation + 1, Math.floor(this.now));
    this.scheduleAnnounce();
  }

  private onLeave(): void {
    if (this.leaving) return;
    this.leaving = true;
    const self = this.self();
    this.touch(this.me);
    self.status = 'left';
    self.updatedAt = this.now;
    this.probes.clear();
    if (this.started) this.broadcast({ type: 'left', id: this.me, incarnation: self.incarnation });
  }

  private onTimer(timer: MemberTimer): void {
    if (this.leaving) return;
    switch (timer.type) {
      case 'mem.alive':
        // an earlier heartbeat timer, superseded by an ALIVE sent since (which set its own)
        if (this.now < this.aliveDueAt - 1) break;
        this.broadcastAlive();
        break;
      case 'mem.announce':
        this.announceArmed = false;
        this.broadcastAlive();
        break;
      case 'mem.sweep':
        this.sweep();
        this.io.setTimer(this.config.sweepIntervalMs, { type: 'mem.sweep' });
        break;
      case 'mem.probe':
        this.onProbeTimeout(timer.peer, timer.nonce);
        break;
      case 'mem.suspect':
        this.onSuspectTimeout(timer.id, timer.incarnation);
        break;
      case 'mem.leftGrace': {
        const e = this.members.get(timer.id);
        if (e?.graced && e.incarnation === timer.incarnation) {
          this.touch(e.id);
          e.graced = false;
        }
        break;
      }
    }
  }

  private onProbeTimeout(peer: NodeId, nonce: number): void {
    if (this.probes.get(peer) !== nonce) return;
    this.probes.delete(peer);
    if (this.neighbors.has(peer)) return;
    const e = this.members.get(peer);
    if (!e || e.status !== 'alive') return;
    this.accuse(e);
  }

  /** This node suspects `e` (a neighbour lost and not answering): SUSPECT broadcast, dead after suspectTimeoutMs. */
  private accuse(e: Entry): void {
    const peer = e.id;
    this.touch(peer);
    e.status = 'suspect';
    e.accused = true;
    e.updatedAt = this.now;
    this.counters.suspicionsRaised++;
    this.armSuspect(e);
    this.broadcast({ type: 'suspect', id: peer, incarnation: e.incarnation, by: this.me });
  }

  private onSuspectTimeout(id: NodeId, incarnation: number): void {
    const e = this.members.get(id);
    if (!e || e.status !== 'suspect' || e.incarnation !== incarnation) return;
    this.touch(id);
    e.status = 'dead';
    e.updatedAt = this.now;
    if (e.accused) {
      e.accused = false;
      this.counters.deathsDeclared++;
      this.broadcast({ type: 'dead', id, incarnation, by: this.me });
    }
  }

  // ---- merging ----

  /**
   * A sync row: the member's proof (its own latest ALIVE or LEFT) first, then the sender's
   * hearsay about it (SUSPECT or DEAD), which only degrades what the proof says.
   */
  private applyRecord(r: MemberRecord): void {
    const proof = this.proofOf(r);
    const live = isLive(r.status);
    // Second-hand liveness is only as good as its age; a tombstone ages out on its own.
    const expiry = this.expiryOf(proof?.update);
    if (r.age >= (live ? expiry : this.config.tombstoneTtlMs)) return;
    const hearsay = live
      ? { heardAt: this.now - r.age, fresh: r.age < expiry / 2, since: this.now }
      : { heardAt: null, fresh: false, since: this.now - r.age };
    if (proof) {
      const u = proof.update;
      if (u.type === 'left') return this.merge({ id: r.id, incarnation: u.incarnation, status: 'left', proof }, { heardAt: null, fresh: false, since: this.now - r.age });
      // a LEFT counts only in the member's own words
      if (r.status === 'left') return;
      this.merge({ id: r.id, incarnation: u.incarnation, status: 'alive', proof }, r.status === 'alive' ? hearsay : { heardAt: null, fresh: false, since: hearsay.since });
    }
    if (r.status === 'suspect' || r.status === 'dead') this.merge({ id: r.id, incarnation: r.incarnation, status: r.status }, hearsay);
  }

  /** The row's proof when it is the member's own valid ALIVE or LEFT; null otherwise. */
  private proofOf(r: MemberRecord): MemberProof | null {
    const p = r.proof;
    if (!p) return null;
    if (validateMemberUpdate(p.data) !== null) {
      this.counters.invalid++;
      return null;
    }
    const u = p.data as MemberUpdate;
    if ((u.type !== 'alive' && u.type !== 'left') || u.id !== r.id || originOf(p.id) !== r.id) {
      this.counters.forged++;
      return null;
    }
    return p.seal ? { id: p.id, update: u, seal: p.seal } : { id: p.id, update: u };
  }

  /**
   * Apply one claim. `heardAt`: when the member was last known alive (null for rumours
   * that carry no such evidence); `fresh`: recent enough to revive a locally expired
   * entry; `since`: when the claimed state began (earlier than now for sync rows of
   * tombstones, so they age out on time).
   */
  private merge(c: Claim, ev: { heardAt: number | null; fresh: boolean; since: number }): void {
    // Incarnations are wall-clock ms (raised to max(inc + 1, now)). A claim more than
    // MAX_AHEAD_MS ahead of our clock is refused, so nobody can pin a member above what its
    // refutation could reach. The member itself refutes claims up to twice that (honest
    // clocks may differ by MAX_AHEAD_MS): every claim another node accepted is then refuted
    // with inc + 1, which that node accepts a millisecond later.
    const bound = Math.floor(this.now) + (c.id === this.me ? 2 * MAX_AHEAD_MS : MAX_AHEAD_MS);
    if (c.incarnation > bound) {
      this.counters.futureRefused++;
      return;
    }
    if (c.id === this.me) {
      this.onClaimAboutMe(c);
      return;
    }
    const { heardAt, fresh, since } = ev;
    const e = this.members.get(c.id);
    if (!e) {
      // Only the member's own word makes it known: rumours about strangers are dropped.
      if (!c.proof) {
        this.counters.unproven++;
        return;
      }
      if (!this.makeRoom()) {
        this.counters.rejected++;
        return;
      }
      this.touch(c.id);
      const info = infoOf(c.proof);
      const entry: Entry = {
        id: c.id, incarnation: c.incarnation, status: c.status, ...info,
        updatedAt: since, heardAt: heardAt ?? since, expired: false, accused: false, graced: false, proof: c.proof,
      };
      this.members.set(c.id, entry);
      if (entry.status === 'suspect') this.armSuspect(entry);
      return;
    }
    // An accusation never reaches past the member's own latest word (e.incarnation is
    // the incarnation of e.proof): one step up refutes it, whatever number it named.
    if (!c.proof && c.incarnation > e.incarnation) c = { ...c, incarnation: e.incarnation };
    const cmp = c.incarnation - e.incarnation || RANK[c.status] - RANK[e.status];
    if (cmp > 0) {
      this.touch(c.id);
      const wasPlaced = isPlaced(e);
      e.incarnation = c.incarnation;
      e.status = c.status;
      if (c.proof) {
        e.proof = c.proof;
        // a LEFT says nothing about nick and rooms: the entry keeps what its ALIVE said
        if (c.proof.update.type === 'alive') Object.assign(e, infoOf(c.proof));
      }
      e.updatedAt = since;
      if (heardAt !== null) e.heardAt = heardAt;
      e.expired = false;
      e.accused = false;
      e.graced = e.status === 'left' && wasPlaced && this.config.leaveGraceMs > 0;
      if (e.graced) this.io.setTimer(this.config.leaveGraceMs, { type: 'mem.leftGrace', id: e.id, incarnation: e.incarnation });
      if (e.status === 'suspect') this.armSuspect(e);
    } else if (cmp === 0) {
      if (heardAt !== null && heardAt > e.heardAt) {
        e.heardAt = heardAt;
        // the newest heartbeat at this incarnation is the proof (its period decides the expiry)
        if (c.proof?.update.type === 'alive' && e.proof?.update.type === 'alive') e.proof = c.proof;
      }
      if (e.expired && c.status === 'dead') e.expired = false;
    } else if (e.expired && fresh && heardAt !== null && c.incarnation === e.incarnation && isLive(c.status)) {
      this.touch(c.id);
      e.status = c.status;
      e.expired = false;
      e.heardAt = heardAt;
      e.updatedAt = this.now;
      if (e.status === 'suspect') this.armSuspect(e);
    } else if (fresh && heardAt !== null && c.status === 'alive' && e.status === 'dead' && !e.expired) {
      // It is alive but was declared dead without hearing so (a partition): a few nodes
      // tell it directly so it refutes. Expected about 3 messages cluster-wide.
      if (this.rng.next() * Math.max(1, this.live().length) < 3) {
        this.io.send(c.id, { type: 'mem.sync', records: [this.record(e)] }, true);
      }
    }
  }

  /**
   * SWIM refutation: anything claiming we are not alive at our incarnation or above.
   * Our own ALIVE coming back through Plumtree (with its seal in the runtime) is the
   * proof our sync rows carry about us.
   */
  private onClaimAboutMe(c: Claim): void {
    if (!this.started) {
      this.selfSeenBeforeStart = Math.max(this.selfSeenBeforeStart, c.incarnation);
      return;
    }
    if (this.leaving) return;
    const self = this.self();
    if (c.proof && c.status === 'alive' && c.incarnation === self.incarnation) {
      self.proof = c.proof;
      return;
    }
    // an accusation about us counts at most at our own incarnation (see merge)
    if (!c.proof && c.incarnation > self.incarnation) c = { ...c, incarnation: self.incarnation };
    if (c.incarnation > self.incarnation || (c.incarnation === self.incarnation && c.status !== 'alive')) {
      self.incarnation = Math.max(c.incarnation + 1, Math.floor(this.now));
      self.updatedAt = this.now;
      this.counters.refutations++;
      this.broadcastAlive();
    }
  }

  /**
   * A node with no neighbour for unreachableAfterMs can neither hear heartbeats nor judge
   * paths (findUnreachable gives up), and the silence expiry grows with the cluster (a
   * 3-member cluster announces 30 s periods: 2 minutes of silence). So it pings the
   * members it still thinks alive, a few per sweep, each at most once per
   * unreachableAfterMs: a member that answers stays, one that does not becomes a suspect
   * like a neighbour that went down. This is how the last tab of a cluster learns that
   * the tab it lost its link to earlier has since closed, even when that tab's LEFT never
   * reached it.
   */
  private probeWhileAlone(): void {
    if (this.aloneSince === undefined || this.now - this.aloneSince < this.config.unreachableAfterMs) return;
    let sent = 0;
    for (const e of this.members.values()) {
      if (sent >= LONE_PROBES_PER_SWEEP) break;
      if (e.id === this.me || e.status !== 'alive' || this.probes.has(e.id)) continue;
      const last = this.aloneProbedAt.get(e.id);
      if (last !== undefined && this.now - last < this.config.unreachableAfterMs) continue;
      this.aloneProbedAt.set(e.id, this.now);
      this.probe(e.id);
      sent++;
    }
  }

  private sweep(): void {
    this.probeWhileAlone();
    for (const [peer, at] of this.wills) if (this.now - at > this.config.willTrustMs) this.wills.delete(peer);
    if (this.graphDirty) this.findUnreachable();
    for (const e of this.members.values()) {
      if (e.id === this.me) continue;
      if (isLive(e.status)) {
        const since = this.unreachable.get(e.id);
        const cut = since !== undefined && this.now - since >= this.config.unreachableAfterMs;
        if (cut || this.now - e.heardAt >= this.expiryOf(e.proof?.update)) {
          this.touch(e.id);
          e.status = 'dead';
          e.expired = true;
          e.accused = false;
          e.updatedAt = this.now;
          this.unreachable.delete(e.id);
          this.counters.expired++;
          if (cut) this.counters.cutOff++;
        }
      } else if (this.now - e.updatedAt >= this.config.tombstoneTtlMs) {
        this.touch(e.id);
        this.members.delete(e.id);
        this.aloneProbedAt.delete(e.id);
      }
    }
  }

  /**
   * Live members that no path of announced links (each member's active view, as its own
   * ALIVE says, read both ways) joins to this node, through live members. A member whose
   * neighbours all died with it, or the far side of a partition once the near ends of the
   * cut links are declared dead, is cut off like this long before its heartbeats fall
   * silent for its expiry, which grows with the cluster. The time a member is first seen
   * cut off is kept in `unreachable`; the sweep expires it after unreachableAfterMs.
   */
  private findUnreachable(): void {
    this.graphDirty = false;
    // Alone, this node can tell nothing about anyone's paths: the silence expiry decides.
    if (this.neighbors.size === 0) {
      this.unreachable.clear();
      return;
    }
    const live = (id: NodeId) => {
      const e = this.members.get(id);
      return e !== undefined && isLive(e.status);
    };
    const seen = reachableFrom(this.me, this.neighbors, this.members.values(), live);
    for (const e of this.members.values()) {
      if (e.id === this.me || !isLive(e.status) || seen.has(e.id)) this.unreachable.delete(e.id);
      else if (!this.unreachable.has(e.id)) this.unreachable.set(e.id, this.now);
    }
    for (const id of [...this.unreachable.keys()]) if (!this.members.has(id)) this.unreachable.delete(id);
  }

  /** At the bound, make room by dropping the oldest tombstone; false if none. */
  private makeRoom(): boolean {
    if (this.members.size < this.config.maxMembers) return true;
    let oldest: Entry | undefined;
    for (const e of this.members.values()) {
      if (!isLive(e.status) && e.id !== this.me && (!oldest || e.updatedAt < oldest.updatedAt)) oldest = e;
    }
    if (!oldest) return false;
    this.touch(oldest.id);
    this.members.delete(oldest.id);
    this.aloneProbedAt.delete(oldest.id);
    return true;
  }

  // ---- outputs ----

  private broadcastAlive(): void {
    if (!this.started || this.leaving) return;
    const self = this.self();
    self.heardAt = this.now;
    this.broadcast({ type: 'alive', id: this.me, incarnation: self.incarnation, nick: self.nick, active: [...self.active], meta: self.meta, every: this.period() });
    // the next heartbeat within the period this ALIVE announced
    this.scheduleAlive();
  }

  /** This node's heartbeat period: about heartbeatsPerSecond heartbeats per second reach each node. */
  period(): number {
    const { aliveIntervalMs, heartbeatsPerSecond } = this.config;
    return Math.min(MAX_ALIVE_PERIOD_MS, Math.max(aliveIntervalMs, Math.round((this.live().length * 1000) / heartbeatsPerSecond)));
  }

  /** Silence after which a member whose latest word is `u` is expired: EXPIRE_PERIODS of its own periods. */
  private expiryOf(u: MemberUpdate | undefined): number {
    const { aliveIntervalMs, expireAfterMs } = this.config;
    const every = u?.type === 'alive' && u.every !== undefined ? u.every : aliveIntervalMs;
    return Math.max(expireAfterMs, (expireAfterMs / aliveIntervalMs) * every);
  }

  private broadcast(data: MemberUpdate): void {
    this.counters.broadcasts++;
    this.io.event({ type: 'broadcast', data });
  }

  private sendTable(peer: NodeId): void {
    let chunk: MemberRecord[] = [];
    let bytes = 0;
    const flush = () => {
      if (chunk.length === 0) return;
      this.counters.syncSent++;
      this.io.send(peer, { type: 'mem.sync', records: chunk });
      chunk = [];
      bytes = 0;
    };
    for (const e of this.members.values()) {
      // Local expiry is an opinion, not a fact to spread (see class comment). The peer's
      // own row is sent too: if we think it dead, it learns so and refutes. A row without
      // the member's own word would be ignored: ours before our first ALIVE came back.
      if (e.expired || !e.proof) continue;
      const r = this.record(e);
      const size = 300 + approxSize(e.proof.update, Infinity);
      if (chunk.length >= MAX_SYNC_RECORDS || (chunk.length > 0 && bytes + size > this.config.syncChunkBytes)) flush();
      chunk.push(r);
      bytes += size;
    }
    flush();
  }

  private record(e: Entry): MemberRecord {
    const since = isLive(e.status) ? (e.id === this.me ? this.now : e.heardAt) : e.updatedAt;
    const p = e.proof;
    // our own row is our latest broadcast word (a local change may have raised our incarnation since)
    const incarnation = e.id === this.me && p ? p.update.incarnation : e.incarnation;
    const r: MemberRecord = { id: e.id, incarnation, status: e.status, age: Math.max(0, Math.floor(this.now - since)) };
    if (p) r.proof = p.seal ? { id: p.id, data: p.update, seal: p.seal } : { id: p.id, data: p.update };
    return r;
  }

  private scheduleAlive(): void {
    const j = this.config.aliveJitter;
    const delay = this.period() * (1 - j + 2 * j * this.rng.next());
    this.aliveDueAt = this.now + delay;
    this.io.setTimer(delay, { type: 'mem.alive' });
  }

  private scheduleAnnounce(): void {
    if (this.announceArmed || !this.started || this.leaving) return;
    this.announceArmed = true;
    this.io.setTimer(this.config.announceDelayMs, { type: 'mem.announce' });
  }

  private armSuspect(e: Entry): void {
    this.io.setTimer(this.config.suspectTimeoutMs, { type: 'mem.suspect', id: e.id, incarnation: e.incarnation });
  }

  // ---- change tracking ----

  private self(): Entry {
    return this.members.get(this.me)!;
  }

  /** Remember an entry as it was before its first change in this handle() call; its status may change. */
  private touch(id: NodeId): void {
    this.graphDirty = true;
    this.liveCache = null;
    this.placementCache = null;
    this.noteInfo(id);
  }

  /** Remember an entry as it was before its first change in this handle() call (its info only changes). */
  private noteInfo(id: NodeId): void {
    if (this.touched.has(id)) return;
    const e = this.members.get(id);
    this.touched.set(id, {
      live: !!e && isLive(e.status), placed: !!e && isPlaced(e),
      nick: e?.nick ?? '', active: e?.active ?? [], meta: e?.meta ?? {},
    });
  }

  private flushChanges(): void {
    this.spreadLearned();
    if (this.touched.size === 0) return;
    const joined: NodeId[] = [];
    const left: NodeId[] = [];
    const updated: NodeId[] = [];
    let placementChanged = false;
    for (const [id, before] of this.touched) {
      const e = this.members.get(id);
      const live = !!e && isLive(e.status);
      if (live && !before.live) joined.push(id);
      if (!live && before.live) left.push(id);
      if (live && before.live && !sameInfo(before, e!)) updated.push(id);
      if ((!!e && isPlaced(e)) !== before.placed) placementChanged = true;
    }
    this.touched.clear();
    if (joined.length > 0 || left.length > 0 || updated.length > 0) {
      this.io.event(
        updated.length > 0
          ? { type: 'changed', joined: joined.sort(), left: left.sort(), updated: updated.sort() }
          : { type: 'changed', joined: joined.sort(), left: left.sort() },
      );
    }
    if (placementChanged) this.io.event({ type: 'placementChanged', members: this.placement() });
  }

  /**
   * What a sync row taught us (a member we did not know, a newer word, a revival) is passed
   * on to our other neighbours, who pass it on only if it is news to them too: an epidemic
   * over the overlay that stops where the news is known. This is how the two sides of a
   * healed partition, or a node that missed broadcasts, catch up: the members' own
   * broadcasts are only sent on change, and heartbeats grow rare in a large cluster.
   */
  private spreadLearned(): void {
    if (this.learned.size === 0) return;
    const per = new Map<NodeId, MemberRecord[]>();
    for (const [id, from] of this.learned) {
      const e = this.members.get(id);
      if (!e || e.expired || !e.proof) continue;
      const r = this.record(e);
      for (const peer of this.neighbors) {
        if (peer === from || peer === id) continue;
        const l = per.get(peer);
        if (l) l.push(r);
        else per.set(peer, [r]);
      }
    }
    this.learned.clear();
    for (const [peer, records] of per) {
      for (let i = 0; i < records.length; i += MAX_SYNC_RECORDS) {
        this.counters.syncForwarded++;
        this.io.send(peer, { type: 'mem.sync', records: records.slice(i, i + MAX_SYNC_RECORDS) });
      }
    }
  }

  private select(pred: (e: Entry) => boolean): NodeId[] {
    const ids: NodeId[] = [];
    for (const e of this.members.values()) if (pred(e)) ids.push(e.id);
    return ids.sort();
  }
}

/** The rooms a member lists in its meta (chat puts them there); anything but strings is dropped. */
function roomsOf(meta: Record<string, unknown>): string[] {
  const rooms = meta.rooms;
  return Array.isArray(rooms) ? rooms.filter((r): r is string => typeof r === 'string') : [];
}

function sameInfo(before: Before, e: Entry): boolean {
  return before.nick === e.nick && sameData(before.active, e.active) && sameData(before.meta, e.meta);
}

/** Structural equality of plain data (what validated meta may hold); bounded by maxMetaBytes. */
function sameData(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.byteLength !== b.byteLength) return false;
    for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const y = b as unknown[];
    if (a.length !== y.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameData(a[i], y[i])) return false;
    return true;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = Object.keys(x);
  if (keys.length !== Object.keys(y).length) return false;
  for (const k of keys) if (!Object.prototype.hasOwnProperty.call(y, k) || !sameData(x[k], y[k])) return false;
  return true;
}

/** What a member's own ALIVE says about it (a LEFT says nothing more). */
function infoOf(p: MemberProof): { nick: string; active: NodeId[]; meta: Record<string, unknown> } {
  const u = p.update;
  return u.type === 'alive' ? { nick: u.nick, active: u.active, meta: u.meta } : { nick: '', active: [], meta: {} };
}

function publicInfo(e: Entry): MemberInfo {
  return { id: e.id, incarnation: e.incarnation, status: e.status, nick: e.nick, active: [...e.active], meta: e.meta, updatedAt: e.updatedAt };
}
