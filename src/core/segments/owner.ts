/**
 * The owner's side of client requests: the first live node of a key's preference list
 * (in its view) executes every request on the key in one order, deciding ids and which
 * item a take gets; a retried request is answered from the request table. Answers go out
 * once the operation is committed (on `w` copies). Requests arriving during a takeover
 * are queued; peeks and takes with no matching item wait, registered here.
 */
import { checkValue } from '../data-protocol';
import type { NodeId } from '../types';
import { dkOf, firstAfter, type Done, type Item, type Rep } from './copy';
import type { SegMessage } from './messages';
import type { Own, ReqMsg, SegParts, SegState } from './state';

export class OwnerRequests {
  constructor(
    private readonly s: SegState,
    private readonly parts: SegParts,
  ) {}

  onReq(from: NodeId, m: ReqMsg): void {
    const s = this.s;
    const owner = s.ownerOf(m.key);
    if (owner !== s.me) {
      s.send(from, { type: 'seg.redirect', op: m.op, owner });
      return;
    }
    if (!s.owns.has(m.key) && !s.hasRoom(m.key)) {
      s.send(from, { type: 'seg.reply', op: m.op, ok: false, error: keyCapError(m.key, s.config.maxKeys) });
      return;
    }
    const own = s.owns.get(m.key) ?? this.parts.takeover.beginClaim(m.key);
    if (own.phase !== 'active') {
      this.enqueue(own, from, m);
      return;
    }
    this.execute(own, from, m);
  }

  private enqueue(own: Own, from: NodeId, m: ReqMsg): void {
    const s = this.s;
    const dk = dkOf(from, m.op);
    const q = own.queued.get(dk);
    if (q) q.at = s.now;
    else if (own.queued.size >= s.config.maxWaiters) {
      s.send(from, { type: 'seg.reply', op: m.op, ok: false, error: `segment '${m.key}' is busy: too many requests waiting for its owner` });
      return;
    } else own.queued.set(dk, { from, msg: m, at: s.now });
    if (m.kind === 'peek' || m.kind === 'take') s.send(from, { type: 'seg.wait', op: m.op });
  }

  /** Runs a request on an active owner. */
  execute(own: Own, from: NodeId, m: ReqMsg): void {
    const s = this.s;
    const c = s.config;
    const rep = s.reps.get(own.key)!;
    const dk = dkOf(from, m.op);
    const done = rep.done.get(dk);
    if (done) {
      s.counters.add('dedupHits');
      this.replyDone(own, from, m.op, dk, done);
      return;
    }
    switch (m.kind) {
      case 'put':
      case 'update': {
        const v = checkValue(m.value, c.sizeOf, c.maxValueBytes);
        if (!v.ok) {
          const error =
            v.problem === 'undefined'
              ? `value for segment '${own.key}' is undefined`
              : v.problem === 'unstorable'
                ? `value for segment '${own.key}' cannot be stored: ${v.reason}`
                : `value of ${v.bytes} bytes for segment '${own.key}' exceeds the ${c.maxValueBytes}-byte limit`;
          s.send(from, { type: 'seg.reply', op: m.op, ok: false, error });
          return;
        }
        if (m.kind === 'put' && rep.items.length >= c.maxItems) {
          s.send(from, { type: 'seg.reply', op: m.op, ok: false, error: `segment '${own.key}' is full (${c.maxItems} items)` });
          return;
        }
        const id = rep.lastId + 1;
        const rm = m.kind === 'update' && rep.items.length > 0 ? rep.items[0]!.id : null;
        const seq = this.parts.replication.sequence(own, rep, { k: 'put', id, value: m.value, rm, from, op: m.op, t: s.now }, v.bytes);
        this.schedule(own, seq, from, m.op, { type: 'seg.reply', op: m.op, ok: true, id });
        this.serveWaiters(own, rep);
        return;
      }
      case 'peek':
      case 'take': {
        const w = own.waiters.get(dk);
        if (w) {
          w.refreshed = s.now;
          s.send(from, { type: 'seg.wait', op: m.op });
          return;
        }
        const afterId = m.afterId ?? 0;
        const i = firstAfter(rep.items, afterId);
        if (i < rep.items.length) {
          this.serve(own, rep, from, m.op, m.kind, rep.items[i]!);
          return;
        }
        if (own.waiters.size >= c.maxWaiters) {
          s.send(from, { type: 'seg.reply', op: m.op, ok: false, error: `segment '${own.key}' has too many waiting calls (${c.maxWaiters})` });
          return;
        }
        own.waiters.set(dk, { from, op: m.op, kind: m.kind, afterId, refreshed: s.now });
        s.changed.add(own.key);
        s.send(from, { type: 'seg.wait', op: m.op });
        return;
      }
      case 'restore': {
        const t = rep.done.get(dkOf(from, m.of ?? -1));
        if (!t || t.kind !== 1 || t.restored || t.id !== m.id) {
          s.counters.add('restoreNoop');
          s.send(from, { type: 'seg.reply', op: m.op, ok: false, error: 'nothing to restore' });
          return;
        }
        const seq = this.parts.replication.sequence(own, rep, { k: 'restore', id: t.id, value: t.value, of: m.of!, from, op: m.op, t: s.now }, s.size(t.value));
        this.schedule(own, seq, from, m.op, { type: 'seg.reply', op: m.op, ok: true, id: t.id });
        this.serveWaiters(own, rep);
        return;
      }
    }
  }

  /** Answer a retried request from its remembered result (once that result is committed). */
  private replyDone(own: Own, to: NodeId, op: number, dk: string, d: Done): void {
    const seq = own.opSeq.get(dk) ?? 0;
    const msg: SegMessage =
      d.kind === 1 ? { type: 'seg.reply', op, ok: true, id: d.id, value: d.value } : { type: 'seg.reply', op, ok: true, id: d.id };
    this.schedule(own, seq, to, op, msg);
  }

  private serve(own: Own, rep: Rep, to: NodeId, op: number, kind: 'peek' | 'take', item: Item): void {
    if (kind === 'peek') {
      this.schedule(own, own.itemSeq.get(item.id) ?? 0, to, op, { type: 'seg.reply', op, ok: true, id: item.id, value: item.value });
      return;
    }
    const seq = this.parts.replication.sequence(own, rep, { k: 'take', id: item.id, from: to, op, t: this.s.now }, 16);
    this.schedule(own, seq, to, op, { type: 'seg.reply', op, ok: true, id: item.id, value: item.value });
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
        if (w.from !== this.s.me && !this.s.placement.has(w.from)) {
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
      this.s.send(to, msg);
      return;
    }
    own.pendingKeys.add(pk);
    own.pending.push({ seq, to, key: pk, msg });
  }

  onCancel(from: NodeId, m: Extract<SegMessage, { type: 'seg.cancel' }>): void {
    const s = this.s;
    let own = s.owns.get(m.key);
    if (!own) {
      const owner = s.ownerOf(m.key);
      if (owner !== s.me) {
        s.send(from, { type: 'seg.redirect', op: m.op, owner });
        return;
      }
      if (!s.hasRoom(m.key)) {
        s.send(from, { type: 'seg.reply', op: m.op, ok: false, error: keyCapError(m.key, s.config.maxKeys) });
        return;
      }
      own = this.parts.takeover.beginClaim(m.key);
    }
    const dk = dkOf(from, m.op);
    if (own.waiters.delete(dk) || own.queued.delete(dk)) {
      s.changed.add(m.key);
      s.send(from, { type: 'seg.reply', op: m.op, ok: false, error: 'cancelled' });
      return;
    }
    if (own.phase !== 'active') return; // cannot tell yet whether it was taken; the coordinator asks again
    const rep = s.reps.get(m.key)!;
    const d = rep.done.get(dk);
    if (d && d.kind === 1) {
      this.replyDone(own, from, m.op, dk, d);
      return;
    }
    if (own.pendingKeys.has(dk)) return; // a peek answer is on its way
    s.send(from, { type: 'seg.reply', op: m.op, ok: false, error: 'cancelled' });
  }
}

function keyCapError(key: string, max: number): string {
  return `segment '${key}': this node already holds ${max} segments, its limit`;
}
