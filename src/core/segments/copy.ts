/**
 * A node's copy of one key's queue (as owner or replica) and the pure operations on it:
 * ballots, the sorted item list, the request table, snapshot parts being assembled, and
 * its persisted head and pages.
 */
import { MAX_WIRE_ITEMS, PAGE_SIZE, type Ballot, type DoneTuple, type ItemTuple, type SegHead, type SegOp, type SegPage, type SnapshotMessage } from './messages';

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
  /** Its number in this copy's request table (in the order entries were added): its page is n / PAGE_SIZE. */
  n: number;
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
  /** Insertion order is age order (and the order of `n`). */
  done: Map<string, Done>;
  /** `n` of the next request-table entry. */
  doneSeq: number;
  /** Operations of ballot `promised` that arrived ahead of their turn (or before the snapshot). */
  buffered: Map<number, SegOp>;
  incoming: Assembly | null;
  nudgedAt: number;
}

export function emptyRep(key: string): Rep {
  return { key, promised: NONE, acc: NONE, seq: 0, lastId: 0, items: [], done: new Map(), doneSeq: 0, buffered: new Map(), incoming: null, nudgedAt: -Infinity };
}

/** Adds a request-table entry (as the newest: an entry of the same request is replaced); its `n` is set here. */
export function addDone(rep: Rep, dk: string, d: Omit<Done, 'n'>): Done {
  rep.done.delete(dk);
  const e: Done = { ...d, n: rep.doneSeq++ };
  rep.done.set(dk, e);
  return e;
}

const doneTuple = (dk: string, d: Done): DoneTuple => [dk, d.kind, d.id, d.at, d.kind === 1 ? d.value : null, d.restored ? 1 : 0];

/** The head of a copy as stored by `persist` (its items and request table go in pages). */
export function headOf(rep: Rep): SegHead {
  return { key: rep.key, promised: [rep.promised[0], rep.promised[1]], acc: [rep.acc[0], rep.acc[1]], seq: rep.seq, lastId: rep.lastId, items: [], done: [] };
}

/** Page `n` of a copy's items or request table as stored by `persist`; undefined when it is empty. */
export function pageOf(rep: Rep, kind: 'i' | 'd', n: number): SegPage | undefined {
  const lo = n * PAGE_SIZE;
  const hi = lo + PAGE_SIZE;
  if (kind === 'i') {
    const items: ItemTuple[] = [];
    for (let i = firstAfter(rep.items, lo - 1); i < rep.items.length && rep.items[i]!.id < hi; i++) items.push([rep.items[i]!.id, rep.items[i]!.value]);
    return items.length > 0 ? { key: rep.key, page: ['i', n], items, done: [] } : undefined;
  }
  const done: DoneTuple[] = [];
  for (const [dk, d] of rep.done) {
    if (d.n >= hi) break; // entries are in the order of n
    if (d.n >= lo) done.push(doneTuple(dk, d));
  }
  return done.length > 0 ? { key: rep.key, page: ['d', n], items: [], done } : undefined;
}

/** The pages holding a copy's items and request-table entries. */
export function pagesOf(rep: Rep): { items: Set<number>; done: Set<number> } {
  const items = new Set<number>();
  const done = new Set<number>();
  for (const it of rep.items) items.add(Math.floor(it.id / PAGE_SIZE));
  for (const d of rep.done.values()) done.add(Math.floor(d.n / PAGE_SIZE));
  return { items, done };
}

/**
 * A copy from its stored (validated) head and pages. Request-table entries keep the page
 * they were stored in; a head from before pages brings its own items and table.
 */
export function repOf(head: SegHead, pages: readonly SegPage[] = []): Rep {
  const rep = emptyRep(head.key);
  rep.promised = [head.promised[0], head.promised[1]];
  rep.acc = [head.acc[0], head.acc[1]];
  rep.seq = Math.max(0, head.seq);
  rep.lastId = head.lastId;
  for (const [id, value] of head.items) insertItem(rep.items, { id, value });
  const addTuple = ([dk, kind, id, at, value, restored]: DoneTuple, n: number): void => {
    rep.done.delete(dk);
    rep.done.set(dk, { kind, id, at, value, restored: restored === 1, n });
  };
  head.done.forEach((t, i) => addTuple(t, i));
  let next = head.done.length;
  for (const p of [...pages].sort((a, b) => a.page[1] - b.page[1])) {
    if (p.page[0] === 'i') for (const [id, value] of p.items) insertItem(rep.items, { id, value });
    else {
      // entries keep their page (a head from before pages numbered its own from 0)
      const base = Math.max(next, p.page[1] * PAGE_SIZE);
      p.done.forEach((t, j) => addTuple(t, base + j));
      next = base + p.done.length;
    }
  }
  rep.doneSeq = next;
  for (const it of rep.items) rep.lastId = Math.max(rep.lastId, it.id);
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
    for (const [dk, kind, id, at, value, restored] of p.done) {
      done.delete(dk);
      done.set(dk, { kind, id, at, value, restored: restored === 1, n: rep.doneSeq++ });
    }
  }
  if (!sorted) {
    items.sort((x, y) => x.id - y.id);
    for (let i = items.length - 1; i > 0; i--) if (items[i]!.id === items[i - 1]!.id) items.splice(i, 1);
  }
  rep.items = items;
  rep.done = done;
  rep.lastId = Math.max(rep.lastId, a.lastId, items.length > 0 ? items[items.length - 1]!.id : 0);
}
