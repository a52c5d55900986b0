/**
 * A node's copy of one key's queue (as owner or replica) and the pure operations on it:
 * ballots, the sorted item list, the request table, snapshot parts being assembled, and
 * the persisted record.
 */
import { MAX_WIRE_ITEMS, type Ballot, type DoneTuple, type ItemTuple, type SegOp, type SegRecord, type SnapshotMessage } from './messages';

export const NONE: Ballot = [0, ''];

/** Total order on ballots: epoch, then owner id. */
export function compareBallots(a: Ballot, b: Ballot): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
}

/** The key of a request in the request table: coordinator and op. */
export const dkOf = (from: string, op: number): string => `${from}|${op}`;

export interface Item {
  id: number;
  value: unknown;
}

/** Result of one executed request, kept to answer its retries. */
export interface Done {
  kind: 0 | 1 | 2;
  id: number;
  at: number;
  /** The item's value for a take (a retried take gets the same item). */
  value: unknown;
  /** A take whose item was put back (restore). */
  restored: boolean;
}

export interface SnapPart {
  items: ItemTuple[];
  done: DoneTuple[];
}

/** Parts of one snapshot being received. */
export interface Assembly {
  b: Ballot;
  seq: number;
  lastId: number;
  parts: (SnapPart | undefined)[];
  got: number;
}

/** This node's copy of one key's queue (as owner or replica). */
export interface Rep {
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

export function emptyRep(key: string): Rep {
  return { key, promised: NONE, acc: NONE, seq: 0, lastId: 0, items: [], done: new Map(), buffered: new Map(), incoming: null, nudgedAt: -Infinity };
}

/** A copy as stored by `persist`. */
export function recordOf(rep: Rep): SegRecord {
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

/** A copy from a stored (validated) record. */
export function repOf(rec: SegRecord): Rep {
  const rep = emptyRep(rec.key);
  rep.promised = [rec.promised[0], rec.promised[1]];
  rep.acc = [rec.acc[0], rec.acc[1]];
  rep.seq = Math.max(0, rec.seq);
  rep.lastId = rec.lastId;
  for (const [id, value] of rec.items) insertItem(rep.items, { id, value });
  for (const [dk, kind, id, at, value, restored] of rec.done) rep.done.set(dk, { kind, id, at, value, restored: restored === 1 });
  return rep;
}

/** Index of the first item with id > afterId (items sorted by id). */
export function firstAfter(items: Item[], afterId: number): number {
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

/** Inserts in id order; false when the id is there already. */
export function insertItem(items: Item[], item: Item): boolean {
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

export function removeItem(items: Item[], id: number): Item | undefined {
  if (items.length > 0 && items[0]!.id === id) return items.shift();
  const i = indexOfId(items, id);
  return i < 0 ? undefined : items.splice(i, 1)[0];
}

/** A copy of a value that API callers cannot change behind the queue's back. */
export function cloneValue(v: unknown): unknown {
  return typeof structuredClone === 'function' ? structuredClone(v) : v;
}

/** Adds a received snapshot part (starting over when it belongs to another snapshot). */
export function assemble(prev: Assembly | null, m: SnapshotMessage<'seg.state' | 'seg.install'>): Assembly {
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

/** Parts still missing (a bounded list: more are asked for later). */
export function missingParts(a: Assembly): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.parts.length && out.length < MAX_WIRE_ITEMS; i++) if (!a.parts[i]) out.push(i);
  return out;
}

/** Replace a copy's items and request table with an assembled snapshot. */
export function installInto(rep: Rep, a: Assembly): void {
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
}
