/**
 * The state one KvStore's parts share (the local replica, placement, open operations,
 * handoff bookkeeping, counters, the persist buffer and the outbox) with the helpers
 * they all use: sending, opening an operation, stamping and merging versions, and
 * applying or dropping entries. Effects go through `io`, the store's `Effects`.
 */
import { HlcClock, hlcTooFarAhead } from '../clock/hlc';
import { Counters, OpIds, PersistBuffer } from '../data-protocol';
import { Placement } from '../placement';
import type { Effects } from '../protocol';
import type { NodeId, Rng } from '../types';
import { HandoffQueue } from './handoff';
import type { KvMessage } from './messages';
import type { Op } from './ops';
import { tupleBytes } from './ops';
import { Outbox } from './outbox';
import { compareVersions, type Entry, type KvConfig, type KvCounterName, type KvEvent, type KvRequestKind, type KvTimer } from './types';

export type KvEffects = Effects<KvMessage, KvTimer, KvEvent, Entry>;

/** Per answer, the high-water mark of answer times keeps this share (half-life ~35 answers). */
const ANSWER_DECAY = 0.98;

export class KvState {
  readonly clock = new HlcClock();
  /** The local replica: owned keys, stand-in copies and keys being handed off. */
  readonly data = new Map<string, Entry>();
  readonly placement: Placement;
  readonly ops = new Map<number, Op>();
  readonly handoff = new HandoffQueue();
  readonly counters = new Counters<KvCounterName>();
  readonly requests = new Counters<KvRequestKind>();
  readonly sent = new Counters<KvMessage['type']>();
  readonly received = new Counters<KvMessage['type']>();
  /** Writes and removals of the current handle() call: one persist effect at its end. */
  readonly persist: PersistBuffer<Entry>;
  /** Replica writes, acks and request timers held for the next flush (see `deferFlush`). */
  readonly outbox: Outbox;
  private readonly opIds: OpIds;
  private readonly interned = new Map<NodeId, NodeId>();
  private handoffArmed = false;
  /**
   * The write and read quorums in force: the configured ones, or majorities of the
   * cluster's replica count once the membership view carries one (ClusterView.replicas).
   */
  quorums: { w: number; r: number };
  /**
   * Live members outside the placement (suspects: a tab slow under load is suspected, and
   * its keys' new owners may not have them yet). A read that found no copy asks them too.
   */
  suspects: readonly NodeId[] = [];
  /**
   * When each member last sent this node a KV message: a replica that is answering other
   * requests is alive and working through its queue, so a read does not give up on it
   * (a bulk read's answers come in order, and re-asking a busy replica only adds work).
   * Only members of the latest view are kept.
   */
  readonly heardAt = new Map<NodeId, number>();
  /**
   * Since when each member has had a read request of this node unanswered while sending
   * it nothing at all (cleared by any KV message from it): a replica silent past lateAfter()
   * with requests waiting is unresponsive (crashed, or cut off), and new reads do not wait
   * for it (Requests.read). Only members of the latest view are kept.
   */
  readonly silentSince = new Map<NodeId, number>();
  /** Decaying high-water mark of replica answer times (ms): what "a replica is late" means now. */
  private answerHigh = 0;

  constructor(
    readonly me: NodeId,
    readonly config: Readonly<KvConfig>,
    readonly rng: Rng,
    readonly io: KvEffects,
  ) {
    this.placement = new Placement(me, config.vnodes, config.n);
    this.quorums = { w: config.w, r: config.r };
    this.persist = new PersistBuffer<Entry>(io, (key) => this.data.get(key));
    this.outbox = new Outbox(config, io, (to, msg) => this.send(to, msg), (to) => this.asked(to));
    this.opIds = new OpIds(rng);
  }

  get now(): number {
    return this.io.now;
  }

  send(to: NodeId, msg: KvMessage): void {
    this.io.send(to, msg);
    this.sent.add(msg.type);
  }

  /** A replica answered a request `ms` after it was sent (reads and writes). */
  noteAnswer(ms: number): void {
    if (!(ms >= 0)) return;
    this.answerHigh = Math.max(ms, this.answerHigh * ANSWER_DECAY);
  }

  /**
   * How long a read waits for a silent replica before it stops counting on it (it answers
   * from the copies it has): twice the slowest recent answer, between `speculateMinMs`
   * and `hintAfterMs`.
   */
  lateAfter(): number {
    const c = this.config;
    return Math.round(Math.min(c.hintAfterMs, Math.max(c.speculateMinMs, 2 * this.answerHigh)));
  }

  /** A read request went to `node`. */
  asked(node: NodeId): void {
    if (!this.silentSince.has(node)) this.silentSince.set(this.intern(node), this.now);
  }

  /** `node` has left a read request of this node unanswered, and said nothing else, for longer than lateAfter(). */
  unresponsive(node: NodeId): boolean {
    const t = this.silentSince.get(node);
    return t !== undefined && this.now - t > this.lateAfter();
  }

  /** `node` sent this node a KV message at or after `t` (ms). */
  heardSince(node: NodeId, t: number): boolean {
    const at = this.heardAt.get(node);
    return at !== undefined && at >= t;
  }

  /** Opens an operation under a fresh op id, with its `requestTimeoutMs` timer. */
  newOp(op: Op): number {
    const id = this.opIds.next();
    this.ops.set(id, op);
    this.outbox.arm('kv.opTimeout', this.config.requestTimeoutMs, id);
    return id;
  }

  prefOf(key: string): readonly NodeId[] {
    return this.placement.preferenceList(key);
  }

  owns(key: string): boolean {
    return this.placement.owns(key);
  }

  /**
   * One string instance per node id in stored versions: every decoded frame brings its own
   * copy of the writer's id, and thousands of keys would each keep one.
   */
  intern(id: NodeId): NodeId {
    let c = this.interned.get(id);
    if (c === undefined) {
      if (this.interned.size >= 4096) this.interned.clear();
      this.interned.set(id, id);
      c = id;
    }
    return c;
  }

  /**
   * Encoded size of an entry, for transfer batches. Computed when needed rather than kept
   * per key: only transfers ask, and a per-key cache cost more memory than the encoding
   * it saved.
   */
  valueSize(e: Entry): number {
    let s: number;
    try {
      s = e.deleted ? 1 : this.config.sizeOf(e.value);
    } catch {
      // stored values came through the API check or from peers; count the odd one and move on
      this.counters.add('sizeOfErrors');
      s = this.config.maxValueBytes;
    }
    return s + tupleBytes(e.key);
  }

  /**
   * A fresh write timestamp, strictly above every earlier one from this node: HlcClock
   * packs wall ms * 1024 + a 10-bit counter, a safe integer (exact in a double) until the
   * year 2248, and tick() always returns more than any timestamp it returned or merged.
   * Merged timestamps are bounded too (`observe` skips those far ahead), so two writes of
   * this node never share a version.
   */
  stamp(): number {
    return this.clock.tick(this.now);
  }

  /** Merge a timestamp seen from a peer, so later local writes order after it (HLC). */
  observe(ts: number): void {
    if (hlcTooFarAhead(ts, this.now)) this.counters.add('clockAheadIgnored');
    else if (ts > this.clock.peek()) this.clock.receive(ts, this.now);
  }

  /**
   * Whether a version from a peer (or a loaded store) may be stored: at most MAX_AHEAD_MS
   * ahead of this node's clock. A far-future version would win every later write and
   * delete of its key and never be collected; it is refused and counted instead.
   */
  acceptable(ts: number): boolean {
    if (!hlcTooFarAhead(ts, this.now)) return true;
    this.counters.add('futureRefused');
    return false;
  }

  /**
   * Whether a value from a peer fits this node's own `maxValueBytes`. The wire admits
   * values up to 256 KiB (`MAX_WIRE_VALUE_BYTES`) so that nodes configured with a larger
   * limit can talk; what a node stores is bounded by its own limit. A refusal is counted.
   */
  fits(e: { value: unknown; deleted: boolean }): boolean {
    if (e.deleted) return true;
    let bytes: number;
    try {
      bytes = this.config.sizeOf(e.value);
    } catch {
      this.counters.add('sizeOfErrors');
      bytes = Infinity;
    }
    if (bytes <= this.config.maxValueBytes) return true;
    this.counters.add('tooLargeRefused');
    return false;
  }

  /**
   * Whether `key` may be stored: it is stored already, or the node holds fewer than
   * `maxKeys` keys (`extra`: new keys of the same batch not applied yet). A refusal is counted.
   */
  hasRoom(key: string, extra = 0): boolean {
    if (this.data.has(key) || this.data.size + extra < this.config.maxKeys) return true;
    this.counters.add('keyCapRefused');
    return false;
  }

  /**
   * Merge entries into the local replica; newest version wins. A key stored without
   * being owned (stand-in, view lag) is queued for handoff to its owners.
   */
  applyEntries(entries: readonly Entry[], fromPeer: boolean): void {
    for (const e of entries) {
      if (fromPeer && (!this.acceptable(e.version.ts) || !this.fits(e))) continue;
      if (fromPeer) this.observe(e.version.ts);
      const cur = this.data.get(e.key);
      if (cur && compareVersions(cur.version, e.version) >= 0) continue;
      if (!cur && !this.hasRoom(e.key)) continue;
      const entry: Entry = {
        key: e.key,
        value: e.deleted ? null : e.value,
        version: { ts: e.version.ts, node: this.intern(e.version.node) },
        deleted: e.deleted,
      };
      if (e.seal) entry.seal = e.seal;
      this.data.set(e.key, entry);
      this.persist.mark(e.key);
      this.io.event({ type: 'changed', key: e.key, entry });
      if (!this.owns(e.key)) this.queueToOwners(e.key);
    }
  }

  removeLocal(key: string): void {
    if (!this.data.delete(key)) return;
    this.handoff.forgetKey(key);
    this.persist.mark(key);
  }

  /** Offer `key` to every owner (or those of `targets`) that has not confirmed holding its current version. */
  queueToOwners(key: string, targets: readonly NodeId[] = this.prefOf(key)): void {
    const e = this.data.get(key);
    if (!e) return;
    for (const t of targets) {
      if (t !== this.me && !this.handoff.confirmedBy(key, [t], e.version)) this.handoff.add(t, key);
    }
    this.armHandoff();
  }

  /** The handoff pump's timer, while there is something to offer. */
  armHandoff(): void {
    if (this.handoffArmed || !this.handoff.hasPending()) return;
    this.handoffArmed = true;
    this.io.setTimer(this.config.handoffIntervalMs, { type: 'kv.handoff' });
  }

  /** The handoff timer fired (it is armed again by the next armHandoff). */
  handoffFired(): void {
    this.handoffArmed = false;
  }
}
