import type { NodeId, Rng, SendEffect, TimerEffect } from '../types';
import { randInt } from '../rng';
import { nodeId as nodeIdCheck } from '../validate';
import {
  MAX_ACTIVE,
  MAX_NICK_LENGTH,
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

/**
 * Full membership, SWIM-style (Das, Gupta, Motivala 2002) with Plumtree as the
 * dissemination layer instead of piggybacking:
 *
 * - every member broadcasts ALIVE (incarnation, nick, active view, meta) every
 *   aliveIntervalMs (jittered) and LEFT on a graceful leave;
 * - failure detection comes from HyParView: when a neighbour goes down we ping it
 *   directly (a transient send, relayed by signaling when no channel is left). An ack
 *   means a voluntary disconnect (HyParView evicts live peers too); a LEFT arriving
 *   meanwhile means a graceful leave; otherwise after probeTimeoutMs we broadcast SUSPECT;
 * - a suspect not refuted within suspectTimeoutMs turns DEAD at every node that holds
 *   the suspicion; the nodes that raised it also broadcast DEAD;
 * - a member hearing itself suspected or dead refutes with a higher incarnation;
 * - a member not heard from for expireAfterMs is marked dead locally (no broadcast: every
 *   node reaches the same conclusion at about the same time). Such an `expired` entry is
 *   revived by fresh evidence at the same incarnation (its own ALIVE, or a sync row heard
 *   less than expireAfterMs / 2 ago), since nobody told the member to refute;
 * - precedence: higher incarnation wins; at equal incarnation left > dead > suspect > alive;
 * - dead/left entries stay tombstoneTtlMs as tombstones, then are dropped;
 * - a new neighbour gets our full table directly, so a joiner knows everyone after one
 *   round trip.
 *
 * Incarnations: only the member raises its own. The base is its start time (`now` of
 * the 'start' input, in ms), and every raise sets it to max(incarnation + 1, now): a tab
 * reloaded with the same id therefore starts above anything its previous life used,
 * as long as the wall clock did not step back across the reload (and if it did, the
 * old incarnation reaches it in a sync row or rumour and it refutes above it).
 * Local changes (nick, active view, meta) raise the incarnation too, so same-incarnation
 * ALIVEs are pure heartbeats and the newest info always wins.
 */
export interface MembershipConfig {
  /** Heartbeat period. ALIVE traffic is n / period broadcasts per second cluster-wide. */
  aliveIntervalMs: number;
  /** Each period is drawn from period * [1 - jitter, 1 + jitter]. */
  aliveJitter: number;
  /** Silence after which a member is considered dead (about 4 periods). */
  expireAfterMs: number;
  /** Wait for the ping answer of a neighbour that went down before suspecting it. */
  probeTimeoutMs: number;
  /** Time a suspect has to refute before it is declared dead. */
  suspectTimeoutMs: number;
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

export const DEFAULT_MEMBERSHIP_CONFIG: Readonly<MembershipConfig> = {
  aliveIntervalMs: 5_000,
  aliveJitter: 0.2,
  expireAfterMs: 20_000,
  probeTimeoutMs: 1_000,
  suspectTimeoutMs: 5_000,
  tombstoneTtlMs: 60_000,
  leaveGraceMs: 3_000,
  sweepIntervalMs: 1_000,
  announceDelayMs: 100,
  maxMembers: 10_000,
  maxMetaBytes: 4_096,
  syncChunkBytes: 64 * 1024,
};

export type MemberIn =
  | { type: 'start'; nick: string }
  /** A Plumtree broadcast of kind 'member' (validated here: untrusted). */
  | { type: 'deliver'; data: unknown }
  /** A direct message, already checked with validateMemberMessage by the wire layer. */
  | { type: 'message'; from: NodeId; msg: MemberMessage }
  | { type: 'neighborUp'; peer: NodeId }
  | { type: 'neighborDown'; peer: NodeId }
  /** Our own info changed: raise the incarnation and rebroadcast (debounced). */
  | { type: 'local'; nick?: string; active?: NodeId[]; meta?: Record<string, unknown> }
  | { type: 'timer'; timer: MemberTimer }
  | { type: 'leave' };

export type MemberOut =
  | SendEffect<MemberMessage>
  | TimerEffect<MemberTimer>
  /** Broadcast through Plumtree with kind 'member'. */
  | { type: 'broadcast'; data: MemberUpdate }
  /** The live set (alive + suspect, see live()) changed. */
  | { type: 'changed'; joined: NodeId[]; left: NodeId[] }
  /** placement() changed (a member turned suspect, was refuted, joined, died...). */
  | { type: 'placementChanged'; members: NodeId[] };

export interface MembershipStats {
  members: number;
  live: number;
  broadcasts: number;
  suspicionsRaised: number;
  deathsDeclared: number;
  refutations: number;
  expired: number;
  syncSent: number;
  syncRecordsReceived: number;
  probes: number;
  probesAnswered: number;
  invalid: number;
  rejected: number;
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
}

const RANK: Record<MemberStatus, number> = { alive: 0, suspect: 1, dead: 2, left: 3 };
const isLive = (s: MemberStatus) => s === 'alive' || s === 'suspect';
/** In placement(): alive, or left within the grace. */
const isPlaced = (e: Entry) => e.status === 'alive' || (e.status === 'left' && e.graced);

/** Rumour or sync row, normalised. Info fields are absent for SUSPECT/DEAD/LEFT rumours. */
interface Claim {
  id: NodeId;
  incarnation: number;
  status: MemberStatus;
  nick?: string;
  active?: NodeId[];
  meta?: Record<string, unknown>;
}

export class Membership {
  readonly me: NodeId;
  private readonly config: MembershipConfig;
  private readonly rng: Rng;
  private readonly members = new Map<NodeId, Entry>();
  private readonly neighbors = new Set<NodeId>();
  private readonly probes = new Map<NodeId, number>();
  private started = false;
  private leaving = false;
  private announceArmed = false;
  /** Highest incarnation of ours heard before 'start' (a previous life). */
  private selfSeenBeforeStart = 0;
  /** Liveness / placement of the entries changed in this handle() call, before the call. */
  private readonly touched = new Map<NodeId, { live: boolean; placed: boolean }>();
  private liveCache: NodeId[] | null = null;
  private placementCache: NodeId[] | null = null;
  private readonly counters = {
    broadcasts: 0, suspicionsRaised: 0, deathsDeclared: 0, refutations: 0, expired: 0, syncSent: 0,
    syncRecordsReceived: 0, probes: 0, probesAnswered: 0, invalid: 0, rejected: 0,
  };

  constructor(me: NodeId, config: Partial<MembershipConfig>, rng: Rng) {
    this.me = me;
    this.config = { ...DEFAULT_MEMBERSHIP_CONFIG, ...config };
    this.rng = rng;
    this.members.set(me, {
      id: me, incarnation: 0, status: 'alive', nick: '', active: [], meta: {}, updatedAt: 0,
      heardAt: 0, expired: false, accused: false, graced: false,
    });
  }

  handle(input: MemberIn, now: number, out: MemberOut[]): void {
    switch (input.type) {
      case 'start':
        this.onStart(input.nick, now, out);
        break;
      case 'deliver':
        this.onDeliver(input.data, now, out);
        break;
      case 'message':
        this.onMessage(input.from, input.msg, now, out);
        break;
      case 'neighborUp':
        this.onNeighborUp(input.peer, now, out);
        break;
      case 'neighborDown':
        this.onNeighborDown(input.peer, out);
        break;
      case 'local':
        this.onLocal(input, now, out);
        break;
      case 'timer':
        this.onTimer(input.timer, now, out);
        break;
      case 'leave':
        this.onLeave(now, out);
        break;
    }
    this.flushChanges(out);
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

  private onStart(nick: string, now: number, out: MemberOut[]): void {
    if (this.started || this.leaving) return;
    this.started = true;
    const self = this.self();
    self.incarnation = Math.max(Math.floor(now), this.selfSeenBeforeStart + 1, 1);
    self.nick = nick.slice(0, MAX_NICK_LENGTH);
    self.updatedAt = now;
    self.heardAt = now;
    this.scheduleAlive(out);
    out.push({ type: 'timer', delay: this.config.sweepIntervalMs, timer: { type: 'mem.sweep' } });
    for (const peer of this.neighbors) this.sendTable(peer, now, out);
    if (this.neighbors.size > 0) this.scheduleAnnounce(out);
  }

  private onDeliver(data: unknown, now: number, out: MemberOut[]): void {
    if (validateMemberUpdate(data) !== null) {
      this.counters.invalid++;
      return;
    }
    const u = data as MemberUpdate;
    if (u.type === 'alive') {
      const claim: Claim = { id: u.id, incarnation: u.incarnation, status: 'alive', nick: u.nick, active: u.active, meta: u.meta };
      this.merge(claim, now, { heardAt: now, fresh: true, since: now }, out);
    } else {
      this.merge({ id: u.id, incarnation: u.incarnation, status: u.type }, now, { heardAt: null, fresh: false, since: now }, out);
    }
    // A LEFT ends any probe of that member.
    if (u.type === 'left') this.probes.delete(u.id);
  }

  private onMessage(from: NodeId, msg: MemberMessage, now: number, out: MemberOut[]): void {
    switch (msg.type) {
      case 'mem.sync':
        for (const r of msg.records) {
          this.counters.syncRecordsReceived++;
          this.applyRecord(r, now, out);
        }
        break;
      case 'mem.ping':
        if (!this.leaving) out.push({ type: 'send', to: from, msg: { type: 'mem.ack', nonce: msg.nonce }, transient: true });
        break;
      case 'mem.ack':
        if (this.probes.get(from) === msg.nonce) {
          this.probes.delete(from);
          this.counters.probesAnswered++;
        }
        break;
    }
  }

  private onNeighborUp(peer: NodeId, now: number, out: MemberOut[]): void {
    if (peer === this.me || this.neighbors.has(peer)) return;
    this.neighbors.add(peer);
    this.probes.delete(peer);
    if (!this.started || this.leaving) return;
    this.sendTable(peer, now, out);
    // Out of isolation (or just joined): tell everyone now rather than at the next period.
    if (this.neighbors.size === 1) this.scheduleAnnounce(out);
  }

  private onNeighborDown(peer: NodeId, out: MemberOut[]): void {
    if (!this.neighbors.delete(peer)) return;
    if (!this.started || this.leaving) return;
    const e = this.members.get(peer);
    if (!e || e.status !== 'alive') return;
    const nonce = randInt(this.rng, 2 ** 32);
    this.probes.set(peer, nonce);
    this.counters.probes++;
    out.push({ type: 'send', to: peer, msg: { type: 'mem.ping', nonce }, transient: true });
    out.push({ type: 'timer', delay: this.config.probeTimeoutMs, timer: { type: 'mem.probe', peer, nonce } });
  }

  private onLocal(input: Extract<MemberIn, { type: 'local' }>, now: number, out: MemberOut[]): void {
    if (this.leaving) return;
    const self = this.self();
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
    self.updatedAt = now;
    if (!this.started) return;
    self.incarnation = Math.max(self.incarnation + 1, Math.floor(now));
    this.scheduleAnnounce(out);
  }

  private onLeave(now: number, out: MemberOut[]): void {
    if (this.leaving) return;
    this.leaving = true;
    const self = this.self();
    this.touch(this.me);
    self.status = 'left';
    self.updatedAt = now;
    this.probes.clear();
    if (this.started) this.broadcast({ type: 'left', id: this.me, incarnation: self.incarnation }, out);
  }

  private onTimer(timer: MemberTimer, now: number, out: MemberOut[]): void {
    if (this.leaving) return;
    switch (timer.type) {
      case 'mem.alive':
        this.broadcastAlive(now, out);
        this.scheduleAlive(out);
        break;
      case 'mem.announce':
        this.announceArmed = false;
        this.broadcastAlive(now, out);
        break;
      case 'mem.sweep':
        this.sweep(now);
        out.push({ type: 'timer', delay: this.config.sweepIntervalMs, timer: { type: 'mem.sweep' } });
        break;
      case 'mem.probe':
        this.onProbeTimeout(timer.peer, timer.nonce, now, out);
        break;
      case 'mem.suspect':
        this.onSuspectTimeout(timer.id, timer.incarnation, now, out);
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

  private onProbeTimeout(peer: NodeId, nonce: number, now: number, out: MemberOut[]): void {
    if (this.probes.get(peer) !== nonce) return;
    this.probes.delete(peer);
    if (this.neighbors.has(peer)) return;
    const e = this.members.get(peer);
    if (!e || e.status !== 'alive') return;
    this.touch(peer);
    e.status = 'suspect';
    e.accused = true;
    e.updatedAt = now;
    this.counters.suspicionsRaised++;
    this.armSuspect(e, out);
    this.broadcast({ type: 'suspect', id: peer, incarnation: e.incarnation, by: this.me }, out);
  }

  private onSuspectTimeout(id: NodeId, incarnation: number, now: number, out: MemberOut[]): void {
    const e = this.members.get(id);
    if (!e || e.status !== 'suspect' || e.incarnation !== incarnation) return;
    this.touch(id);
    e.status = 'dead';
    e.updatedAt = now;
    if (e.accused) {
      e.accused = false;
      this.counters.deathsDeclared++;
      this.broadcast({ type: 'dead', id, incarnation, by: this.me }, out);
    }
  }

  // ---- merging ----

  private applyRecord(r: MemberRecord, now: number, out: MemberOut[]): void {
    const claim: Claim = { id: r.id, incarnation: r.incarnation, status: r.status, nick: r.nick, active: r.active, meta: r.meta };
    if (isLive(r.status)) {
      // Second-hand liveness is only as good as its age.
      if (r.age >= this.config.expireAfterMs) return;
      this.merge(claim, now, { heardAt: now - r.age, fresh: r.age < this.config.expireAfterMs / 2, since: now }, out);
    } else {
      if (r.age >= this.config.tombstoneTtlMs) return;
      this.merge(claim, now, { heardAt: null, fresh: false, since: now - r.age }, out);
    }
  }

  /**
   * Apply one claim. `heardAt`: when the member was last known alive (null for rumours
   * that carry no such evidence); `fresh`: recent enough to revive a locally expired
   * entry; `since`: when the claimed state began (earlier than now for sync rows of
   * tombstones, so they age out on time).
   */
  private merge(c: Claim, now: number, ev: { heardAt: number | null; fresh: boolean; since: number }, out: MemberOut[]): void {
    if (c.id === this.me) {
      this.onClaimAboutMe(c, now, out);
      return;
    }
    const { heardAt, fresh, since } = ev;
    const e = this.members.get(c.id);
    if (!e) {
      // A bare suspicion of a stranger carries nothing worth keeping.
      if (c.status === 'suspect' && c.nick === undefined) return;
      if (!this.makeRoom()) {
        this.counters.rejected++;
        return;
      }
      this.touch(c.id);
      const entry: Entry = {
        id: c.id, incarnation: c.incarnation, status: c.status, nick: c.nick ?? '', active: c.active ?? [], meta: c.meta ?? {},
        updatedAt: since, heardAt: heardAt ?? since, expired: false, accused: false, graced: false,
      };
      this.members.set(c.id, entry);
      if (entry.status === 'suspect') this.armSuspect(entry, out);
      return;
    }
    const cmp = c.incarnation - e.incarnation || RANK[c.status] - RANK[e.status];
    if (cmp > 0) {
      this.touch(c.id);
      const wasPlaced = isPlaced(e);
      e.incarnation = c.incarnation;
      e.status = c.status;
      if (c.nick !== undefined) {
        e.nick = c.nick;
        e.active = c.active ?? [];
        e.meta = c.meta ?? {};
      }
      e.updatedAt = since;
      if (heardAt !== null) e.heardAt = heardAt;
      e.expired = false;
      e.accused = false;
      e.graced = e.status === 'left' && wasPlaced && this.config.leaveGraceMs > 0;
      if (e.graced) out.push({ type: 'timer', delay: this.config.leaveGraceMs, timer: { type: 'mem.leftGrace', id: e.id, incarnation: e.incarnation } });
      if (e.status === 'suspect') this.armSuspect(e, out);
    } else if (cmp === 0) {
      if (heardAt !== null && heardAt > e.heardAt) e.heardAt = heardAt;
      if (e.expired && c.status === 'dead') e.expired = false;
    } else if (e.expired && fresh && heardAt !== null && c.incarnation === e.incarnation && isLive(c.status)) {
      this.touch(c.id);
      e.status = c.status;
      e.expired = false;
      e.heardAt = heardAt;
      e.updatedAt = now;
      if (e.status === 'suspect') this.armSuspect(e, out);
    } else if (fresh && heardAt !== null && c.status === 'alive' && e.status === 'dead' && !e.expired) {
      // It is alive but was declared dead without hearing so (a partition): a few nodes
      // tell it directly so it refutes. Expected about 3 messages cluster-wide.
      if (this.rng.next() * Math.max(1, this.live().length) < 3) {
        out.push({ type: 'send', to: c.id, msg: { type: 'mem.sync', records: [this.record(e, now)] }, transient: true });
      }
    }
  }

  /** SWIM refutation: anything claiming we are not alive at our incarnation or above. */
  private onClaimAboutMe(c: Claim, now: number, out: MemberOut[]): void {
    if (!this.started) {
      this.selfSeenBeforeStart = Math.max(this.selfSeenBeforeStart, c.incarnation);
      return;
    }
    if (this.leaving) return;
    const self = this.self();
    if (c.incarnation > self.incarnation || (c.incarnation === self.incarnation && c.status !== 'alive')) {
      self.incarnation = Math.max(c.incarnation + 1, Math.floor(now));
      self.updatedAt = now;
      this.counters.refutations++;
      this.broadcastAlive(now, out);
    }
  }

  private sweep(now: number): void {
    for (const e of this.members.values()) {
      if (e.id === this.me) continue;
      if (isLive(e.status)) {
        if (now - e.heardAt >= this.config.expireAfterMs) {
          this.touch(e.id);
          e.status = 'dead';
          e.expired = true;
          e.accused = false;
          e.updatedAt = now;
          this.counters.expired++;
        }
      } else if (now - e.updatedAt >= this.config.tombstoneTtlMs) {
        this.touch(e.id);
        this.members.delete(e.id);
      }
    }
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
    return true;
  }

  // ---- outputs ----

  private broadcastAlive(now: number, out: MemberOut[]): void {
    if (!this.started || this.leaving) return;
    const self = this.self();
    self.heardAt = now;
    this.broadcast({ type: 'alive', id: this.me, incarnation: self.incarnation, nick: self.nick, active: [...self.active], meta: self.meta }, out);
  }

  private broadcast(data: MemberUpdate, out: MemberOut[]): void {
    this.counters.broadcasts++;
    out.push({ type: 'broadcast', data });
  }

  private sendTable(peer: NodeId, now: number, out: MemberOut[]): void {
    let chunk: MemberRecord[] = [];
    let bytes = 0;
    const flush = () => {
      if (chunk.length === 0) return;
      this.counters.syncSent++;
      out.push({ type: 'send', to: peer, msg: { type: 'mem.sync', records: chunk } });
      chunk = [];
      bytes = 0;
    };
    for (const e of this.members.values()) {
      // Local expiry is an opinion, not a fact to spread (see class comment). The peer's
      // own row is sent too: if we think it dead, it learns so and refutes.
      if (e.expired) continue;
      const r = this.record(e, now);
      const size = 100 + r.nick.length * 3 + r.active.reduce((a, p) => a + p.length + 5, 0) + approxSize(r.meta, Infinity);
      if (chunk.length >= MAX_SYNC_RECORDS || (chunk.length > 0 && bytes + size > this.config.syncChunkBytes)) flush();
      chunk.push(r);
      bytes += size;
    }
    flush();
  }

  private record(e: Entry, now: number): MemberRecord {
    const since = isLive(e.status) ? (e.id === this.me ? now : e.heardAt) : e.updatedAt;
    return {
      id: e.id, incarnation: e.incarnation, status: e.status, nick: e.nick, active: [...e.active], meta: e.meta,
      age: Math.max(0, Math.floor(now - since)),
    };
  }

  private scheduleAlive(out: MemberOut[]): void {
    const { aliveIntervalMs: p, aliveJitter: j } = this.config;
    out.push({ type: 'timer', delay: p * (1 - j + 2 * j * this.rng.next()), timer: { type: 'mem.alive' } });
  }

  private scheduleAnnounce(out: MemberOut[]): void {
    if (this.announceArmed || !this.started || this.leaving) return;
    this.announceArmed = true;
    out.push({ type: 'timer', delay: this.config.announceDelayMs, timer: { type: 'mem.announce' } });
  }

  private armSuspect(e: Entry, out: MemberOut[]): void {
    out.push({ type: 'timer', delay: this.config.suspectTimeoutMs, timer: { type: 'mem.suspect', id: e.id, incarnation: e.incarnation } });
  }

  // ---- change tracking ----

  private self(): Entry {
    return this.members.get(this.me)!;
  }

  /** Remember an entry's liveness before its first change in this handle() call. */
  private touch(id: NodeId): void {
    this.liveCache = null;
    this.placementCache = null;
    if (this.touched.has(id)) return;
    const e = this.members.get(id);
    this.touched.set(id, { live: !!e && isLive(e.status), placed: !!e && isPlaced(e) });
  }

  private flushChanges(out: MemberOut[]): void {
    if (this.touched.size === 0) return;
    const joined: NodeId[] = [];
    const left: NodeId[] = [];
    let placementChanged = false;
    for (const [id, before] of this.touched) {
      const e = this.members.get(id);
      const live = !!e && isLive(e.status);
      if (live && !before.live) joined.push(id);
      if (!live && before.live) left.push(id);
      if ((!!e && isPlaced(e)) !== before.placed) placementChanged = true;
    }
    this.touched.clear();
    if (joined.length > 0 || left.length > 0) out.push({ type: 'changed', joined: joined.sort(), left: left.sort() });
    if (placementChanged) out.push({ type: 'placementChanged', members: this.placement() });
  }

  private select(pred: (e: Entry) => boolean): NodeId[] {
    const ids: NodeId[] = [];
    for (const e of this.members.values()) if (pred(e)) ids.push(e.id);
    return ids.sort();
  }
}

function publicInfo(e: Entry): MemberInfo {
  return { id: e.id, incarnation: e.incarnation, status: e.status, nick: e.nick, active: [...e.active], meta: e.meta, updatedAt: e.updatedAt };
}
