/**
 * A replica's side: it applies the owner's snapshot (`seg.install`, in parts; missing
 * parts are reported) and operations (`seg.ops`) strictly in seq order, buffering early
 * ones, fenced by the highest ballot it promised, and acknowledges cumulatively
 * (`seg.ack`). Holders of stale copies nudge the owner in their view (`seg.nudge`) and
 * drop their copy when that owner releases it (`seg.release`).
 */
import type { NodeId } from '../types';
import { assemble, compareBallots, missingParts, type Rep } from './copy';
import type { Ballot, SegMessage, SnapshotMessage } from './messages';
import type { SegParts, SegState } from './state';

export class Replica {
  constructor(
    private readonly s: SegState,
    private readonly parts: SegParts,
  ) {}

  /** Accepts ballot `b` (promising it when higher); answers a lower one with the ballot promised. */
  private fence(from: NodeId, rep: Rep, b: Ballot): boolean {
    const c = compareBallots(b, rep.promised);
    if (c < 0) {
      this.s.counters.add('fenced');
      this.s.send(from, { type: 'seg.ack', key: rep.key, b, seq: -1, ok: false, promised: rep.promised });
      return false;
    }
    if (c > 0) this.parts.takeover.promise(rep, b);
    return true;
  }

  onInstall(from: NodeId, m: SnapshotMessage<'seg.install'>): void {
    const s = this.s;
    // a queue past maxKeys is not acknowledged: the owner's quorum must not count this node
    if (!s.hasRoom(m.key)) return;
    const rep = s.reps.get(m.key) ?? s.newRep(m.key);
    if (!this.fence(from, rep, m.b)) return;
    if (compareBallots(rep.acc, m.b) === 0 && rep.seq >= m.seq) {
      s.send(from, { type: 'seg.ack', key: m.key, b: m.b, seq: rep.seq, ok: true });
      return;
    }
    rep.incoming = assemble(rep.incoming, m);
    if (rep.incoming.got < rep.incoming.parts.length) {
      const installed = compareBallots(rep.acc, m.b) === 0;
      s.send(from, { type: 'seg.ack', key: m.key, b: m.b, seq: installed ? rep.seq : -1, ok: true, snap: m.seq, missing: missingParts(rep.incoming) });
      return;
    }
    s.install(rep, rep.incoming);
    rep.acc = [m.b[0], m.b[1]];
    rep.seq = m.seq;
    rep.incoming = null;
    s.counters.add('snapshotsInstalled');
    this.drainBuffered(rep);
    s.send(from, { type: 'seg.ack', key: m.key, b: m.b, seq: rep.seq, ok: true });
  }

  onOps(from: NodeId, m: Extract<SegMessage, { type: 'seg.ops' }>): void {
    const s = this.s;
    if (!s.hasRoom(m.key)) return;
    const rep = s.reps.get(m.key) ?? s.newRep(m.key);
    if (!this.fence(from, rep, m.b)) return;
    const installed = compareBallots(rep.acc, m.b) === 0;
    for (let i = 0; i < m.ops.length; i++) {
      const seq = m.seq + i;
      if (installed && seq <= rep.seq) continue;
      if (installed && seq === rep.seq + 1) {
        s.apply(rep, m.ops[i]!);
        rep.seq = seq;
      } else if (rep.buffered.size < s.config.maxLog) rep.buffered.set(seq, m.ops[i]!);
    }
    if (installed) this.drainBuffered(rep);
    s.send(from, { type: 'seg.ack', key: m.key, b: m.b, seq: installed ? rep.seq : -1, ok: true });
  }

  private drainBuffered(rep: Rep): void {
    if (rep.buffered.size === 0) return;
    for (;;) {
      const op = rep.buffered.get(rep.seq + 1);
      if (!op) break;
      rep.buffered.delete(rep.seq + 1);
      this.s.apply(rep, op);
      rep.seq += 1;
    }
    for (const seq of rep.buffered.keys()) if (seq <= rep.seq) rep.buffered.delete(seq);
  }

  /** A holder says I own `key` (in its view): claim it if I do not serve it yet. */
  onNudge(from: NodeId, m: Extract<SegMessage, { type: 'seg.nudge' }>): void {
    const s = this.s;
    if (s.ownerOf(m.key) !== s.me) return; // the sender retries once our views agree
    const own = s.owns.get(m.key);
    if (!own) {
      if (s.hasRoom(m.key)) this.parts.takeover.beginClaim(m.key);
      return;
    }
    if (own.phase === 'active' && compareBallots(own.ballot, m.acc) > 0 && !own.replicas.has(from)) {
      own.holders.add(from);
      this.parts.replication.maybeRelease(own);
    }
  }

  onRelease(m: Extract<SegMessage, { type: 'seg.release' }>): void {
    const s = this.s;
    const rep = s.reps.get(m.key);
    if (!rep || s.owns.has(m.key)) return;
    if (compareBallots(m.b, rep.promised) < 0) return; // a newer claim is under way: my copy may matter
    if (compareBallots(rep.acc, m.b) >= 0) return; // I hold that state (or newer): I am a replica
    s.dropRep(m.key);
    s.counters.add('released');
  }
}
