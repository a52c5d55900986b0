/**
 * Bookkeeping for handoff and re-replication: which keys still have to be offered to
 * which node, which nodes have one batch in flight, and, for keys this node holds
 * without owning them, which owners confirmed they hold the version (the condition for
 * dropping the local copy). Pure data; KvStore drives it.
 */
import type { NodeId } from '../types';
import { compareVersions, type Version } from './types';

export class HandoffQueue {
  /** target -> keys to offer it, in insertion order. */
  private readonly pending = new Map<NodeId, Set<string>>();
  private readonly inflight = new Set<NodeId>();
  /** Target -> earliest time for its next batch (after a batch that made no progress). */
  private readonly retryAt = new Map<NodeId, number>();
  /** Non-owned key -> owner -> the version it confirmed holding (at least). */
  private readonly confirmed = new Map<string, Map<NodeId, Version>>();

  add(target: NodeId, key: string): void {
    let set = this.pending.get(target);
    if (!set) this.pending.set(target, (set = new Set()));
    set.add(key);
  }

  done(target: NodeId, key: string): void {
    const set = this.pending.get(target);
    if (!set) return;
    set.delete(key);
    if (set.size === 0) this.pending.delete(target);
  }

  /** Move a pending key to the back of its target's queue (so it cannot starve the others). */
  requeue(target: NodeId, key: string): void {
    const set = this.pending.get(target);
    if (!set?.delete(key)) return;
    set.add(key);
  }

  /** Targets that can take a batch now, with their pending keys (mutable: the caller prunes). */
  *ready(now: number): Generator<[NodeId, Set<string>]> {
    for (const [target, keys] of this.pending) {
      if (this.inflight.has(target) || (this.retryAt.get(target) ?? 0) > now) continue;
      yield [target, keys];
    }
  }

  pruneEmpty(): void {
    for (const [target, keys] of this.pending) if (keys.size === 0) this.pending.delete(target);
  }

  begin(target: NodeId): void {
    this.inflight.add(target);
  }

  /** A batch finished; without progress, wait `retryDelay` before the next one. */
  end(target: NodeId, progressed: boolean, now: number, retryDelay: number): void {
    this.inflight.delete(target);
    if (progressed) this.retryAt.delete(target);
    else this.retryAt.set(target, now + retryDelay);
  }

  /** Stop serving targets that left the live set. */
  retain(live: ReadonlySet<NodeId>): void {
    for (const t of [...this.pending.keys()]) if (!live.has(t)) this.pending.delete(t);
    for (const t of [...this.retryAt.keys()]) if (!live.has(t)) this.retryAt.delete(t);
  }

  confirm(key: string, owner: NodeId, version: Version): void {
    let m = this.confirmed.get(key);
    if (!m) this.confirmed.set(key, (m = new Map()));
    const prev = m.get(owner);
    if (!prev || compareVersions(prev, version) < 0) m.set(owner, version);
  }

  /** True when every node in `owners` confirmed holding at least `version`. */
  confirmedBy(key: string, owners: readonly NodeId[], version: Version): boolean {
    const m = this.confirmed.get(key);
    if (!m) return owners.length === 0;
    return owners.every((o) => {
      const v = m.get(o);
      return v !== undefined && compareVersions(v, version) >= 0;
    });
  }

  forgetKey(key: string): void {
    this.confirmed.delete(key);
  }

  /** Ownership may have moved: earlier confirmations no longer say who keeps the key. */
  clearConfirmations(): void {
    this.confirmed.clear();
  }

  hasPending(): boolean {
    return this.pending.size > 0;
  }

  pendingCount(): number {
    let n = 0;
    for (const s of this.pending.values()) n += s.size;
    return n;
  }

  inflightCount(): number {
    return this.inflight.size;
  }
}
