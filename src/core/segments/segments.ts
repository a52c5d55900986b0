/**
 * Data segments: per-key queues with put / update / peek / take (the Alice Data Segment API),
 * replicated on the key's preference list (N = 3), with a single owner per key that
 * serialises its operations. Pure: time, randomness and the placement come in; sends,
 * timers, replies, persistence and change events go out as effects. See README.md for the
 * protocol and what it guarantees.
 *
 * One node plays three roles for every key, in parts that share one `SegState` and the
 * protocol's `Effects`:
 * - coordinator (coordinator.ts): the node where the API call was made; it sends the
 *   request to the owner in its view, re-sends it (same `op`) until answered, re-targets
 *   it when the owner changes, and keeps a waiting peek/take registered.
 * - owner: the first live node of the key's preference list. It wins a ballot
 *   (takeover.ts: every live member promises; the most advanced state is adopted), then
 *   executes requests in order (owner.ts), replicates them to the other replicas and
 *   answers a request once `w` copies, itself included, have the operation (replication.ts).
 * - replica (replica.ts): applies the owner's snapshot and operations in log order, fenced
 *   by ballot.
 * roles.ts re-evaluates the roles when the placement changes; copy.ts holds a copy's data.
 */
import { Protocol } from '../protocol';
import type { NodeId, Rng } from '../types';
import { Coordinator } from './coordinator';
import { repOf } from './copy';
import { ballotsTooFarAhead, isSegPage, storageKey, validateSegMessage, validateSegRecord, type SegHead, type SegMessage, type SegPage, type SegRecord } from './messages';
import { OwnerRequests } from './owner';
import { Replica } from './replica';
import { Replication } from './replication';
import { Roles } from './roles';
import { SegParts, SegState } from './state';
import { Takeover } from './takeover';
import { DEFAULT_SEGMENTS_CONFIG, SEG_COUNTERS, type QueueView, type SegEvent, type SegIn, type SegmentsConfig, type SegStats, type SegTimer } from './types';

export { compareBallots } from './copy';

export class Segments extends Protocol<SegIn, SegMessage, SegTimer, SegEvent, SegRecord> {
  readonly config: Readonly<SegmentsConfig>;
  private readonly s: SegState;
  private readonly coordinator: Coordinator;
  private readonly owner: OwnerRequests;
  private readonly replication: Replication;
  private readonly takeover: Takeover;
  private readonly replica: Replica;
  private readonly roles: Roles;
  private tickArmed = false;

  constructor(
    readonly me: NodeId,
    config: Partial<SegmentsConfig>,
    rng: Rng,
  ) {
    super();
    this.config = Object.freeze({ ...DEFAULT_SEGMENTS_CONFIG, ...config });
    if (this.config.w < 1 || this.config.n < 1) throw new Error('segments: n and w must be at least 1');
    const s = (this.s = new SegState(me, this.config, rng, this.io));
    const parts = new SegParts();
    this.coordinator = parts.coordinator = new Coordinator(s);
    this.owner = parts.owner = new OwnerRequests(s, parts);
    this.replication = parts.replication = new Replication(s, parts);
    this.takeover = parts.takeover = new Takeover(s, parts);
    this.replica = parts.replica = new Replica(s, parts);
    this.roles = parts.roles = new Roles(s, parts);
  }

  // ---------------------------------------------------------------------------------------
  // entry point

  protected onInput(input: SegIn): void {
    const s = this.s;
    s.persist.begin();
    switch (input.type) {
      case 'members':
        this.roles.onMembers(input.view);
        break;
      case 'message':
        this.onMessage(input.from, input.msg, input.from !== s.me);
        break;
      case 'timer':
        if (input.timer.type === 'seg.tick') this.onTick();
        else if (input.timer.type === 'seg.deadline') this.coordinator.onDeadline(input.timer.req);
        break;
      case 'put':
      case 'update':
        this.coordinator.write(input.type, input.req, input.key, input.value);
        break;
      case 'peek':
      case 'take':
        this.coordinator.wait(input.type, input.req, input.key, input.afterId, input.timeoutMs);
        break;
      case 'cancel':
        this.coordinator.cancel(input.req);
        break;
      case 'load':
        this.onLoad(input.records);
        break;
    }
    this.settle();
    s.persist.flush(this.config.persist);
    for (const key of s.changed) this.io.event({ type: 'changed', key });
    s.changed.clear();
  }

  /** Deliver messages to myself and replicate what was sequenced, until nothing is left. */
  private settle(): void {
    const s = this.s;
    for (;;) {
      for (let i = 0; i < s.local.length; i++) this.onMessage(s.me, s.local[i]!, false);
      s.local = [];
      if (s.dirtyOwns.size === 0) break;
      const owns = [...s.dirtyOwns];
      s.dirtyOwns.clear();
      for (const own of owns) this.replication.flush(own);
      if (s.local.length === 0) break;
    }
    this.ensureTick();
  }

  private onLoad(records: unknown[]): void {
    const s = this.s;
    if (!Array.isArray(records)) return;
    // a copy is its head and its pages, in any order
    const heads = new Map<string, SegHead>();
    const pages = new Map<string, SegPage[]>();
    for (const r of records) {
      if (validateSegRecord(r)) {
        s.counters.add('invalidRecords');
        continue;
      }
      const rec = r as SegRecord;
      if (!isSegPage(rec)) heads.set(rec.key, rec);
      else {
        const list = pages.get(rec.key) ?? [];
        list.push(rec);
        pages.set(rec.key, list);
      }
    }
    for (const [key, list] of pages) {
      if (heads.has(key) && !s.reps.has(key)) continue;
      // pages without a head (its write failed, or it was dropped), or of a copy already
      // live here (load after start: the live copy is at least as recent as the disk):
      // rewritten from memory, which removes them when the copy has nothing there
      for (const p of list) s.persist.mark(storageKey(p));
    }
    for (const [key, head] of heads) {
      const live = s.reps.get(key);
      if (live) {
        s.counters.add('loadSkipped');
        s.markAllPages(live);
        s.markDirty(key, false);
        continue;
      }
      const rep = repOf(head, pages.get(key));
      s.reps.set(key, rep);
      // a head from before pages holds its items and table: write them as pages
      if (head.items.length > 0 || head.done.length > 0) {
        s.markAllPages(rep);
        s.markDirty(key, false);
      }
      s.changed.add(key);
      s.counters.add('loaded');
    }
    // normally `load` comes before the first `members`, which evaluates every key; if it came
    // later, evaluate the loaded keys now
    if (s.placement.size > 1) for (const key of heads.keys()) this.roles.reconsider(key);
  }

  // ---------------------------------------------------------------------------------------
  // queries

  /** What this node holds (owner or replica copies), for the UI. */
  queues(): QueueView[] {
    const out: QueueView[] = [];
    for (const rep of this.s.reps.values()) {
      if (rep.acc[0] === 0 && rep.items.length === 0) continue;
      out.push({
        key: rep.key,
        items: rep.items.map((i) => ({ id: i.id, value: i.value })),
        waiting: this.s.owns.get(rep.key)?.waiters.size ?? 0,
        owner: this.ownerOf(rep.key),
        epoch: rep.acc[0],
      });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** The key's preference list in my view (the owner first). */
  replicas(key: string): NodeId[] {
    return [...this.s.placement.preferenceList(key)];
  }

  /** The owner of `key` in my view. */
  ownerOf(key: string): NodeId {
    return this.s.ownerOf(key);
  }

  /** The placement set, sorted. */
  members(): NodeId[] {
    return [...this.s.placement.members()];
  }

  /** Keys this node currently serves as an active owner. */
  ownedKeys(): string[] {
    return [...this.s.owns.values()].filter((o) => o.phase === 'active').map((o) => o.key).sort();
  }

  stats(): SegStats {
    const s = this.s;
    let waiters = 0;
    for (const o of s.owns.values()) waiters += o.waiters.size;
    return {
      ...s.counters.snapshot(SEG_COUNTERS),
      sent: s.sent.partial(),
      received: s.received.partial(),
      keys: s.reps.size,
      owned: this.ownedKeys().length,
      calls: s.calls.size,
      waiters,
    };
  }

  // ---------------------------------------------------------------------------------------
  // messages

  /** `check`: a message from a peer (validated and counted); my own messages are not. */
  private onMessage(from: NodeId, msg: SegMessage, check: boolean): void {
    if (check) {
      if (validateSegMessage(msg)) {
        this.s.counters.add('invalidMessages');
        return;
      }
      if (ballotsTooFarAhead(msg, this.s.now)) {
        this.s.counters.add('ballotsAheadRefused');
        return;
      }
      this.s.received.add(msg.type);
    }
    switch (msg.type) {
      case 'seg.req':
        return this.owner.onReq(from, msg);
      case 'seg.reply':
        return this.coordinator.onReply(msg);
      case 'seg.wait':
        return this.coordinator.onWait(from, msg.op);
      case 'seg.redirect':
        return this.coordinator.onRedirect(from, msg.op);
      case 'seg.cancel':
        return this.owner.onCancel(from, msg);
      case 'seg.claim':
        return this.takeover.onClaim(from, msg);
      case 'seg.promise':
        return this.takeover.onPromise(from, msg);
      case 'seg.fetch':
        return this.takeover.onFetch(from, msg);
      case 'seg.state':
        return this.takeover.onState(from, msg);
      case 'seg.install':
        return this.replica.onInstall(from, msg);
      case 'seg.ops':
        return this.replica.onOps(from, msg);
      case 'seg.ack':
        return this.replication.onAck(from, msg);
      case 'seg.nudge':
        return this.replica.onNudge(from, msg);
      case 'seg.release':
        return this.replica.onRelease(msg);
    }
  }

  // ---------------------------------------------------------------------------------------
  // timers

  /** One `seg.tick` timer, armed only while some part has periodic work. */
  private ensureTick(): void {
    if (this.tickArmed || !this.hasWork()) return;
    this.tickArmed = true;
    this.io.setTimer(this.config.retransmitMs, { type: 'seg.tick' });
  }

  private hasWork(): boolean {
    const s = this.s;
    if (this.coordinator.hasWork()) return true;
    for (const own of s.owns.values()) {
      if (own.phase !== 'active' || own.waiters.size > 0 || own.holders.size > 0) return true;
      if (this.replication.behind(own)) return true;
    }
    return s.orphans.size > 0;
  }

  private onTick(): void {
    this.tickArmed = false;
    this.coordinator.tick();
    for (const own of [...this.s.owns.values()]) {
      if (own.phase === 'active') this.replication.tick(own);
      else this.takeover.tick(own);
    }
    this.roles.tick();
  }
}
