/**
 * Data segments: per-key queues with put / update / peek / take (the Alice Data Segment API),
 * replicated on the key's preference list (N = 3), with a single owner per key that
 * serialises its operations. Pure: time, randomness and the member list come in; sends,
 * timers, replies and persistence go out as effects. See README.md for the protocol and
 * what it guarantees.
 *
 * One class plays three roles for every key:
 * - coordinator: the node where the API call was made; it sends the request to the owner in
 *   its view, re-sends it (same `op`) until answered, re-targets it when the owner changes,
 *   and keeps a waiting peek/take registered.
 * - owner: the first live node of the key's preference list. It wins a ballot (claim: every
 *   live member promises; the most advanced state is adopted), then assigns ids, applies
 *   operations in order, replicates them to the other replicas and answers a request once
 *   `w` copies (itself included) have the operation.
 * - replica: applies the owner's snapshot and operations in log order, fenced by ballot.
 */
import { Ring } from '../placement';
import { randInt } from '../rng';
import type { NodeId, Rng } from '../types';
import {
  MAX_WIRE_ITEMS,
  MAX_WIRE_OPS,
  MAX_WIRE_PARTS,
  validateSegMessage,
  validateSegRecord,
  type Ballot,
  type DoneTuple,
  type ItemTuple,
  type RequestKind,
  type SegMessage,
  type SegOp,
  type SegRecord,
  type SnapshotMessage,
} from './messages';
import { DEFAULT_SEGMENTS_CONFIG, type QueueView, type SegIn, type SegmentsConfig, type SegOut } from './types';

const NONE: Ballot = [0, ''];

/** Total order on ballots: epoch, then owner id. */
export function compareBallots(a: Ballot, b: Ballot): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
}

interface Item {
  id: number;
  value: unknown;
}

/** Result of one executed request, kept to answer its retries. */
interface Done {
  kind: 0 | 1 | 2;
  id: number;
  at: number;
  /** The item's value for a take (a retried take gets the same item). */
  value: unknown;
  /** A take whose item was put back (restore). */
  restored: boolean;
}

interface SnapPart {
  items: ItemTuple[];
  done: DoneTuple[];
}

/** Parts of one snapshot being received. */
interface Assembly {
  b: Ballot;
  seq: number;
  lastId: number;
  parts: (SnapPart | undefined)[];
  got: number;
}

/** This node's copy of one key's queue (as owner or replica). */
interface Rep {
  key: string;
  promised: Ballot;
  acc: Ballot;
  seq: number;
  lastId: number;
  /** Sorted by id. */
  items: Item[];
  /** Insertion order is age order. */
  done: Map<string, Done>;
  /** Operations of ballot `promised` that arrived ahead of their turn (or before the snapshot). */
  buffered: Map<number, SegOp>;
  incoming: Assembly | null;
  nudgedAt: number;
}

/** What the owner knows about one replica. */
interface Track {
  acked: number;
  sentUpTo: number;
  /** Since when the replica owes an acknowledgement. */
  waitSince: number;
  lastResend: number;
  snapAt: number;
  /** Minimum pause before the snapshot is sent again (grows with its size). */
  snapWait: number;
  /** The snapshot being transferred: re-sent as is (the replica keeps the parts it has) while the log covers it. */
  snap: { seq: number; parts: SnapPart[] } | null;
  /** Parts of `snap` the replica last reported missing. */
  missing: number[] | null;
}

interface Waiter {
  from: NodeId;
  op: number;
  kind: 'peek' | 'take';
  afterId: number;
  refreshed: number;
}

interface PendingReply {
  seq: number;
  to: NodeId;
  key: string;
  msg: SegMessage;
}

type ReqMsg = Extract<SegMessage, { type: 'seg_req' }>;

interface Queued {
  from: NodeId;
  msg: ReqMsg;
  at: number;
}

interface PromiseInfo {
  acc: Ballot;
  seq: number;
  lastId: number;
  hold: boolean;
}

/** Owner-side state of one key (from the start of a claim until the node stops owning it). */
interface Own {
  key: string;
  ballot: Ballot;
  phase: 'claim' | 'fetch' | 'active' | 'backoff';
  minEpoch: number;
  retryAt: number;
  // claim
  waitFor: Map<NodeId, number>;
  promises: Map<NodeId, PromiseInfo>;
  fetchFrom: NodeId | null;
  fetchSentAt: number;
  fetch: Assembly | null;
  lastIdSeen: number;
  /** Nodes holding a copy outside the replica set: told to drop it once every replica has the state. */
  holders: Set<NodeId>;
  // active
  replicas: Map<NodeId, Track>;
  log: SegOp[];
  logSize: number[];
  logStart: number;
  commit: number;
  pending: PendingReply[];
  pendingKeys: Set<string>;
  /** seq at which an item was put in this ballot (absent: part of the installed state, seq 0). */
  itemSeq: Map<number, number>;
  /** seq at which a request was executed in this ballot. */
  opSeq: Map<string, number>;
  waiters: Map<string, Waiter>;
  queued: Map<string, Queued>;
}

/** A request this node coordinates. */
interface Call {
  /** null for an internal restore. */
  req: number | null;
  op: number;
  kind: RequestKind;
  key: string;
  value?: unknown;
  afterId: number;
  id?: number;
  of?: number;
  timeoutMs?: number;
  target: NodeId | null;
  sentAt: number;
  registered: boolean;
  deadline: number;
}

/** A take this node gave up on (cancel/timeout): a late result is put back. */
interface Cancelled {
  key: string;
  at: number;
  confirmed: boolean;
  sentAt: number;
  restoring: boolean;
}

const dkOf = (from: NodeId, op: number): string => `${from}|${op}`;

/** Index of the first item with id > afterId (items sorted by id). */
function firstAfter(items: Item[], afterId: number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (items[mid]!.id <= afterId) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function indexOfId(items: Item[], id: number): number {
  const i = firstAfter(items, id - 1);
  return i < items.length && items[i]!.id === id ? i : -1;
}

function insertItem(items: Item[], item: Item): boolean {
  const last = items[items.length - 1];
  if (!last || last.id < item.id) {
    items.push(item);
    return true;
  }
  const i = firstAfter(items, item.id - 1);
  if (i < items.length && items[i]!.id === item.id) return false;
  items.splice(i, 0, item);
  return true;
}

function removeItem(items: Item[], id: number): Item | undefined {
  if (items.length > 0 && items[0]!.id === id) return items.shift();
  const i = indexOfId(items, id);
  return i < 0 ? undefined : items.splice(i, 1)[0];
}

function cloneValue(v: unknown): unknown {
  return typeof structuredClone === 'function' ? structuredClone(v) : v;
}

export class Segments {
  readonly config: SegmentsConfig;
  private ring: Ring;
  private live = new Set<NodeId>();
  private readonly reps = new Map<string, Rep>();
  private readonly owns = new Map<string, Own>();
  private readonly calls = new Map<number, Call>();
  private readonly reqs = new Map<number, number>();
  private readonly cancelled = new Map<number, Cancelled>();
  /** Claims refused because the claimer was not the owner in my view; answered when it becomes so. */
  private readonly refused = new Map<string, { from: NodeId; b: Ballot }>();
  /** Keys whose copy here belongs to another owner than the one in my view: nudged until resolved. */
  private readonly orphans = new Set<string>();
  private readonly counters = new Map<string, number>();
  private readonly opBase: number;
  private opCounter = 0;
  private now = 0;
  private fx: SegOut[] = [];
  private local: SegMessage[] = [];
  private readonly dirtyKeys = new Set<string>();
  private readonly changedKeys = new Set<string>();
  private readonly dirtyOwns = new Set<Own>();
  private tickArmed = false;

  constructor(
    readonly me: NodeId,
    config: Partial<SegmentsConfig>,
    private readonly rng: Rng,
  ) {
    this.config = { ...DEFAULT_SEGMENTS_CONFIG, ...config };
    if (this.config.w < 1 || this.config.n < 1) throw new Error('segments: n and w must be at least 1');
    this.live.add(me);
    this.ring = new Ring(this.live, this.config.vnodes, this.config.n);
    // request ids unique per incarnation: a random base (2^21 choices) times 2^31
    this.opBase = randInt(rng, 1 << 21) * 2 ** 31;
  }

  // ---------------------------------------------------------------------------------------
  // entry point

  handle(input: SegIn, now: number, out: SegOut[]): void {
    this.now = Math.floor(now);
    this.fx = [];
    switch (input.type) {
      case 'members':
        this.onMembers(input.live);
        break;
      case 'message':
        this.onMessage(input.from, input.msg, input.from !== this.me);
        break;
      case 'timer':
        if (input.timer.type === 'seg_tick') this.onTick();
        else if (input.timer.type === 'seg_deadline') this.onDeadline(input.timer.req);
        break;
      case 'put':
      case 'update':
        this.clientWrite(input.type, input.req, input.key, input.value);
        break;
      case 'peek':
      case 'take':
        this.clientWait(input.type, input.req, input.key, input.afterId, input.timeoutMs);
        break;
      case 'cancel':
        this.clientCancel(input.req);
        break;
      case 'load':
        this.onLoad(input.state);
        break;
    }
    this.settle();
    if (this.dirtyKeys.size > 0) {
      if (this.config.persist) out.push(this.persistEffect());
      this.dirtyKeys.clear();
    }
    for (const e of this.fx) out.push(e);
    this.fx = [];
    for (const key of this.changedKeys) out.push({ type: 'changed', key });
    this.changedKeys.clear();
  }

  /** Deliver messages to myself and replicate what was sequenced, until nothing is left. */
  private settle(): void {
    for (;;) {
      for (let i = 0; i < this.local.length; i++) this.onMessage(this.me, this.local[i]!, false);
      this.local = [];
      if (this.dirtyOwns.size === 0) break;
      const owns = [...this.dirtyOwns];
      this.dirtyOwns.clear();
      for (const own of owns) this.flush(own);
      if (this.local.length === 0) break;
    }
    this.ensureTick();
  }

  // ---------------------------------------------------------------------------------------
  // queries

  /** What this node holds (owner or replica copies), for the UI. */
  queues(): QueueView[] {
    const out: QueueView[] = [];
    for (const rep of this.reps.values()) {
      if (rep.acc[0] === 0 && rep.items.length === 0) continue;
      out.push({
        key: rep.key,
        items: rep.items.map((i) => ({ id: i.id, value: i.value })),
        waiting: this.owns.get(rep.key)?.waiters.size ?? 0,
        owner: this.ownerOf(rep.key),
        epoch: rep.acc[0],
      });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** The key's preference list in my view (the owner first). */
  replicas(key: string): NodeId[] {
    return [...this.ring.preferenceList(key)];
  }

  /** The owner of `key` in my view. */
  ownerOf(key: string): NodeId {
    return this.ring.preferenceList(key)[0] ?? this.me;
  }

  members(): NodeId[] {
    return [...this.ring.members];
  }

  /** Keys this node currently serves as an active owner. */
  ownedKeys(): string[] {
    return [...this.owns.values()].filter((o) => o.phase === 'active').map((o) => o.key).sort();
  }

  stats(): Record<string, number> {
    const s: Record<string, number> = {};
    for (const [k, v] of this.counters) s[k] = v;
    s.keys = this.reps.size;
    s.owned = this.ownedKeys().length;
    s.calls = this.calls.size;
    let waiters = 0;
    for (const o of this.owns.values()) waiters += o.waiters.size;
    s.waiters = waiters;
    return s;
  }

  private count(name: string, n = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + n);
  }

  // ---------------------------------------------------------------------------------------
  // plumbing

  private send(to: NodeId, msg: SegMessage): void {
    if (to === this.me) this.local.push(msg);
    else {
      this.fx.push({ type: 'send', to, msg });
      this.count(`sent.${msg.type}`);
    }
  }

  private replyOk(req: number, id?: number, value?: unknown, withValue = false): void {
    const r: SegOut = { type: 'reply', req, ok: true };
    if (id !== undefined) r.id = id;
    if (withValue) r.value = cloneValue(value);
    this.fx.push(r);
  }

  private replyErr(req: number, error: string): void {
    this.fx.push({ type: 'reply', req, ok: false, error });
  }

  private markDirty(key: string, changed = true): void {
    this.dirtyKeys.add(key);
    if (changed) this.changedKeys.add(key);
  }

  private persistEffect(): SegOut {
    const put: SegRecord[] = [];
    const remove: string[] = [];
    for (const key of this.dirtyKeys) {
      const rep = this.reps.get(key);
      if (rep) put.push(this.record(rep));
      else remove.push(key);
    }
    return { type: 'persist', put, remove };
  }

  private record(rep: Rep): SegRecord {
    return {
      key: rep.key,
      promised: [rep.promised[0], rep.promised[1]],
      acc: [rep.acc[0], rep.acc[1]],
      seq: rep.seq,
      lastId: rep.lastId,
      items: rep.items.map((i): ItemTuple => [i.id, i.value]),
      done: [...rep.done].map(([dk, d]): DoneTuple => [dk, d.kind, d.id, d.at, d.kind === 1 ? d.value : null, d.restored ? 1 : 0]),
    };
  }

  private size(v: unknown): number {
    try {
      return this.config.sizeOf(v);
    } catch (e) {
      this.count('sizeErrors');
      return 1024;
    }
  }

  private nextOp(): number {
    this.opCounter = (this.opCounter + 1) % 2 ** 31;
    return this.opBase + this.opCounter;
  }

  private newRep(key: string): Rep {
    const rep: Rep = {
      key,
      promised: NONE,
      acc: NONE,
      seq: 0,
      lastId: 0,
      items: [],
      done: new Map(),
      buffered: new Map(),
      incoming: null,
      nudgedAt: -Infinity,
    };
    this.reps.set(key, rep);
    return rep;
  }

  private onLoad(state: unknown[]): void {
    if (!Array.isArray(state)) return;
    for (const r of state) {
      const bad = validateSegRecord(r);
      if (bad) {
        this.count('invalidRecords');
        continue;
      }
      const rec = r as SegRecord;
      if (this.reps.has(rec.key)) {
        // already have a live copy (load after start): it is at least as recent as the disk
        this.count('loadSkipped');
        continue;
      }
      const rep = this.newRep(rec.key);
      rep.promised = [rec.promised[0], rec.promised[1]];
      rep.acc = [rec.acc[0], rec.acc[1]];
      rep.seq = Math.max(0, rec.seq);
      rep.lastId = rec.lastId;
      for (const [id, value] of rec.items) insertItem(rep.items, { id, value });
      for (const [dk, kind, id, at, value, restored] of rec.done) rep.done.set(dk, { kind, id, at, value, restored: restored === 1 });
      this.changedKeys.add(rec.key);
      this.count('loaded');
    }
    // normally `load` comes before the first `members`, which evaluates every key; if it came
    // later, evaluate the loaded keys now
    if (this.live.size > 1) for (const r of state) if (validateSegRecord(r) === null) this.reconsider((r as SegRecord).key);
  }

  // ---------------------------------------------------------------------------------------
  // coordinator: API calls

  private checkKey(key: unknown): string | null {
    if (typeof key !== 'string' || key.length === 0) return 'segment key must be a non-empty string';
    if (key.length > this.config.maxKeyLength) return `segment key longer than ${this.config.maxKeyLength} characters`;
    return null;
  }

  private checkValue(key: string, value: unknown): string | null {
    if (value === undefined) return `value for segment '${key}' is undefined (use null)`;
    let size: number;
    try {
      size = this.config.sizeOf(value);
    } catch (e) {
      return `value for segment '${key}' cannot be stored: ${e instanceof Error ? e.message : String(e)}`;
    }
    if (size > this.config.maxValueBytes) return `value of ${size} bytes for segment '${key}' exceeds the ${this.config.maxValueBytes}-byte limit`;
    return null;
  }

  private clientWrite(kind: 'put' | 'update', req: number, key: string, value: unknown): void {
    if (this.reqs.has(req)) {
      this.count('duplicateReq');
      return;
    }
    const bad = this.checkKey(key) ?? this.checkValue(key, value);
    if (bad) return this.replyErr(req, bad);
    let copy: unknown;
    try {
      copy = cloneValue(value);
    } catch (e) {
      return this.replyErr(req, `value for segment '${key}' cannot be copied: ${e instanceof Error ? e.message : String(e)}`);
    }
    const call: Call = { req, op: this.nextOp(), kind, key, value: copy, afterId: 0, target: null, sentAt: -Infinity, registered: false, deadline: Infinity };
    this.addCall(call);
    this.fx.push({ type: 'timer', delay: this.config.requestTimeout, timer: { type: 'seg_deadline', req } });
    this.sendCall(call);
  }

  private clientWait(kind: 'peek' | 'take', req: number, key: string, afterId: number | undefined, timeoutMs: number | undefined): void {
    if (this.reqs.has(req)) {
      this.count('duplicateReq');
      return;
    }
    const bad = this.checkKey(key);
    if (bad) return this.replyErr(req, bad);
    const after = afterId ?? 0;
    if (typeof after !== 'number' || !Number.isSafeInteger(after) || after < 0) return this.replyErr(req, `${kind} on segment '${key}': afterId must be a non-negative integer`);
    if (timeoutMs !== undefined && timeoutMs !== null && (typeof timeoutMs !== 'number' || !(timeoutMs >= 0) || !Number.isFinite(timeoutMs))) {
      return this.replyErr(req, `${kind} on segment '${key}': timeoutMs must be a non-negative number`);
    }
    const call: Call = { req, op: this.nextOp(), kind, key, afterId: after, target: null, sentAt: -Infinity, registered: false, deadline: Infinity };
    if (typeof timeoutMs === 'number') {
      call.timeoutMs = timeoutMs;
      this.fx.push({ type: 'timer', delay: timeoutMs, timer: { type: 'seg_deadline', req } });
    }
    this.addCall(call);
    this.sendCall(call);
  }

  private addCall(call: Call): void {
    this.calls.set(call.op, call);
    if (call.req !== null) this.reqs.set(call.req, call.op);
  }

  private dropCall(call: Call): void {
    this.calls.delete(call.op);
    if (call.req !== null) this.reqs.delete(call.req);
  }

  private sendCall(call: Call): void {
    const target = this.ownerOf(call.key);
    call.target = target;
    call.sentAt = this.now;
    call.registered = false;
    const msg: ReqMsg = { type: 'seg_req', op: call.op, key: call.key, kind: call.kind };
    if (call.kind === 'put' || call.kind === 'update') msg.value = call.value;
    if (call.kind === 'peek' || call.kind === 'take') msg.afterId = call.afterId;
    if (call.kind === 'restore') {
      msg.id = call.id;
      msg.of = call.of;
    }
    this.send(target, msg);
  }

  private onDeadline(req: number): void {
    const op = this.reqs.get(req);
    const call = op === undefined ? undefined : this.calls.get(op);
    if (!call) return;
    if (call.kind === 'put' || call.kind === 'update') {
      this.dropCall(call);
      this.count('requestsTimedOut');
      this.replyErr(
        req,
        `${call.kind} on segment '${call.key}': no acknowledgement from the owner (${call.target ?? 'unknown'}) within ${this.config.requestTimeout} ms; it may still be applied`,
      );
      return;
    }
    if (call.kind === 'peek' || call.kind === 'take') {
      this.count('waitsTimedOut');
      this.abortWait(call, `timeout: ${call.kind} on segment '${call.key}' found no item after id ${call.afterId} within ${call.timeoutMs ?? 0} ms`);
    }
  }

  private clientCancel(req: number): void {
    const op = this.reqs.get(req);
    const call = op === undefined ? undefined : this.calls.get(op);
    if (!call) return;
    if (call.kind !== 'peek' && call.kind !== 'take') {
      this.count('cancelIgnored');
      return;
    }
    this.count('waitsCancelled');
    this.abortWait(call, `cancelled: ${call.kind} on segment '${call.key}' was aborted`);
  }

  /** Reject a waiting call now; tell the owner; a take's late result will be put back. */
  private abortWait(call: Call, error: string): void {
    this.dropCall(call);
    if (call.req !== null) this.replyErr(call.req, error);
    this.send(this.ownerOf(call.key), { type: 'seg_cancel', op: call.op, key: call.key });
    if (call.kind === 'take') this.cancelled.set(call.op, { key: call.key, at: this.now, confirmed: false, sentAt: this.now, restoring: false });
  }

  private onReply(from: NodeId, m: Extract<SegMessage, { type: 'seg_reply' }>): void {
    const call = this.calls.get(m.op);
    if (!call) {
      const c = this.cancelled.get(m.op);
      if (!c) {
        this.count('lateReplies');
        return;
      }
      c.confirmed = true;
      if (m.ok && typeof m.id === 'number' && !c.restoring) {
        // the take went through after we gave up: put the item back where it was
        c.restoring = true;
        this.count('restores');
        const restore: Call = {
          req: null,
          op: this.nextOp(),
          kind: 'restore',
          key: c.key,
          id: m.id,
          of: m.op,
          afterId: 0,
          target: null,
          sentAt: -Infinity,
          registered: false,
          deadline: this.now + this.config.requestTimeout,
        };
        this.addCall(restore);
        this.sendCall(restore);
      }
      return;
    }
    this.dropCall(call);
    if (call.kind === 'restore') {
      this.count(m.ok ? 'restored' : 'restoreFailed');
      return;
    }
    if (call.req === null) return;
    if (!m.ok) {
      this.count('requestsFailed');
      this.replyErr(call.req, m.error ?? `${call.kind} on segment '${call.key}' failed`);
      return;
    }
    this.count('requestsOk');
    if (call.kind === 'put' || call.kind === 'update') this.replyOk(call.req, m.id ?? undefined);
    else this.replyOk(call.req, m.id ?? undefined, m.value, true);
  }

  private onWait(from: NodeId, op: number): void {
    const call = this.calls.get(op);
    if (call && call.target === from) call.registered = true;
  }

  private onRedirect(from: NodeId, op: number): void {
    const call = this.calls.get(op);
    if (call && call.target === from) {
      // re-sent to the owner in my view after `retransmit` (views may still be settling)
      call.target = null;
      call.sentAt = this.now;
      this.count('redirected');
    }
  }

  // ---------------------------------------------------------------------------------------
  // membership

  private onMembers(liveIn: NodeId[]): void {
    const live = new Set(Array.isArray(liveIn) ? liveIn : []);
    live.add(this.me);
    const same = live.size === this.live.size && [...live].every((n) => this.live.has(n));
    if (same) return;
    this.live = live;
    this.ring = new Ring(live, this.config.vnodes, this.config.n);
    this.count('memberChanges');
    for (const call of this.calls.values()) {
      if (this.ownerOf(call.key) !== call.target) this.sendCall(call);
    }
    for (const [key, r] of [...this.refused]) {
      this.refused.delete(key);
      if (this.live.has(r.from)) this.onClaim(r.from, { type: 'seg_claim', key, b: r.b });
    }
    const keys = new Set([...this.reps.keys(), ...this.owns.keys()]);
    for (const key of keys) this.reconsider(key);
  }

  /** Re-evaluate my role for `key` after a membership change. */
  private reconsider(key: string): void {
    const pref = this.ring.preferenceList(key);
    const owner = pref[0] ?? this.me;
    const own = this.owns.get(key);
    if (owner === this.me) {
      if (!own) {
        this.beginClaim(key);
        return;
      }
      for (const [dk, q] of own.queued) if (q.from !== this.me && !this.live.has(q.from)) own.queued.delete(dk);
      switch (own.phase) {
        case 'active':
          this.updateReplicas(own, pref);
          for (const [dk, w] of own.waiters) if (w.from !== this.me && !this.live.has(w.from)) own.waiters.delete(dk);
          break;
        case 'claim':
          for (const n of own.waitFor.keys()) if (!this.live.has(n)) own.waitFor.delete(n);
          for (const n of own.promises.keys()) if (!this.live.has(n)) own.promises.delete(n);
          for (const n of this.live) {
            if (n === this.me || own.waitFor.has(n) || own.promises.has(n)) continue;
            own.waitFor.set(n, this.now);
            this.send(n, { type: 'seg_claim', key, b: own.ballot });
          }
          this.checkClaim(own);
          break;
        case 'fetch':
          if (own.fetchFrom === null || !this.live.has(own.fetchFrom)) this.beginClaim(key, own);
          break;
        case 'backoff':
          break;
      }
      return;
    }
    if (own) this.stepDown(own, owner);
    const rep = this.reps.get(key);
    if (!rep) return;
    if (rep.acc[0] === 0 && rep.items.length === 0 && rep.done.size === 0) {
      // a promise from a claim of mine that never completed: nothing to keep
      if (!pref.includes(this.me)) {
        this.reps.delete(key);
        this.markDirty(key, false);
      }
      return;
    }
    if (rep.acc[1] !== owner) {
      this.orphans.add(key);
      this.nudge(rep, owner);
    }
  }

  private nudge(rep: Rep, owner: NodeId): void {
    rep.nudgedAt = this.now;
    this.send(owner, { type: 'seg_nudge', key: rep.key, acc: rep.acc });
  }

  // ---------------------------------------------------------------------------------------
  // messages

  private onMessage(from: NodeId, msg: SegMessage, check: boolean): void {
    if (check) {
      const bad = validateSegMessage(msg);
      if (bad) {
        this.count('invalidMessages');
        return;
      }
      this.count(`recv.${msg.type}`);
    }
    switch (msg.type) {
      case 'seg_req':
        return this.onReq(from, msg);
      case 'seg_reply':
        return this.onReply(from, msg);
      case 'seg_wait':
        return this.onWait(from, msg.op);
      case 'seg_redirect':
        return this.onRedirect(from, msg.op);
      case 'seg_cancel':
        return this.onCancel(from, msg);
      case 'seg_claim':
        return this.onClaim(from, msg);
      case 'seg_promise':
        return this.onPromise(from, msg);
      case 'seg_fetch':
        return this.onFetch(from, msg);
      case 'seg_state':
        return this.onState(from, msg);
      case 'seg_install':
        return this.onInstall(from, msg);
      case 'seg_ops':
        return this.onOps(from, msg);
      case 'seg_ack':
        return this.onAck(from, msg);
      case 'seg_nudge':
        return this.onNudge(from, msg);
      case 'seg_release':
        return this.onRelease(from, msg);
    }
  }

  // ---------------------------------------------------------------------------------------
  // owner: requests

  private onReq(from: NodeId, m: ReqMsg): void {
    const owner = this.ownerOf(m.key);
    if (owner !== this.me) {
      this.send(from, { type: 'seg_redirect', op: m.op, owner });
      return;
    }
    const own = this.owns.get(m.key) ?? this.beginClaim(m.key);
    if (own.phase !== 'active') {
      this.enqueue(own, from, m);
      return;
    }
    this.execute(own, from, m);
  }

  private enqueue(own: Own, from: NodeId, m: ReqMsg): void {
    const dk = dkOf(from, m.op);
    const q = own.queued.get(dk);
    if (q) q.at = this.now;
    else if (own.queued.size >= this.config.maxWaiters) {
      this.send(from, { type: 'seg_reply', op: m.op, ok: false, error: `segment '${m.key}' is busy: too many requests waiting for its owner` });
      return;
    } else own.queued.set(dk, { from, msg: m, at: this.now });
    if (m.kind === 'peek' || m.kind === 'take') this.send(from, { type: 'seg_wait', op: m.op });
  }

  private execute(own: Own, from: NodeId, m: ReqMsg): void {
    const rep = this.reps.get(own.key)!;
    const dk = dkOf(from, m.op);
    const done = rep.done.get(dk);
    if (done) {
      this.count('dedupHits');
      this.replyDone(own, from, m.op, dk, done);
      return;
    }
    switch (m.kind) {
      case 'put':
      case 'update': {
        let size = 0;
        let bad: string | null = null;
        try {
          size = this.config.sizeOf(m.value);
          if (size > this.config.maxValueBytes) bad = `value of ${size} bytes for segment '${own.key}' exceeds the ${this.config.maxValueBytes}-byte limit`;
        } catch (e) {
          bad = `value for segment '${own.key}' cannot be stored: ${e instanceof Error ? e.message : String(e)}`;
        }
        if (m.value === undefined) bad = `value for segment '${own.key}' is undefined`;
        if (bad) {
          this.send(from, { type: 'seg_reply', op: m.op, ok: false, error: bad });
          return;
        }
        if (m.kind === 'put' && rep.items.length >= this.config.maxItems) {
          this.send(from, { type: 'seg_reply', op: m.op, ok: false, error: `segment '${own.key}' is full (${this.config.maxItems} items)` });
          return;
        }
        const id = rep.lastId + 1;
        const rm = m.kind === 'update' && rep.items.length > 0 ? rep.items[0]!.id : null;
        const seq = this.sequence(own, rep, { k: 'put', id, value: m.value, rm, from, op: m.op, t: this.now }, size);
        this.schedule(own, seq, from, m.op, { type: 'seg_reply', op: m.op, ok: true, id });
        this.serveWaiters(own, rep);
        return;
      }
      case 'peek':
      case 'take': {
        const w = own.waiters.get(dk);
        if (w) {
          w.refreshed = this.now;
          this.send(from, { type: 'seg_wait', op: m.op });
          return;
        }
        const afterId = m.afterId ?? 0;
        const i = firstAfter(rep.items, afterId);
        if (i < rep.items.length) {
          this.serve(own, rep, from, m.op, m.kind, rep.items[i]!);
          return;
        }
        if (own.waiters.size >= this.config.maxWaiters) {
          this.send(from, { type: 'seg_reply', op: m.op, ok: false, error: `segment '${own.key}' has too many waiting calls (${this.config.maxWaiters})` });
          return;
        }
        own.waiters.set(dk, { from, op: m.op, kind: m.kind, afterId, refreshed: this.now });
        this.changedKeys.add(own.key);
        this.send(from, { type: 'seg_wait', op: m.op });
        return;
      }
      case 'restore': {
        const t = rep.done.get(dkOf(from, m.of ?? -1));
        if (!t || t.kind !== 1 || t.restored || t.id !== m.id) {
          this.count('restoreNoop');
          this.send(from, { type: 'seg_reply', op: m.op, ok: false, error: 'nothing to restore' });
          return;
        }
        const seq = this.sequence(own, rep, { k: 'restore', id: t.id, value: t.value, of: m.of!, from, op: m.op, t: this.now }, this.size(t.value));
        this.schedule(own, seq, from, m.op, { type: 'seg_reply', op: m.op, ok: true, id: t.id });
        this.serveWaiters(own, rep);
        return;
      }
    }
  }

  /** Answer a retried request from its remembered result (once that result is committed). */
  private replyDone(own: Own, to: NodeId, op: number, dk: string, d: Done): void {
    const seq = own.opSeq.get(dk) ?? 0;
    const msg: SegMessage =
      d.kind === 1 ? { type: 'seg_reply', op, ok: true, id: d.id, value: d.value } : { type: 'seg_reply', op, ok: true, id: d.id };
    this.schedule(own, seq, to, op, msg);
  }

  private serve(own: Own, rep: Rep, to: NodeId, op: number, kind: 'peek' | 'take', item: Item): void {
    if (kind === 'peek') {
      this.schedule(own, own.itemSeq.get(item.id) ?? 0, to, op, { type: 'seg_reply', op, ok: true, id: item.id, value: item.value });
      return;
    }
    const seq = this.sequence(own, rep, { k: 'take', id: item.id, from: to, op, t: this.now }, 16);
    this.schedule(own, seq, to, op, { type: 'seg_reply', op, ok: true, id: item.id, value: item.value });
  }

  /**
   * Hand new items to waiting calls: first every waiting peek (they consume nothing, so each
   * sees the item even when a take is waiting too), then waiting takes in registration order.
   */
  private serveWaiters(own: Own, rep: Rep): void {
    if (own.waiters.size === 0 || rep.items.length === 0) return;
    for (const kind of ['peek', 'take'] as const) {
      for (const [dk, w] of own.waiters) {
        if (rep.items.length === 0) return;
        if (w.kind !== kind) continue;
        if (w.from !== this.me && !this.live.has(w.from)) {
          own.waiters.delete(dk);
          continue;
        }
        const i = firstAfter(rep.items, w.afterId);
        if (i >= rep.items.length) continue;
        own.waiters.delete(dk);
        this.serve(own, rep, w.from, w.op, w.kind, rep.items[i]!);
      }
    }
  }

  /** Reply once seq is committed (on `w` copies). */
  private schedule(own: Own, seq: number, to: NodeId, op: number, msg: SegMessage): void {
    const pk = dkOf(to, op);
    if (own.pendingKeys.has(pk)) return;
    if (seq <= own.commit) {
      this.send(to, msg);
      return;
    }
    own.pendingKeys.add(pk);
    own.pending.push({ seq, to, key: pk, msg });
  }

  private onCancel(from: NodeId, m: Extract<SegMessage, { type: 'seg_cancel' }>): void {
    let own = this.owns.get(m.key);
    if (!own) {
      const owner = this.ownerOf(m.key);
      if (owner !== this.me) {
        this.send(from, { type: 'seg_redirect', op: m.op, owner });
        return;
      }
      own = this.beginClaim(m.key);
    }
    const dk = dkOf(from, m.op);
    if (own.waiters.delete(dk) || own.queued.delete(dk)) {
      this.changedKeys.add(m.key);
      this.send(from, { type: 'seg_reply', op: m.op, ok: false, error: 'cancelled' });
      return;
    }
    if (own.phase !== 'active') return; // cannot tell yet whether it was taken; the coordinator asks again
    const rep = this.reps.get(m.key)!;
    const d = rep.done.get(dk);
    if (d && d.kind === 1) {
      this.replyDone(own, from, m.op, dk, d);
      return;
    }
    if (own.pendingKeys.has(dk)) return; // a peek answer is on its way
    this.send(from, { type: 'seg_reply', op: m.op, ok: false, error: 'cancelled' });
  }

  // ---------------------------------------------------------------------------------------
  // owner: log and replication

  private sequence(own: Own, rep: Rep, op: SegOp, size: number): number {
    rep.seq += 1;
    this.apply(rep, op);
    own.log.push(op);
    own.logSize.push(size + 48);
    own.opSeq.set(dkOf(op.from, op.op), rep.seq);
    if (op.k !== 'take') own.itemSeq.set(op.id, rep.seq);
    this.dirtyOwns.add(own);
    this.advanceCommit(own);
    return rep.seq;
  }

  /** Apply one operation to a copy (owner at sequencing time, replicas in log order). */
  private apply(rep: Rep, op: SegOp): void {
    const dk = dkOf(op.from, op.op);
    switch (op.k) {
      case 'put':
        if (op.rm !== null) removeItem(rep.items, op.rm);
        if (!insertItem(rep.items, { id: op.id, value: op.value })) this.count('inconsistentPut');
        rep.lastId = Math.max(rep.lastId, op.id);
        rep.done.set(dk, { kind: 0, id: op.id, at: op.t, value: null, restored: false });
        break;
      case 'take': {
        const it = removeItem(rep.items, op.id);
        if (!it) this.count('inconsistentTake');
        rep.done.set(dk, { kind: 1, id: op.id, at: op.t, value: it ? it.value : null, restored: false });
        break;
      }
      case 'restore': {
        insertItem(rep.items, { id: op.id, value: op.value });
        rep.lastId = Math.max(rep.lastId, op.id);
        const t = rep.done.get(dkOf(op.from, op.of));
        if (t) t.restored = true;
        rep.done.set(dk, { kind: 2, id: op.id, at: op.t, value: null, restored: false });
        break;
      }
    }
    // forget old results (by the owner's clock carried in the op) and keep the table bounded
    for (const [k, d] of rep.done) {
      if (rep.done.size > this.config.maxDone || d.at < op.t - this.config.dedupTtl) rep.done.delete(k);
      else break;
    }
    this.markDirty(rep.key);
  }

  private advanceCommit(own: Own): void {
    if (own.phase !== 'active') return;
    const rep = this.reps.get(own.key)!;
    const acks = [rep.seq];
    for (const t of own.replicas.values()) acks.push(t.acked);
    acks.sort((a, b) => b - a);
    const c = acks[Math.min(this.config.w, acks.length) - 1]!;
    if (c <= own.commit) return;
    own.commit = c;
    if (own.pending.length > 0) {
      const keep: PendingReply[] = [];
      for (const p of own.pending) {
        if (p.seq <= c) {
          own.pendingKeys.delete(p.key);
          this.send(p.to, p.msg);
        } else keep.push(p);
      }
      own.pending = keep;
    }
    for (const [k, s] of own.opSeq) {
      if (s > c) break;
      own.opSeq.delete(k);
    }
    for (const [k, s] of own.itemSeq) {
      if (s > c) break;
      own.itemSeq.delete(k);
    }
  }

  private truncateLog(own: Own): void {
    const rep = this.reps.get(own.key)!;
    let min = rep.seq;
    for (const t of own.replicas.values()) min = Math.min(min, t.acked);
    let drop = min - own.logStart + 1;
    drop = Math.max(drop, own.log.length - this.config.maxLog);
    if (drop <= 0) return;
    own.log.splice(0, drop);
    own.logSize.splice(0, drop);
    own.logStart += drop;
  }

  /** Stream new operations (or a snapshot) to every replica. */
  private flush(own: Own): void {
    if (own.phase !== 'active') return;
    const rep = this.reps.get(own.key)!;
    for (const [node, t] of own.replicas) this.pushTo(own, rep, node, t, false);
    this.truncateLog(own);
  }

  private pushTo(own: Own, rep: Rep, node: NodeId, t: Track, resend: boolean): void {
    if (resend) {
      if (t.acked + 1 < own.logStart) {
        if (this.now - t.snapAt >= t.snapWait) this.sendSnapshot(own, rep, node, t);
      } else this.sendOps(own, rep, node, t, t.acked + 1);
      t.lastResend = this.now;
      t.waitSince = this.now;
      this.count('retransmits');
      return;
    }
    if (t.sentUpTo >= rep.seq) return;
    if (t.sentUpTo + 1 < own.logStart) {
      if (this.now - t.snapAt >= t.snapWait) this.sendSnapshot(own, rep, node, t);
      return;
    }
    if (t.acked >= t.sentUpTo) t.waitSince = this.now;
    this.sendOps(own, rep, node, t, t.sentUpTo + 1);
  }

  private sendOps(own: Own, rep: Rep, node: NodeId, t: Track, from: number): void {
    let s = from;
    while (s <= rep.seq) {
      const start = s - own.logStart;
      let end = start;
      let bytes = 0;
      while (end < own.log.length && end - start < Math.min(this.config.opsBatch, MAX_WIRE_OPS) && (end === start || bytes + own.logSize[end]! <= this.config.chunkBytes)) {
        bytes += own.logSize[end]!;
        end++;
      }
      if (end === start) break;
      this.send(node, { type: 'seg_ops', key: own.key, b: own.ballot, seq: s, ops: own.log.slice(start, end) });
      s += end - start;
    }
    t.sentUpTo = Math.max(t.sentUpTo, rep.seq);
  }

  private sendSnapshot(own: Own, rep: Rep, node: NodeId, t: Track): void {
    let snap = t.snap;
    if (!snap || snap.seq + 1 < own.logStart) {
      snap = t.snap = { seq: rep.seq, parts: this.snapshotParts(rep) };
      t.missing = null;
      this.count('snapshotsBuilt');
    }
    const { seq, parts } = snap;
    const which = t.missing && t.missing.length > 0 ? t.missing : parts.map((_, i) => i);
    for (const i of which) {
      const p = parts[i];
      if (p) this.send(node, { type: 'seg_install', key: own.key, b: own.ballot, seq, part: i, parts: parts.length, lastId: rep.lastId, items: p.items, done: p.done });
    }
    t.sentUpTo = Math.max(t.sentUpTo, seq);
    t.snapAt = this.now;
    t.snapWait = this.config.retryInterval;
    t.waitSince = this.now;
    this.count('snapshotsSent');
  }

  /** The copy as snapshot parts of at most `chunkBytes` (and MAX_WIRE_ITEMS entries per list). */
  private snapshotParts(rep: Rep): SnapPart[] {
    const parts: SnapPart[] = [];
    let cur: SnapPart = { items: [], done: [] };
    let bytes = 0;
    const room = (sz: number, list: unknown[]) => {
      if ((bytes + sz > this.config.chunkBytes && (cur.items.length > 0 || cur.done.length > 0)) || list.length >= MAX_WIRE_ITEMS) {
        parts.push(cur);
        cur = { items: [], done: [] };
        bytes = 0;
      }
      bytes += sz;
    };
    for (const it of rep.items) {
      room(this.size(it.value) + 16, cur.items);
      cur.items.push([it.id, it.value]);
    }
    for (const [dk, d] of rep.done) {
      room(48 + dk.length * 3 + (d.kind === 1 ? this.size(d.value) : 1), cur.done);
      cur.done.push([dk, d.kind, d.id, d.at, d.kind === 1 ? d.value : null, d.restored ? 1 : 0]);
    }
    parts.push(cur);
    if (parts.length > MAX_WIRE_PARTS) this.count('snapshotTooLarge');
    return parts.slice(0, MAX_WIRE_PARTS);
  }

  private onAck(from: NodeId, m: Extract<SegMessage, { type: 'seg_ack' }>): void {
    const own = this.owns.get(m.key);
    if (!own || own.phase !== 'active' || compareBallots(own.ballot, m.b) !== 0) {
      this.count('lateAcks');
      return;
    }
    if (!m.ok) {
      if (m.promised && compareBallots(m.promised, own.ballot) > 0) this.lostBallot(own, m.promised);
      return;
    }
    const t = own.replicas.get(from);
    if (!t) return;
    const rep = this.reps.get(m.key)!;
    const seq = Math.min(m.seq, rep.seq);
    if (typeof m.snap === 'number') {
      // progress report on a snapshot transfer
      if (t.snap && m.snap === t.snap.seq && m.missing) {
        t.missing = m.missing;
        t.waitSince = this.now;
      }
      if (seq <= t.acked) return;
    }
    if (seq > t.acked) {
      t.acked = seq;
      t.waitSince = this.now;
      if (t.sentUpTo < seq) t.sentUpTo = seq;
      if (t.snap && seq >= t.snap.seq) t.snap = null;
      this.advanceCommit(own);
      this.truncateLog(own);
      this.maybeRelease(own);
    } else if (seq < t.acked) {
      // Usually an acknowledgement overtaken by a newer one; or the replica restarted from a
      // disk that missed the last writes. Either way resend from there if nothing better
      // arrives within `retransmit` (the commit index never goes back).
      if (seq === -1) {
        if (this.now - t.snapAt < t.snapWait) return; // the snapshot is on its way
        t.sentUpTo = -1;
        this.dirtyOwns.add(own);
      }
      t.acked = seq;
    }
  }

  private updateReplicas(own: Own, pref: readonly NodeId[]): void {
    const want = new Set(pref.filter((n) => n !== this.me));
    for (const n of [...own.replicas.keys()]) {
      if (want.has(n)) continue;
      own.replicas.delete(n);
      if (this.live.has(n)) own.holders.add(n);
    }
    for (const n of want) {
      if (!own.replicas.has(n)) own.replicas.set(n, this.newTrack());
      own.holders.delete(n);
    }
    this.dirtyOwns.add(own);
    this.advanceCommit(own);
    this.maybeRelease(own);
  }

  private newTrack(): Track {
    return { acked: -1, sentUpTo: -1, waitSince: this.now, lastResend: -Infinity, snapAt: -Infinity, snapWait: 0, snap: null, missing: null };
  }

  /** Once every replica holds this ballot's state, nodes with stale copies may drop theirs. */
  private maybeRelease(own: Own): void {
    if (own.holders.size === 0 || own.phase !== 'active') return;
    for (const t of own.replicas.values()) if (t.acked < 0) return;
    for (const h of own.holders) if (this.live.has(h)) this.send(h, { type: 'seg_release', key: own.key, b: own.ballot });
    own.holders.clear();
  }

  // ---------------------------------------------------------------------------------------
  // owner: claiming a key (takeover)

  private newOwn(key: string): Own {
    const own: Own = {
      key,
      ballot: NONE,
      phase: 'claim',
      minEpoch: 0,
      retryAt: 0,
      waitFor: new Map(),
      promises: new Map(),
      fetchFrom: null,
      fetchSentAt: -Infinity,
      fetch: null,
      lastIdSeen: 0,
      holders: new Set(),
      replicas: new Map(),
      log: [],
      logSize: [],
      logStart: 1,
      commit: -1,
      pending: [],
      pendingKeys: new Set(),
      itemSeq: new Map(),
      opSeq: new Map(),
      waiters: new Map(),
      queued: new Map(),
    };
    this.owns.set(key, own);
    return own;
  }

  /** Start (or restart, with a higher ballot) the takeover of `key`: every live member must promise. */
  private beginClaim(key: string, existing?: Own): Own {
    const rep = this.reps.get(key) ?? this.newRep(key);
    const own = existing ?? this.newOwn(key);
    const epoch = Math.max(rep.promised[0], rep.acc[0], own.ballot[0], own.minEpoch - 1) + 1;
    own.ballot = [epoch, this.me];
    own.phase = 'claim';
    own.waitFor.clear();
    own.promises.clear();
    own.fetchFrom = null;
    own.fetch = null;
    own.replicas.clear();
    own.log = [];
    own.logSize = [];
    own.commit = -1;
    this.promise(rep, own.ballot);
    this.count('claims');
    for (const n of this.live) {
      if (n === this.me) continue;
      own.waitFor.set(n, this.now);
      this.send(n, { type: 'seg_claim', key, b: own.ballot });
    }
    this.checkClaim(own);
    return own;
  }

  private summary(rep: Rep | undefined): Omit<Extract<SegMessage, { type: 'seg_promise' }>, 'type' | 'key' | 'b' | 'ok'> {
    if (!rep) return { acc: NONE, seq: 0, lastId: 0, hold: false };
    return { acc: rep.acc, seq: rep.seq, lastId: rep.lastId, hold: rep.acc[0] > 0 || rep.items.length > 0 };
  }

  private onClaim(from: NodeId, m: Extract<SegMessage, { type: 'seg_claim' }>): void {
    if (this.ownerOf(m.key) !== from) {
      // not the owner in my view: my view or theirs is behind; answer when it is
      this.refused.set(m.key, { from, b: m.b });
      this.count('claimsRefused');
      this.send(from, { type: 'seg_promise', key: m.key, b: m.b, ok: false, refused: true });
      return;
    }
    const rep = this.reps.get(m.key);
    if (!rep) {
      // nothing here to fence or to hand over
      this.send(from, { type: 'seg_promise', key: m.key, b: m.b, ok: true, ...this.summary(undefined) });
      return;
    }
    const c = compareBallots(m.b, rep.promised);
    if (c < 0) {
      this.send(from, { type: 'seg_promise', key: m.key, b: m.b, ok: false, promised: rep.promised });
      return;
    }
    if (c > 0) this.promise(rep, m.b);
    this.send(from, { type: 'seg_promise', key: m.key, b: m.b, ok: true, ...this.summary(rep) });
  }

  /** Follow ballot `b` from now on: older owners' operations are refused. */
  private promise(rep: Rep, b: Ballot): void {
    rep.promised = [b[0], b[1]];
    rep.buffered.clear();
    if (rep.incoming && compareBallots(rep.incoming.b, b) !== 0) rep.incoming = null;
    this.markDirty(rep.key, false);
    const own = this.owns.get(rep.key);
    if (own && compareBallots(own.ballot, b) < 0) this.lostBallot(own, b);
  }

  private onPromise(from: NodeId, m: Extract<SegMessage, { type: 'seg_promise' }>): void {
    const own = this.owns.get(m.key);
    if (!own || compareBallots(m.b, own.ballot) !== 0) return;
    if (own.phase === 'fetch' && from === own.fetchFrom && !m.ok && !m.refused) {
      // the replica I chose moved on to another ballot: start over
      if (m.promised) own.minEpoch = Math.max(own.minEpoch, m.promised[0] + 1);
      this.beginClaim(m.key, own);
      return;
    }
    if (own.phase !== 'claim' || !own.waitFor.has(from)) return;
    if (m.ok) {
      own.waitFor.delete(from);
      own.promises.set(from, { acc: m.acc ?? NONE, seq: m.seq ?? 0, lastId: m.lastId ?? 0, hold: m.hold === true });
      this.checkClaim(own);
    } else if (m.promised && compareBallots(m.promised, own.ballot) > 0) {
      own.minEpoch = Math.max(own.minEpoch, m.promised[0] + 1);
      this.backoff(own);
    }
    // refused: keep waiting, the claim is re-sent
  }

  private checkClaim(own: Own): void {
    if (own.phase !== 'claim' || own.waitFor.size > 0) return;
    const rep = this.reps.get(own.key)!;
    let best: NodeId = this.me;
    let bestAcc = rep.acc;
    let bestSeq = rep.seq;
    let lastId = rep.lastId;
    own.holders.clear();
    for (const [node, p] of own.promises) {
      if (node === this.me) continue;
      lastId = Math.max(lastId, p.lastId);
      if (p.hold) own.holders.add(node);
      const c = compareBallots(p.acc, bestAcc) || p.seq - bestSeq;
      if (c > 0) {
        best = node;
        bestAcc = p.acc;
        bestSeq = p.seq;
      }
    }
    own.lastIdSeen = lastId;
    if (best === this.me) {
      this.activate(own, null);
      return;
    }
    own.phase = 'fetch';
    own.fetchFrom = best;
    own.fetchSentAt = this.now;
    own.fetch = null;
    this.count('fetches');
    this.send(best, { type: 'seg_fetch', key: own.key, b: own.ballot });
  }

  private onFetch(from: NodeId, m: Extract<SegMessage, { type: 'seg_fetch' }>): void {
    const rep = this.reps.get(m.key);
    if (!rep || compareBallots(rep.promised, m.b) !== 0) {
      this.send(from, { type: 'seg_promise', key: m.key, b: m.b, ok: false, promised: rep?.promised ?? NONE });
      return;
    }
    const parts = this.snapshotParts(rep);
    const which = m.missing && m.missing.length > 0 ? m.missing : parts.map((_, i) => i);
    for (const i of which) {
      const p = parts[i];
      if (p) this.send(from, { type: 'seg_state', key: m.key, b: m.b, seq: rep.seq, part: i, parts: parts.length, lastId: rep.lastId, items: p.items, done: p.done });
    }
  }

  private onState(from: NodeId, m: SnapshotMessage<'seg_state'>): void {
    const own = this.owns.get(m.key);
    if (!own || own.phase !== 'fetch' || own.fetchFrom !== from || compareBallots(m.b, own.ballot) !== 0) return;
    const got = own.fetch?.got ?? 0;
    own.fetch = this.assemble(own.fetch, m);
    if (own.fetch.got > got) own.fetchSentAt = this.now; // progress: ask again only when it stalls
    if (own.fetch.got === own.fetch.parts.length) this.activate(own, own.fetch);
  }

  private assemble(prev: Assembly | null, m: SnapshotMessage<'seg_state' | 'seg_install'>): Assembly {
    let a = prev;
    if (!a || compareBallots(a.b, m.b) !== 0 || a.seq !== m.seq || a.parts.length !== m.parts) {
      a = { b: m.b, seq: m.seq, lastId: m.lastId, parts: new Array<SnapPart | undefined>(m.parts), got: 0 };
    }
    if (!a.parts[m.part]) {
      a.parts[m.part] = { items: m.items, done: m.done };
      a.got++;
    }
    return a;
  }

  private missingParts(a: Assembly): number[] {
    const out: number[] = [];
    for (let i = 0; i < a.parts.length && out.length < MAX_WIRE_ITEMS; i++) if (!a.parts[i]) out.push(i);
    return out;
  }

  /** Replace a copy's contents with an assembled snapshot. */
  private installInto(rep: Rep, a: Assembly): void {
    const items: Item[] = [];
    const done = new Map<string, Done>();
    let sorted = true;
    for (const p of a.parts) {
      if (!p) continue;
      for (const [id, value] of p.items) {
        if (items.length > 0 && items[items.length - 1]!.id >= id) sorted = false;
        items.push({ id, value });
      }
      for (const [dk, kind, id, at, value, restored] of p.done) done.set(dk, { kind, id, at, value, restored: restored === 1 });
    }
    if (!sorted) {
      items.sort((x, y) => x.id - y.id);
      for (let i = items.length - 1; i > 0; i--) if (items[i]!.id === items[i - 1]!.id) items.splice(i, 1);
    }
    rep.items = items;
    rep.done = done;
    rep.lastId = Math.max(rep.lastId, a.lastId, items.length > 0 ? items[items.length - 1]!.id : 0);
    this.markDirty(rep.key);
  }

  /** The claim is won and the most advanced state is here: start serving. */
  private activate(own: Own, fetched: Assembly | null): void {
    const rep = this.reps.get(own.key)!;
    if (fetched) this.installInto(rep, fetched);
    rep.lastId = Math.max(rep.lastId, own.lastIdSeen);
    rep.acc = [own.ballot[0], own.ballot[1]];
    rep.seq = 0;
    rep.buffered.clear();
    rep.incoming = null;
    this.markDirty(own.key);
    own.phase = 'active';
    own.fetch = null;
    own.fetchFrom = null;
    own.log = [];
    own.logSize = [];
    own.logStart = 1;
    own.commit = -1;
    own.pending = [];
    own.pendingKeys.clear();
    own.itemSeq.clear();
    own.opSeq.clear();
    own.replicas.clear();
    for (const n of this.ring.preferenceList(own.key)) {
      if (n === this.me) continue;
      own.replicas.set(n, this.newTrack());
      own.holders.delete(n);
    }
    this.count('activations');
    this.advanceCommit(own);
    this.dirtyOwns.add(own);
    const queued = [...own.queued.values()];
    own.queued.clear();
    for (const q of queued) this.execute(own, q.from, q.msg);
  }

  /** Someone holds a higher ballot for a key I serve or claim. */
  private lostBallot(own: Own, b: Ballot): void {
    this.count('ballotsLost');
    own.minEpoch = Math.max(own.minEpoch, b[0] + 1);
    if (this.ownerOf(own.key) === this.me) this.backoff(own);
    else this.stepDown(own, this.ownerOf(own.key));
  }

  /** Stop serving for a while, then claim again with a higher ballot (if still the owner in my view). */
  private backoff(own: Own): void {
    // answers that were waiting for a commit may never come: the callers retry (deduplicated)
    for (const p of own.pending) this.send(p.to, { type: 'seg_redirect', op: (p.msg as { op: number }).op, owner: null });
    own.pending = [];
    own.pendingKeys.clear();
    // registered waiters become queued requests again
    for (const w of own.waiters.values()) {
      const msg: ReqMsg = { type: 'seg_req', op: w.op, key: own.key, kind: w.kind, afterId: w.afterId };
      own.queued.set(dkOf(w.from, w.op), { from: w.from, msg, at: this.now });
    }
    own.waiters.clear();
    own.phase = 'backoff';
    own.replicas.clear();
    own.retryAt = this.now + this.config.retransmit + randInt(this.rng, Math.max(1, this.config.retryInterval));
  }

  /** No longer the owner in my view: send every caller to the new one. */
  private stepDown(own: Own, owner: NodeId | null): void {
    this.count('stepDowns');
    for (const p of own.pending) this.send(p.to, { type: 'seg_redirect', op: (p.msg as { op: number }).op, owner });
    for (const w of own.waiters.values()) this.send(w.from, { type: 'seg_redirect', op: w.op, owner });
    for (const q of own.queued.values()) this.send(q.from, { type: 'seg_redirect', op: q.msg.op, owner });
    this.owns.delete(own.key);
    this.changedKeys.add(own.key);
  }

  // ---------------------------------------------------------------------------------------
  // replica

  private fence(from: NodeId, rep: Rep, b: Ballot): boolean {
    const c = compareBallots(b, rep.promised);
    if (c < 0) {
      this.count('fenced');
      this.send(from, { type: 'seg_ack', key: rep.key, b, seq: -1, ok: false, promised: rep.promised });
      return false;
    }
    if (c > 0) this.promise(rep, b);
    return true;
  }

  private onInstall(from: NodeId, m: SnapshotMessage<'seg_install'>): void {
    const rep = this.reps.get(m.key) ?? this.newRep(m.key);
    if (!this.fence(from, rep, m.b)) return;
    if (compareBallots(rep.acc, m.b) === 0 && rep.seq >= m.seq) {
      this.send(from, { type: 'seg_ack', key: m.key, b: m.b, seq: rep.seq, ok: true });
      return;
    }
    rep.incoming = this.assemble(rep.incoming, m);
    if (rep.incoming.got < rep.incoming.parts.length) {
      const installed = compareBallots(rep.acc, m.b) === 0;
      this.send(from, { type: 'seg_ack', key: m.key, b: m.b, seq: installed ? rep.seq : -1, ok: true, snap: m.seq, missing: this.missingParts(rep.incoming) });
      return;
    }
    this.installInto(rep, rep.incoming);
    rep.acc = [m.b[0], m.b[1]];
    rep.seq = m.seq;
    rep.incoming = null;
    this.count('snapshotsInstalled');
    this.drainBuffered(rep);
    this.send(from, { type: 'seg_ack', key: m.key, b: m.b, seq: rep.seq, ok: true });
  }

  private onOps(from: NodeId, m: Extract<SegMessage, { type: 'seg_ops' }>): void {
    const rep = this.reps.get(m.key) ?? this.newRep(m.key);
    if (!this.fence(from, rep, m.b)) return;
    const installed = compareBallots(rep.acc, m.b) === 0;
    for (let i = 0; i < m.ops.length; i++) {
      const s = m.seq + i;
      if (installed && s <= rep.seq) continue;
      if (installed && s === rep.seq + 1) {
        this.apply(rep, m.ops[i]!);
        rep.seq = s;
      } else if (rep.buffered.size < this.config.maxLog) rep.buffered.set(s, m.ops[i]!);
    }
    if (installed) this.drainBuffered(rep);
    this.send(from, { type: 'seg_ack', key: m.key, b: m.b, seq: installed ? rep.seq : -1, ok: true });
  }

  private drainBuffered(rep: Rep): void {
    if (rep.buffered.size === 0) return;
    for (;;) {
      const op = rep.buffered.get(rep.seq + 1);
      if (!op) break;
      rep.buffered.delete(rep.seq + 1);
      this.apply(rep, op);
      rep.seq += 1;
    }
    for (const s of rep.buffered.keys()) if (s <= rep.seq) rep.buffered.delete(s);
  }

  private onNudge(from: NodeId, m: Extract<SegMessage, { type: 'seg_nudge' }>): void {
    if (this.ownerOf(m.key) !== this.me) return; // the sender retries once our views agree
    const own = this.owns.get(m.key);
    if (!own) {
      this.beginClaim(m.key);
      return;
    }
    if (own.phase === 'active' && compareBallots(own.ballot, m.acc) > 0 && !own.replicas.has(from)) {
      own.holders.add(from);
      this.maybeRelease(own);
    }
  }

  private onRelease(from: NodeId, m: Extract<SegMessage, { type: 'seg_release' }>): void {
    const rep = this.reps.get(m.key);
    if (!rep || this.owns.has(m.key)) return;
    if (compareBallots(m.b, rep.promised) < 0) return; // a newer claim is under way: my copy may matter
    if (compareBallots(rep.acc, m.b) >= 0) return; // I hold that state (or newer): I am a replica
    this.reps.delete(m.key);
    this.markDirty(m.key);
    this.count('released');
  }

  // ---------------------------------------------------------------------------------------
  // timers

  private ensureTick(): void {
    if (this.tickArmed || !this.hasWork()) return;
    this.tickArmed = true;
    this.fx.push({ type: 'timer', delay: this.config.retransmit, timer: { type: 'seg_tick' } });
  }

  private hasWork(): boolean {
    if (this.calls.size > 0) return true;
    for (const c of this.cancelled.values()) if (!c.confirmed && this.now - c.at < this.config.requestTimeout) return true;
    for (const own of this.owns.values()) {
      if (own.phase !== 'active' || own.waiters.size > 0 || own.holders.size > 0) return true;
      const rep = this.reps.get(own.key)!;
      for (const t of own.replicas.values()) if (t.acked < rep.seq) return true;
    }
    return this.orphans.size > 0;
  }

  private needsNudge(rep: Rep): boolean {
    if (rep.acc[0] === 0 || this.owns.has(rep.key)) return false;
    const owner = this.ownerOf(rep.key);
    return owner !== this.me && owner !== rep.acc[1];
  }

  private onTick(): void {
    this.tickArmed = false;
    const c = this.config;
    for (const call of [...this.calls.values()]) {
      if (call.kind === 'restore' && this.now >= call.deadline) {
        this.dropCall(call);
        this.count('restoreFailed');
        continue;
      }
      const due = call.target === null ? c.retransmit : call.registered ? c.keepalive : c.retryInterval;
      if (this.now - call.sentAt >= due) this.sendCall(call);
    }
    for (const [op, x] of this.cancelled) {
      if (this.now - x.at >= c.dedupTtl) this.cancelled.delete(op);
      else if (!x.confirmed && this.now - x.at < c.requestTimeout && this.now - x.sentAt >= c.retryInterval) {
        x.sentAt = this.now;
        this.send(this.ownerOf(x.key), { type: 'seg_cancel', op, key: x.key });
      }
    }
    for (const own of [...this.owns.values()]) {
      switch (own.phase) {
        case 'claim':
          for (const [n, at] of own.waitFor) {
            if (this.now - at < c.retryInterval) continue;
            own.waitFor.set(n, this.now);
            this.send(n, { type: 'seg_claim', key: own.key, b: own.ballot });
          }
          this.expireQueued(own);
          break;
        case 'fetch':
          if (this.now - own.fetchSentAt >= c.retryInterval && own.fetchFrom !== null) {
            own.fetchSentAt = this.now;
            this.send(own.fetchFrom, { type: 'seg_fetch', key: own.key, b: own.ballot, missing: own.fetch ? this.missingParts(own.fetch) : null });
          }
          this.expireQueued(own);
          break;
        case 'backoff':
          if (this.now >= own.retryAt) {
            if (this.ownerOf(own.key) === this.me) this.beginClaim(own.key, own);
            else this.stepDown(own, this.ownerOf(own.key));
          } else this.expireQueued(own);
          break;
        case 'active': {
          const rep = this.reps.get(own.key)!;
          for (const [n, t] of own.replicas) {
            if (t.acked < rep.seq && this.now - t.waitSince >= c.retransmit && this.now - t.lastResend >= c.retransmit) this.pushTo(own, rep, n, t, true);
          }
          this.maybeRelease(own);
          for (const [dk, w] of own.waiters) {
            if (this.now - w.refreshed >= 3 * c.keepalive) {
              own.waiters.delete(dk);
              this.count('waitersExpired');
            }
          }
          break;
        }
      }
    }
    for (const key of this.orphans) {
      const rep = this.reps.get(key);
      if (!rep || !this.needsNudge(rep)) this.orphans.delete(key);
      else if (this.now - rep.nudgedAt >= c.retryInterval) this.nudge(rep, this.ownerOf(key));
    }
  }

  /** Requests queued during a takeover that their coordinator stopped re-sending. */
  private expireQueued(own: Own): void {
    for (const [dk, q] of own.queued) {
      const limit = q.msg.kind === 'peek' || q.msg.kind === 'take' ? 3 * this.config.keepalive : this.config.requestTimeout;
      if (this.now - q.at >= limit) own.queued.delete(dk);
    }
  }
}
