/**
 * The active owner's log and its replication: each operation is applied to the owner's
 * copy and appended to the log at seq 1, 2, ... (`sequence`), streamed to the replicas
 * (`seg.ops`, batched) or sent as a snapshot to a replica the log no longer covers
 * (`seg.install`, in parts); replicas acknowledge cumulatively (`seg.ack`). An operation
 * is committed once `w` copies (owner included) have it: then its answer goes out.
 */
import type { NodeId } from '../types';
import { compareBallots, dkOf, type Rep } from './copy';
import { MAX_WIRE_OPS, type SegMessage, type SegOp } from './messages';
import type { Own, PendingReply, SegParts, SegState, Track } from './state';

export class Replication {
  constructor(
    private readonly s: SegState,
    private readonly parts: SegParts,
  ) {}

  /** Applies `op` on the owner's copy and appends it to the log; returns its seq. */
  sequence(own: Own, rep: Rep, op: SegOp, size: number): number {
    rep.seq += 1;
    this.s.apply(rep, op);
    own.log.push(op);
    own.logSize.push(size + 48);
    own.opSeq.set(dkOf(op.from, op.op), rep.seq);
    if (op.k !== 'take') own.itemSeq.set(op.id, rep.seq);
    this.s.dirtyOwns.add(own);
    this.advanceCommit(own);
    return rep.seq;
  }

  /** Moves the commit index to the `w`-th highest acknowledged seq and sends the answers it covers. */
  advanceCommit(own: Own): void {
    if (own.phase !== 'active') return;
    const rep = this.s.reps.get(own.key)!;
    const acks = [rep.seq];
    for (const t of own.replicas.values()) acks.push(t.acked);
    acks.sort((a, b) => b - a);
    const c = acks[Math.min(this.s.config.w, acks.length) - 1]!;
    if (c <= own.commit) return;
    own.commit = c;
    if (own.pending.length > 0) {
      const keep: PendingReply[] = [];
      for (const p of own.pending) {
        if (p.seq <= c) {
          own.pendingKeys.delete(p.key);
          this.s.send(p.to, p.msg);
        } else keep.push(p);
      }
      own.pending = keep;
    }
    for (const [k, seq] of own.opSeq) {
      if (seq > c) break;
      own.opSeq.delete(k);
    }
    for (const [k, seq] of own.itemSeq) {
      if (seq > c) break;
      own.itemSeq.delete(k);
    }
  }

  private truncateLog(own: Own): void {
    const rep = this.s.reps.get(own.key)!;
    let min = rep.seq;
    for (const t of own.replicas.values()) min = Math.min(min, t.acked);
    let drop = min - own.logStart + 1;
    drop = Math.max(drop, own.log.length - this.s.config.maxLog);
    if (drop <= 0) return;
    own.log.splice(0, drop);
    own.logSize.splice(0, drop);
    own.logStart += drop;
  }

  /** Stream new operations (or a snapshot) to every replica. */
  flush(own: Own): void {
    if (own.phase !== 'active') return;
    const rep = this.s.reps.get(own.key)!;
    for (const [node, t] of own.replicas) this.pushTo(own, rep, node, t, false);
    this.truncateLog(own);
  }

  private pushTo(own: Own, rep: Rep, node: NodeId, t: Track, resend: boolean): void {
    const s = this.s;
    if (resend) {
      if (t.acked + 1 < own.logStart) {
        if (s.now - t.snapAt >= t.snapWait) this.sendSnapshot(own, rep, node, t);
      } else this.sendOps(own, rep, node, t, t.acked + 1);
      t.lastResend = s.now;
      t.waitSince = s.now;
      s.counters.add('retransmits');
      return;
    }
    if (t.sentUpTo >= rep.seq) return;
    if (t.sentUpTo + 1 < own.logStart) {
      if (s.now - t.snapAt >= t.snapWait) this.sendSnapshot(own, rep, node, t);
      return;
    }
    if (t.acked >= t.sentUpTo) t.waitSince = s.now;
    this.sendOps(own, rep, node, t, t.sentUpTo + 1);
  }

  private sendOps(own: Own, rep: Rep, node: NodeId, t: Track, from: number): void {
    const c = this.s.config;
    let seq = from;
    while (seq <= rep.seq) {
      const start = seq - own.logStart;
      let end = start;
      let bytes = 0;
      while (end < own.log.length && end - start < Math.min(c.opsBatch, MAX_WIRE_OPS) && (end === start || bytes + own.logSize[end]! <= c.chunkBytes)) {
        bytes += own.logSize[end]!;
        end++;
      }
      if (end === start) break;
      this.s.send(node, { type: 'seg.ops', key: own.key, b: own.ballot, seq, ops: own.log.slice(start, end) });
      seq += end - start;
    }
    t.sentUpTo = Math.max(t.sentUpTo, rep.seq);
  }

  private sendSnapshot(own: Own, rep: Rep, node: NodeId, t: Track): void {
    const s = this.s;
    let snap = t.snap;
    if (!snap || snap.seq + 1 < own.logStart) {
      snap = t.snap = { seq: rep.seq, parts: s.snapshotParts(rep) };
      t.missing = null;
      s.counters.add('snapshotsBuilt');
    }
    const { seq, parts } = snap;
    const which = t.missing && t.missing.length > 0 ? t.missing : parts.map((_, i) => i);
    for (const i of which) {
      const p = parts[i];
      if (p) s.send(node, { type: 'seg.install', key: own.key, b: own.ballot, seq, part: i, parts: parts.length, lastId: rep.lastId, items: p.items, done: p.done });
    }
    t.sentUpTo = Math.max(t.sentUpTo, seq);
    t.snapAt = s.now;
    t.snapWait = s.config.retryIntervalMs;
    t.waitSince = s.now;
    s.counters.add('snapshotsSent');
  }

  onAck(from: NodeId, m: Extract<SegMessage, { type: 'seg.ack' }>): void {
    const s = this.s;
    const own = s.owns.get(m.key);
    if (!own || own.phase !== 'active' || compareBallots(own.ballot, m.b) !== 0) {
      s.counters.add('lateAcks');
      return;
    }
    if (!m.ok) {
      if (m.promised && compareBallots(m.promised, own.ballot) > 0) this.parts.takeover.lostBallot(own, m.promised);
      return;
    }
    const t = own.replicas.get(from);
    if (!t) return;
    const rep = s.reps.get(m.key)!;
    const seq = Math.min(m.seq, rep.seq);
    if (typeof m.snap === 'number') {
      // progress report on a snapshot transfer
      if (t.snap && m.snap === t.snap.seq && m.missing) {
        t.missing = m.missing;
        t.waitSince = s.now;
      }
      if (seq <= t.acked) return;
    }
    if (seq > t.acked) {
      t.acked = seq;
      t.waitSince = s.now;
      if (t.sentUpTo < seq) t.sentUpTo = seq;
      if (t.snap && seq >= t.snap.seq) t.snap = null;
      this.advanceCommit(own);
      this.truncateLog(own);
      this.maybeRelease(own);
    } else if (seq < t.acked) {
      // Usually an acknowledgement overtaken by a newer one; or the replica restarted from a
      // disk that missed the last writes. Either way resend from there if nothing better
      // arrives within `retransmitMs` (the commit index never goes back).
      if (seq === -1) {
        if (s.now - t.snapAt < t.snapWait) return; // the snapshot is on its way
        t.sentUpTo = -1;
        s.dirtyOwns.add(own);
      }
      t.acked = seq;
    }
  }

  /** The preference list changed under an active owner: track the new replicas, release the old ones. */
  updateReplicas(own: Own, pref: readonly NodeId[]): void {
    const s = this.s;
    const want = new Set(pref.filter((n) => n !== s.me));
    for (const n of [...own.replicas.keys()]) {
      if (want.has(n)) continue;
      own.replicas.delete(n);
      if (s.placement.has(n)) own.holders.add(n);
    }
    for (const n of want) {
      if (!own.replicas.has(n)) own.replicas.set(n, this.newTrack());
      own.holders.delete(n);
    }
    s.dirtyOwns.add(own);
    this.advanceCommit(own);
    this.maybeRelease(own);
  }

  newTrack(): Track {
    return { acked: -1, sentUpTo: -1, waitSince: this.s.now, lastResend: -Infinity, snapAt: -Infinity, snapWait: 0, snap: null, missing: null };
  }

  /** Once every replica holds this ballot's state, nodes with stale copies may drop theirs. */
  maybeRelease(own: Own): void {
    if (own.holders.size === 0 || own.phase !== 'active') return;
    for (const t of own.replicas.values()) if (t.acked < 0) return;
    for (const h of own.holders) if (this.s.placement.has(h)) this.s.send(h, { type: 'seg.release', key: own.key, b: own.ballot });
    own.holders.clear();
  }

  /** Replicas still owe acknowledgements (the tick keeps running). */
  behind(own: Own): boolean {
    const rep = this.s.reps.get(own.key)!;
    for (const t of own.replicas.values()) if (t.acked < rep.seq) return true;
    return false;
  }

  /** Periodic, on an active owner: retransmit to lagging replicas, release stale copies, forget waiters not refreshed. */
  tick(own: Own): void {
    const s = this.s;
    const c = s.config;
    const rep = s.reps.get(own.key)!;
    for (const [n, t] of own.replicas) {
      if (t.acked < rep.seq && s.now - t.waitSince >= c.retransmitMs && s.now - t.lastResend >= c.retransmitMs) this.pushTo(own, rep, n, t, true);
    }
    this.maybeRelease(own);
    for (const [dk, w] of own.waiters) {
      if (s.now - w.refreshed >= 3 * c.keepaliveMs) {
        own.waiters.delete(dk);
        s.counters.add('waitersExpired');
      }
    }
  }
}
