/**
 * Anti-entropy and tombstone collection. Every `antiEntropyIntervalMs` (jittered) a node
 * digests the keys it shares with one random replica peer (`kv.digest`), the peer lists
 * its versions in the buckets that differ (`kv.diff`), and the initiator pushes what the
 * peer lacks and pulls what it lacks itself, batched. The same round re-offers keys held
 * without owning them and collects old tombstones that every replica holds.
 *
 * Rounds that find the peer in sync double the pause, up to 2^AE_MAX_BACKOFF periods, so
 * a quiet cluster exchanges almost nothing; any write or placement change (`wake`) brings
 * the base period back.
 */
import { hlcWall } from '../clock/hlc';
import { pick } from '../rng';
import type { NodeId } from '../types';
import { bucketOf, differingBuckets, digestOf } from './digest';
import { MAX_WIRE_ITEMS, type VersionTuple } from './messages';
import { LIST_BYTES, sameVersion, tupleBytes, tupleOf, type DigestOp, type GcOp } from './ops';
import type { Rereplication } from './rereplication';
import type { KvState } from './state';
import { compareVersions, type Entry, type Version } from './types';

/** Doublings of the anti-entropy pause while every round finds its peer in sync (10 s -> 80 s). */
export const AE_MAX_BACKOFF = 3;

export class AntiEntropy {
  private armed = false;
  /** When the armed timer fires (an earlier timer still pending is stale). */
  private dueAt = 0;
  /** Rounds in a row that found their peer in sync. */
  private quiet = 0;
  /** The open digest exchange (one at a time). */
  private digestOp: number | null = null;
  /** The open tombstone check (one at a time). */
  private gcOp: number | null = null;
  /** Replica peers of the placement whose members are `peersOf`. */
  private peers: NodeId[] = [];
  private peersOf: readonly NodeId[] | null = null;

  constructor(
    private readonly s: KvState,
    private readonly rereplication: Rereplication,
  ) {}

  arm(): void {
    if (this.armed) return;
    this.armed = true;
    const delayMs = this.s.config.antiEntropyIntervalMs * 2 ** Math.min(this.quiet, AE_MAX_BACKOFF) * (0.75 + 0.5 * this.s.rng.next());
    this.dueAt = this.s.now + delayMs;
    this.s.io.setTimer(delayMs, { type: 'kv.ae' });
  }

  /** Something changed (a write, a new placement): back to the base period. */
  wake(): void {
    if (this.quiet === 0) return;
    this.quiet = 0;
    if (this.armed && this.dueAt > this.s.now + this.s.config.antiEntropyIntervalMs * 1.25) {
      this.armed = false;
      this.arm();
    }
  }

  /** The `kv.ae` timer. */
  onTimer(): void {
    // a timer superseded by `wake` (the one it armed fires first)
    if (this.armed && this.s.now < this.dueAt - 1) return;
    this.armed = false;
    this.arm();
    this.round();
  }

  /** Other members that share at least one replica group with this node. */
  private replicaPeers(): NodeId[] {
    const s = this.s;
    const members = s.placement.members();
    if (this.peersOf !== members) {
      const peers = new Set<NodeId>();
      for (const group of s.placement.groups()) {
        if (group.includes(s.me)) for (const m of group) if (m !== s.me) peers.add(m);
      }
      this.peers = [...peers].sort();
      this.peersOf = members;
    }
    return this.peers;
  }

  /** Local entries of keys that both this node and `peer` replicate, in this node's view. */
  private *sharedWith(peer: NodeId): Generator<Entry> {
    for (const e of this.s.data.values()) {
      const pref = this.s.prefOf(e.key);
      if (pref.includes(this.s.me) && pref.includes(peer)) yield e;
    }
  }

  private round(): void {
    const s = this.s;
    s.counters.add('aeRounds');
    // keys held without owning them: re-offer what lost messages left unconfirmed
    for (const e of s.data.values()) {
      if (s.owns(e.key)) continue;
      this.rereplication.maybeDrop(e.key);
      if (s.data.has(e.key)) s.queueToOwners(e.key);
    }
    this.collectTombstones();
    if (this.digestOp !== null) return;
    const peer = pick(s.rng, this.replicaPeers());
    if (peer === undefined) return;
    const { counts, sums } = digestOf(this.sharedWith(peer), s.config.aeBuckets);
    const op = s.newOp({ kind: 'digest', target: peer });
    this.digestOp = op;
    s.send(peer, { type: 'kv.digest', op, counts, sums });
  }

  answerDigest(from: NodeId, op: number, counts: number[], sums: number[]): void {
    const s = this.s;
    const buckets = counts.length;
    if (buckets === 0) return s.send(from, { type: 'kv.diff', op, buckets: [], items: [] });
    const shared = [...this.sharedWith(from)];
    const differing = new Set(differingBuckets({ counts, sums }, digestOf(shared, buckets)));
    const byBucket = new Map<number, VersionTuple[]>();
    for (const e of shared) {
      const b = bucketOf(e.key, buckets);
      if (!differing.has(b)) continue;
      let list = byBucket.get(b);
      if (!list) byBucket.set(b, (list = []));
      list.push(tupleOf(e));
    }
    // only whole buckets: the initiator reads a key missing from a listed bucket as "absent here"
    const listed: number[] = [];
    const items: VersionTuple[] = [];
    let bytes = 0;
    for (const b of differing) {
      const list = byBucket.get(b) ?? [];
      const size = list.reduce((sum, t) => sum + tupleBytes(t[0]), 0);
      if (items.length + list.length > MAX_WIRE_ITEMS || bytes + size > LIST_BYTES) {
        s.counters.add('aeBucketsDeferred');
        continue;
      }
      listed.push(b);
      items.push(...list);
      bytes += size;
    }
    s.send(from, { type: 'kv.diff', op, buckets: listed, items });
  }

  onDiff(op: number, d: DigestOp, buckets: number[], items: VersionTuple[]): void {
    const s = this.s;
    s.ops.delete(op);
    if (this.digestOp === op) this.digestOp = null;
    if (buckets.length === 0) {
      s.counters.add('aeInSync');
      this.quiet++;
      return;
    }
    this.quiet = 0;
    const listed = new Set(buckets);
    const theirs = new Map<string, Version>();
    for (const [key, ts, node] of items) theirs.set(key, { ts, node });
    const push: Entry[] = [];
    const versions = new Map<string, Version>();
    let pushBytes = 0;
    const pull: string[] = [];
    let pullBytes = 0;
    const mine = new Set<string>();
    for (const e of this.sharedWith(d.target)) {
      if (!listed.has(bucketOf(e.key, s.config.aeBuckets))) continue;
      mine.add(e.key);
      const t = theirs.get(e.key);
      if (t && compareVersions(t, e.version) >= 0) continue;
      const size = s.valueSize(e);
      if (push.length >= s.config.handoffBatch || (push.length > 0 && pushBytes + size > s.config.handoffBytes)) continue;
      push.push(e);
      versions.set(e.key, e.version);
      pushBytes += size;
    }
    for (const [key, v] of theirs) {
      const e = s.data.get(key);
      if (e && (compareVersions(e.version, v) >= 0 || !mine.has(key))) continue;
      if (pull.length >= s.config.handoffBatch || pullBytes >= LIST_BYTES) break;
      pull.push(key);
      pullBytes += tupleBytes(key);
    }
    if (push.length > 0) {
      const p = s.newOp({ kind: 'push', target: d.target, versions, handoff: false });
      s.send(d.target, { type: 'kv.push', op: p, entries: push });
      s.counters.add('aePushed', push.length);
    }
    if (pull.length > 0) {
      const p = s.newOp({ kind: 'pull', target: d.target });
      s.send(d.target, { type: 'kv.pull', op: p, keys: pull });
    }
  }

  answerPull(from: NodeId, op: number, keys: string[]): void {
    const s = this.s;
    const entries: Entry[] = [];
    let bytes = 0;
    for (const key of keys) {
      const e = s.data.get(key);
      if (!e) continue;
      const size = s.valueSize(e);
      if (entries.length > 0 && bytes + size > s.config.handoffBytes) break;
      entries.push(e);
      bytes += size;
    }
    s.send(from, { type: 'kv.pullReply', op, entries });
  }

  onPullReply(op: number, entries: Entry[]): void {
    this.s.ops.delete(op);
    this.s.counters.add('aePulled', entries.length);
    this.s.applyEntries(entries, true);
  }

  /** The digest exchange timed out: the next round may start another. */
  digestTimedOut(op: number): void {
    if (this.digestOp === op) this.digestOp = null;
  }

  // ---- tombstone collection ---------------------------------------------------------

  /**
   * Tombstones past their grace time, on the first node of their preference list: phase 1
   * asks the other replicas whether they hold exactly that tombstone; only keys every
   * replica holds are dropped everywhere (phase 2), so no replica can resurrect an older value.
   */
  private collectTombstones(): void {
    const s = this.s;
    if (this.gcOp !== null) return;
    const items = new Map<string, { version: Version; others: NodeId[] }>();
    let bytes = 0;
    for (const e of s.data.values()) {
      if (items.size >= s.config.handoffBatch || bytes >= LIST_BYTES) break;
      if (!e.deleted || hlcWall(e.version.ts) + s.config.tombstoneGraceMs > s.now) continue;
      const pref = s.prefOf(e.key);
      if (pref[0] !== s.me) continue;
      items.set(e.key, { version: e.version, others: pref.slice(1) });
      bytes += tupleBytes(e.key);
    }
    if (items.size === 0) return;
    const perTarget = new Map<NodeId, VersionTuple[]>();
    for (const [key, { version, others }] of items) {
      if (others.length === 0) {
        s.removeLocal(key);
        s.counters.add('tombstonesCollected');
        items.delete(key);
      }
      for (const o of others) {
        let list = perTarget.get(o);
        if (!list) perTarget.set(o, (list = []));
        list.push([key, version.ts, version.node]);
      }
    }
    if (perTarget.size === 0) return;
    const g: GcOp = { kind: 'gc', items, waiting: new Set(perTarget.keys()), have: new Map() };
    const op = s.newOp(g);
    this.gcOp = op;
    for (const [target, list] of perTarget) s.send(target, { type: 'kv.gcCheck', op, items: list });
  }

  /** Phase 1 at a replica: which of these exact tombstones do I hold? */
  answerGcCheck(from: NodeId, op: number, items: VersionTuple[]): void {
    const s = this.s;
    const keys = items
      .filter(([key, ts, node]) => {
        const cur = s.data.get(key);
        return cur !== undefined && cur.deleted && sameVersion(cur.version, { ts, node });
      })
      .map((t) => t[0]);
    s.send(from, { type: 'kv.gcHave', op, keys });
  }

  onGcHave(from: NodeId, op: number, g: GcOp, keys: string[]): boolean {
    if (!g.waiting.has(from)) return false;
    g.waiting.delete(from);
    g.have.set(from, new Set(keys));
    if (g.waiting.size === 0) this.finishGc(op, g);
    return true;
  }

  /**
   * Phase 2 at a replica: drop each tombstone if still at exactly that version. Only a
   * replica of the key (in our view) may ask, and only for a tombstone past its grace:
   * anyone else's drop could let an older value come back (counted as `gcDropRefused`).
   */
  onGcDrop(from: NodeId, items: VersionTuple[]): void {
    const s = this.s;
    for (const [key, ts, node] of items) {
      if (!s.prefOf(key).includes(from) || hlcWall(ts) + s.config.tombstoneGraceMs > s.now) {
        s.counters.add('gcDropRefused');
        continue;
      }
      const cur = s.data.get(key);
      if (cur && cur.deleted && sameVersion(cur.version, { ts, node })) {
        s.removeLocal(key);
        s.counters.add('tombstonesCollected');
      }
    }
  }

  /** Every replica answered, or the check timed out: drop what all of them confirmed. */
  finishGc(op: number, g: GcOp): void {
    const s = this.s;
    s.ops.delete(op);
    if (this.gcOp === op) this.gcOp = null;
    const drops = new Map<NodeId, VersionTuple[]>();
    for (const [key, { version, others }] of g.items) {
      if (!others.every((o) => g.have.get(o)?.has(key))) continue;
      const cur = s.data.get(key);
      if (!cur || !cur.deleted || !sameVersion(cur.version, version)) continue;
      s.removeLocal(key);
      s.counters.add('tombstonesCollected');
      for (const o of others) {
        let list = drops.get(o);
        if (!list) drops.set(o, (list = []));
        list.push([key, version.ts, version.node]);
      }
    }
    for (const [target, list] of drops) s.send(target, { type: 'kv.gcDrop', items: list });
  }
}
