/**
 * Client requests, on the node where they are made (any node coordinates): writes
 * (`put`, `delete`) stamped with this node's HLC and acknowledged at W with hinted
 * handoff after `hintAfterMs`; quorum reads (`get`, `inspect`) with read repair; the
 * cluster-wide `keys` listing. Every request gets exactly one reply.
 */
import { checkValue, keyProblem } from '../data-protocol';
import type { NodeId, Seal } from '../types';
import type { ListItem } from './messages';
import { isHead, showKey, tupleBytes, type Head, type ListOp, type ReadOp, type WriteOp } from './ops';
import type { KvState } from './state';
import { compareVersions, type Entry, type KvInspected } from './types';

/** Least a read waits for the other replicas after its first copy arrived (see onGetReply). */
export const HEDGE_MIN_MS = 50;

export class Requests {
  constructor(
    private readonly s: KvState,
    /** A write this node coordinates reached its quorum (watch notifications go out). */
    private readonly acknowledged: (entry: Entry) => void = () => {},
  ) {}

  // ---- replies ----------------------------------------------------------------------

  private ok(req: number, value?: unknown): void {
    this.s.io.reply(req, value);
    this.s.counters.add('requestsOk');
  }

  private fail(req: number, error: string): void {
    this.s.io.fail(req, error);
    this.s.counters.add('requestsFailed');
  }

  private keyError(verb: string, key: unknown): string | null {
    const max = this.s.config.maxKeyLength;
    const p = keyProblem(key, max);
    return p && `${verb}: key must be a non-empty string of at most ${max} characters (got ${p.got})`;
  }

  // ---- writes -------------------------------------------------------------------------

  write(req: number, verb: 'put' | 'delete', key: string, value: unknown): void {
    const s = this.s;
    const c = s.config;
    s.requests.add(verb);
    const keyError = this.keyError(verb, key);
    if (keyError) return this.fail(req, keyError);
    let size = 1;
    if (verb === 'put') {
      const v = checkValue(value, c.sizeOf, c.maxValueBytes);
      if (!v.ok) {
        if (v.problem === 'undefined') return this.fail(req, `put ${showKey(key)}: value is undefined (use delete to remove a key)`);
        if (v.problem === 'unstorable') return this.fail(req, `put ${showKey(key)}: value cannot be stored: ${v.reason}`);
        return this.fail(req, `put ${showKey(key)}: value is ${v.bytes} bytes; the limit is ${c.maxValueBytes} bytes`);
      }
      size = v.bytes;
    }
    // the new version must beat the local copy even if our wall clock is behind its writer's
    const cur = s.data.get(key);
    if (cur) s.observe(cur.version.ts);
    const pref = s.prefOf(key);
    if (!cur && pref.includes(s.me) && !s.hasRoom(key)) return this.fail(req, `${verb} ${showKey(key)}: this node already stores ${c.maxKeys} keys, its limit`);
    const entry: Entry = { key, value: verb === 'put' ? value : null, version: { ts: s.stamp(), node: s.me }, deleted: verb === 'delete' };
    const bytes = size + tupleBytes(key);
    const w: WriteOp = {
      kind: 'write',
      req,
      verb,
      entry,
      pref,
      // fewer live nodes than W: the quorum is every replica there is (documented in README)
      quorum: s.placement.quorum(s.quorums.w, pref),
      deadline: s.now + c.requestTimeoutMs,
      asked: new Set(pref),
      acked: new Set(),
      standIns: new Map(),
      replied: false,
      sealing: false,
      bytes,
    };
    const op = s.newOp(w);
    if (c.sealWrites) {
      // nothing goes anywhere before the writer's seal is on the entry (sealed())
      w.sealing = true;
      s.io.event({ type: 'sealEntry', op, entry });
      return;
    }
    this.startWrite(op, w);
  }

  /** The runtime's seal for write `op` (KvConfig.sealWrites): the write starts now. */
  sealed(op: number, seal: Seal): void {
    const w = this.s.ops.get(op);
    if (w?.kind !== 'write' || !w.sealing) return;
    w.sealing = false;
    w.entry.seal = seal;
    // the replicas get the whole request timeout from now: a burst of writes waits for
    // its signatures first (the timer armed at the start then finds the deadline ahead)
    w.deadline = this.s.now + this.s.config.requestTimeoutMs;
    this.s.outbox.arm('kv.opTimeout', this.s.config.requestTimeoutMs, op);
    this.startWrite(op, w);
  }

  private startWrite(op: number, w: WriteOp): void {
    const s = this.s;
    const c = s.config;
    const bytes = w.bytes;
    for (const p of w.pref) {
      if (p === s.me) {
        s.applyEntries([w.entry], false);
        w.acked.add(p);
      } else s.outbox.put(p, op, w.entry, null, bytes);
    }
    if (c.hintAfterMs < c.requestTimeoutMs && w.pref.length > 1) s.outbox.arm('kv.hint', c.hintAfterMs, op);
    this.checkWrite(op, w);
  }

  onPutAck(from: NodeId, op: number, w: WriteOp): boolean {
    if (!w.asked.has(from)) return false;
    // answer time of a replica asked at the start (a stand-in was asked later)
    if (!w.acked.has(from) && w.pref.includes(from)) this.s.noteAnswer(this.s.now - (w.deadline - this.s.config.requestTimeoutMs));
    w.acked.add(from);
    this.checkWrite(op, w);
    return true;
  }

  private checkWrite(op: number, w: WriteOp): void {
    if (!w.replied && w.acked.size >= w.quorum) {
      w.replied = true;
      this.ok(w.req);
      this.acknowledged(w.entry);
    }
    // kept open after the reply until every replica (or its stand-in) has the write
    const covered = w.pref.every((p) => w.acked.has(p) || w.acked.has(w.standIns.get(p) ?? ''));
    if (covered) this.s.ops.delete(op);
  }

  /**
   * Write, `hintAfterMs` into it: preference nodes (or their stand-ins) still silent get
   * the next node on the ring (hinted handoff). A stand-in stores a copy it must hand back,
   * so writes do not speculate: a replica slow under load must not spread copies everywhere.
   * Read, replicas late (`lateAfter()`, measured, at most `hintAfterMs`): stop waiting for
   * the silent ones (see checkRead) and ask the next nodes on the ring as well, which hold
   * the key if it was re-replicated or hinted there; later, at `hintAfterMs`, patience is over.
   */
  onHint(op: number): void {
    const s = this.s;
    const w = s.ops.get(op);
    if (w?.kind === 'read') {
      const patience = Math.min(s.config.hintAfterMs, s.config.requestTimeoutMs);
      const waited = s.now - w.started;
      // a silent replica that answered other requests since this read started, and within
      // lateAfter(), is alive and busy (a bulk read queues thousands of keys at each replica):
      // look again later rather than re-ask it and others, which only adds work where there
      // is too much already
      const lateAfter = s.lateAfter();
      const busy = (p: NodeId) => p !== s.me && !w.answers.has(p) && !s.placement.isAway(p) && s.heardSince(p, Math.max(w.started + 1, s.now - lateAfter));
      if (!w.late && !w.replied && waited < patience && w.pref.some(busy)) {
        s.counters.add('readsWaitedForBusy');
        s.outbox.arm('kv.hint', Math.min(lateAfter, patience - waited), op);
        return this.checkRead(op, w);
      }
      if (!w.late) {
        w.late = true;
        if (!w.replied) this.askFurther(op, w);
      } else if (!w.replied) this.askEntryElsewhere(op, w);
      if (waited >= patience) w.patienceOver = true;
      else if (!w.patienceArmed) {
        w.patienceArmed = true;
        s.outbox.arm('kv.hint', patience - waited, op);
      }
      return this.checkRead(op, w);
    }
    if (!w || w.kind !== 'write') return;
    const silent = w.pref.filter((p) => !w.acked.has(p) && !w.acked.has(w.standIns.get(p) ?? ''));
    const fallbacks = s.placement.walk(w.entry.key).filter((f) => !w.asked.has(f));
    for (const p of silent) {
      const f = fallbacks.shift();
      if (f === undefined) break;
      w.asked.add(f);
      w.standIns.set(p, f);
      s.counters.add('hintedWrites');
      if (f === s.me) {
        s.applyEntries([w.entry], false);
        w.acked.add(f);
      } else s.outbox.put(f, op, w.entry, p, s.valueSize(w.entry));
    }
    if (s.now + s.config.hintAfterMs < w.deadline) s.outbox.arm('kv.hint', s.config.hintAfterMs, op);
    this.checkWrite(op, w);
  }

  // ---- reads --------------------------------------------------------------------------

  read(req: number, key: string, inspect: boolean): void {
    const s = this.s;
    s.requests.add(inspect ? 'inspect' : 'get');
    const keyError = this.keyError(inspect ? 'inspect' : 'get', key);
    if (keyError) return this.fail(req, keyError);
    const pref = s.prefOf(key);
    const quorum = s.placement.quorum(s.quorums.r, pref);
    const r: ReadOp = {
      kind: 'read',
      req,
      inspect,
      key,
      pref,
      asked: new Set(pref),
      quorum,
      answers: new Map(),
      gone: new Set(pref.filter((p) => p !== s.me && !s.placement.isAway(p) && s.unresponsive(p))),
      full: undefined,
      fetching: new Set(),
      started: s.now,
      late: false,
      patienceOver: false,
      patienceArmed: false,
      hedged: false,
      replied: false,
    };
    const op = s.newOp(r);
    // digest reads: the entry from one replica (none when this node holds a copy), only the
    // version from the others; checkRead fetches the entry from whoever shows a newer one
    const local = pref.includes(s.me) ? s.data.get(key) : undefined;
    // the entry from the replica heard from last (a crashed one is not, and is not known dead for seconds)
    if (!local) {
      const others = pref.filter((p) => p !== s.me);
      const there = others.filter((p) => !s.placement.isAway(p) && !r.gone.has(p));
      if (others.length > 0) r.full = this.heardLast(there.length > 0 ? there : others);
    }
    for (const p of pref) {
      if (p === s.me) r.answers.set(p, local ?? null);
      else if (p === r.full || !s.config.headReads) s.outbox.get(p, op, key);
      else s.outbox.head(p, op, key);
    }
    if (pref.length > 1) s.outbox.arm('kv.hint', Math.min(s.lateAfter(), s.config.requestTimeoutMs), op);
    this.checkRead(op, r);
  }

  /**
   * Speculative retry: as many nodes after the preference list as answers are missing for
   * R; and, while no copy was found, the suspects (a live tab suspected under load keeps
   * its copies, and the key's new owners may not have it yet).
   */
  private askFurther(op: number, r: ReadOp): void {
    const s = this.s;
    this.askEntryElsewhere(op, r);
    // once more to the silent replicas: the first request may have been lost on a route
    // through a tab that has just crashed
    for (const p of r.pref) {
      if (p === s.me || r.answers.has(p) || s.placement.isAway(p)) continue;
      s.counters.add('readRetries');
      s.outbox.get(p, op, r.key);
    }
    if (tally(r).found === 0) {
      for (const x of s.suspects) {
        if (r.asked.has(x)) continue;
        r.asked.add(x);
        s.counters.add('speculativeReads');
        s.outbox.get(x, op, r.key);
      }
    }
    let missing = r.quorum - r.answers.size;
    if (missing <= 0) return;
    for (const f of s.placement.walk(r.key)) {
      if (missing <= 0) break;
      if (r.asked.has(f)) continue;
      r.asked.add(f);
      missing--;
      s.counters.add('speculativeReads');
      if (f === s.me) r.answers.set(f, s.data.get(r.key) ?? null);
      else s.outbox.get(f, op, r.key);
    }
  }

  onGetReply(from: NodeId, op: number, r: ReadOp, entry: Entry | null): boolean {
    if (entry && entry.key !== r.key) return false;
    // the entry of a replica that answered a head read with a newer version (checkRead)
    if (r.fetching.delete(from)) {
      if (entry && !this.s.acceptable(entry.version.ts)) entry = null;
      r.answers.set(from, entry);
      this.checkRead(op, r);
      return true;
    }
    return this.answered(from, op, r, entry);
  }

  /** A replica's version of the key (a head read), or null when it does not hold it. */
  onHeadReply(from: NodeId, op: number, r: ReadOp, head: Head | null): boolean {
    return this.answered(from, op, r, head);
  }

  private answered(from: NodeId, op: number, r: ReadOp, entry: Entry | Head | null): boolean {
    if (!r.asked.has(from) || r.answers.has(from)) return false;
    const elapsed = this.s.now - r.started;
    if (r.pref.includes(from)) this.s.noteAnswer(elapsed);
    // a far-future answer counts as "not found": it must not be returned nor read-repaired
    if (entry && !this.s.acceptable(entry.version.ts)) entry = null;
    if (entry) this.s.observe(entry.version.ts);
    r.answers.set(from, entry);
    this.checkRead(op, r);
    // the first copy sets the pace: replicas under the same load answer about as fast, so a
    // replica still silent after twice this (at least HEDGE_MIN_MS) is late for this read
    if (entry && !r.hedged && !r.late && !r.replied) {
      r.hedged = true;
      const wait = Math.max(HEDGE_MIN_MS, elapsed);
      if (elapsed + wait < this.s.lateAfter()) this.s.outbox.arm('kv.hint', wait, op);
    }
    return true;
  }

  /**
   * "Not found" answers do not count toward R at first (Riak's notfound_ok = false): right
   * after a membership change new owners may not have received a key yet, so the read waits
   * for R replicas that have it, or for every replica. Once replicas are late
   * (`lateAfter()`: twice the slowest recent answer, at most `hintAfterMs`), a copy of the
   * key in hand will do (a crashed replica is not known dead for seconds; the newest copy
   * among those that answered is returned, and read repair brings the others up to it);
   * after `hintAfterMs`, R answers of the preference list of any kind.
   */
  private checkRead(op: number, r: ReadOp): void {
    const { found, prefAnswers } = tally(r);
    // `there`: replicas not known to be away; `reachable`: of those, not unresponsive at the
    // start. With a copy in hand, answers from every reachable replica will do (a read does
    // not wait on the dead); an absent key still needs every replica there, or patience.
    let there = 0;
    let reachable = 0;
    for (const p of r.pref) {
      if (this.s.placement.isAway(p) && !r.answers.has(p)) continue;
      there++;
      if (!r.gone.has(p) || r.answers.has(p)) reachable++;
    }
    const enough = found >= r.quorum || prefAnswers >= there || (found > 0 && prefAnswers >= reachable) || (r.late && found > 0) || (r.patienceOver && prefAnswers >= r.quorum);
    if (!r.replied && enough) {
      // the newest version is known only from a head: its entry first (once the replica
      // asked for the entry has answered, or is late: it usually sends that very version)
      const gap = missingNewest(r);
      const awaited = r.full !== undefined && !r.answers.has(r.full) && !r.late;
      if (gap.length === 0) {
        if (found < r.quorum && prefAnswers < there) this.s.counters.add('readsWithoutQuorum');
        this.replyNewest(r);
      } else if (!awaited && ![...r.fetching].some((f) => gap.includes(f))) this.askEntry(op, r, this.heardLast(gap));
    }
    if (r.answers.size >= r.asked.size && r.fetching.size === 0) {
      this.readRepair(r);
      this.s.ops.delete(op);
    }
  }

  /**
   * Ask `node`, which answered a head read with a version newer than every entry in hand,
   * for its entry; if it stays silent past lateAfter(), the read's timer asks the others
   * that showed that version (askEntryElsewhere).
   */
  private askEntry(op: number, r: ReadOp, node: NodeId): void {
    r.fetching.add(node);
    this.s.counters.add('headFetches');
    this.s.outbox.get(node, op, r.key);
    this.s.outbox.arm('kv.hint', this.s.lateAfter(), op);
  }

  /** The newest entry was asked for and is late: ask the other replicas that showed it too. */
  private askEntryElsewhere(op: number, r: ReadOp): void {
    if (r.fetching.size > 0) for (const g of missingNewest(r)) if (!r.fetching.has(g)) this.askEntry(op, r, g);
  }

  /** The node of `nodes` (not empty) that sent this node a KV message last; the first when none did. */
  private heardLast(nodes: readonly NodeId[]): NodeId {
    let best = nodes[0]!;
    for (const n of nodes) if ((this.s.heardAt.get(n) ?? -1) > (this.s.heardAt.get(best) ?? -1)) best = n;
    return best;
  }

  /** Replies with the newest entry in hand (checkRead made sure no head is newer). */
  private replyNewest(r: ReadOp): void {
    r.replied = true;
    const newest = newestOf(r.answers.values());
    const value = newest && !newest.deleted ? newest.value : undefined;
    if (!r.inspect) return this.ok(r.req, value);
    const inspected: KvInspected | undefined = value === undefined ? undefined : { value, version: { ts: newest!.version.ts, node: newest!.version.node } };
    this.ok(r.req, inspected);
  }

  /** Send the newest version to every answering replica that had an older one or none. */
  private readRepair(r: ReadOp): void {
    const s = this.s;
    const newest = newestOf(r.answers.values());
    if (!newest) return;
    for (const [node, e] of r.answers) {
      // a head as new as the entry holds it too; one newer (its entry never came) needs nothing
      if (e && compareVersions(e.version, newest.version) >= 0) continue;
      // a node asked beyond the preference list does not own the key: nothing to repair there
      if (!r.pref.includes(node)) continue;
      s.counters.add('readRepairs');
      if (node === s.me) s.applyEntries([newest], false);
      // op 0 is never allocated: the ack is dropped as a late reply
      else s.outbox.put(node, 0, newest, null, s.valueSize(newest));
    }
  }

  // ---- listing ------------------------------------------------------------------------

  list(req: number, prefix: string): void {
    const s = this.s;
    s.requests.add('keys');
    if (typeof prefix !== 'string' || prefix.length > s.config.maxKeyLength) {
      return this.fail(req, `keys: prefix must be a string of at most ${s.config.maxKeyLength} characters`);
    }
    const l: ListOp = {
      kind: 'list',
      req,
      prefix,
      asked: new Set(s.placement.set()),
      answered: new Set([s.me]),
      items: new Map(),
      groups: s.placement.groups(),
    };
    for (const e of s.data.values()) if (e.key.startsWith(prefix)) l.items.set(e.key, [e.key, e.version.ts, e.version.node, e.deleted ? 1 : 0]);
    const op = s.newOp(l);
    for (const m of l.asked) if (m !== s.me) s.send(m, { type: 'kv.list', op, prefix, after: null });
    this.checkList(op, l);
  }

  onListReply(from: NodeId, op: number, l: ListOp, items: ListItem[], more: boolean): boolean {
    if (!l.asked.has(from) || l.answered.has(from)) return false;
    let last: string | null = null;
    for (const it of items) {
      if (!it[0].startsWith(l.prefix)) continue;
      last = it[0];
      const cur = l.items.get(it[0]);
      if (!cur || compareVersions({ ts: cur[1], node: cur[2] }, { ts: it[1], node: it[2] }) < 0) l.items.set(it[0], it);
    }
    if (more && last !== null) this.s.send(from, { type: 'kv.list', op, prefix: l.prefix, after: last });
    else l.answered.add(from);
    this.checkList(op, l);
    return true;
  }

  /** Done when every replica group of the ring has R (or all its) members answered. */
  private checkList(op: number, l: ListOp): void {
    const s = this.s;
    if (l.items.size > s.config.maxListKeys) {
      s.ops.delete(op);
      return this.fail(l.req, `keys ${showKey(l.prefix)}: more than ${s.config.maxListKeys} keys match; use a longer prefix`);
    }
    const covered = l.groups.every((group) => {
      let n = 0;
      for (const m of group) if (l.answered.has(m)) n++;
      return n >= s.placement.quorum(s.quorums.r, group);
    });
    if (!covered) return;
    s.ops.delete(op);
    const keys: string[] = [];
    for (const it of l.items.values()) if (it[3] === 0) keys.push(it[0]);
    this.ok(l.req, keys.sort());
  }

  // ---- timeouts -----------------------------------------------------------------------

  /** The operation's `requestTimeoutMs` is over (it was removed from the open operations). */
  timeout(op: WriteOp | ReadOp | ListOp): void {
    const s = this.s;
    const t = s.config.requestTimeoutMs;
    const liveNote = `(live nodes: ${s.placement.size})`;
    switch (op.kind) {
      case 'write':
        if (!op.replied) {
          this.fail(op.req, `${op.verb} ${showKey(op.entry.key)}: only ${op.acked.size} of ${op.quorum} required replicas acknowledged within ${t} ms ${liveNote}`);
        }
        return;
      case 'read':
        // a copy from anyone, or R answers of the preference list (nodes asked beyond it may
        // simply not have the key yet: their "not found" must not make an absent answer)
        if (!op.replied) {
          const { found, prefAnswers } = tally(op);
          const gap = missingNewest(op);
          if (gap.length > 0) this.fail(op.req, `${op.inspect ? 'inspect' : 'get'} ${showKey(op.key)}: ${gap[0]} holds a newer version than the copies received, and did not send it within ${t} ms ${liveNote}`);
          else if (found > 0 || prefAnswers >= op.quorum) this.replyNewest(op);
          else this.fail(op.req, `${op.inspect ? 'inspect' : 'get'} ${showKey(op.key)}: only ${prefAnswers} of ${op.quorum} required replicas answered within ${t} ms ${liveNote}`);
        }
        this.readRepair(op);
        return;
      case 'list':
        this.fail(
          op.req,
          `keys ${showKey(op.prefix)}: only ${op.answered.size} of ${op.asked.size} nodes answered within ${t} ms, so some key ranges did not reach their read quorum of ${s.quorums.r} ${liveNote}`,
        );
        return;
    }
  }
}

/** A read's answers: how many hold the key (from anyone asked), how many came from its preference list. */
function tally(r: ReadOp): { found: number; prefAnswers: number } {
  let found = 0;
  let prefAnswers = 0;
  for (const [node, e] of r.answers) {
    if (e) found++;
    if (r.pref.includes(node)) prefAnswers++;
  }
  return { found, prefAnswers };
}

/** The newest entry among the answers (heads left out). */
function newestOf(answers: Iterable<Entry | Head | null>): Entry | null {
  let best: Entry | null = null;
  for (const e of answers) if (e && !isHead(e) && (!best || compareVersions(best.version, e.version) < 0)) best = e;
  return best;
}

/** The nodes whose head is newer than every entry among the answers (they hold the newest version); empty when none. */
function missingNewest(r: ReadOp): NodeId[] {
  const entry = newestOf(r.answers.values());
  let top: Head | null = null;
  for (const a of r.answers.values()) if (a && isHead(a) && (!entry || compareVersions(entry.version, a.version) < 0) && (!top || compareVersions(top.version, a.version) < 0)) top = a;
  if (!top) return [];
  const out: NodeId[] = [];
  for (const [node, a] of r.answers) if (a && isHead(a) && compareVersions(a.version, top.version) === 0) out.push(node);
  return out;
}
