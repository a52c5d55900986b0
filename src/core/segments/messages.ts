/**
 * Data-segment wire messages, the replicated operations they carry, the persisted record
 * format, and their validators. Every type is prefixed `seg.` (routed by core/node.ts on
 * the `seg` protocol prefix). Validators never throw and bound every list and string.
 *
 * Vocabulary:
 * - `op`: a request id chosen by the coordinator (the node where the API call was made),
 *   unique per coordinator incarnation. (coordinator id, op) identifies a client request
 *   everywhere, which is what makes retries idempotent.
 * - `b`: a ballot `[epoch, owner]`, the owner's term for one key. Ballots are totally
 *   ordered by epoch, then owner id. Replicas follow only the highest ballot they promised.
 * - `seq`: position in the owner's operation log for one ballot (0 = the state installed
 *   when the ballot began).
 */
import { MAX_AHEAD_MS } from '../clock/hlc';
import type { NodeId } from '../types';
import { arrayOf, bool, int, isObject, MAX_ID_LENGTH, nodeId, oneOf, optional, plainValue, shape, str, tuple, union, type Check } from '../validate';

/** Longest key accepted from the wire (the API limit, `maxKeyLength`, is usually lower). */
export const MAX_WIRE_KEY_LENGTH = 1024;
/** Most items / done entries in one snapshot part. */
export const MAX_WIRE_ITEMS = 4096;
/** Most operations in one `seg.ops` batch. */
export const MAX_WIRE_OPS = 1024;
/** Most parts of one snapshot (with 128 KiB parts: 128 GiB, i.e. no practical limit). */
export const MAX_WIRE_PARTS = 1 << 20;
/** Longest error string in a reply. */
export const MAX_ERROR_LENGTH = 1000;

/** [epoch, owner]; [0, ''] means "none". */
export type Ballot = [epoch: number, owner: NodeId | ''];
/** One queue item. */
export type ItemTuple = [id: number, value: unknown];
/**
 * One entry of the request table that makes retries idempotent:
 * [coordinator|op, kind (0 put/update, 1 take, 2 restore), item id, owner time, value of a take (else null), restored 0/1].
 */
export type DoneTuple = [dk: string, kind: 0 | 1 | 2, id: number, at: number, value: unknown, restored: 0 | 1];

/** A replicated operation: applied in `seq` order by the owner and every replica. */
export type SegOp =
  /** Append item `id` (update: after removing item `rm`, the head at the time). */
  | { k: 'put'; id: number; value: unknown; rm: number | null; from: NodeId; op: number; t: number }
  /** Remove item `id`, handed to request (from, op). */
  | { k: 'take'; id: number; from: NodeId; op: number; t: number }
  /** Put item `id` back (its take `of` from the same coordinator was cancelled before the result arrived). */
  | { k: 'restore'; id: number; value: unknown; of: number; from: NodeId; op: number; t: number };

export type RequestKind = 'put' | 'update' | 'peek' | 'take' | 'restore';

export type SegMessage =
  /** Coordinator -> owner. put/update carry `value`; peek/take `afterId`; restore `id` and `of` (the cancelled take's op). */
  | { type: 'seg.req'; op: number; key: string; kind: RequestKind; value?: unknown; afterId?: number; id?: number; of?: number }
  /** Owner -> coordinator: the result (put/update: `id`; peek/take: `id`, `value`), or an error. */
  | { type: 'seg.reply'; op: number; ok: boolean; id?: number | null; value?: unknown; error?: string | null }
  /** Owner -> coordinator: the peek/take is registered and waits for an item. */
  | { type: 'seg.wait'; op: number }
  /** Someone who is not (or no longer) the owner -> coordinator: send it again to the owner. */
  | { type: 'seg.redirect'; op: number; owner?: NodeId | null }
  /** Coordinator -> owner: drop the waiting peek/take (a take answers with seg.reply). */
  | { type: 'seg.cancel'; op: number; key: string }
  /** Would-be owner -> every live member: promise to ignore ballots below `b`. */
  | { type: 'seg.claim'; key: string; b: Ballot }
  /**
   * Answer to seg.claim (and refusal of seg.fetch). ok: promised, with a summary of the local
   * replica (`acc` ballot of its state, `seq`, `lastId`, `hold` = has state). Not ok: `refused`
   * (the sender is not the owner in my view; ask again later) or `promised` (a higher ballot).
   */
  | {
      type: 'seg.promise';
      key: string;
      b: Ballot;
      ok: boolean;
      refused?: boolean | null;
      promised?: Ballot | null;
      acc?: Ballot | null;
      seq?: number | null;
      lastId?: number | null;
      hold?: boolean | null;
    }
  /** New owner -> the most advanced replica: send me your state (you promised `b`); only parts `missing` when given. */
  | { type: 'seg.fetch'; key: string; b: Ballot; missing?: number[] | null }
  /** Part of a snapshot. seg.state answers seg.fetch; seg.install is owner -> replica at `seq`. */
  | SnapshotMessage<'seg.state'>
  | SnapshotMessage<'seg.install'>
  /** Owner -> replica: operations with seq `seq`, `seq + 1`, ... */
  | { type: 'seg.ops'; key: string; b: Ballot; seq: number; ops: SegOp[] }
  /**
   * Replica -> owner: applied everything up to `seq` (-1: needs a snapshot). Not ok: fenced by
   * `promised`. While a snapshot is arriving, each part is answered with `snap` (its seq) and
   * the parts still `missing`, so only those are sent again.
   */
  | { type: 'seg.ack'; key: string; b: Ballot; seq: number; ok: boolean; promised?: Ballot | null; snap?: number | null; missing?: number[] | null }
  /** Holder of state for a key -> the owner in its view: "you own this key" (`acc`: my state's ballot). */
  | { type: 'seg.nudge'; key: string; acc: Ballot }
  /** Owner -> a node holding a stale copy: the state under `b` is on all its replicas; drop yours. */
  | { type: 'seg.release'; key: string; b: Ballot };

export interface SnapshotMessage<T extends 'seg.state' | 'seg.install'> {
  type: T;
  key: string;
  b: Ballot;
  /** seg.install: the log position the snapshot stands for; seg.state: the sender's seq (a tag). */
  seq: number;
  part: number;
  parts: number;
  lastId: number;
  items: ItemTuple[];
  done: DoneTuple[];
}

/**
 * The head of a key's persisted copy: its ballots and counters. Its items and request table
 * are in page records (`SegPage`), so that an operation rewrites a page, not the whole
 * queue. Heads written before pages existed hold the items and table themselves: `load`
 * reads them and writes them back as pages.
 */
export interface SegHead {
  key: string;
  /** Highest ballot promised. */
  promised: Ballot;
  /** Ballot of the state held. */
  acc: Ballot;
  seq: number;
  lastId: number;
  items: ItemTuple[];
  done: DoneTuple[];
}

/** Items (or request-table entries) per page record. */
export const PAGE_SIZE = 64;

/**
 * One page of a key's persisted copy: `['i', n]` holds the items with ids n × PAGE_SIZE to
 * (n + 1) × PAGE_SIZE - 1; `['d', n]` the request-table entries of that range of the
 * copy's own entry numbers (in the order they were added). The other list is empty.
 */
export interface SegPage {
  key: string;
  page: ['i' | 'd', number];
  items: ItemTuple[];
  done: DoneTuple[];
}

/** What a node persists (the `persist` effect) and gets back through `load`. */
export type SegRecord = SegHead | SegPage;

/** Whether a (validated) record is a page rather than a head. */
export const isSegPage = (r: SegRecord): r is SegPage => (r as Partial<SegPage>).page != null;

const safe = int(0);
const seqNo = int(-1);
/** Keys hold no U+0000: page records are stored under `key` + U+0000 + page (storageKey). */
const key: Check = (v) => str(MAX_WIRE_KEY_LENGTH)(v) ?? ((v as string).length === 0 ? 'empty key' : (v as string).includes('\0') ? 'key contains U+0000' : null);
const ownerOrNone = str(MAX_ID_LENGTH);
const ballot: Check = tuple(safe, ownerOrNone);
const item = tuple(safe, plainValue);
const dk = str(MAX_ID_LENGTH + 20);
const doneTuple = tuple(dk, oneOf(0, 1, 2), safe, int(), plainValue, oneOf(0, 1));
const items = arrayOf(item, MAX_WIRE_ITEMS);
const dones = arrayOf(doneTuple, MAX_WIRE_ITEMS);

const opCheck = union({
  put: { id: safe, value: plainValue, rm: optional(safe), from: nodeId, op: safe, t: int() },
  take: { id: safe, from: nodeId, op: safe, t: int() },
  restore: { id: safe, value: plainValue, of: safe, from: nodeId, op: safe, t: int() },
});
/** Ops use `k` as discriminant; reuse `union` by presenting it as `type`. */
const segOp: Check = (v) => {
  if (!isObject(v) || typeof v.k !== 'string') return 'op without k';
  return opCheck({ ...v, type: v.k });
};

/** Part indices (a bounded list: more missing parts are asked for in later rounds). */
const partList = arrayOf(int(0, MAX_WIRE_PARTS - 1), MAX_WIRE_ITEMS);

const snapshot = { key, b: ballot, seq: safe, part: int(0, MAX_WIRE_PARTS - 1), parts: int(1, MAX_WIRE_PARTS), lastId: safe, items, done: dones };

const check = union({
  'seg.req': {
    op: safe,
    key,
    kind: oneOf('put', 'update', 'peek', 'take', 'restore'),
    value: optional(plainValue),
    afterId: optional(safe),
    id: optional(safe),
    of: optional(safe),
  },
  'seg.reply': { op: safe, ok: bool, id: optional(safe), value: optional(plainValue), error: optional(str(MAX_ERROR_LENGTH)) },
  'seg.wait': { op: safe },
  'seg.redirect': { op: safe, owner: optional(nodeId) },
  'seg.cancel': { op: safe, key },
  'seg.claim': { key, b: ballot },
  'seg.promise': {
    key,
    b: ballot,
    ok: bool,
    refused: optional(bool),
    promised: optional(ballot),
    acc: optional(ballot),
    seq: optional(seqNo),
    lastId: optional(safe),
    hold: optional(bool),
  },
  'seg.fetch': { key, b: ballot, missing: optional(partList) },
  'seg.state': snapshot,
  'seg.install': snapshot,
  'seg.ops': { key, b: ballot, seq: safe, ops: arrayOf(segOp, MAX_WIRE_OPS) },
  'seg.ack': { key, b: ballot, seq: seqNo, ok: bool, promised: optional(ballot), snap: optional(safe), missing: optional(partList) },
  'seg.nudge': { key, acc: ballot },
  'seg.release': { key, b: ballot },
});

/** A message of this protocol (by its `seg.` prefix; not validated). */
export function isSegMessage(m: { type: string }): m is SegMessage {
  return m.type.startsWith('seg.');
}

/**
 * Where a record is stored (the `remove` list of a persist effect holds these): a head under
 * its key, a page under key + U+0000 + 'i' or 'd' + its number. Keys hold no U+0000, so no
 * two records of different keys share a place.
 */
export function storageKey(record: SegRecord): string {
  return isSegPage(record) ? pageStorageKey(record.key, record.page[0], record.page[1]) : record.key;
}

export const pageStorageKey = (key: string, kind: 'i' | 'd', n: number): string => `${key}\0${kind}${n}`;

/** The page a storage key names, or null for a head's. */
export function parsePageKey(storageKey: string): { key: string; kind: 'i' | 'd'; n: number } | null {
  const at = storageKey.indexOf('\0');
  if (at < 0) return null;
  const kind = storageKey[at + 1];
  return kind === 'i' || kind === 'd' ? { key: storageKey.slice(0, at), kind, n: Number(storageKey.slice(at + 2)) } : null;
}

/**
 * True when a (validated) message names a ballot (`b`, `promised` or `acc`) whose epoch is
 * more than MAX_AHEAD_MS ahead of `now` (ms). Epochs are wall-clock ms (takeover.ts), so
 * an honest one is never that far ahead; refusing the rest keeps every epoch a key can
 * reach within the clock plus that margin, far below Number.MAX_SAFE_INTEGER.
 */
export function ballotsTooFarAhead(m: SegMessage, now: number): boolean {
  const limit = now + MAX_AHEAD_MS;
  const f = m as { b?: Ballot | null; promised?: Ballot | null; acc?: Ballot | null };
  return (f.b != null && f.b[0] > limit) || (f.promised != null && f.promised[0] > limit) || (f.acc != null && f.acc[0] > limit);
}

/** null when `v` is a well-formed SegMessage, else a short reason. Never throws. */
export function validateSegMessage(v: unknown): string | null {
  try {
    const e = check(v);
    if (e) return e;
    const m = v as SegMessage;
    switch (m.type) {
      case 'seg.req':
        if ((m.kind === 'put' || m.kind === 'update') && m.value === undefined) return 'seg.req: put without value';
        if (m.kind === 'restore' && (typeof m.id !== 'number' || typeof m.of !== 'number')) return 'seg.req: restore without id/of';
        return null;
      case 'seg.claim':
      case 'seg.fetch':
      case 'seg.ops':
      case 'seg.install':
      case 'seg.state':
      case 'seg.release':
        // a ballot that is being exercised has a real epoch and owner
        if (m.b[0] < 1 || m.b[1] === '') return `${m.type}: empty ballot`;
        if ((m.type === 'seg.install' || m.type === 'seg.state') && m.part >= m.parts) return `${m.type}: part ${m.part} of ${m.parts}`;
        return null;
      default:
        return null;
    }
  } catch (e) {
    // only reachable through exotic inputs (getters that throw, revoked proxies)
    return `unreadable message: ${String(e).slice(0, 80)}`;
  }
}

const head = shape({ key, promised: ballot, acc: ballot, seq: seqNo, lastId: safe, items: arrayOf(item, 1_000_000), done: arrayOf(doneTuple, 1_000_000) });
const page = shape({ key, page: tuple(oneOf('i', 'd'), int(0, Number.MAX_SAFE_INTEGER / PAGE_SIZE)), items: arrayOf(item, PAGE_SIZE), done: arrayOf(doneTuple, PAGE_SIZE) });

/** null when `v` is a well-formed SegRecord (for records loaded from storage). Never throws. */
export function validateSegRecord(v: unknown): string | null {
  try {
    if (!isObject(v) || v.page == null) return head(v);
    const e = page(v);
    if (e) return e;
    const p = v as unknown as SegPage;
    if (p.page[0] === 'i') {
      if (p.done.length > 0) return 'items page with request-table entries';
      const lo = p.page[1] * PAGE_SIZE;
      if (p.items.some(([id]) => id < lo || id >= lo + PAGE_SIZE)) return `items page ${p.page[1]}: an id outside ${lo}..${lo + PAGE_SIZE - 1}`;
    } else if (p.items.length > 0) return 'request-table page with items';
    return null;
  } catch (e) {
    return `unreadable record: ${String(e).slice(0, 80)}`;
  }
}
