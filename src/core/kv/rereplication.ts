/**
 * Placement changes, entries loaded from storage, and the one mechanism for handoff and
 * re-replication: a node offers each key to the owners that may lack it (`kv.offer`,
 * versions only), pushes what they want (`kv.push`), and drops a key it does not own only
 * after every owner confirmed holding its version *while owning it in its own view*
 * (an owner answering "transient" does not count).
 */
import type { ClusterView } from '../protocol';
import { majority, MAX_REPLICAS } from '../placement';
import type { NodeId } from '../types';
import { validateEntry, type VersionTuple } from './messages';
import { LIST_BYTES, tupleBytes, tupleOf, type OfferOp, type PushOp } from './ops';
import type { KvState } from './state';
import { compareVersions, type Entry, type Version } from './types';

/** Most keys remembered as asked of one offerer (`asked`, each for requestTimeoutMs): past it, offers are answered as before. */
export const MAX_ASKED = 100_000;

export class Rereplication {
  /**
   * Keys this node wants and has asked one offerer to push (its `kv.want`), with the version
   * offered and until when (now + requestTimeoutMs) the push is awaited. Meanwhile another
   * offer of that version or an older one is answered `transient` (not counted as held:
   * the offerer offers it again later), so a key that lost a copy is pushed here once, not
   * by each of its surviving owners. A newer version is still wanted from whoever offers it.
   */
  private readonly asked = new Map<string, { version: Version; until: number; from: NodeId }>();

  constructor(
    private readonly s: KvState,
    /** Arms the anti-entropy timer (a new placement or new entries give it work). */
    private readonly armAntiEntropy: () => void,
  ) {}

  /** A new ClusterView: only a change of the placement set moves keys. */
  onMembers(view: ClusterView): void {
    const s = this.s;
    let old = s.placement.update(view?.placement ?? [], view?.away ?? []);
    // the cluster's replica count (agreed through the membership, W = R = a majority of it)
    const n = view?.replicas;
    if (typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= MAX_REPLICAS && n !== s.placement.replicas) {
      const before = s.placement.setReplicas(n);
      old = old ?? before;
      s.quorums = { w: majority(n), r: majority(n) };
      s.counters.add('replicaCountChanges');
    }
    if (!old) return;
    s.handoff.retain(s.placement.set());
    s.handoff.clearConfirmations();
    s.counters.add('placementChanges');
    // Every key whose replica set changed is offered (versions only) to its owners, so keys
    // whose other owners died get back to N copies, and keys this node no longer owns move
    // to their new owners before they are dropped. A key this node owns before and after
    // goes only to the owners new to it: the others held it along with this node, and
    // anti-entropy evens out their versions as it did before the change.
    for (const key of s.data.keys()) {
      const before = old.preferenceList(key);
      const after = s.prefOf(key);
      const unchanged = before.length === after.length && before.every((m) => after.includes(m));
      if (unchanged && after.includes(s.me)) continue;
      if (before.includes(s.me) && after.includes(s.me)) s.queueToOwners(key, after.filter((m) => !before.includes(m)));
      else s.queueToOwners(key);
    }
    this.armAntiEntropy();
  }

  /** Entries from storage: kept where newer than ours, then offered like any other. */
  onLoad(records: readonly Entry[]): void {
    const s = this.s;
    if (!Array.isArray(records)) return;
    for (const e of records) {
      if (validateEntry(e) !== null) {
        s.counters.add('loadInvalid');
        continue;
      }
      if (!s.acceptable(e.version.ts)) continue;
      const cur = s.data.get(e.key);
      if (cur && compareVersions(cur.version, e.version) >= 0) continue;
      const entry: Entry = { key: e.key, value: e.deleted ? null : e.value, version: { ...e.version }, deleted: e.deleted };
      if (e.seal) entry.seal = e.seal;
      s.data.set(e.key, entry);
      s.observe(e.version.ts);
      s.counters.add('loaded');
      if (s.placement.size > 1) s.queueToOwners(e.key);
    }
    this.armAntiEntropy();
  }

  /** One offer batch per ready target per tick: a large move is spread over many ticks. */
  pump(): void {
    const s = this.s;
    for (const [target, keys] of s.handoff.ready(s.now)) {
      if (!s.placement.has(target)) {
        keys.clear();
        continue;
      }
      const versions = new Map<string, Version>();
      const items: VersionTuple[] = [];
      let bytes = 0;
      for (const key of keys) {
        if (items.length >= s.config.handoffBatch || bytes >= LIST_BYTES) break;
        const e = s.data.get(key);
        if (!e || !s.prefOf(key).includes(target)) {
          keys.delete(key);
          continue;
        }
        items.push(tupleOf(e));
        versions.set(key, e.version);
        bytes += tupleBytes(key);
      }
      if (items.length === 0) continue;
      const op = s.newOp({ kind: 'offer', target, versions });
      s.handoff.begin(target);
      s.send(target, { type: 'kv.offer', op, items });
      s.counters.add('handoffOffered', items.length);
    }
    s.handoff.pruneEmpty();
  }

  /**
   * A peer's offer: which of these versions do I lack (and have not asked another offerer
   * for), and which do I hold without owning? Both the keys asked elsewhere and the ones held
   * without owning go back as `transient`: the offerer does not count me as holding them and
   * offers them again later.
   */
  answerOffer(from: NodeId, op: number, items: VersionTuple[]): void {
    const s = this.s;
    const want: string[] = [];
    const transient: string[] = [];
    // lapsed asks first (in the order they were made, so the oldest are at the front)
    for (const [k, a] of this.asked) {
      if (a.until > s.now) break;
      this.asked.delete(k);
    }
    for (const [key, ts, node] of items) {
      if (!s.acceptable(ts)) continue;
      s.observe(ts);
      const cur = s.data.get(key);
      const offered: Version = { ts, node };
      if (!cur || compareVersions(cur.version, offered) < 0) {
        const a = this.asked.get(key);
        // asked of another offerer, for this version or a newer one: later (the one asked
        // may offer it again, its push having had no room for it: it is asked again)
        if (a && a.from !== from && a.until > s.now && compareVersions(a.version, offered) >= 0) {
          transient.push(key);
          s.counters.add('handoffDeferred');
          continue;
        }
        this.asked.delete(key);
        if (this.asked.size < MAX_ASKED) this.asked.set(key, { version: offered, until: s.now + s.config.requestTimeoutMs, from });
        want.push(key);
      } else if (!s.owns(key)) transient.push(key);
    }
    s.send(from, { type: 'kv.want', op, want, transient });
  }

  onWant(op: number, o: OfferOp, want: string[], transient: string[]): void {
    const s = this.s;
    s.ops.delete(op);
    const wanted = new Set(want);
    const passing = new Set(transient);
    let progressed = false;
    for (const [key, v] of o.versions) {
      if (passing.has(key)) s.handoff.requeue(o.target, key);
      if (wanted.has(key) || passing.has(key)) continue;
      this.confirmedHolder(o.target, key, v);
      progressed = true;
    }
    // push the current local versions of what the target lacks, within the byte budget;
    // the rest stays pending and is offered again in a later batch
    const entries: Entry[] = [];
    const versions = new Map<string, Version>();
    let bytes = 0;
    for (const key of want) {
      const e = s.data.get(key);
      if (!e || !o.versions.has(key) || versions.has(key)) continue;
      const size = s.valueSize(e);
      if (entries.length > 0 && bytes + size > s.config.handoffBytes) break;
      entries.push(e);
      versions.set(key, e.version);
      bytes += size;
    }
    if (entries.length === 0) {
      s.handoff.end(o.target, progressed, s.now, s.config.handoffRetryMs);
      return;
    }
    const pushOp = s.newOp({ kind: 'push', target: o.target, versions, handoff: true });
    s.send(o.target, { type: 'kv.push', op: pushOp, entries });
    s.counters.add('handoffPushed', entries.length);
  }

  /** A peer's push (handoff or anti-entropy): store, and say which keys I hold without owning them. */
  answerPush(from: NodeId, op: number, entries: Entry[]): void {
    const s = this.s;
    s.applyEntries(entries, true);
    for (const e of entries) this.asked.delete(e.key);
    const transient = entries.filter((e) => !s.owns(e.key)).map((e) => e.key);
    s.send(from, { type: 'kv.pushAck', op, transient });
  }

  onPushAck(op: number, p: PushOp, transient: string[]): void {
    const s = this.s;
    s.ops.delete(op);
    const passing = new Set(transient);
    let progressed = false;
    for (const [key, v] of p.versions) {
      if (passing.has(key)) {
        s.handoff.requeue(p.target, key);
        continue;
      }
      this.confirmedHolder(p.target, key, v);
      progressed = true;
    }
    if (p.handoff) s.handoff.end(p.target, progressed, s.now, s.config.handoffRetryMs);
  }

  /** An offer or a push timed out: the target's slot is free again after the back-off. */
  timeout(op: OfferOp | PushOp): void {
    const s = this.s;
    if (op.kind === 'offer') {
      s.counters.add('handoffTimeouts');
      s.handoff.end(op.target, false, s.now, s.config.handoffRetryMs);
    } else if (op.handoff) s.handoff.end(op.target, false, s.now, s.config.handoffRetryMs);
  }

  /** `owner` holds at least `version` of `key` and owns it in its view. */
  private confirmedHolder(owner: NodeId, key: string, version: Version): void {
    const s = this.s;
    const cur = s.data.get(key);
    if (!cur) {
      s.handoff.done(owner, key);
      return;
    }
    if (compareVersions(cur.version, version) <= 0) s.handoff.done(owner, key);
    if (s.owns(key)) return;
    s.handoff.confirm(key, owner, version);
    this.maybeDrop(key);
  }

  /** Drop a key this node does not own once every owner confirmed holding its version. */
  maybeDrop(key: string): void {
    const s = this.s;
    const cur = s.data.get(key);
    if (!cur || s.owns(key)) return;
    const owners = s.prefOf(key);
    if (!s.handoff.confirmedBy(key, owners, cur.version)) return;
    for (const o of owners) s.handoff.done(o, key);
    s.removeLocal(key);
    s.counters.add('handoffDropped');
  }
}
