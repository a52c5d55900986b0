/**
 * A node's role per key follows the placement: on every change it re-evaluates each key
 * it holds or owns (claim a key it now owns, step down from one it no longer owns, track
 * new replicas), re-targets its calls, answers claims it refused, and nudges the owner
 * of any copy it holds for another owner until that owner takes it over.
 */
import type { ClusterView } from '../protocol';
import type { NodeId } from '../types';
import type { Rep } from './copy';
import type { SegParts, SegState } from './state';

export class Roles {
  constructor(
    private readonly s: SegState,
    private readonly parts: SegParts,
  ) {}

  /** Placement minus the away members: segments move at once. */
  onMembers(view: ClusterView): void {
    const s = this.s;
    const gone = new Set(Array.isArray(view?.away) ? view.away : []);
    const placement = Array.isArray(view?.placement) ? view.placement.filter((m) => !gone.has(m)) : [];
    if (!s.placement.update(placement)) return;
    s.counters.add('placementChanges');
    this.parts.coordinator.retarget();
    for (const [key, r] of [...s.refused]) {
      s.refused.delete(key);
      if (s.placement.has(r.from)) this.parts.takeover.onClaim(r.from, { type: 'seg.claim', key, b: r.b });
    }
    const keys = new Set([...s.reps.keys(), ...s.owns.keys()]);
    for (const key of keys) this.reconsider(key);
  }

  /** Re-evaluate my role for `key` after a placement change (or a load). */
  reconsider(key: string): void {
    const s = this.s;
    const pref = s.placement.preferenceList(key);
    const owner = pref[0] ?? s.me;
    const own = s.owns.get(key);
    if (owner === s.me) {
      if (!own) {
        this.parts.takeover.beginClaim(key);
        return;
      }
      for (const [dk, q] of own.queued) if (q.from !== s.me && !s.placement.has(q.from)) own.queued.delete(dk);
      switch (own.phase) {
        case 'active':
          this.parts.replication.updateReplicas(own, pref);
          for (const [dk, w] of own.waiters) if (w.from !== s.me && !s.placement.has(w.from)) own.waiters.delete(dk);
          break;
        case 'claim':
          this.parts.takeover.rewait(own);
          break;
        case 'fetch':
          if (own.fetchFrom === null || !s.placement.has(own.fetchFrom)) this.parts.takeover.beginClaim(key, own);
          break;
        case 'backoff':
          break;
      }
      return;
    }
    if (own) this.parts.takeover.stepDown(own, owner);
    const rep = s.reps.get(key);
    if (!rep) return;
    if (rep.acc[0] === 0 && rep.items.length === 0 && rep.done.size === 0) {
      // a promise from a claim of mine that never completed: nothing to keep
      if (!pref.includes(s.me)) {
        s.dropRep(key, false);
      }
      return;
    }
    if (rep.acc[1] !== owner) {
      s.orphans.add(key);
      this.nudge(rep, owner);
    }
  }

  private nudge(rep: Rep, owner: NodeId): void {
    rep.nudgedAt = this.s.now;
    this.s.send(owner, { type: 'seg.nudge', key: rep.key, acc: rep.acc });
  }

  /** A copy that belongs to another owner than the one in my view, not taken over yet. */
  private needsNudge(rep: Rep): boolean {
    const s = this.s;
    if (rep.acc[0] === 0 || s.owns.has(rep.key)) return false;
    const owner = s.ownerOf(rep.key);
    return owner !== s.me && owner !== rep.acc[1];
  }

  /** Periodic: nudge again where it is due; forget keys that need no more. */
  tick(): void {
    const s = this.s;
    for (const key of s.orphans) {
      const rep = s.reps.get(key);
      if (!rep || !this.needsNudge(rep)) s.orphans.delete(key);
      else if (s.now - rep.nudgedAt >= s.config.retryIntervalMs) this.nudge(rep, s.ownerOf(key));
    }
  }
}
