/**
 * The state the parts of one Segments node share (copies, owner and coordinator state,
 * placement, counters, the persist buffer) with the helpers they all use: sending (to
 * itself through a local queue, so local and remote calls take the same path), marking
 * a copy changed, applying an operation to a copy. Effects go through `io`.
 */
import { Counters, OpIds, PersistBuffer } from '../data-protocol';
import { Placement } from '../placement';
import type { Effects } from '../protocol';
import type { NodeId, Rng } from '../types';
import type { Coordinator } from './coordinator';
import { addDone, dkOf, emptyRep, headOf, insertItem, installInto, pageOf, pagesOf, removeItem, type Assembly, type Rep, type SnapPart } from './copy';
import type { OwnerRequests } from './owner';
import type { Replica } from './replica';
import type { Replication } from './replication';
import type { Roles } from './roles';
import type { Takeover } from './takeover';
import { MAX_WIRE_ITEMS, MAX_WIRE_PARTS, PAGE_SIZE, pageStorageKey, parsePageKey, type Ballot, type RequestKind, type SegMessage, type SegOp, type SegRecord } from './messages';
import type { SegCounterName, SegEvent, SegmentsConfig, SegTimer } from './types';

export type SegEffects = Effects<SegMessage, SegTimer, SegEvent, SegRecord>;

/**
 * The parts of a Segments node, for the calls they make to each other (the takeover runs
 * queued requests, the owner sequences operations, ...). Segments' constructor fills it in.
 */
export class SegParts {
  coordinator!: Coordinator;
  owner!: OwnerRequests;
  replication!: Replication;
  takeover!: Takeover;
  replica!: Replica;
  roles!: Roles;
}

/** What the owner knows about one replica. */
export interface Track {
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

export interface Waiter {
  from: NodeId;
  op: number;
  kind: 'peek' | 'take';
  afterId: number;
  refreshed: number;
}

export interface PendingReply {
  seq: number;
  to: NodeId;
  key: string;
  msg: SegMessage;
}

export type ReqMsg = Extract<SegMessage, { type: 'seg.req' }>;

export interface Queued {
  from: NodeId;
  msg: ReqMsg;
  at: number;
}

export interface PromiseInfo {
  acc: Ballot;
  seq: number;
  lastId: number;
  hold: boolean;
}

/** Owner-side state of one key (from the start of a claim until the node stops owning it). */
export interface Own {
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
export interface Call {
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
export interface Cancelled {
  key: string;
  at: number;
  confirmed: boolean;
  sentAt: number;
  restoring: boolean;
}

export class SegState {
  readonly placement: Placement;
  readonly reps = new Map<string, Rep>();
  readonly owns = new Map<string, Own>();
  readonly calls = new Map<number, Call>();
  /** Client request id -> op of its call. */
  readonly reqs = new Map<number, number>();
  readonly cancelled = new Map<number, Cancelled>();
  /** Claims refused because the claimer was not the owner in my view; answered when it becomes so. */
  readonly refused = new Map<string, { from: NodeId; b: Ballot }>();
  /** Keys whose copy here belongs to another owner than the one in my view: nudged until resolved. */
  readonly orphans = new Set<string>();
  readonly counters = new Counters<SegCounterName>();
  readonly sent = new Counters<SegMessage['type']>();
  readonly received = new Counters<SegMessage['type']>();
  readonly opIds: OpIds;
  /** Messages to myself, delivered before the handle() call ends. */
  local: SegMessage[] = [];
  /** Owners that sequenced operations in this call: their replicas get them before it ends. */
  readonly dirtyOwns = new Set<Own>();
  /** Keys to report in a `changed` event at the end of the call. */
  readonly changed = new Set<string>();
  /** Copies changed in this call: one persist effect at its end. */
  readonly persist: PersistBuffer<SegRecord>;

  constructor(
    readonly me: NodeId,
    readonly config: Readonly<SegmentsConfig>,
    readonly rng: Rng,
    readonly io: SegEffects,
  ) {
    this.placement = new Placement(me, config.vnodes, config.n);
    this.opIds = new OpIds(rng);
    // a copy is stored as its head and pages (messages.ts, SegHead / SegPage): an operation
    // rewrites the head and the one or two pages it touched
    this.persist = new PersistBuffer<SegRecord>(io, (storageKey) => {
      const page = parsePageKey(storageKey);
      const rep = this.reps.get(page ? page.key : storageKey);
      if (!rep) return undefined;
      return page ? pageOf(rep, page.kind, page.n) : headOf(rep);
    });
  }

  /** The time of the current call, whole ms (operations carry it on the wire as an integer). */
  get now(): number {
    return Math.floor(this.io.now);
  }

  send(to: NodeId, msg: SegMessage): void {
    if (to === this.me) this.local.push(msg);
    else {
      this.io.send(to, msg);
      this.sent.add(msg.type);
    }
  }

  /** The head of the copy of `key` changed (persist it; `changed`: also tell the UI). */
  markDirty(key: string, changed = true): void {
    this.persist.mark(key);
    if (changed) this.changed.add(key);
  }

  /** The page of item `id` of the copy of `key` changed. */
  private markItem(key: string, id: number): void {
    this.persist.mark(pageStorageKey(key, 'i', Math.floor(id / PAGE_SIZE)));
  }

  /** The page of request-table entry `n` of the copy of `key` changed. */
  private markDone(key: string, n: number): void {
    this.persist.mark(pageStorageKey(key, 'd', Math.floor(n / PAGE_SIZE)));
  }

  /** Every page the copy has now: before its content is replaced or dropped (they are rewritten or removed), and after. */
  markAllPages(rep: Rep): void {
    const { items, done } = pagesOf(rep);
    for (const n of items) this.persist.mark(pageStorageKey(rep.key, 'i', n));
    for (const n of done) this.persist.mark(pageStorageKey(rep.key, 'd', n));
  }

  /** Drops this node's copy of `key`, head and pages. */
  dropRep(key: string, changed = true): void {
    const rep = this.reps.get(key);
    if (rep) this.markAllPages(rep);
    this.reps.delete(key);
    this.markDirty(key, changed);
  }

  /** Replaces a copy's items and request table with an assembled snapshot. */
  install(rep: Rep, a: Assembly): void {
    this.markAllPages(rep);
    installInto(rep, a);
    this.markAllPages(rep);
    this.markDirty(rep.key);
  }

  /** The owner of `key` in my view. */
  ownerOf(key: string): NodeId {
    return this.placement.owner(key);
  }

  /**
   * Whether this node may keep state for `key`: it does already, or it holds fewer than
   * `maxKeys` queues. A refusal is counted.
   */
  hasRoom(key: string): boolean {
    if (this.reps.has(key) || this.owns.has(key) || this.reps.size < this.config.maxKeys) return true;
    this.counters.add('keyCapRefused');
    return false;
  }

  newRep(key: string): Rep {
    const rep = emptyRep(key);
    this.reps.set(key, rep);
    return rep;
  }

  /** Encoded size of a value for batching (a value sizeOf cannot measure counts as 1 KiB). */
  size(v: unknown): number {
    try {
      return this.config.sizeOf(v);
    } catch {
      this.counters.add('sizeErrors');
      return 1024;
    }
  }

  /** Apply one operation to a copy (owner at sequencing time, replicas in log order). */
  apply(rep: Rep, op: SegOp): void {
    const dk = dkOf(op.from, op.op);
    switch (op.k) {
      case 'put':
        if (op.rm !== null && removeItem(rep.items, op.rm)) this.markItem(rep.key, op.rm);
        if (!insertItem(rep.items, { id: op.id, value: op.value })) this.counters.add('inconsistentPut');
        this.markItem(rep.key, op.id);
        rep.lastId = Math.max(rep.lastId, op.id);
        this.addDone(rep, dk, { kind: 0, id: op.id, at: op.t, value: null, restored: false });
        break;
      case 'take': {
        const it = removeItem(rep.items, op.id);
        if (!it) this.counters.add('inconsistentTake');
        else this.markItem(rep.key, op.id);
        this.addDone(rep, dk, { kind: 1, id: op.id, at: op.t, value: it ? it.value : null, restored: false });
        break;
      }
      case 'restore': {
        insertItem(rep.items, { id: op.id, value: op.value });
        this.markItem(rep.key, op.id);
        rep.lastId = Math.max(rep.lastId, op.id);
        const t = rep.done.get(dkOf(op.from, op.of));
        if (t) {
          t.restored = true;
          this.markDone(rep.key, t.n);
        }
        this.addDone(rep, dk, { kind: 2, id: op.id, at: op.t, value: null, restored: false });
        break;
      }
    }
    // forget old results (by the owner's clock carried in the op) and keep the table bounded
    for (const [k, d] of rep.done) {
      if (rep.done.size > this.config.maxDone || d.at < op.t - this.config.dedupTtlMs) {
        rep.done.delete(k);
        this.markDone(rep.key, d.n);
      } else break;
    }
    this.markDirty(rep.key);
  }

  private addDone(rep: Rep, dk: string, d: Parameters<typeof addDone>[2]): void {
    const old = rep.done.get(dk);
    if (old) this.markDone(rep.key, old.n);
    this.markDone(rep.key, addDone(rep, dk, d).n);
  }

  /** The copy as snapshot parts of at most `chunkBytes` (and MAX_WIRE_ITEMS entries per list). */
  snapshotParts(rep: Rep): SnapPart[] {
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
    if (parts.length > MAX_WIRE_PARTS) this.counters.add('snapshotTooLarge');
    return parts.slice(0, MAX_WIRE_PARTS);
  }
}
