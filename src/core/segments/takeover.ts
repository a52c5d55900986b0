/**
 * Claiming a key (takeover). A node that becomes owner in its view claims the key with a
 * ballot above every one it knows (`seg.claim` to every live member); a member promises
 * only if the claimer is the owner in its own view and the ballot is the highest it has
 * seen, which freezes its copy for lower ballots. The claimer adopts the most advanced
 * copy (fetching it, `seg.fetch` / `seg.state`, when it is not its own), takes the highest
 * `lastId`, and becomes active. An owner that meets a higher ballot backs off or steps down.
 */
import { randInt } from '../rng';
import type { NodeId } from '../types';
import { assemble, compareBallots, dkOf, missingParts, NONE, type Assembly, type Rep } from './copy';
import type { Ballot, SegMessage, SnapshotMessage } from './messages';
import type { Own, ReqMsg, SegParts, SegState } from './state';

type Summary = Omit<Extract<SegMessage, { type: 'seg.promise' }>, 'type' | 'key' | 'b' | 'ok'>;

export class Takeover {
  constructor(
    private readonly s: SegState,
    private readonly parts: SegParts,
  ) {}

  private newOwn(key: string): Own {
    const own: Own = {
      key,
      ballot: NONE,
      phase: 'claim',
      minEpoch: 0,
      retryAt: 0,
      waitFor: new Map(),
      promises: new Map(),
      fetchFrom: null,
      fetchSentAt: -Infinity,
      fetch: null,
      lastIdSeen: 0,
      holders: new Set(),
      replicas: new Map(),
      log: [],
      logSize: [],
      logStart: 1,
      commit: -1,
      pending: [],
      pendingKeys: new Set(),
      itemSeq: new Map(),
      opSeq: new Map(),
      waiters: new Map(),
      queued: new Map(),
    };
    this.s.owns.set(key, own);
    return own;
  }

  /** Start (or restart, with a higher ballot) the takeover of `key`: every live member must promise. */
  beginClaim(key: string, existing?: Own): Own {
    const s = this.s;
    const rep = s.reps.get(key) ?? s.newRep(key);
    const own = existing ?? this.newOwn(key);
    // Epochs are wall-clock ms, raised to max(highest known + 1, now), like membership
    // incarnations: a peer's message may name an epoch at most MAX_AHEAD_MS ahead of the
    // receiver's clock (ballotsTooFarAhead), so nobody can push a key's epochs toward
    // Number.MAX_SAFE_INTEGER, and an epoch pinned at that edge is passed by the clock.
    const epoch = Math.max(rep.promised[0], rep.acc[0], own.ballot[0], own.minEpoch - 1) + 1;
    own.ballot = [Math.max(epoch, s.now), s.me];
    own.phase = 'claim';
    own.waitFor.clear();
    own.promises.clear();
    own.fetchFrom = null;
    own.fetch = null;
    own.replicas.clear();
    own.log = [];
    own.logSize = [];
    own.commit = -1;
    this.promise(rep, own.ballot);
    s.counters.add('claims');
    for (const n of s.placement.set()) {
      if (n === s.me) continue;
      own.waitFor.set(n, s.now);
      s.send(n, { type: 'seg.claim', key, b: own.ballot });
    }
    this.checkClaim(own);
    return own;
  }

  /** The placement changed during a claim: stop waiting for members gone, ask those new. */
  rewait(own: Own): void {
    const s = this.s;
    for (const n of own.waitFor.keys()) if (!s.placement.has(n)) own.waitFor.delete(n);
    for (const n of own.promises.keys()) if (!s.placement.has(n)) own.promises.delete(n);
    for (const n of s.placement.set()) {
      if (n === s.me || own.waitFor.has(n) || own.promises.has(n)) continue;
      own.waitFor.set(n, s.now);
      s.send(n, { type: 'seg.claim', key: own.key, b: own.ballot });
    }
    this.checkClaim(own);
  }

  private summary(rep: Rep | undefined): Summary {
    if (!rep) return { acc: NONE, seq: 0, lastId: 0, hold: false };
    return { acc: rep.acc, seq: rep.seq, lastId: rep.lastId, hold: rep.acc[0] > 0 || rep.items.length > 0 };
  }

  onClaim(from: NodeId, m: Extract<SegMessage, { type: 'seg.claim' }>): void {
    const s = this.s;
    if (s.ownerOf(m.key) !== from) {
      // not the owner in my view: my view or theirs is behind; answer when it is
      // remembered to answer once the views agree, within the same bound as the queues held
      if (s.refused.has(m.key) || s.refused.size < s.config.maxKeys) s.refused.set(m.key, { from, b: m.b });
      s.counters.add('claimsRefused');
      s.send(from, { type: 'seg.promise', key: m.key, b: m.b, ok: false, refused: true });
      return;
    }
    const rep = s.reps.get(m.key);
    if (!rep) {
      // nothing here to fence or to hand over
      s.send(from, { type: 'seg.promise', key: m.key, b: m.b, ok: true, ...this.summary(undefined) });
      return;
    }
    const c = compareBallots(m.b, rep.promised);
    if (c < 0) {
      s.send(from, { type: 'seg.promise', key: m.key, b: m.b, ok: false, promised: rep.promised });
      return;
    }
    if (c > 0) this.promise(rep, m.b);
    s.send(from, { type: 'seg.promise', key: m.key, b: m.b, ok: true, ...this.summary(rep) });
  }

  /** Follow ballot `b` from now on: older owners' operations are refused. */
  promise(rep: Rep, b: Ballot): void {
    rep.promised = [b[0], b[1]];
    rep.buffered.clear();
    if (rep.incoming && compareBallots(rep.incoming.b, b) !== 0) rep.incoming = null;
    this.s.markDirty(rep.key, false);
    const own = this.s.owns.get(rep.key);
    if (own && compareBallots(own.ballot, b) < 0) this.lostBallot(own, b);
  }

  onPromise(from: NodeId, m: Extract<SegMessage, { type: 'seg.promise' }>): void {
    const own = this.s.owns.get(m.key);
    if (!own || compareBallots(m.b, own.ballot) !== 0) return;
    if (own.phase === 'fetch' && from === own.fetchFrom && !m.ok && !m.refused) {
      // the replica I chose moved on to another ballot: start over
      if (m.promised) own.minEpoch = Math.max(own.minEpoch, m.promised[0] + 1);
      this.beginClaim(m.key, own);
      return;
    }
    if (own.phase !== 'claim' || !own.waitFor.has(from)) return;
    if (m.ok) {
      own.waitFor.delete(from);
      own.promises.set(from, { acc: m.acc ?? NONE, seq: m.seq ?? 0, lastId: m.lastId ?? 0, hold: m.hold === true });
      this.checkClaim(own);
    } else if (m.promised && compareBallots(m.promised, own.ballot) > 0) {
      own.minEpoch = Math.max(own.minEpoch, m.promised[0] + 1);
      this.backoff(own);
    }
    // refused: keep waiting, the claim is re-sent
  }

  /** Every member promised: adopt the most advanced copy (fetch it if it is elsewhere). */
  checkClaim(own: Own): void {
    const s = this.s;
    if (own.phase !== 'claim' || own.waitFor.size > 0) return;
    const rep = s.reps.get(own.key)!;
    let best: NodeId = s.me;
    let bestAcc = rep.acc;
    let bestSeq = rep.seq;
    let lastId = rep.lastId;
    own.holders.clear();
    for (const [node, p] of own.promises) {
      if (node === s.me) continue;
      lastId = Math.max(lastId, p.lastId);
      if (p.hold) own.holders.add(node);
      const c = compareBallots(p.acc, bestAcc) || p.seq - bestSeq;
      if (c > 0) {
        best = node;
        bestAcc = p.acc;
        bestSeq = p.seq;
      }
    }
    own.lastIdSeen = lastId;
    if (best === s.me) {
      this.activate(own, null);
      return;
    }
    own.phase = 'fetch';
    own.fetchFrom = best;
    own.fetchSentAt = s.now;
    own.fetch = null;
    s.counters.add('fetches');
    s.send(best, { type: 'seg.fetch', key: own.key, b: own.ballot });
  }

  /** A claimer that chose my copy asks for it (only the parts `missing` when given). */
  onFetch(from: NodeId, m: Extract<SegMessage, { type: 'seg.fetch' }>): void {
    const s = this.s;
    const rep = s.reps.get(m.key);
    if (!rep || compareBallots(rep.promised, m.b) !== 0) {
      s.send(from, { type: 'seg.promise', key: m.key, b: m.b, ok: false, promised: rep?.promised ?? NONE });
      return;
    }
    const parts = s.snapshotParts(rep);
    const which = m.missing && m.missing.length > 0 ? m.missing : parts.map((_, i) => i);
    for (const i of which) {
      const p = parts[i];
      if (p) s.send(from, { type: 'seg.state', key: m.key, b: m.b, seq: rep.seq, part: i, parts: parts.length, lastId: rep.lastId, items: p.items, done: p.done });
    }
  }

  onState(from: NodeId, m: SnapshotMessage<'seg.state'>): void {
    const own = this.s.owns.get(m.key);
    if (!own || own.phase !== 'fetch' || own.fetchFrom !== from || compareBallots(m.b, own.ballot) !== 0) return;
    const got = own.fetch?.got ?? 0;
    own.fetch = assemble(own.fetch, m);
    if (own.fetch.got > got) own.fetchSentAt = this.s.now; // progress: ask again only when it stalls
    if (own.fetch.got === own.fetch.parts.length) this.activate(own, own.fetch);
  }

  /** The claim is won and the most advanced state is here: start serving. */
  private activate(own: Own, fetched: Assembly | null): void {
    const s = this.s;
    const rep = s.reps.get(own.key)!;
    if (fetched) s.install(rep, fetched);
    rep.lastId = Math.max(rep.lastId, own.lastIdSeen);
    rep.acc = [own.ballot[0], own.ballot[1]];
    rep.seq = 0;
    rep.buffered.clear();
    rep.incoming = null;
    s.markDirty(own.key);
    own.phase = 'active';
    own.fetch = null;
    own.fetchFrom = null;
    own.log = [];
    own.logSize = [];
    own.logStart = 1;
    own.commit = -1;
    own.pending = [];
    own.pendingKeys.clear();
    own.itemSeq.clear();
    own.opSeq.clear();
    own.replicas.clear();
    for (const n of s.placement.preferenceList(own.key)) {
      if (n === s.me) continue;
      own.replicas.set(n, this.parts.replication.newTrack());
      own.holders.delete(n);
    }
    s.counters.add('activations');
    this.parts.replication.advanceCommit(own);
    s.dirtyOwns.add(own);
    const queued = [...own.queued.values()];
    own.queued.clear();
    for (const q of queued) this.parts.owner.execute(own, q.from, q.msg);
  }

  /** Someone holds a higher ballot for a key I serve or claim. */
  lostBallot(own: Own, b: Ballot): void {
    const s = this.s;
    s.counters.add('ballotsLost');
    own.minEpoch = Math.max(own.minEpoch, b[0] + 1);
    if (s.ownerOf(own.key) === s.me) this.backoff(own);
    else this.stepDown(own, s.ownerOf(own.key));
  }

  /** Stop serving for a while, then claim again with a higher ballot (if still the owner in my view). */
  private backoff(own: Own): void {
    const s = this.s;
    // answers that were waiting for a commit may never come: the callers retry (deduplicated)
    for (const p of own.pending) s.send(p.to, { type: 'seg.redirect', op: (p.msg as { op: number }).op, owner: null });
    own.pending = [];
    own.pendingKeys.clear();
    // registered waiters become queued requests again
    for (const w of own.waiters.values()) {
      const msg: ReqMsg = { type: 'seg.req', op: w.op, key: own.key, kind: w.kind, afterId: w.afterId };
      own.queued.set(dkOf(w.from, w.op), { from: w.from, msg, at: s.now });
    }
    own.waiters.clear();
    own.phase = 'backoff';
    own.replicas.clear();
    own.retryAt = s.now + s.config.retransmitMs + randInt(s.rng, Math.max(1, s.config.retryIntervalMs));
  }

  /** No longer the owner in my view: send every caller to the new one. */
  stepDown(own: Own, owner: NodeId | null): void {
    const s = this.s;
    s.counters.add('stepDowns');
    for (const p of own.pending) s.send(p.to, { type: 'seg.redirect', op: (p.msg as { op: number }).op, owner });
    for (const w of own.waiters.values()) s.send(w.from, { type: 'seg.redirect', op: w.op, owner });
    for (const q of own.queued.values()) s.send(q.from, { type: 'seg.redirect', op: q.msg.op, owner });
    s.owns.delete(own.key);
    s.changed.add(own.key);
  }

  /** Periodic, on an owner not yet active: re-send claims and fetches, retry after a back-off, expire queued requests. */
  tick(own: Own): void {
    const s = this.s;
    const c = s.config;
    switch (own.phase) {
      case 'claim':
        for (const [n, at] of own.waitFor) {
          if (s.now - at < c.retryIntervalMs) continue;
          own.waitFor.set(n, s.now);
          s.send(n, { type: 'seg.claim', key: own.key, b: own.ballot });
        }
        this.expireQueued(own);
        break;
      case 'fetch':
        if (s.now - own.fetchSentAt >= c.retryIntervalMs && own.fetchFrom !== null) {
          own.fetchSentAt = s.now;
          s.send(own.fetchFrom, { type: 'seg.fetch', key: own.key, b: own.ballot, missing: own.fetch ? missingParts(own.fetch) : null });
        }
        this.expireQueued(own);
        break;
      case 'backoff':
        if (s.now >= own.retryAt) {
          if (s.ownerOf(own.key) === s.me) this.beginClaim(own.key, own);
          else this.stepDown(own, s.ownerOf(own.key));
        } else this.expireQueued(own);
        break;
      case 'active':
        break;
    }
  }

  /** Requests queued during a takeover that their coordinator stopped re-sending. */
  private expireQueued(own: Own): void {
    const s = this.s;
    for (const [dk, q] of own.queued) {
      const limit = q.msg.kind === 'peek' || q.msg.kind === 'take' ? 3 * s.config.keepaliveMs : s.config.requestTimeoutMs;
      if (s.now - q.at >= limit) own.queued.delete(dk);
    }
  }
}
