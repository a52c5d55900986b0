/**
 * Dynamo-style replicated key-value store: one node's state machine (docs/architecture.md),
 * a `Protocol` (core/protocol.ts) whose parts share one `KvState` and its `Effects`:
 *
 * - `requests.ts`: any node coordinates client requests: writes are stamped with its HLC
 *   and succeed at W acknowledgements, reads ask the whole preference list and answer at
 *   R, newest wins (last writer wins by version order), stale answers are read-repaired;
 *   sloppy quorum with hinted handoff after `hintAfterMs`.
 * - `replica.ts`: what a node answers to peers' writes, reads and listings.
 * - `rereplication.ts`: placement changes and the one mechanism for handoff and
 *   re-replication (offer, want, push; drop only after every owner confirmed).
 * - `anti-entropy.ts`: periodic bucket digests with a random replica peer, push/pull of
 *   the differences, tombstone collection.
 * - `state.ts`, `outbox.ts`, `ops.ts`: shared state, the `deferFlush` outbox, operations.
 * Placement is consistent hashing of the placement set (core/placement).
 *
 * Pure: time, randomness and messages come in through handle(); effects go out.
 */
import { Protocol } from '../protocol';
import type { NodeId, Rng } from '../types';
import { AntiEntropy } from './anti-entropy';
import { MAX_WIRE_BUCKETS, MAX_WIRE_ITEMS, validateKvMessage, type KvMessage } from './messages';
import type { Head, ReplyMessage } from './ops';
import { Replica } from './replica';
import { Requests } from './requests';
import { Rereplication } from './rereplication';
import { KvState } from './state';
import { KvWatch } from './watch';
import {
  DEFAULT_KV_CONFIG,
  KV_COUNTERS,
  KV_REQUEST_KINDS,
  type Entry,
  type KvConfig,
  type KvCounters,
  type KvEvent,
  type KvIn,
  type KvStats,
  type KvTimer,
} from './types';

/** Suspects a read that found no copy asks at most (see KvState.suspects). */
const MAX_SUSPECTS_ASKED = 8;

function validateConfig(c: KvConfig): void {
  for (const name of ['n', 'w', 'r', 'vnodes', 'aeBuckets', 'handoffBatch', 'maxKeyLength'] as const) {
    if (!Number.isInteger(c[name]) || c[name] < 1) throw new RangeError(`KvConfig.${name} must be a positive integer`);
  }
  if (c.w > c.n || c.r > c.n) throw new RangeError('KvConfig: w and r must not exceed n');
  if (c.aeBuckets > MAX_WIRE_BUCKETS) throw new RangeError(`KvConfig.aeBuckets must be at most ${MAX_WIRE_BUCKETS}`);
  if (c.handoffBatch > MAX_WIRE_ITEMS) throw new RangeError(`KvConfig.handoffBatch must be at most ${MAX_WIRE_ITEMS}`);
  for (const k of ['requestTimeoutMs', 'antiEntropyIntervalMs', 'handoffIntervalMs'] as const) {
    if (!(c[k] > 0)) throw new RangeError(`KvConfig.${k} must be positive`);
  }
  if (typeof c.sizeOf !== 'function') throw new RangeError('KvConfig.sizeOf must be a function');
}

export class KvStore extends Protocol<KvIn, KvMessage, KvTimer, KvEvent, Entry> {
  readonly config: Readonly<KvConfig>;
  private readonly s: KvState;
  private readonly requests: Requests;
  private readonly replica: Replica;
  private readonly rereplication: Rereplication;
  private readonly antiEntropy: AntiEntropy;
  private readonly watch: KvWatch;

  constructor(
    readonly me: NodeId,
    config: Partial<KvConfig>,
    rng: Rng,
  ) {
    super();
    this.config = Object.freeze({ ...DEFAULT_KV_CONFIG, ...config });
    validateConfig(this.config);
    this.s = new KvState(me, this.config, rng, this.io);
    this.watch = new KvWatch(this.s);
    this.requests = new Requests(this.s, (entry) => this.watch.acknowledged(entry));
    this.replica = new Replica(this.s);
    this.rereplication = new Rereplication(this.s, () => this.antiEntropy.arm());
    this.antiEntropy = new AntiEntropy(this.s, this.rereplication);
  }

  protected onInput(input: KvIn): void {
    this.s.persist.begin();
    switch (input.type) {
      case 'members': {
        this.rereplication.onMembers(input.view);
        const placed = new Set(input.view?.placement ?? []);
        const live = Array.isArray(input.view?.live) ? input.view.live : [];
        this.s.suspects = live
          .map((m) => m?.id)
          .filter((id): id is string => typeof id === 'string' && id !== this.s.me && !placed.has(id))
          .slice(0, MAX_SUSPECTS_ASKED);
        const members = new Set(live.map((m) => m?.id));
        for (const m of [this.s.heardAt, this.s.silentSince]) for (const id of m.keys()) if (!members.has(id)) m.delete(id);
        const away = new Set(input.view.away);
        this.watch.onMembers(input.view.placement.filter((m) => !away.has(m)), input.view.placement);
        this.antiEntropy.wake();
        break;
      }
      case 'load':
        this.rereplication.onLoad(input.records);
        break;
      case 'message':
        this.onMessage(input.from, input.msg);
        break;
      case 'timer':
        this.onTimer(input.timer);
        break;
      case 'put':
        this.antiEntropy.wake();
        this.requests.write(input.req, 'put', input.key, input.value);
        break;
      case 'delete':
        this.antiEntropy.wake();
        this.requests.write(input.req, 'delete', input.key, null);
        break;
      case 'get':
        this.requests.read(input.req, input.key, false);
        break;
      case 'inspect':
        this.requests.read(input.req, input.key, true);
        break;
      case 'keys':
        this.requests.list(input.req, input.prefix);
        break;
      case 'flush':
        break;
      case 'sealed':
        this.requests.sealed(input.op, input.seal);
        break;
      case 'watch':
        this.s.requests.add('watch');
        this.watch.request(input.req, input.prefixes);
        break;
    }
    this.s.persist.flush();
    if (!this.config.deferFlush || input.type === 'flush') {
      this.s.outbox.flush();
      this.watch.flushNotes();
    }
  }

  /** Something is held back for the next `flush` input. */
  needsFlush(): boolean {
    return this.s.outbox.holds() || this.watch.holdsNotes();
  }

  // ---- queries -------------------------------------------------------------------------

  /** The replica count and quorums in force (the cluster's, once the membership carries one). */
  replication(): { n: number; w: number; r: number } {
    return { n: this.s.placement.replicas, w: this.s.quorums.w, r: this.s.quorums.r };
  }

  /** Current preference list of `key` (first N distinct members clockwise). */
  replicas(key: string): NodeId[] {
    return [...this.s.prefOf(key)];
  }

  /** Keys with a live (non-deleted) value on this node, sorted. */
  localKeys(): string[] {
    const keys: string[] = [];
    for (const e of this.s.data.values()) if (!e.deleted) keys.push(e.key);
    return keys.sort();
  }

  /** How many keys have a live (non-deleted) value on this node: localKeys().length without the sort. */
  localCount(): number {
    let n = 0;
    for (const e of this.s.data.values()) if (!e.deleted) n++;
    return n;
  }

  /** Every local entry, tombstones included: what the node's storage must hold. */
  entries(): IterableIterator<Entry> {
    return this.s.data.values();
  }

  /** The local replica's entry, tombstones included. */
  localEntry(key: string): Entry | undefined {
    return this.s.data.get(key);
  }

  /** This node's watched prefixes, sorted. */
  watchedPrefixes(): string[] {
    return this.watch.watchedPrefixes();
  }

  /** Nodes watching through this one (this node included when it watches), sorted. */
  watchers(): NodeId[] {
    return this.watch.watchers();
  }

  /** The placement set, sorted. */
  members(): NodeId[] {
    return [...this.s.placement.members()];
  }

  /** Event counts: stats() without its pass over the local keys. */
  counters(): KvCounters {
    const s = this.s;
    return {
      ...s.counters.snapshot(KV_COUNTERS),
      requests: s.requests.snapshot(KV_REQUEST_KINDS),
      sent: s.sent.partial(),
      received: s.received.partial(),
    };
  }

  stats(): KvStats {
    const s = this.s;
    let tombstones = 0;
    let notOwned = 0;
    for (const e of s.data.values()) {
      if (e.deleted) tombstones++;
      if (!s.owns(e.key)) notOwned++;
    }
    return {
      ...this.counters(),
      entries: s.data.size,
      tombstones,
      notOwned,
      members: s.placement.size,
      pendingOps: s.ops.size,
      handoffPending: s.handoff.pendingCount(),
      handoffInflight: s.handoff.inflightCount(),
      watchPending: this.watch.pendingNotes(),
      watchers: this.watch.watchers().length,
      watchUnregistered: this.watch.unregisteredCount(),
    };
  }

  // ---- messages ------------------------------------------------------------------------

  private onMessage(from: NodeId, msg: KvMessage): void {
    const s = this.s;
    if (validateKvMessage(msg) !== null || typeof from !== 'string') {
      s.counters.add('invalidMessages');
      return;
    }
    s.received.add(msg.type);
    s.heardAt.set(s.intern(from), s.now);
    s.silentSince.delete(from);
    switch (msg.type) {
      // a replica write: the replicas may diverge again, so anti-entropy goes back to its base period
      case 'kv.put':
        this.antiEntropy.wake();
        return this.replica.onPut(from, msg.op, msg.entry, msg.hint ?? null);
      case 'kv.puts':
        this.antiEntropy.wake();
        return this.replica.onPuts(from, msg.items);
      case 'kv.putAcks':
        for (const op of msg.ops) this.onReply(from, { type: 'kv.putAck', op });
        return;
      case 'kv.get':
        return this.replica.onGet(from, msg.op, msg.key);
      case 'kv.gets':
        for (const [op, key] of msg.items) this.replica.onGet(from, op, key);
        return;
      case 'kv.getReplies':
        for (const [op, entry] of msg.items) this.onReply(from, { type: 'kv.getReply', op, entry: entry ?? null });
        return;
      case 'kv.heads':
        for (const [op, key] of msg.items) this.replica.onHead(from, op, key);
        return;
      case 'kv.headReplies':
        for (const [op, h] of msg.items) this.onHeadReply(from, op, h ? { head: true, version: { ts: h[0], node: h[1] }, deleted: h[2] === 1 } : null);
        return;
      case 'kv.list':
        return this.replica.onList(from, msg.op, msg.prefix, msg.after ?? null);
      case 'kv.offer':
        return this.rereplication.answerOffer(from, msg.op, msg.items);
      case 'kv.push':
        return this.rereplication.answerPush(from, msg.op, msg.entries);
      case 'kv.digest':
        return this.antiEntropy.answerDigest(from, msg.op, msg.counts, msg.sums);
      case 'kv.pull':
        return this.antiEntropy.answerPull(from, msg.op, msg.keys);
      case 'kv.gcCheck':
        return this.antiEntropy.answerGcCheck(from, msg.op, msg.items);
      case 'kv.gcDrop':
        return this.antiEntropy.onGcDrop(from, msg.items);
      case 'kv.watch':
      case 'kv.watchAck':
      case 'kv.watchLost':
      case 'kv.note':
      case 'kv.noteAck':
      case 'kv.watchSync':
      case 'kv.watchSyncReply':
        return void this.watch.onMessage(from, msg);
      default:
        return this.onReply(from, msg);
    }
  }

  /** A replica's answer to a head read of one of this node's reads. */
  private onHeadReply(from: NodeId, id: number, head: Head | null): void {
    const op = this.s.ops.get(id);
    if (!op) return this.s.counters.add('lateReplies');
    if (!(op.kind === 'read' && this.requests.onHeadReply(from, id, op, head))) this.s.counters.add('unexpectedReplies');
  }

  /** An answer to one of this node's operations: to the part that opened it. */
  private onReply(from: NodeId, msg: ReplyMessage): void {
    const s = this.s;
    if (msg.op === 0) return; // ack of a read repair: nobody waits for it
    const op = s.ops.get(msg.op);
    if (!op) {
      s.counters.add('lateReplies');
      return;
    }
    let expected = false;
    switch (msg.type) {
      case 'kv.putAck':
        expected = op.kind === 'write' && this.requests.onPutAck(from, msg.op, op);
        break;
      case 'kv.getReply':
        expected = op.kind === 'read' && this.requests.onGetReply(from, msg.op, op, msg.entry ?? null);
        break;
      case 'kv.listReply':
        expected = op.kind === 'list' && this.requests.onListReply(from, msg.op, op, msg.items, msg.more);
        break;
      case 'kv.want':
        if ((expected = op.kind === 'offer' && op.target === from)) this.rereplication.onWant(msg.op, op, msg.want, msg.transient);
        break;
      case 'kv.pushAck':
        if ((expected = op.kind === 'push' && op.target === from)) this.rereplication.onPushAck(msg.op, op, msg.transient);
        break;
      case 'kv.diff':
        if ((expected = op.kind === 'digest' && op.target === from)) this.antiEntropy.onDiff(msg.op, op, msg.buckets, msg.items);
        break;
      case 'kv.pullReply':
        if ((expected = op.kind === 'pull' && op.target === from)) this.antiEntropy.onPullReply(msg.op, msg.entries);
        break;
      case 'kv.gcHave':
        expected = op.kind === 'gc' && this.antiEntropy.onGcHave(from, msg.op, op, msg.keys);
        break;
    }
    if (!expected) s.counters.add('unexpectedReplies');
  }

  // ---- timers --------------------------------------------------------------------------

  private onTimer(timer: KvTimer): void {
    switch (timer.type) {
      case 'kv.opTimeout':
        for (const op of timer.ops) this.onOpTimeout(op);
        return;
      case 'kv.hint':
        for (const op of timer.ops) this.requests.onHint(op);
        return;
      case 'kv.handoff':
        this.s.handoffFired();
        this.rereplication.pump();
        this.s.armHandoff();
        return;
      case 'kv.ae':
        this.antiEntropy.onTimer();
        return;
      case 'kv.watchRetry':
        this.watch.onRetry();
        return;
    }
  }

  private onOpTimeout(id: number): void {
    const op = this.s.ops.get(id);
    if (!op) return;
    // a sealed write's deadline moved when its seal came (Requests.sealed): a later timer covers it
    if (op.kind === 'write' && !op.sealing && this.s.now < op.deadline) return;
    this.s.ops.delete(id);
    switch (op.kind) {
      case 'write':
      case 'read':
      case 'list':
        return this.requests.timeout(op);
      case 'offer':
      case 'push':
        return this.rereplication.timeout(op);
      case 'digest':
        return this.antiEntropy.digestTimedOut(id);
      case 'pull':
        return;
      case 'gc':
        // decide with the answers we have: a silent replica blocks its keys' collection
        return this.antiEntropy.finishGc(id, op);
    }
  }
}
