/**
 * Signatures on what speaks for a node beyond one link (docs/security.md, "Signatures"):
 * broadcasts and routed envelopes. The core carries them as opaque seals (core/types.ts
 * `Seal`); this is where they are made and checked.
 *
 * - Broadcast seal `{b, s, k}`: `b` the payload's bytes, `s` the origin's Ed25519
 *   signature over broadcastTranscript(cluster, id, origin, kind, b), `k` its public key
 *   (which must hash to the origin id). On the wire a sealed gossip and a proof carry
 *   their payload only inside `b` (`data` is null): the receiver verifies, then decodes
 *   `b` as the data, so the core only ever sees payloads their origin signed.
 * - Route seal `{m, t, s, k}`: `m` the inner message's bytes, encoded once at the source,
 *   `t` the source's clock (ms), `s` its signature over routeTranscript(cluster, src, dst,
 *   t, m). Hops forward it untouched (the hop count is not covered); the destination
 *   verifies, checks |now − t| ≤ ROUTE_SKEW_MS, decodes and validates `m` and hands the
 *   core the envelope with `msg` as coming from `src`.
 * - Proofs inside direct messages (membership sync rows, chat history entries) are
 *   broadcast seals too: one that fails is removed (the row is then hearsay, the history
 *   entry refused by the core).
 * - Entry seal `{s, k}` on a KV entry: its writer's (`version.node`) signature over
 *   entryTranscript(cluster, key, ts, node, deleted, encoded value). An entry that arrives
 *   from anyone but its writer (a read answer, a handoff or anti-entropy push, a read
 *   repair, a watch note) counts only with a valid seal: otherwise it is removed from the
 *   message (a read answer becomes "not found"), and a message that would be acknowledged
 *   for entries it no longer holds (`kv.put`, `kv.push`) is dropped whole. What the writer
 *   sends itself is proven by the link or the route seal already. Checked entries are
 *   remembered by signature with their exact bytes (`CheckedSeals`), so the same entry
 *   answered by three replicas costs one verification.
 * - Queue item seals (seg-seals.ts, `segItems`): every item value of a segment message
 *   must be signed by the node that put it; a message with one that is not is dropped.
 */
import type { Entry, WireMessage } from '../core/node';
import { validateWire } from '../core/node';
import { originOf } from '../core/plumtree/messages';
import { MEMBER_KIND } from '../core/membership';
import { CHAT_KIND } from '../core/chat';
import { decode, decodeAll, encode } from '../wire/codec';
import { ROUTE_BUNDLE_MAX } from './route-bundles';
import { compactSigned, expandSigned } from '../core/wire';
import type { NodeIdentity } from './node-identity';
import { broadcastTranscript, entryTranscript, routeTranscript } from '../trust/transcripts';
import { concatBytes, equalBytes } from '../trust/bytes';
import { CheckedSeals, sigKey } from './checked-seals';
import { SegItemSeals } from './seg-seals';

/** A routed envelope older or newer than this (by the source's clock) is refused. */
export const ROUTE_SKEW_MS = 120_000;

export interface BroadcastSeal {
  b: Uint8Array;
  s: Uint8Array;
  k: Uint8Array;
}

export interface RouteSeal {
  m: Uint8Array;
  t: number;
  s: Uint8Array;
  k: Uint8Array;
}

const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;

function asBroadcastSeal(v: unknown): BroadcastSeal | null {
  if (typeof v !== 'object' || v === null) return null;
  const s = v as Partial<BroadcastSeal>;
  return isBytes(s.b) && isBytes(s.s) && isBytes(s.k) ? (s as BroadcastSeal) : null;
}

export interface EntrySeal {
  s: Uint8Array;
  k: Uint8Array;
}

function asEntrySeal(v: unknown): EntrySeal | null {
  if (typeof v !== 'object' || v === null) return null;
  const s = v as Partial<EntrySeal>;
  return isBytes(s.s) && isBytes(s.k) ? (s as EntrySeal) : null;
}

/** An entry as received, before the core's validation: only what the seal check reads. */
interface RawEntry {
  key: string;
  value: unknown;
  version: { ts: number; node: string };
  deleted: boolean;
  seal?: unknown;
}

/** Enough of an entry's shape to check its seal; anything else is left to the core's validation (which drops the message). */
function asRawEntry(v: unknown): RawEntry | null {
  if (typeof v !== 'object' || v === null) return null;
  const e = v as Partial<RawEntry>;
  const ver = e.version as Partial<RawEntry['version']> | undefined;
  return typeof e.key === 'string' && typeof e.deleted === 'boolean' && typeof ver === 'object' && ver !== null && typeof ver.ts === 'number' && typeof ver.node === 'string' ? (e as RawEntry) : null;
}

const NO_VALUE = new Uint8Array(0);

/** KV messages that carry entries, and where. */
const ENTRY_CARRIERS = new Set(['kv.put', 'kv.puts', 'kv.getReply', 'kv.getReplies', 'kv.push', 'kv.pullReply', 'kv.note', 'kv.watchSyncReply']);

/** The entries of a KV message (kv.puts items as entries), for needsCheck's scan. */
function* entriesOf(m: Record<string, unknown>): Generator<unknown> {
  switch (m.type) {
    case 'kv.put':
    case 'kv.getReply':
      if (m.entry) yield m.entry;
      return;
    case 'kv.puts':
      if (Array.isArray(m.items)) for (const it of m.items) if (Array.isArray(it)) yield { version: { node: it[4] } };
      return;
    case 'kv.getReplies':
      if (Array.isArray(m.items)) for (const it of m.items) if (Array.isArray(it) && it[1]) yield it[1];
      return;
    default:
      if (Array.isArray(m.entries)) yield* m.entries;
  }
}

function asRouteSeal(v: unknown): RouteSeal | null {
  if (typeof v !== 'object' || v === null) return null;
  const s = v as Partial<RouteSeal>;
  return isBytes(s.m) && isBytes(s.s) && isBytes(s.k) && typeof s.t === 'number' && Number.isFinite(s.t) ? (s as RouteSeal) : null;
}

/** Accepts any decoded value: a proof's or gossip's payload is validated by the core. */
const anyValue = () => null;

export class Sealer {
  readonly counters = {
    sealed: 0, routesSealed: 0, routesBundled: 0, verified: 0, refused: 0, proofsStripped: 0, signUs: 0, verifyUs: 0,
    entriesSealed: 0, entriesVerified: 0, entriesCached: 0, entriesHeld: 0, entriesRefused: 0, entryMessagesDropped: 0,
  };
  private readonly entrySeals = new CheckedSeals();
  /** Signs this tab's queue items and checks everyone else's (seg-seals.ts). */
  readonly segItems: SegItemSeals;

  constructor(
    private readonly identity: NodeIdentity,
    private readonly cluster: string,
    private readonly now: () => number = Date.now,
    /** This node's own copy of a key (the KV store's), if any: an entry equal to it needs no check. */
    private readonly localEntry: (key: string) => Entry | undefined = () => undefined,
  ) {
    this.segItems = new SegItemSeals(identity, cluster);
  }

  /** Public keys checked against their ids, shared with the link hellos and signaling. */
  get keys() {
    return this.identity.keys;
  }

  get id(): string {
    return this.identity.id;
  }

  /** Signs our broadcast `id` of `kind` (the core's `seal` effect). */
  async sealBroadcast(id: string, kind: string, data: unknown): Promise<BroadcastSeal> {
    const b = encode(compactSigned(kind, data, this.identity.id));
    const t0 = performance.now();
    const s = await this.identity.sign(broadcastTranscript(this.cluster, id, this.identity.id, kind, b));
    this.counters.signUs += Math.round((performance.now() - t0) * 1000);
    this.counters.sealed++;
    return { b, s, k: this.identity.pub };
  }

  /**
   * The payload `origin` signed as broadcast `id` of `kind`, decoded; null when the seal
   * is missing, malformed, or not the origin's signature.
   */
  async openBroadcast(id: string, origin: string, kind: string, seal: unknown): Promise<{ data: unknown; seal: BroadcastSeal } | null> {
    const s = asBroadcastSeal(seal);
    if (!s || originOf(id) !== origin) return this.refuse();
    const t0 = performance.now();
    const r = await this.keys.verify(origin, s.k, s.s, broadcastTranscript(this.cluster, id, origin, kind, s.b));
    this.counters.verifyUs += Math.round((performance.now() - t0) * 1000);
    if (r !== null) return this.refuse();
    const d = decode<unknown>(s.b, anyValue);
    if (!d.ok) return this.refuse();
    this.counters.verified++;
    return { data: expandSigned(kind, d.msg, origin), seal: s };
  }

  /** Signs an entry of a write we coordinate (the core's `sealEntry` effect). */
  async sealEntry(e: Entry): Promise<EntrySeal> {
    const t0 = performance.now();
    const s = await this.identity.sign(entryTranscript(this.cluster, e.key, e.version.ts, e.version.node, e.deleted, e.deleted ? NO_VALUE : encode(e.value)));
    this.counters.signUs += Math.round((performance.now() - t0) * 1000);
    this.counters.entriesSealed++;
    return { s, k: this.identity.pub };
  }

  /**
   * Does this entry, received from `from`, count? Its writer's own word does (the link or
   * route proved `from`); anyone else's copy needs the writer's valid seal. An entry too
   * malformed to check counts here: the core's validation drops its message.
   */
  private async entryOk(v: unknown, from: string | undefined): Promise<boolean> {
    const e = asRawEntry(v);
    if (!e || e.version.node === from) return true;
    const seal = asEntrySeal(e.seal);
    if (!seal) return this.refuseEntry();
    let value: Uint8Array = NO_VALUE;
    if (!e.deleted) {
      try {
        value = encode(e.value);
      } catch {
        return true; // not encodable: the core's validation refuses it
      }
    }
    // the very entry this node already holds (a replica answering what we hold too, a
    // push or repair of our own version) adds nothing: no need to check it
    if (this.holds(e, seal, value)) {
      this.counters.entriesHeld++;
      return true;
    }
    const t = entryTranscript(this.cluster, e.key, e.version.ts, e.version.node, e.deleted, value);
    const key = sigKey(seal.s);
    if (this.entrySeals.has(key, t, seal.k)) {
      this.counters.entriesCached++;
      return true;
    }
    const t0 = performance.now();
    const r = await this.keys.verify(e.version.node, seal.k, seal.s, t);
    this.counters.verifyUs += Math.round((performance.now() - t0) * 1000);
    if (r !== null) return this.refuseEntry();
    this.entrySeals.add(key, t, seal.k);
    this.counters.entriesVerified++;
    return true;
  }

  /** Does this node hold exactly this entry (version, tombstone flag, seal and value bytes)? */
  private holds(e: RawEntry, seal: EntrySeal, value: Uint8Array): boolean {
    const l = this.localEntry(e.key);
    if (!l || l.version.ts !== e.version.ts || l.version.node !== e.version.node || l.deleted !== e.deleted) return false;
    const ls = asEntrySeal(l.seal);
    if (!ls || !equalBytes(ls.s, seal.s) || !equalBytes(ls.k, seal.k)) return false;
    try {
      return equalBytes(l.deleted ? NO_VALUE : encode(l.value), value);
    } catch {
      return false;
    }
  }

  private refuseEntry(): false {
    this.counters.entriesRefused++;
    return false;
  }

  /**
   * A KV message with the entries that do not count (entryOk) removed; null when it must
   * be dropped whole (a `kv.put` or `kv.push` would be acknowledged for what it no longer holds).
   */
  private async checkEntries(m: Record<string, unknown> & { type: string }, from: string | undefined): Promise<WireMessage | null> {
    const ok = (e: unknown) => this.entryOk(e, from);
    const drop = (): null => {
      this.counters.entryMessagesDropped++;
      return null;
    };
    switch (m.type) {
      case 'kv.put':
        return (await ok(m.entry)) ? (m as unknown as WireMessage) : drop();
      case 'kv.getReply':
        return m.entry && !(await ok(m.entry)) ? ({ ...m, entry: null } as unknown as WireMessage) : (m as unknown as WireMessage);
      case 'kv.puts': {
        if (!Array.isArray(m.items)) return m as unknown as WireMessage;
        const items = m.items as unknown[][];
        const keep = await Promise.all(items.map((it) => (Array.isArray(it) ? ok({ key: it[1], value: it[2], version: { ts: it[3], node: it[4] }, deleted: it[5] === 1, seal: it[7] }) : true)));
        return { ...m, items: items.filter((_, i) => keep[i]) } as unknown as WireMessage;
      }
      case 'kv.getReplies': {
        if (!Array.isArray(m.items)) return m as unknown as WireMessage;
        const items = m.items as unknown[][];
        const keep = await Promise.all(items.map((it) => (Array.isArray(it) && it[1] ? ok(it[1]) : true)));
        return { ...m, items: items.map((it, i) => (keep[i] ? it : [it[0], null])) } as unknown as WireMessage;
      }
      default: {
        if (!Array.isArray(m.entries)) return m as unknown as WireMessage;
        const entries = m.entries as unknown[];
        const keep = await Promise.all(entries.map(ok));
        if (keep.every(Boolean)) return m as unknown as WireMessage;
        if (m.type === 'kv.push') return drop();
        return { ...m, entries: entries.filter((_, i) => keep[i]) } as unknown as WireMessage;
      }
    }
  }

  /** Does this KV message hold an entry that its sender did not write (so its seal must be checked)? */
  private holdsOthersEntries(m: Record<string, unknown>, from: string | undefined): boolean {
    if (!ENTRY_CARRIERS.has(m.type as string)) return false;
    for (const e of entriesOf(m)) {
      const node = (e as { version?: { node?: unknown } } | null)?.version?.node;
      if (node !== from) return true;
    }
    return false;
  }

  /** Our routed envelope as it goes out: the inner message as signed bytes. */
  async sealRoute(env: { src: string; dst: string; ttl: number; msg: unknown }): Promise<WireMessage> {
    return this.sealRouteParts(env.src, env.dst, env.ttl, [encode(env.msg)]);
  }

  /**
   * Our routed envelope carrying the encoded messages `parts`, in order, under one
   * signature (route-bundles.ts): the signed bytes are the messages back to back, as in a
   * frame; one message alone is exactly its encoding.
   */
  async sealRouteParts(src: string, dst: string, ttl: number, parts: readonly Uint8Array[]): Promise<WireMessage> {
    const m = parts.length === 1 ? parts[0]! : concatBytes(parts);
    const t = Math.floor(this.now());
    const s = await this.identity.sign(routeTranscript(this.cluster, src, dst, t, m));
    this.counters.routesSealed++;
    if (parts.length > 1) this.counters.routesBundled += parts.length;
    const seal: RouteSeal = { m, t, s, k: this.identity.pub };
    return { type: 'rt.route', src, dst, ttl, seal } as unknown as WireMessage;
  }

  /**
   * A routed envelope for us, opened: its message as `src` signed it (or, for a bundle,
   * its messages in order), or null (refused). One message of a bundle that fails its
   * own checks is dropped alone: the signature already proves `src` sent them all.
   */
  async openRoute(env: { src: string; dst: string; ttl: number; seal?: unknown }): Promise<WireMessage | WireMessage[] | null> {
    const s = asRouteSeal(env.seal);
    if (!s || env.dst !== this.identity.id) return this.refuse();
    if (Math.abs(this.now() - s.t) > ROUTE_SKEW_MS) return this.refuse();
    const t0 = performance.now();
    const r = await this.keys.verify(env.src, s.k, s.s, routeTranscript(this.cluster, env.src, env.dst, s.t, s.m));
    this.counters.verifyUs += Math.round((performance.now() - t0) * 1000);
    if (r !== null) return this.refuse();
    const d = decodeAll<unknown>(s.m, anyValue);
    if (d.errors.length > 0 || d.msgs.length === 0 || d.msgs.length > ROUTE_BUNDLE_MAX) return this.refuse();
    this.counters.verified++;
    if (d.msgs.length === 1) return this.openInner(env, d.msgs[0]);
    // their checks (entries, queue items) run side by side, as separate envelopes' do
    const opened = await Promise.all(d.msgs.map((inner) => this.openInner(env, inner)));
    return opened.filter((m): m is WireMessage => m !== null);
  }

  /** One message of a verified envelope, checked as its own (entries, queue items, shape). */
  private async openInner(env: { src: string; dst: string; ttl: number }, raw: unknown): Promise<WireMessage | null> {
    let inner = raw as Record<string, unknown> & { type: string };
    if (typeof inner === 'object' && inner !== null && this.holdsOthersEntries(inner, env.src)) {
      const checked = await this.checkEntries(inner, env.src);
      if (!checked) return null;
      inner = checked as unknown as Record<string, unknown> & { type: string };
    }
    if (typeof inner === 'object' && inner !== null && this.segItems.carries(inner) && !(await this.segItems.check(inner, env.src))) return null;
    const opened = { type: 'rt.route', src: env.src, dst: env.dst, ttl: env.ttl, msg: inner };
    if (validateWire(opened) !== null) return this.refuse();
    return opened as unknown as WireMessage;
  }

  /**
   * A message from a neighbour, ready for the core: sealed gossip opened, a routed
   * envelope for us opened, proofs in sync rows and history verified (failing ones
   * removed); null when it must be dropped. A bundle of routed messages for us
   * (route-bundles.ts) opens as the list of its messages.
   */
  async inbound(msg: WireMessage, from?: string): Promise<WireMessage | WireMessage[] | null> {
    const m = msg as unknown as Record<string, unknown> & { type: string };
    if (this.holdsOthersEntries(m, from)) return this.checkEntries(m, from);
    if (this.segItems.carries(m)) return this.segItems.check(msg, from);
    switch (m.type) {
      case 'pt.gossip': {
        const o = await this.openBroadcast(m.id as string, m.origin as string, m.kind as string, m.seal);
        return o ? ({ ...m, data: o.data, seal: o.seal } as unknown as WireMessage) : null;
      }
      case 'rt.route':
        return m.dst === this.identity.id ? this.openRoute(m as never) : msg;
      case 'mem.sync': {
        const records = m.records as { proof?: { id: string; data: unknown; seal?: unknown } | null }[];
        const out = await Promise.all(records.map(async (r) => {
          if (!r.proof) return r;
          const o = await this.openBroadcast(r.proof.id, originOf(r.proof.id), MEMBER_KIND, r.proof.seal);
          if (o) return { ...r, proof: { id: r.proof.id, data: o.data, seal: o.seal } };
          this.counters.proofsStripped++;
          const { proof: _dropped, ...rest } = r;
          return rest;
        }));
        return { ...m, records: out } as unknown as WireMessage;
      }
      case 'chat.history': {
        const messages = m.messages as { from: string; proof?: { id: string; data?: unknown; seal?: unknown } | null }[];
        const out = await Promise.all(messages.map(async (c) => {
          if (!c.proof) return c;
          const o = await this.openBroadcast(c.proof.id, c.from, CHAT_KIND, c.proof.seal);
          // the signed payload must be this very message
          const signed = o && (o.data as { message?: Record<string, unknown> } | null)?.message;
          if (signed && sameMessage(signed, c as unknown as Record<string, unknown>)) return { ...c, proof: { id: c.proof.id, seal: o.seal } };
          this.counters.proofsStripped++;
          const { proof: _dropped, ...rest } = c;
          return rest;
        }));
        return { ...m, messages: out } as unknown as WireMessage;
      }
      default:
        return msg;
    }
  }

  /** Does this outgoing message need an asynchronous step (a signature: our routed envelopes, sealed with sealRouteParts)? */
  needsSigning(msg: WireMessage): boolean {
    const m = msg as unknown as Record<string, unknown>;
    return m.type === 'rt.route' && m.src === this.identity.id && m.msg !== undefined && m.seal === undefined;
  }

  /** Does this incoming message (from the neighbour `from`) need an asynchronous check? */
  needsCheck(msg: WireMessage, from?: string): boolean {
    const t = (msg as { type: string }).type;
    return (
      t === 'pt.gossip' ||
      t === 'mem.sync' ||
      t === 'chat.history' ||
      (t === 'rt.route' && (msg as { dst?: string }).dst === this.identity.id) ||
      this.segItems.carries(msg) ||
      this.holdsOthersEntries(msg as unknown as Record<string, unknown>, from)
    );
  }

  private refuse(): null {
    this.counters.refused++;
    return null;
  }
}

/** The payload of a sealed gossip travels in its seal only (the receiver decodes it from there). */
export function stripSealed(msg: WireMessage): WireMessage {
  const m = msg as unknown as Record<string, unknown>;
  if (m.type === 'pt.gossip' && asBroadcastSeal(m.seal)) return { ...m, data: null } as unknown as WireMessage;
  if (m.type === 'mem.sync' && Array.isArray(m.records)) {
    return {
      ...m,
      records: (m.records as { proof?: { id: string; data: unknown; seal?: unknown } }[]).map((r) =>
        r.proof && asBroadcastSeal(r.proof.seal) ? { ...r, proof: { ...r.proof, data: null } } : r,
      ),
    } as unknown as WireMessage;
  }
  return msg;
}

function sameMessage(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  for (const k of ['id', 'room', 'from', 'text', 'ts']) if (a[k] !== b[k]) return false;
  return true;
}

/**
 * Per link, work that finishes out of order (signature checks, signatures) handed on in
 * the order it was queued: a frame reaches the core, or the link, only after every earlier
 * one of that link did. The work itself runs at once, side by side.
 */
export class LinkOrder<T> {
  private readonly chains = new Map<string, { tail: Promise<void>; pending: number }>();

  constructor(private readonly onError: (e: unknown) => void) {}

  /** Something of `peer` is still waiting: a new item must queue behind it. */
  busy(peer: string): boolean {
    return this.chains.has(peer);
  }

  push(peer: string, work: Promise<T>, then: (v: T) => void): void {
    let c = this.chains.get(peer);
    if (!c) {
      c = { tail: Promise.resolve(), pending: 0 };
      this.chains.set(peer, c);
    }
    const chain = c;
    chain.pending++;
    // settled at once, so a failure waiting for its turn is not an unhandled rejection
    const settled = work.then(
      (v) => ({ ok: true as const, v }),
      (e: unknown) => ({ ok: false as const, e }),
    );
    chain.tail = chain.tail
      .then(() => settled)
      .then((r) => (r.ok ? then(r.v) : this.onError(r.e)))
      .catch(this.onError)
      .finally(() => {
        if (--chain.pending === 0 && this.chains.get(peer) === chain) this.chains.delete(peer);
      });
  }
}
