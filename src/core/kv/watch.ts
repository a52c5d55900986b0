/**
 * Watches: a node follows every acknowledged write of keys under its prefixes anywhere in
 * the cluster (`p2p.kv.watch`). Two sides, both in every node:
 *
 * - Watcher: holds this node's prefixes (at most `MAX_WATCH_PREFIXES`), registers them
 *   with every live member (`kv.watch {gen, prefixes}`, the whole set, acknowledged with
 *   `kv.watchAck`, re-sent on a timer until acknowledged, and to every member that joins).
 *   It delivers a notified entry only when its version is newer than the last one it
 *   delivered for that key, so each version is delivered at most once and versions of a key
 *   in increasing order. When a member that has notified it leaves the view, notifications
 *   that member had not yet got through are lost with it: the watcher catches up (below).
 * - Notifier: the coordinator of a write, once the write reached its quorum (the moment the
 *   client gets its acknowledgement), sends `kv.note` to every registered watcher whose
 *   prefix matches: one notification per watching node per version, nothing for a node
 *   that watches nothing (no broadcast, nothing on a timer while idle). Unacknowledged
 *   notes are re-sent every `WATCH_RETRY_MS` from a bounded buffer per watcher; when the
 *   buffer overflows the buffer is dropped and the watcher is told `resync` instead.
 *
 * A notifier keeps a watcher's registration while the watcher is away (declared gone but
 * still in placement: notes wait in its buffer and are re-sent when it is back) and forgets
 * it only when it leaves placement. A watcher's own view of the notifier may not have
 * changed meanwhile (views are not symmetric: a tab frozen for a few seconds is declared
 * dead by others while it saw nothing), so it would never register again by itself: when
 * a forgotten watcher shows up again, the notifier sends it `kv.watchLost`, and the watcher
 * registers again and resyncs (notes may have been skipped while it was forgotten).
 *
 * Catch-up. When notes may have been lost (a member that notified this node left the view,
 * or a notifier says it had forgotten this node), the watcher asks every live member for
 * its local entries under the watched prefixes whose version is at or after a watermark
 * (`kv.watchSync`, paged in key order): the wall time of the newest note it had from that
 * member (or of its registration, if none) minus `CATCH_UP_MARGIN_MS`, which covers writes
 * stamped earlier and acknowledged later. A coordinator's clock is monotonic (HLC), so a
 * write it acknowledged after that note carries a later version, and an acknowledged write
 * has copies on W replicas: a live one answers with it. The entries pass the same
 * at-most-once filter, so the application sees the missed writes and no duplicate, and no
 * `resync`. Only when the catch-up cannot complete (a member does not answer within
 * `requestTimeoutMs`), or a notifier dropped notes because this watcher was too slow
 * (`overflow`), does the watcher emit `watchResync`: the application re-lists.
 *
 * A watch on this node is served locally (no message). Pure: sends, timers and events go
 * through the store's effects.
 */
import type { NodeId } from '../types';
import type { KvMessage } from './messages';
import type { KvState } from './state';
import { compareVersions, type Entry, type Version } from './types';
import { hlcWall } from '../clock/hlc';
import { MAX_WIRE_ITEMS } from './messages';
import { chunkRuns } from './ops';

/** Prefixes one node may watch at once (a `kv.watch` with more is refused by the validator). */
export const MAX_WATCH_PREFIXES = 16;
/** Unacknowledged notes held per watcher; one more and the watcher gets `resync` instead. */
export const WATCH_BUFFER = 1024;
/** Most entries, and value bytes, in one batched `kv.note` (wire frames are capped at 256 KiB). */
const NOTE_ITEMS = 200;
const NOTE_BYTES = 128 * 1024;
/** Pause before unacknowledged registrations and notes are sent again. */
export const WATCH_RETRY_MS = 1000;
/** Watchers a notifier remembers having forgotten (oldest dropped first). */
export const FORGOTTEN_WATCHERS = 4096;
/**
 * How far before a lost member's newest note a catch-up starts: a write is acknowledged
 * within `requestTimeoutMs` (3 s) of its stamp, and its note may trail a later write's.
 */
export const CATCH_UP_MARGIN_MS = 10_000;
/** Bytes of entries in one catch-up page (a reply with more says so and the watcher asks on). */
export const CATCH_UP_PAGE_BYTES = 128 * 1024;

interface Registration {
  gen: number;
  prefixes: string[];
}

interface CatchUp {
  op: number;
  /** Wall ms: entries with versions at or after it are asked for. */
  since: number;
  /** Members still to answer → the last key they sent (null before their first page). */
  waiting: Map<NodeId, string | null>;
  deadline: number;
}

interface Outgoing {
  nextSeq: number;
  /** seq → entry, or null for a `resync` note. */
  pending: Map<number, Entry | null>;
}

export class KvWatch {
  // ---- watcher side
  private prefixes: string[] = [];
  private gen = 0;
  /** Live members (placement minus away) that have not acknowledged `gen`. */
  private unregistered = new Set<NodeId>();
  private live = new Set<NodeId>();
  /** Last version delivered per key (dedup, version order). */
  private delivered = new Map<string, Version>();
  /** Members that notified this node since its last resync → wall ms of the newest version they sent. */
  private senders = new Map<NodeId, number>();
  /** Wall ms at which the current registration was made (the watermark for a member that sent nothing). */
  private registeredAt = 0;
  private catchUp: CatchUp | null = null;
  private catchUpOps = 0;

  // ---- notifier side
  private registry = new Map<NodeId, Registration>();
  private outgoing = new Map<NodeId, Outgoing>();
  /**
   * Notes of this turn not sent yet, per watcher: consecutive seqs from `first`. Sent at the
   * end of the turn as few `kv.note`s (one per watcher and size limit), so a client
   * pipelining puts costs one note per watcher per turn, not one per put.
   */
  private unsent = new Map<NodeId, { first: number; entries: Entry[] }>();
  /** Watchers whose registration was dropped when they left placement (insertion order = age). */
  private forgotten = new Set<NodeId>();

  private retryArmed = false;
  /** `watch` requests waiting for every live member to confirm the registration: req → deadline. */
  private waiting = new Map<number, number>();

  constructor(private readonly s: KvState) {}

  // ---- watcher ---------------------------------------------------------------------------

  /**
   * A `watch` request: this node's watched prefixes (replaces the set). Replies once every
   * live member confirmed the registration (writes they coordinate from then on are
   * notified), or at `requestTimeoutMs` with the rest still retried. A bad set changes
   * nothing and fails the request.
   */
  request(req: number, prefixes: unknown): void {
    const problem = this.setPrefixes(prefixes);
    if (problem !== null) return this.s.io.fail(req, `watch: ${problem}`);
    if (this.unregistered.size === 0) return this.s.io.reply(req);
    this.waiting.set(req, this.s.now + this.s.config.requestTimeoutMs);
    this.armRetry();
  }

  private answerWaiting(all: boolean): void {
    for (const [req, deadline] of this.waiting) {
      if (!all && this.s.now < deadline) continue;
      this.waiting.delete(req);
      this.s.io.reply(req);
    }
  }

  private setPrefixes(prefixes: unknown): string | null {
    const problem = prefixesProblem(prefixes, this.s.config.maxKeyLength);
    if (problem) return problem;
    const next = [...new Set(prefixes as string[])].sort();
    if (next.length === this.prefixes.length && next.every((p, i) => p === this.prefixes[i])) return null;
    const had = this.prefixes;
    this.prefixes = next;
    // a generation newer than any earlier incarnation's: time-based, strictly increasing
    this.gen = Math.max(this.gen + 1, Math.floor(this.s.now));
    this.registeredAt = this.s.now;
    this.catchUp = null;
    if (next.length === 0) this.delivered.clear();
    else if (had.length > 0) for (const k of this.delivered.keys()) if (!matches(next, k)) this.delivered.delete(k);
    this.registry.set(this.s.me, { gen: this.gen, prefixes: next });
    this.unregistered = new Set([...this.live].filter((m) => m !== this.s.me));
    for (const m of this.unregistered) this.s.send(m, { type: 'kv.watch', gen: this.gen, prefixes: next });
    this.armRetry();
    return null;
  }

  watchedPrefixes(): string[] {
    return [...this.prefixes];
  }

  private onNote(from: NodeId, seq: number, entries: Entry[], resync: boolean): void {
    // a note carries consecutive seqs from `seq`, one per entry
    if (from !== this.s.me) this.s.send(from, { type: 'kv.noteAck', seqs: entries.length > 1 ? entries.map((_, i) => seq + i) : [seq] });
    if (this.prefixes.length === 0) return;
    if (resync) {
      this.resync('overflow');
      return;
    }
    let newest = this.senders.get(from) ?? this.registeredAt;
    for (const e of entries) newest = Math.max(newest, Math.min(hlcWall(e.version.ts), this.s.now));
    this.senders.set(from, newest);
    this.deliver(entries);
  }

  /** Hands each entry under a watched prefix to the application once per version, in version order per key. */
  private deliver(entries: readonly Entry[]): void {
    for (const e of entries) {
      if (!matches(this.prefixes, e.key)) continue;
      // a far-future version would be delivered and then hide every later write of its key
      if (!this.s.acceptable(e.version.ts)) continue;
      const last = this.delivered.get(e.key);
      if (last && compareVersions(e.version, last) <= 0) continue;
      this.delivered.set(e.key, e.version);
      this.s.io.event({ type: 'watch', entry: e });
    }
  }

  private resync(reason: 'overflow' | 'member-lost'): void {
    this.s.counters.add('watchResyncs');
    this.senders.clear();
    this.catchUp = null;
    this.s.io.event({ type: 'watchResync', reason });
  }

  /**
   * Notes written since wall time `since` may have been lost: ask every live member for
   * its entries from then on (merged into a catch-up already under way, from its start).
   */
  private startCatchUp(since: number): void {
    if (this.prefixes.length === 0) return;
    const from = Math.max(0, Math.floor(Math.min(since, this.catchUp?.since ?? Infinity) - CATCH_UP_MARGIN_MS));
    const op = ++this.catchUpOps;
    const waiting = new Map<NodeId, string | null>();
    for (const m of this.live) if (m !== this.s.me) waiting.set(m, null);
    this.catchUp = { op, since: from, waiting, deadline: this.s.now + this.s.config.requestTimeoutMs };
    this.s.counters.add('watchCatchUps');
    this.deliver(localSince(this.s.data.values(), this.prefixes, from));
    for (const m of waiting.keys()) this.s.send(m, { type: 'kv.watchSync', op, prefixes: this.prefixes, since: from });
    if (waiting.size === 0) this.catchUp = null;
    this.armRetry();
  }

  private onSyncReply(from: NodeId, op: number, entries: Entry[], more: boolean): void {
    const c = this.catchUp;
    if (!c || c.op !== op || !c.waiting.has(from)) return;
    this.deliver(entries);
    const last = entries.length > 0 ? entries[entries.length - 1]!.key : null;
    if (more && last !== null && last !== c.waiting.get(from)) {
      c.waiting.set(from, last);
      this.s.send(from, { type: 'kv.watchSync', op, prefixes: this.prefixes, since: c.since, after: last });
      return;
    }
    c.waiting.delete(from);
    if (c.waiting.size === 0) this.catchUp = null;
  }

  /** A member asks for its missed notes: one page of local entries from `since` on. */
  private answerSync(from: NodeId, op: number, prefixes: string[], since: number, after: string | null): void {
    const found = localSince(this.s.data.values(), prefixes, since, after).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const entries: Entry[] = [];
    let bytes = 0;
    for (const e of found) {
      const size = this.s.valueSize(e);
      if (entries.length > 0 && (bytes + size > CATCH_UP_PAGE_BYTES || entries.length >= MAX_WIRE_ITEMS)) break;
      entries.push(e);
      bytes += size;
    }
    this.s.send(from, { type: 'kv.watchSyncReply', op, entries, more: entries.length < found.length });
  }

  /**
   * The view changed (`live`: placement minus away). The watcher registers with members
   * that joined; a member that notified it and left may have taken notes with it (resync).
   * The notifier forgets watchers that left placement, and asks a forgotten watcher that is
   * back to register again.
   */
  onMembers(live: readonly NodeId[], placement: readonly NodeId[] = live): void {
    const next = new Set(live);
    let lostSince = Infinity;
    for (const m of this.live) {
      if (next.has(m)) continue;
      this.unregistered.delete(m);
      this.catchUp?.waiting.delete(m);
      const newest = this.senders.get(m);
      if (newest === undefined) continue;
      this.senders.delete(m);
      lostSince = Math.min(lostSince, newest);
    }
    for (const m of next) {
      if (this.live.has(m) || m === this.s.me) continue;
      if (this.forgotten.delete(m)) this.s.send(m, { type: 'kv.watchLost' });
      if (this.prefixes.length === 0) continue;
      this.unregistered.add(m);
      this.s.send(m, { type: 'kv.watch', gen: this.gen, prefixes: this.prefixes });
    }
    if (this.unregistered.size === 0) this.answerWaiting(true);
    const placed = new Set(placement);
    for (const [w, reg] of [...this.registry]) {
      if (w === this.s.me || placed.has(w)) continue;
      this.registry.delete(w);
      this.outgoing.delete(w);
      this.unsent.delete(w);
      if (reg.prefixes.length === 0) continue;
      this.forgotten.add(w);
      if (this.forgotten.size > FORGOTTEN_WATCHERS) this.forgotten.delete(this.forgotten.values().next().value!);
    }
    if (this.catchUp?.waiting.size === 0) this.catchUp = null;
    this.live = next;
    if (lostSince < Infinity) this.startCatchUp(lostSince);
    this.armRetry();
  }

  // ---- notifier --------------------------------------------------------------------------

  /** A write this node coordinated reached its quorum: notify every matching watcher. */
  acknowledged(entry: Entry): void {
    for (const [w, reg] of this.registry) {
      if (reg.prefixes.length === 0 || !matches(reg.prefixes, entry.key)) continue;
      if (w === this.s.me) {
        this.onNote(w, 0, [entry], false);
        continue;
      }
      let o = this.outgoing.get(w);
      if (!o) this.outgoing.set(w, (o = { nextSeq: 1, pending: new Map() }));
      const seq = o.nextSeq++;
      if (o.pending.size >= WATCH_BUFFER) {
        // the watcher does not keep up: drop what it has not acknowledged, tell it to re-list
        if ([...o.pending.values()].some((v) => v === null)) continue;
        o.pending.clear();
        this.unsent.delete(w);
        o.pending.set(seq, null);
        this.s.send(w, { type: 'kv.note', seq, entries: [], resync: true });
      } else {
        o.pending.set(seq, entry);
        const u = this.unsent.get(w);
        if (u && u.first + u.entries.length === seq) u.entries.push(entry);
        else {
          if (u) this.sendUnsent(w, u);
          this.unsent.set(w, { first: seq, entries: [entry] });
        }
      }
      this.armRetry();
    }
  }

  /** Notes held for the end of the turn (see `unsent`). */
  holdsNotes(): boolean {
    return this.unsent.size > 0;
  }

  /** End of the turn: the held notes go out, one `kv.note` per watcher and size limit. */
  flushNotes(): void {
    for (const [w, u] of this.unsent) this.sendUnsent(w, u);
    this.unsent.clear();
  }

  private sendUnsent(w: NodeId, u: { first: number; entries: Entry[] }): void {
    const bytes = u.entries.map((e) => this.s.valueSize(e));
    let seq = u.first;
    chunkRuns(u.entries, bytes, NOTE_ITEMS, NOTE_BYTES, (entries) => {
      this.s.send(w, { type: 'kv.note', seq, entries });
      seq += entries.length;
    });
  }

  // ---- messages and timer ----------------------------------------------------------------

  /** Handles the watch messages; false for any other message. */
  onMessage(from: NodeId, msg: KvMessage): boolean {
    switch (msg.type) {
      case 'kv.watch': {
        const had = this.registry.get(from);
        if (!had || had.gen <= msg.gen) {
          this.registry.set(from, { gen: msg.gen, prefixes: msg.prefixes });
          if (msg.prefixes.length === 0) {
            this.outgoing.delete(from);
            this.unsent.delete(from);
          }
        }
        this.s.send(from, { type: 'kv.watchAck', gen: msg.gen });
        return true;
      }
      case 'kv.watchAck':
        if (msg.gen === this.gen) this.unregistered.delete(from);
        if (this.unregistered.size === 0) this.answerWaiting(true);
        return true;
      case 'kv.watchLost':
        // the notifier dropped this node's registration: register again, and catch up on
        // what it did not notify meanwhile (from the newest note it had sent, or the registration)
        if (this.prefixes.length === 0 || from === this.s.me) return true;
        this.unregistered.add(from);
        this.s.send(from, { type: 'kv.watch', gen: this.gen, prefixes: this.prefixes });
        this.startCatchUp(this.senders.get(from) ?? this.registeredAt);
        return true;
      case 'kv.note':
        this.onNote(from, msg.seq, msg.entries, msg.resync === true);
        return true;
      case 'kv.noteAck': {
        const o = this.outgoing.get(from);
        if (o) for (const seq of msg.seqs) o.pending.delete(seq);
        return true;
      }
      case 'kv.watchSync':
        if (from !== this.s.me) this.answerSync(from, msg.op, msg.prefixes, msg.since, msg.after ?? null);
        return true;
      case 'kv.watchSyncReply':
        this.onSyncReply(from, msg.op, msg.entries, msg.more);
        return true;
      default:
        return false;
    }
  }

  onRetry(): void {
    this.retryArmed = false;
    this.answerWaiting(false);
    // a catch-up some member did not finish answering: what it held is unknown, re-list
    if (this.catchUp && this.s.now >= this.catchUp.deadline) this.resync('member-lost');
    for (const m of this.unregistered) this.s.send(m, { type: 'kv.watch', gen: this.gen, prefixes: this.prefixes });
    for (const [w, o] of this.outgoing) {
      for (const [seq, e] of o.pending) {
        this.s.send(w, e === null ? { type: 'kv.note', seq, entries: [], resync: true } : { type: 'kv.note', seq, entries: [e] });
      }
    }
    this.armRetry();
  }

  private armRetry(): void {
    if (this.retryArmed) return;
    let busy = this.unregistered.size > 0 || this.waiting.size > 0 || this.catchUp !== null;
    for (const o of this.outgoing.values()) if (o.pending.size > 0) busy = true;
    if (!busy) return;
    this.retryArmed = true;
    this.s.io.setTimer(WATCH_RETRY_MS, { type: 'kv.watchRetry' });
  }

  /** Notes sent and not yet acknowledged, over all watchers (a gauge for stats). */
  pendingNotes(): number {
    let n = 0;
    for (const o of this.outgoing.values()) n += o.pending.size;
    return n;
  }

  /** Live members that have not confirmed this node's current registration (a gauge for stats). */
  unregisteredCount(): number {
    return this.unregistered.size;
  }

  /** Nodes registered as watching here (this node included when it watches). */
  watchers(): NodeId[] {
    return [...this.registry].filter(([, r]) => r.prefixes.length > 0).map(([w]) => w).sort();
  }
}

/** null when `prefixes` is a valid set of watched prefixes, else why not. */
export function prefixesProblem(prefixes: unknown, maxLength: number): string | null {
  if (!Array.isArray(prefixes)) return 'watched prefixes must be an array of strings';
  if (prefixes.length > MAX_WATCH_PREFIXES) return `at most ${MAX_WATCH_PREFIXES} watched prefixes per node (got ${prefixes.length})`;
  for (const p of prefixes) {
    if (typeof p !== 'string' || p.length > maxLength) return `a watched prefix is a string of at most ${maxLength} characters`;
  }
  return null;
}

/** Entries under `prefixes` whose version's wall time is at or after `since` (and key after `after`). */
function localSince(entries: Iterable<Entry>, prefixes: readonly string[], since: number, after: string | null = null): Entry[] {
  const out: Entry[] = [];
  for (const e of entries) {
    if (hlcWall(e.version.ts) < since || (after !== null && e.key <= after) || !matches(prefixes, e.key)) continue;
    out.push(e);
  }
  return out;
}

function matches(prefixes: readonly string[], key: string): boolean {
  for (const p of prefixes) if (key.startsWith(p)) return true;
  return false;
}
