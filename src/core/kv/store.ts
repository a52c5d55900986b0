/**
 * Dynamo-style replicated key-value store: one node's state machine (DESIGN.md §3 KVS).
 *
 * - Placement: consistent hashing of the live members (ring.ts); preference list = the
 *   first N distinct members clockwise of hash(key).
 * - Any node coordinates: writes are stamped with the coordinator's HLC and succeed at W
 *   acknowledgements, reads ask the whole preference list and answer at R, newest wins
 *   (last writer wins by version order), stale answers are read-repaired.
 * - Sloppy quorum with hinted handoff: a preference node silent for `hintAfter` gets a
 *   stand-in (the next node on the ring), which stores the write as a key it does not own
 *   and hands it back.
 * - Re-replication and handoff share one mechanism: a node offers each key to owners
 *   that may lack it (HandoffQueue) and drops a key it does not own only after every owner
 *   confirmed holding it *while owning it in its own view*.
 * - Anti-entropy: periodic bucket digests with a random replica peer, then push/pull of the
 *   differences; the same round collects tombstones every replica holds.
 *
 * Pure: time, randomness and messages come in through handle(); effects go out.
 */
import { HlcClock, hlcWall } from '../clock/hlc';
import { pick } from '../rng';
import type { NodeId, Rng } from '../types';
import { bucketOf, differingBuckets, digestOf } from './digest';
import { HandoffQueue } from './handoff';
import {
  MAX_WIRE_BUCKETS,
  MAX_WIRE_ITEMS,
  validateEntry,
  validateKvMessage,
  type KvMessage,
  type ListItem,
  type PutItem,
  type VersionTuple,
} from './messages';
import { Ring } from './ring';
import { approxEncodedSize } from './size';
import {
  compareVersions,
  DEFAULT_KV_CONFIG,
  type Entry,
  type KvConfig,
  type KvIn,
  type KvOptions,
  type KvOut,
  type KvTimer,
  type Version,
} from './types';

/** Budget for the key/version lists of one message: wire/ caps frames at 256 KiB. */
const LIST_BYTES = 160 * 1024;
const tupleBytes = (key: string): number => key.length * 3 + 48;
/** Remote timestamps further ahead than this are stored but not merged into our clock. */
const MAX_CLOCK_AHEAD_MS = 24 * 3600_000;

interface WriteOp {
  kind: 'write';
  req: number;
  verb: 'put' | 'delete';
  entry: Entry;
  pref: readonly NodeId[];
  quorum: number;
  deadline: number;
  asked: Set<NodeId>;
  acked: Set<NodeId>;
  /** Preference node -> the stand-in that got its write (hinted handoff). */
  standIns: Map<NodeId, NodeId>;
  replied: boolean;
}
interface ReadOp {
  kind: 'read';
  req: number;
  key: string;
  pref: readonly NodeId[];
  quorum: number;
  answers: Map<NodeId, Entry | null>;
  /** Stop waiting for a replica that has the key: R answers of any kind will do. */
  patienceOver: boolean;
  replied: boolean;
}
interface ListOp {
  kind: 'list';
  req: number;
  prefix: string;
  asked: Set<NodeId>;
  answered: Set<NodeId>;
  items: Map<string, ListItem>;
  segments: NodeId[][];
}
interface OfferOp {
  kind: 'offer';
  target: NodeId;
  versions: Map<string, Version>;
}
interface PushOp {
  kind: 'push';
  target: NodeId;
  versions: Map<string, Version>;
  /** Part of a handoff batch (frees the target's handoff slot when done). */
  handoff: boolean;
}
interface DigestOp {
  kind: 'digest';
  target: NodeId;
}
interface PullOp {
  kind: 'pull';
  target: NodeId;
}
interface GcOp {
  kind: 'gc';
  items: Map<string, { version: Version; others: NodeId[] }>;
  waiting: Set<NodeId>;
  have: Map<NodeId, Set<string>>;
}
type ReplyMessage = Extract<
  KvMessage,
  { type: 'kv_put_ack' | 'kv_get_reply' | 'kv_list_reply' | 'kv_want' | 'kv_push_ack' | 'kv_diff' | 'kv_pull_reply' | 'kv_gc_have' }
>;
type Op = WriteOp | ReadOp | ListOp | OfferOp | PushOp | DigestOp | PullOp | GcOp;

/** The smallest double above x (x >= 0 and finite). */
function nextAbove(x: number): number {
  let d = 1;
  while (x + d <= x) d *= 2;
  return x + d;
}

const sameVersion = (a: Version, b: Version): boolean => a.ts === b.ts && a.node === b.node;
const tupleOf = (e: Entry): VersionTuple => [e.key, e.version.ts, e.version.node];
const showKey = (key: string): string => `'${key.length > 60 ? `${key.slice(0, 60)}…` : key}'`;

function validateConfig(c: KvConfig): void {
  const positiveInt = (name: 'n' | 'w' | 'r' | 'vnodes' | 'aeBuckets' | 'handoffBatch' | 'maxKeyLength') => {
    if (!Number.isInteger(c[name]) || c[name] < 1) throw new RangeError(`KvConfig.${name} must be a positive integer`);
  };
  (['n', 'w', 'r', 'vnodes', 'aeBuckets', 'handoffBatch', 'maxKeyLength'] as const).forEach(positiveInt);
  if (c.w > c.n || c.r > c.n) throw new RangeError('KvConfig: w and r must not exceed n');
  if (c.aeBuckets > MAX_WIRE_BUCKETS) throw new RangeError(`KvConfig.aeBuckets must be at most ${MAX_WIRE_BUCKETS}`);
  if (c.handoffBatch > MAX_WIRE_ITEMS) throw new RangeError(`KvConfig.handoffBatch must be at most ${MAX_WIRE_ITEMS}`);
  for (const k of ['requestTimeout', 'antiEntropyInterval', 'handoffInterval'] as const) {
    if (!(c[k] > 0)) throw new RangeError(`KvConfig.${k} must be positive`);
  }
}

export class KvStore {
  readonly config: Readonly<KvConfig>;
  private readonly sizeOf: (value: unknown) => number;
  private readonly clock = new HlcClock();
  /** The local replica: owned keys, stand-in copies and keys being handed off. */
  private readonly data = new Map<string, Entry>();
  private readonly interned = new Map<NodeId, NodeId>();
  private live: Set<NodeId>;
  /** Members of `live` gone for now (KvIn members.away): keep their ranges, not waited for. */
  private away = new Set<NodeId>();
  private ring: Ring;
  private peersCache: NodeId[] | null = null;
  private readonly ops = new Map<number, Op>();
  private nextOp: number;
  private readonly handoff = new HandoffQueue();
  private handoffArmed = false;
  private aeArmed = false;
  private lastStamp = 0;
  private aeOp: number | null = null;
  private gcOp: number | null = null;
  private readonly counters = new Map<string, number>();
  /** Replica writes, acks and request timers held for the next flush (see `deferFlush`). */
  private readonly outPuts = new Map<NodeId, { items: PutItem[]; bytes: number[] }>();
  private readonly outAcks = new Map<NodeId, number[]>();
  private readonly outTimers = new Map<string, { delay: number; timer: KvTimer & { ops: number[] } }>();
  /** Writes and removals of the current handle() call, spliced into `out` at `at`. */
  private persistBuf: { put: Map<string, Entry>; remove: Set<string>; at: number } | null = null;

  constructor(
    readonly me: NodeId,
    options: KvOptions,
    private readonly rng: Rng,
  ) {
    const { sizeOf, ...config } = options;
    this.config = { ...DEFAULT_KV_CONFIG, ...config };
    validateConfig(this.config);
    this.sizeOf = sizeOf ?? approxEncodedSize;
    this.live = new Set([me]);
    this.ring = new Ring(this.live, this.config.vnodes, this.config.n);
    // a random base keeps a restarted node's op ids apart from its previous life's
    this.nextOp = 1 + Math.floor(rng.next() * 2 ** 40);
  }

  handle(input: KvIn, now: number, out: KvOut[]): void {
    this.persistBuf = null;
    switch (input.type) {
      case 'members':
        this.away = new Set(Array.isArray(input.away) ? input.away.filter((m) => typeof m === 'string' && m !== this.me) : []);
        this.onMembers(input.live, now, out);
        break;
      case 'load':
        this.onLoad(input.entries, now, out);
        break;
      case 'message':
        this.onMessage(input.from, input.msg, now, out);
        break;
      case 'timer':
        this.onTimer(input.timer, now, out);
        break;
      case 'put':
        this.startWrite(input.req, 'put', input.key, input.value, now, out);
        break;
      case 'delete':
        this.startWrite(input.req, 'delete', input.key, null, now, out);
        break;
      case 'get':
        this.startRead(input.req, input.key, now, out);
        break;
      case 'keys':
        this.startList(input.req, input.prefix, now, out);
        break;
      case 'flush':
        break;
    }
    this.flushPersist(out);
    if (!this.config.deferFlush || input.type === 'flush') this.flushOutbox(out);
  }

  /** Something is held back for the next `flush` input. */
  needsFlush(): boolean {
    return this.outPuts.size > 0 || this.outAcks.size > 0 || this.outTimers.size > 0;
  }

  // ---- queries -------------------------------------------------------------------------

  /** Current preference list of `key` (first N distinct live members clockwise). */
  replicas(key: string): NodeId[] {
    return [...this.prefOf(key)];
  }

  /** Keys with a live (non-deleted) value on this node, sorted. */
  localKeys(): string[] {
    const keys: string[] = [];
    for (const e of this.data.values()) if (!e.deleted) keys.push(e.key);
    return keys.sort();
  }

  /** How many keys have a live (non-deleted) value on this node: localKeys().length without the sort. */
  localCount(): number {
    let n = 0;
    for (const e of this.data.values()) if (!e.deleted) n++;
    return n;
  }

  /** Every local entry, tombstones included: what the node's storage must hold. */
  entries(): IterableIterator<Entry> {
    return this.data.values();
  }

  /** The local replica's entry, tombstones included. */
  localEntry(key: string): Entry | undefined {
    return this.data.get(key);
  }

  members(): NodeId[] {
    return [...this.ring.members];
  }

  /** One counter of stats(), without its O(keys) part. */
  counter(name: string): number {
    return this.counters.get(name) ?? 0;
  }

  stats(): Record<string, number> {
    let tombstones = 0;
    let notOwned = 0;
    for (const e of this.data.values()) {
      if (e.deleted) tombstones++;
      if (!this.owns(e.key)) notOwned++;
    }
    const s: Record<string, number> = {
      entries: this.data.size,
      tombstones,
      notOwned,
      members: this.live.size,
      pendingOps: this.ops.size,
      handoffPending: this.handoff.pendingCount(),
      handoffInflight: this.handoff.inflightCount(),
    };
    for (const [k, v] of this.counters) s[k] = v;
    return s;
  }

  // ---- helpers ---------------------------------------------------------------------------

  private count(name: string, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }

  private send(out: KvOut[], to: NodeId, msg: KvMessage): void {
    out.push({ type: 'send', to, msg });
    this.count(`sent.${msg.type}`);
  }

  /** A replica write, sent at the next flush together with the others for `to`. */
  private sendPut(to: NodeId, op: number, e: Entry, hint: NodeId | null, bytes: number): void {
    let b = this.outPuts.get(to);
    if (!b) this.outPuts.set(to, (b = { items: [], bytes: [] }));
    b.items.push([op, e.key, e.deleted ? null : e.value, e.version.ts, e.version.node, e.deleted ? 1 : 0, hint]);
    b.bytes.push(bytes);
  }

  private sendAck(to: NodeId, op: number): void {
    if (op === 0) return; // a read repair: nobody waits for its ack
    const a = this.outAcks.get(to);
    if (a) a.push(op);
    else this.outAcks.set(to, [op]);
  }

  /** Request timers are shared by the operations started in one flush. */
  private armOp(type: 'kv_op_timeout' | 'kv_hint', delay: number, op: number): void {
    const k = `${type}:${delay}`;
    const t = this.outTimers.get(k);
    if (t) t.timer.ops.push(op);
    else this.outTimers.set(k, { delay, timer: { type, ops: [op] } });
  }

  /** Sends the held writes (one `kv_puts` per node and size limit) and acks, arms the held timers. */
  private flushOutbox(out: KvOut[]): void {
    for (const [to, b] of this.outPuts) {
      let start = 0;
      let size = 0;
      for (let i = 0; i <= b.items.length; i++) {
        const full = i === b.items.length || (i > start && (size + b.bytes[i]! > this.config.handoffBytes || i - start >= this.config.handoffBatch));
        if (!full) {
          size += b.bytes[i]!;
          continue;
        }
        if (i - start === 1) {
          const [op, key, value, ts, node, deleted, hint] = b.items[start]!;
          this.send(out, to, { type: 'kv_put', op, entry: { key, value, version: { ts, node }, deleted: deleted === 1 }, ...(hint ? { hint } : {}) });
        } else if (i > start) this.send(out, to, { type: 'kv_puts', items: b.items.slice(start, i) });
        start = i;
        size = i < b.items.length ? b.bytes[i]! : 0;
      }
    }
    this.outPuts.clear();
    for (const [to, ops] of this.outAcks) {
      if (ops.length === 1) this.send(out, to, { type: 'kv_put_ack', op: ops[0]! });
      else this.send(out, to, { type: 'kv_put_acks', ops });
    }
    this.outAcks.clear();
    for (const t of this.outTimers.values()) out.push({ type: 'timer', delay: t.delay, timer: t.timer });
    this.outTimers.clear();
  }

  private newOp(op: Op): number {
    const id = this.nextOp++;
    this.ops.set(id, op);
    this.armOp('kv_op_timeout', this.config.requestTimeout, id);
    return id;
  }

  private prefOf(key: string): readonly NodeId[] {
    return this.ring.preferenceList(key);
  }

  private owns(key: string): boolean {
    return this.prefOf(key).includes(this.me);
  }

  /**
   * One string instance per node id in stored versions: every decoded frame brings its own
   * copy of the writer's id, and thousands of keys would each keep one.
   */
  private intern(id: NodeId): NodeId {
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
  private valueSize(e: Entry): number {
    let s: number;
    try {
      s = e.deleted ? 1 : this.sizeOf(e.value);
    } catch {
      // stored values came through the API check or from peers; count the odd one and move on
      this.count('sizeOfErrors');
      s = this.config.maxValueBytes;
    }
    return s + tupleBytes(e.key);
  }

  /**
   * A fresh write timestamp, strictly above every earlier one from this node. HlcClock packs
   * wall ms * 65536 + counter, which exceeds 2^53 for present-day wall clocks, so ticks in
   * one millisecond can round to the same float; stepping to the next representable value
   * keeps this node's versions distinct (two writes must never share a version).
   */
  private stamp(now: number): number {
    let ts = this.clock.tick(now);
    if (ts <= this.lastStamp) ts = nextAbove(this.lastStamp);
    this.lastStamp = ts;
    return ts;
  }

  /** Merge a timestamp seen from a peer, so later local writes order after it (HLC). */
  private observe(ts: number, now: number): void {
    if (hlcWall(ts) > now + MAX_CLOCK_AHEAD_MS) this.count('clockAheadIgnored');
    else if (ts > this.clock.peek()) this.clock.receive(ts, now);
  }

  private markPersist(out: KvOut[]): { put: Map<string, Entry>; remove: Set<string>; at: number } {
    if (!this.persistBuf) this.persistBuf = { put: new Map(), remove: new Set(), at: out.length };
    return this.persistBuf;
  }

  /** One persist effect per handle() call, placed before any send that depends on it. */
  private flushPersist(out: KvOut[]): void {
    const b = this.persistBuf;
    this.persistBuf = null;
    if (!b || (b.put.size === 0 && b.remove.size === 0)) return;
    out.splice(b.at, 0, { type: 'persist', put: [...b.put.values()], remove: [...b.remove] });
  }

  /**
   * Merge entries into the local replica; newest version wins. A key stored without
   * being owned (stand-in, view lag) is queued for handoff to its owners.
   */
  private applyEntries(entries: readonly Entry[], now: number, out: KvOut[], fromPeer: boolean): void {
    for (const e of entries) {
      if (fromPeer) this.observe(e.version.ts, now);
      const cur = this.data.get(e.key);
      if (cur && compareVersions(cur.version, e.version) >= 0) continue;
      const entry: Entry = {
        key: e.key,
        value: e.deleted ? null : e.value,
        version: { ts: e.version.ts, node: this.intern(e.version.node) },
        deleted: e.deleted,
      };
      this.data.set(e.key, entry);
      const buf = this.markPersist(out);
      buf.remove.delete(e.key);
      buf.put.set(e.key, entry);
      out.push({ type: 'changed', key: e.key, entry });
      if (!this.owns(e.key)) this.queueToOwners(e.key, now, out);
    }
  }

  private removeLocal(key: string, out: KvOut[]): void {
    if (!this.data.delete(key)) return;
    this.handoff.forgetKey(key);
    const buf = this.markPersist(out);
    buf.put.delete(key);
    buf.remove.add(key);
  }

  private queueToOwners(key: string, now: number, out: KvOut[]): void {
    const e = this.data.get(key);
    if (!e) return;
    for (const t of this.prefOf(key)) {
      if (t !== this.me && !this.handoff.confirmedBy(key, [t], e.version)) this.handoff.add(t, key);
    }
    this.armHandoff(out);
  }

  private reply(out: KvOut[], req: number, result: { value?: unknown; version?: Version; keys?: string[] } | string): void {
    if (typeof result === 'string') {
      out.push({ type: 'reply', req, ok: false, error: result });
      this.count('requestsFailed');
    } else {
      out.push({ type: 'reply', req, ok: true, ...result });
      this.count('requestsOk');
    }
  }

  private checkKey(verb: string, key: unknown): string | null {
    const max = this.config.maxKeyLength;
    if (typeof key === 'string' && key.length > 0 && key.length <= max) return null;
    const got = typeof key !== 'string' ? `a ${key === null ? 'null' : typeof key}` : key.length === 0 ? 'an empty string' : `a string of ${key.length} characters`;
    return `${verb}: key must be a non-empty string of at most ${max} characters (got ${got})`;
  }

  // ---- membership, load, re-replication -------------------------------------------------

  private onMembers(live: readonly NodeId[], now: number, out: KvOut[]): void {
    const next = new Set<NodeId>(Array.isArray(live) ? live.filter((m) => typeof m === 'string' && m.length > 0) : []);
    next.add(this.me);
    if (next.size === this.live.size && [...next].every((m) => this.live.has(m))) return;
    const oldRing = this.ring;
    this.live = next;
    this.ring = new Ring(next, this.config.vnodes, this.config.n);
    this.peersCache = null;
    this.handoff.retain(next);
    this.handoff.clearConfirmations();
    this.count('membershipChanges');
    // Every key whose replica set changed is offered to all its owners (cheap: versions
    // only), so keys whose other owners died get back to N copies, and keys this node no
    // longer owns move to their new owners before they are dropped.
    for (const key of this.data.keys()) {
      const before = oldRing.preferenceList(key);
      const after = this.prefOf(key);
      const unchanged = before.length === after.length && before.every((m) => after.includes(m));
      if (unchanged && after.includes(this.me)) continue;
      this.queueToOwners(key, now, out);
    }
    this.armAntiEntropy(out);
  }

  private onLoad(entries: readonly Entry[], now: number, out: KvOut[]): void {
    if (!Array.isArray(entries)) return;
    for (const e of entries) {
      if (validateEntry(e) !== null) {
        this.count('loadInvalid');
        continue;
      }
      const cur = this.data.get(e.key);
      if (cur && compareVersions(cur.version, e.version) >= 0) continue;
      this.data.set(e.key, { key: e.key, value: e.deleted ? null : e.value, version: { ...e.version }, deleted: e.deleted });
      this.observe(e.version.ts, now);
      this.count('loaded');
      if (this.live.size > 1) this.queueToOwners(e.key, now, out);
    }
    this.armAntiEntropy(out);
  }

  private armHandoff(out: KvOut[]): void {
    if (this.handoffArmed || !this.handoff.hasPending()) return;
    this.handoffArmed = true;
    out.push({ type: 'timer', delay: this.config.handoffInterval, timer: { type: 'kv_handoff' } });
  }

  /** One offer batch per ready target per tick: a large move is spread over many ticks. */
  private pumpHandoff(now: number, out: KvOut[]): void {
    for (const [target, keys] of this.handoff.ready(now)) {
      if (!this.live.has(target)) {
        keys.clear();
        continue;
      }
      const versions = new Map<string, Version>();
      const items: VersionTuple[] = [];
      let bytes = 0;
      for (const key of keys) {
        if (items.length >= this.config.handoffBatch || bytes >= LIST_BYTES) break;
        const e = this.data.get(key);
        if (!e || !this.prefOf(key).includes(target)) {
          keys.delete(key);
          continue;
        }
        items.push(tupleOf(e));
        versions.set(key, e.version);
        bytes += tupleBytes(key);
      }
      if (items.length === 0) continue;
      const op = this.newOp({ kind: 'offer', target, versions });
      this.handoff.begin(target);
      this.send(out, target, { type: 'kv_offer', op, items });
      this.count('handoffOffered', items.length);
    }
    this.handoff.pruneEmpty();
  }

  /** `owner` holds at least `version` of `key` and owns it in its view. */
  private confirmedHolder(owner: NodeId, key: string, version: Version, out: KvOut[]): void {
    const cur = this.data.get(key);
    if (!cur) {
      this.handoff.done(owner, key);
      return;
    }
    if (compareVersions(cur.version, version) <= 0) this.handoff.done(owner, key);
    if (this.owns(key)) return;
    this.handoff.confirm(key, owner, version);
    this.maybeDrop(key, out);
  }

  /** Drop a key this node does not own once every owner confirmed holding its version. */
  private maybeDrop(key: string, out: KvOut[]): void {
    const cur = this.data.get(key);
    if (!cur || this.owns(key)) return;
    const owners = this.prefOf(key);
    if (!this.handoff.confirmedBy(key, owners, cur.version)) return;
    for (const o of owners) this.handoff.done(o, key);
    this.removeLocal(key, out);
    this.count('handoffDropped');
  }

  // ---- client requests ------------------------------------------------------------------

  private startWrite(req: number, verb: 'put' | 'delete', key: string, value: unknown, now: number, out: KvOut[]): void {
    this.count(`requests.${verb}`);
    const keyError = this.checkKey(verb, key);
    if (keyError) return this.reply(out, req, keyError);
    let size: number | undefined;
    if (verb === 'put') {
      if (value === undefined) return this.reply(out, req, `put ${showKey(key)}: value is undefined (use delete to remove a key)`);
      try {
        size = this.sizeOf(value);
      } catch (e) {
        return this.reply(out, req, `put ${showKey(key)}: value cannot be stored: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (!(size <= this.config.maxValueBytes)) {
        return this.reply(out, req, `put ${showKey(key)}: value is ${size} bytes; the limit is ${this.config.maxValueBytes} bytes`);
      }
    }
    // the new version must beat the local copy even if our wall clock is behind its writer's
    const cur = this.data.get(key);
    if (cur) this.observe(cur.version.ts, now);
    const entry: Entry = { key, value: verb === 'put' ? value : null, version: { ts: this.stamp(now), node: this.me }, deleted: verb === 'delete' };
    const bytes = (verb === 'put' ? size! : 1) + tupleBytes(key);
    const pref = this.prefOf(key);
    const w: WriteOp = {
      kind: 'write',
      req,
      verb,
      entry,
      pref,
      // fewer live nodes than W: the quorum is every replica there is (documented in README)
      quorum: this.quorumOf(this.config.w, pref),
      deadline: now + this.config.requestTimeout,
      asked: new Set(pref),
      acked: new Set(),
      standIns: new Map(),
      replied: false,
    };
    const op = this.newOp(w);
    for (const p of pref) {
      if (p === this.me) {
        this.applyEntries([entry], now, out, false);
        w.acked.add(p);
      } else this.sendPut(p, op, entry, null, bytes);
    }
    if (this.config.hintAfter < this.config.requestTimeout && pref.length > 1) this.armOp('kv_hint', this.config.hintAfter, op);
    this.checkWrite(op, w, out);
  }

  private checkWrite(op: number, w: WriteOp, out: KvOut[]): void {
    if (!w.replied && w.acked.size >= w.quorum) {
      w.replied = true;
      this.reply(out, w.req, {});
    }
    // kept open after the reply until every replica (or its stand-in) has the write
    const covered = w.pref.every((p) => w.acked.has(p) || w.acked.has(w.standIns.get(p) ?? ''));
    if (covered) this.ops.delete(op);
  }

  /**
   * `hintAfter` into an operation. Write: preference nodes (or their stand-ins) still silent
   * get the next node on the ring (hinted handoff). Read: stop waiting for a replica that has the key.
   */
  private onHint(op: number, now: number, out: KvOut[]): void {
    const w = this.ops.get(op);
    if (w?.kind === 'read') {
      w.patienceOver = true;
      return this.checkRead(op, w, now, out);
    }
    if (!w || w.kind !== 'write') return;
    const silent = w.pref.filter((p) => !w.acked.has(p) && !w.acked.has(w.standIns.get(p) ?? ''));
    const fallbacks = this.ring.walk(w.entry.key).filter((f) => !w.asked.has(f));
    for (const p of silent) {
      const f = fallbacks.shift();
      if (f === undefined) break;
      w.asked.add(f);
      w.standIns.set(p, f);
      this.count('hintedWrites');
      if (f === this.me) {
        this.applyEntries([w.entry], now, out, false);
        w.acked.add(f);
      } else this.sendPut(f, op, w.entry, p, this.valueSize(w.entry));
    }
    if (now + this.config.hintAfter < w.deadline) this.armOp('kv_hint', this.config.hintAfter, op);
    this.checkWrite(op, w, out);
  }

  private startRead(req: number, key: string, now: number, out: KvOut[]): void {
    this.count('requests.get');
    const keyError = this.checkKey('get', key);
    if (keyError) return this.reply(out, req, keyError);
    const pref = this.prefOf(key);
    const quorum = this.quorumOf(this.config.r, pref);
    const r: ReadOp = { kind: 'read', req, key, pref, quorum, answers: new Map(), patienceOver: false, replied: false };
    const op = this.newOp(r);
    for (const p of pref) {
      if (p === this.me) r.answers.set(p, this.data.get(key) ?? null);
      else this.send(out, p, { type: 'kv_get', op, key });
    }
    if (pref.length > quorum) {
      this.armOp('kv_hint', Math.min(this.config.hintAfter, this.config.requestTimeout), op);
    }
    this.checkRead(op, r, now, out);
  }

  /** W or R, or every replica that is there when fewer are (away members do not count), at least 1. */
  private quorumOf(q: number, replicas: readonly NodeId[]): number {
    let there = 0;
    for (const m of replicas) if (!this.away.has(m)) there++;
    return Math.max(1, Math.min(q, there));
  }

  private newestOf(answers: Iterable<Entry | null>): Entry | null {
    let best: Entry | null = null;
    for (const e of answers) if (e && (!best || compareVersions(best.version, e.version) < 0)) best = e;
    return best;
  }

  /**
   * "Not found" answers do not count toward R at first (Riak's notfound_ok = false): right
   * after a membership change new owners may not have received a key yet, so the read waits
   * for R replicas that have it, for every replica, or, after `hintAfter`, for any R answers.
   */
  private checkRead(op: number, r: ReadOp, now: number, out: KvOut[]): void {
    let found = 0;
    for (const e of r.answers.values()) if (e) found++;
    let there = 0;
    for (const p of r.pref) if (!this.away.has(p) || r.answers.has(p)) there++;
    const enough = found >= r.quorum || r.answers.size >= there || (r.patienceOver && r.answers.size >= r.quorum);
    if (!r.replied && enough) this.replyNewest(r, out);
    if (r.answers.size >= r.pref.length) {
      this.readRepair(r, now, out);
      this.ops.delete(op);
    }
  }

  private replyNewest(r: ReadOp, out: KvOut[]): void {
    r.replied = true;
    const newest = this.newestOf(r.answers.values());
    this.reply(out, r.req, newest ? { value: newest.deleted ? undefined : newest.value, version: newest.version } : {});
  }

  /** Send the newest version to every answering replica that had an older one or none. */
  private readRepair(r: ReadOp, now: number, out: KvOut[]): void {
    const newest = this.newestOf(r.answers.values());
    if (!newest) return;
    for (const [node, e] of r.answers) {
      if (e && compareVersions(e.version, newest.version) >= 0) continue;
      this.count('readRepairs');
      if (node === this.me) this.applyEntries([newest], now, out, false);
      // op 0 is never allocated: the ack is dropped as a late reply
      else this.sendPut(node, 0, newest, null, this.valueSize(newest));
    }
  }

  private startList(req: number, prefix: string, now: number, out: KvOut[]): void {
    this.count('requests.keys');
    if (typeof prefix !== 'string' || prefix.length > this.config.maxKeyLength) {
      return this.reply(out, req, `keys: prefix must be a string of at most ${this.config.maxKeyLength} characters`);
    }
    const l: ListOp = {
      kind: 'list',
      req,
      prefix,
      asked: new Set(this.live),
      answered: new Set([this.me]),
      items: new Map(),
      segments: this.ring.segments(),
    };
    for (const e of this.data.values()) if (e.key.startsWith(prefix)) l.items.set(e.key, [e.key, e.version.ts, e.version.node, e.deleted ? 1 : 0]);
    const op = this.newOp(l);
    for (const m of this.live) if (m !== this.me) this.send(out, m, { type: 'kv_list', op, prefix, after: null });
    this.checkList(op, l, out);
  }

  /** Done when every replica group of the ring has R (or all its) members answered. */
  private checkList(op: number, l: ListOp, out: KvOut[]): void {
    if (l.items.size > this.config.maxListKeys) {
      this.ops.delete(op);
      return this.reply(out, l.req, `keys ${showKey(l.prefix)}: more than ${this.config.maxListKeys} keys match; use a longer prefix`);
    }
    const covered = l.segments.every((seg) => {
      let n = 0;
      for (const m of seg) if (l.answered.has(m)) n++;
      return n >= this.quorumOf(this.config.r, seg);
    });
    if (!covered) return;
    this.ops.delete(op);
    const keys: string[] = [];
    for (const it of l.items.values()) if (it[3] === 0) keys.push(it[0]);
    this.reply(out, l.req, { keys: keys.sort() });
  }

  // ---- messages -------------------------------------------------------------------------

  private onMessage(from: NodeId, msg: KvMessage, now: number, out: KvOut[]): void {
    const bad = validateKvMessage(msg);
    if (bad !== null || typeof from !== 'string') {
      this.count('invalidMessages');
      return;
    }
    this.count(`recv.${msg.type}`);
    switch (msg.type) {
      case 'kv_put':
        if (msg.hint) this.count('hintsStored');
        this.applyEntries([msg.entry], now, out, true);
        this.sendAck(from, msg.op);
        return;
      case 'kv_puts': {
        const entries: Entry[] = [];
        for (const [op, key, value, ts, node, deleted, hint] of msg.items) {
          if (hint) this.count('hintsStored');
          entries.push({ key, value: deleted === 1 ? null : value, version: { ts, node }, deleted: deleted === 1 });
          this.sendAck(from, op);
        }
        this.applyEntries(entries, now, out, true);
        return;
      }
      case 'kv_put_acks':
        for (const op of msg.ops) this.onReply(from, { type: 'kv_put_ack', op }, now, out);
        return;
      case 'kv_get':
        this.send(out, from, { type: 'kv_get_reply', op: msg.op, entry: this.data.get(msg.key) ?? null });
        return;
      case 'kv_list':
        return this.answerList(from, msg.op, msg.prefix, msg.after ?? null, out);
      case 'kv_offer':
        return this.answerOffer(from, msg.op, msg.items, now, out);
      case 'kv_push': {
        this.applyEntries(msg.entries, now, out, true);
        const transient = msg.entries.filter((e) => !this.owns(e.key)).map((e) => e.key);
        this.send(out, from, { type: 'kv_push_ack', op: msg.op, transient });
        return;
      }
      case 'kv_digest':
        return this.answerDigest(from, msg.op, msg.counts, msg.sums, out);
      case 'kv_pull':
        return this.answerPull(from, msg.op, msg.keys, out);
      case 'kv_gc_check': {
        const keys = msg.items
          .filter(([key, ts, node]) => {
            const cur = this.data.get(key);
            return cur !== undefined && cur.deleted && sameVersion(cur.version, { ts, node });
          })
          .map((t) => t[0]);
        this.send(out, from, { type: 'kv_gc_have', op: msg.op, keys });
        return;
      }
      case 'kv_gc_drop':
        for (const [key, ts, node] of msg.items) {
          const cur = this.data.get(key);
          if (cur && cur.deleted && sameVersion(cur.version, { ts, node })) {
            this.removeLocal(key, out);
            this.count('tombstonesCollected');
          }
        }
        return;
      default:
        return this.onReply(from, msg, now, out);
    }
  }

  private onReply(from: NodeId, msg: ReplyMessage, now: number, out: KvOut[]): void {
    if (msg.op === 0) return; // ack of a read repair: nobody waits for it
    const op = this.ops.get(msg.op);
    if (!op) {
      this.count('lateReplies');
      return;
    }
    switch (msg.type) {
      case 'kv_put_ack':
        if (op.kind !== 'write' || !op.asked.has(from)) break;
        op.acked.add(from);
        this.checkWrite(msg.op, op, out);
        return;
      case 'kv_get_reply':
        if (op.kind !== 'read' || !op.pref.includes(from) || op.answers.has(from)) break;
        if (msg.entry && msg.entry.key !== op.key) break;
        if (msg.entry) this.observe(msg.entry.version.ts, now);
        op.answers.set(from, msg.entry ?? null);
        this.checkRead(msg.op, op, now, out);
        return;
      case 'kv_list_reply':
        if (op.kind !== 'list' || !op.asked.has(from) || op.answered.has(from)) break;
        return this.onListReply(msg.op, op, from, msg.items, msg.more, out);
      case 'kv_want':
        if (op.kind !== 'offer' || op.target !== from) break;
        return this.onWant(msg.op, op, msg.want, msg.transient, now, out);
      case 'kv_push_ack':
        if (op.kind !== 'push' || op.target !== from) break;
        return this.onPushAck(msg.op, op, msg.transient, now, out);
      case 'kv_diff':
        if (op.kind !== 'digest' || op.target !== from) break;
        return this.onDiff(msg.op, op, msg.buckets, msg.items, out);
      case 'kv_pull_reply':
        if (op.kind !== 'pull' || op.target !== from) break;
        this.ops.delete(msg.op);
        this.count('aePulled', msg.entries.length);
        this.applyEntries(msg.entries, now, out, true);
        return;
      case 'kv_gc_have':
        if (op.kind !== 'gc' || !op.waiting.has(from)) break;
        op.waiting.delete(from);
        op.have.set(from, new Set(msg.keys));
        if (op.waiting.size === 0) this.finishGc(msg.op, op, out);
        return;
    }
    this.count('unexpectedReplies');
  }

  private answerList(from: NodeId, op: number, prefix: string, after: string | null, out: KvOut[]): void {
    const keys: string[] = [];
    for (const k of this.data.keys()) if (k.startsWith(prefix) && (after === null || k > after)) keys.push(k);
    keys.sort();
    const items: ListItem[] = [];
    let bytes = 0;
    for (const k of keys) {
      if (items.length >= MAX_WIRE_ITEMS || bytes >= LIST_BYTES) break;
      const e = this.data.get(k)!;
      items.push([k, e.version.ts, e.version.node, e.deleted ? 1 : 0]);
      bytes += tupleBytes(k);
    }
    this.send(out, from, { type: 'kv_list_reply', op, items, more: items.length < keys.length });
  }

  private onListReply(op: number, l: ListOp, from: NodeId, items: ListItem[], more: boolean, out: KvOut[]): void {
    let last: string | null = null;
    for (const it of items) {
      if (!it[0].startsWith(l.prefix)) continue;
      last = it[0];
      const cur = l.items.get(it[0]);
      if (!cur || compareVersions({ ts: cur[1], node: cur[2] }, { ts: it[1], node: it[2] }) < 0) l.items.set(it[0], it);
    }
    if (more && last !== null) this.send(out, from, { type: 'kv_list', op, prefix: l.prefix, after: last });
    else l.answered.add(from);
    this.checkList(op, l, out);
  }

  private answerOffer(from: NodeId, op: number, items: VersionTuple[], now: number, out: KvOut[]): void {
    const want: string[] = [];
    const transient: string[] = [];
    for (const [key, ts, node] of items) {
      this.observe(ts, now);
      const cur = this.data.get(key);
      if (!cur || compareVersions(cur.version, { ts, node }) < 0) want.push(key);
      else if (!this.owns(key)) transient.push(key);
    }
    this.send(out, from, { type: 'kv_want', op, want, transient });
  }

  private onWant(op: number, o: OfferOp, want: string[], transient: string[], now: number, out: KvOut[]): void {
    this.ops.delete(op);
    const wanted = new Set(want);
    const passing = new Set(transient);
    let progressed = false;
    for (const [key, v] of o.versions) {
      if (passing.has(key)) this.handoff.requeue(o.target, key);
      if (wanted.has(key) || passing.has(key)) continue;
      this.confirmedHolder(o.target, key, v, out);
      progressed = true;
    }
    // push the current local versions of what the target lacks, within the byte budget;
    // the rest stays pending and is offered again in a later batch
    const entries: Entry[] = [];
    const versions = new Map<string, Version>();
    let bytes = 0;
    for (const key of want) {
      const e = this.data.get(key);
      if (!e || !o.versions.has(key) || versions.has(key)) continue;
      const size = this.valueSize(e);
      if (entries.length > 0 && bytes + size > this.config.handoffBytes) break;
      entries.push(e);
      versions.set(key, e.version);
      bytes += size;
    }
    if (entries.length === 0) {
      this.handoff.end(o.target, progressed, now, this.config.handoffRetry);
      return;
    }
    const pushOp = this.newOp({ kind: 'push', target: o.target, versions, handoff: true });
    this.send(out, o.target, { type: 'kv_push', op: pushOp, entries });
    this.count('handoffPushed', entries.length);
  }

  private onPushAck(op: number, p: PushOp, transient: string[], now: number, out: KvOut[]): void {
    this.ops.delete(op);
    const passing = new Set(transient);
    let progressed = false;
    for (const [key, v] of p.versions) {
      if (passing.has(key)) {
        this.handoff.requeue(p.target, key);
        continue;
      }
      this.confirmedHolder(p.target, key, v, out);
      progressed = true;
    }
    if (p.handoff) this.handoff.end(p.target, progressed, now, this.config.handoffRetry);
  }

  // ---- timers ---------------------------------------------------------------------------

  private onTimer(timer: KvTimer, now: number, out: KvOut[]): void {
    switch (timer.type) {
      case 'kv_op_timeout':
        for (const op of timer.ops) this.onOpTimeout(op, now, out);
        return;
      case 'kv_hint':
        for (const op of timer.ops) this.onHint(op, now, out);
        return;
      case 'kv_handoff':
        this.handoffArmed = false;
        this.pumpHandoff(now, out);
        this.armHandoff(out);
        return;
      case 'kv_ae':
        this.aeArmed = false;
        this.armAntiEntropy(out);
        this.antiEntropyRound(now, out);
        return;
    }
  }

  private onOpTimeout(id: number, now: number, out: KvOut[]): void {
    const op = this.ops.get(id);
    if (!op) return;
    this.ops.delete(id);
    const t = this.config.requestTimeout;
    const liveNote = `(live nodes: ${this.live.size})`;
    switch (op.kind) {
      case 'write':
        if (!op.replied) {
          this.reply(out, op.req, `${op.verb} ${showKey(op.entry.key)}: only ${op.acked.size} of ${op.quorum} required replicas acknowledged within ${t} ms ${liveNote}`);
        }
        return;
      case 'read':
        if (!op.replied && op.answers.size >= op.quorum) this.replyNewest(op, out);
        else if (!op.replied) {
          this.reply(out, op.req, `get ${showKey(op.key)}: only ${op.answers.size} of ${op.quorum} required replicas answered within ${t} ms ${liveNote}`);
        }
        this.readRepair(op, now, out);
        return;
      case 'list':
        this.reply(
          out,
          op.req,
          `keys ${showKey(op.prefix)}: only ${op.answered.size} of ${op.asked.size} nodes answered within ${t} ms, so some key ranges did not reach their read quorum of ${this.config.r} ${liveNote}`,
        );
        return;
      case 'offer':
        this.count('handoffTimeouts');
        this.handoff.end(op.target, false, now, this.config.handoffRetry);
        return;
      case 'push':
        if (op.handoff) this.handoff.end(op.target, false, now, this.config.handoffRetry);
        return;
      case 'digest':
        if (this.aeOp === id) this.aeOp = null;
        return;
      case 'pull':
        return;
      case 'gc':
        // decide with the answers we have: a silent replica blocks its keys' collection
        this.finishGc(id, op, out);
        return;
    }
  }

  // ---- anti-entropy and tombstone collection ---------------------------------------------

  private armAntiEntropy(out: KvOut[]): void {
    if (this.aeArmed) return;
    this.aeArmed = true;
    const delay = this.config.antiEntropyInterval * (0.75 + 0.5 * this.rng.next());
    out.push({ type: 'timer', delay, timer: { type: 'kv_ae' } });
  }

  /** Other live members that share at least one replica group with this node. */
  private replicaPeers(): NodeId[] {
    if (!this.peersCache) {
      const peers = new Set<NodeId>();
      for (const seg of this.ring.segments()) {
        if (seg.includes(this.me)) for (const m of seg) if (m !== this.me) peers.add(m);
      }
      this.peersCache = [...peers].sort();
    }
    return this.peersCache;
  }

  /** Local entries of keys that both this node and `peer` replicate, in this node's view. */
  private *sharedWith(peer: NodeId): Generator<Entry> {
    for (const e of this.data.values()) {
      const pref = this.prefOf(e.key);
      if (pref.includes(this.me) && pref.includes(peer)) yield e;
    }
  }

  private antiEntropyRound(now: number, out: KvOut[]): void {
    this.count('aeRounds');
    // keys held without owning them: re-offer what lost messages left unconfirmed
    for (const e of this.data.values()) {
      if (this.owns(e.key)) continue;
      this.maybeDrop(e.key, out);
      if (this.data.has(e.key)) this.queueToOwners(e.key, now, out);
    }
    this.collectTombstones(now, out);
    if (this.aeOp !== null) return;
    const peer = pick(this.rng, this.replicaPeers());
    if (peer === undefined) return;
    const { counts, sums } = digestOf(this.sharedWith(peer), this.config.aeBuckets);
    const op = this.newOp({ kind: 'digest', target: peer });
    this.aeOp = op;
    this.send(out, peer, { type: 'kv_digest', op, counts, sums });
  }

  private answerDigest(from: NodeId, op: number, counts: number[], sums: number[], out: KvOut[]): void {
    const buckets = counts.length;
    if (buckets === 0) return this.send(out, from, { type: 'kv_diff', op, buckets: [], items: [] });
    const shared = [...this.sharedWith(from)];
    const differing = new Set(differingBuckets({ counts, sums }, digestOf(shared, buckets)));
    const byBucket = new Map<number, VersionTuple[]>();
    for (const e of shared) {
      const b = bucketOf(e.key, buckets);
      if (!differing.has(b)) continue;
      let list = byBucket.get(b);
      if (!list) byBucket.set(b, (list = []));
      list.push(tupleOf(e));
    }
    // only whole buckets: the initiator reads a key missing from a listed bucket as "absent here"
    const listed: number[] = [];
    const items: VersionTuple[] = [];
    let bytes = 0;
    for (const b of differing) {
      const list = byBucket.get(b) ?? [];
      const size = list.reduce((s, t) => s + tupleBytes(t[0]), 0);
      if (items.length + list.length > MAX_WIRE_ITEMS || bytes + size > LIST_BYTES) {
        this.count('aeBucketsDeferred');
        continue;
      }
      listed.push(b);
      items.push(...list);
      bytes += size;
    }
    this.send(out, from, { type: 'kv_diff', op, buckets: listed, items });
  }

  private onDiff(op: number, d: DigestOp, buckets: number[], items: VersionTuple[], out: KvOut[]): void {
    this.ops.delete(op);
    if (this.aeOp === op) this.aeOp = null;
    if (buckets.length === 0) {
      this.count('aeInSync');
      return;
    }
    const listed = new Set(buckets);
    const theirs = new Map<string, Version>();
    for (const [key, ts, node] of items) theirs.set(key, { ts, node });
    const push: Entry[] = [];
    const versions = new Map<string, Version>();
    let pushBytes = 0;
    const pull: string[] = [];
    let pullBytes = 0;
    const mine = new Set<string>();
    for (const e of this.sharedWith(d.target)) {
      if (!listed.has(bucketOf(e.key, this.config.aeBuckets))) continue;
      mine.add(e.key);
      const t = theirs.get(e.key);
      if (t && compareVersions(t, e.version) >= 0) continue;
      const size = this.valueSize(e);
      if (push.length >= this.config.handoffBatch || (push.length > 0 && pushBytes + size > this.config.handoffBytes)) continue;
      push.push(e);
      versions.set(e.key, e.version);
      pushBytes += size;
    }
    for (const [key, v] of theirs) {
      const e = this.data.get(key);
      if (e && (compareVersions(e.version, v) >= 0 || !mine.has(key))) continue;
      if (pull.length >= this.config.handoffBatch || pullBytes >= LIST_BYTES) break;
      pull.push(key);
      pullBytes += tupleBytes(key);
    }
    if (push.length > 0) {
      const p = this.newOp({ kind: 'push', target: d.target, versions, handoff: false });
      this.send(out, d.target, { type: 'kv_push', op: p, entries: push });
      this.count('aePushed', push.length);
    }
    if (pull.length > 0) {
      const p = this.newOp({ kind: 'pull', target: d.target });
      this.send(out, d.target, { type: 'kv_pull', op: p, keys: pull });
    }
  }

  private answerPull(from: NodeId, op: number, keys: string[], out: KvOut[]): void {
    const entries: Entry[] = [];
    let bytes = 0;
    for (const key of keys) {
      const e = this.data.get(key);
      if (!e) continue;
      const size = this.valueSize(e);
      if (entries.length > 0 && bytes + size > this.config.handoffBytes) break;
      entries.push(e);
      bytes += size;
    }
    this.send(out, from, { type: 'kv_pull_reply', op, entries });
  }

  /**
   * Tombstones past their grace time, on the first node of their preference list: phase 1
   * asks the other replicas whether they hold exactly that tombstone; only keys every
   * replica holds are dropped everywhere (phase 2), so no replica can resurrect an older value.
   */
  private collectTombstones(now: number, out: KvOut[]): void {
    if (this.gcOp !== null) return;
    const items = new Map<string, { version: Version; others: NodeId[] }>();
    let bytes = 0;
    for (const e of this.data.values()) {
      if (items.size >= this.config.handoffBatch || bytes >= LIST_BYTES) break;
      if (!e.deleted || hlcWall(e.version.ts) + this.config.tombstoneGrace > now) continue;
      const pref = this.prefOf(e.key);
      if (pref[0] !== this.me) continue;
      items.set(e.key, { version: e.version, others: pref.slice(1) });
      bytes += tupleBytes(e.key);
    }
    if (items.size === 0) return;
    const perTarget = new Map<NodeId, VersionTuple[]>();
    for (const [key, { version, others }] of items) {
      if (others.length === 0) {
        this.removeLocal(key, out);
        this.count('tombstonesCollected');
        items.delete(key);
      }
      for (const o of others) {
        let list = perTarget.get(o);
        if (!list) perTarget.set(o, (list = []));
        list.push([key, version.ts, version.node]);
      }
    }
    if (perTarget.size === 0) return;
    const g: GcOp = { kind: 'gc', items, waiting: new Set(perTarget.keys()), have: new Map() };
    const op = this.newOp(g);
    this.gcOp = op;
    for (const [target, list] of perTarget) this.send(out, target, { type: 'kv_gc_check', op, items: list });
  }

  private finishGc(op: number, g: GcOp, out: KvOut[]): void {
    this.ops.delete(op);
    if (this.gcOp === op) this.gcOp = null;
    const drops = new Map<NodeId, VersionTuple[]>();
    for (const [key, { version, others }] of g.items) {
      if (!others.every((o) => g.have.get(o)?.has(key))) continue;
      const cur = this.data.get(key);
      if (!cur || !cur.deleted || !sameVersion(cur.version, version)) continue;
      this.removeLocal(key, out);
      this.count('tombstonesCollected');
      for (const o of others) {
        let list = drops.get(o);
        if (!list) drops.set(o, (list = []));
        list.push([key, version.ts, version.node]);
      }
    }
    for (const [target, list] of drops) this.send(out, target, { type: 'kv_gc_drop', items: list });
  }
}
