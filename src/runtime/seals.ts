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
 */
import type { WireMessage } from '../core/node';
import { validateWire } from '../core/node';
import { originOf } from '../core/plumtree/messages';
import { MEMBER_KIND } from '../core/membership';
import { CHAT_KIND } from '../core/chat';
import { decode, encode } from '../wire/codec';
import type { NodeIdentity } from './node-identity';
import { broadcastTranscript, routeTranscript } from '../trust/transcripts';

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

function asRouteSeal(v: unknown): RouteSeal | null {
  if (typeof v !== 'object' || v === null) return null;
  const s = v as Partial<RouteSeal>;
  return isBytes(s.m) && isBytes(s.s) && isBytes(s.k) && typeof s.t === 'number' && Number.isFinite(s.t) ? (s as RouteSeal) : null;
}

/** Accepts any decoded value: a proof's or gossip's payload is validated by the core. */
const anyValue = () => null;

export class Sealer {
  readonly counters = { sealed: 0, routesSealed: 0, verified: 0, refused: 0, proofsStripped: 0, signUs: 0, verifyUs: 0 };

  constructor(
    private readonly identity: NodeIdentity,
    private readonly cluster: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Public keys checked against their ids, shared with the link hellos and signaling. */
  get keys() {
    return this.identity.keys;
  }

  get id(): string {
    return this.identity.id;
  }

  /** Signs our broadcast `id` of `kind` (the core's `seal` effect). */
  async sealBroadcast(id: string, kind: string, data: unknown): Promise<BroadcastSeal> {
    const b = encode(data);
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
    return { data: d.msg, seal: s };
  }

  /** Our routed envelope as it goes out: the inner message as signed bytes. */
  async sealRoute(env: { src: string; dst: string; ttl: number; msg: unknown }): Promise<WireMessage> {
    const m = encode(env.msg);
    const t = Math.floor(this.now());
    const s = await this.identity.sign(routeTranscript(this.cluster, env.src, env.dst, t, m));
    this.counters.routesSealed++;
    const seal: RouteSeal = { m, t, s, k: this.identity.pub };
    return { type: 'rt.route', src: env.src, dst: env.dst, ttl: env.ttl, seal } as unknown as WireMessage;
  }

  /** A routed envelope for us, opened: its message as `src` signed it, or null (refused). */
  async openRoute(env: { src: string; dst: string; ttl: number; seal?: unknown }): Promise<WireMessage | null> {
    const s = asRouteSeal(env.seal);
    if (!s || env.dst !== this.identity.id) return this.refuse();
    if (Math.abs(this.now() - s.t) > ROUTE_SKEW_MS) return this.refuse();
    const t0 = performance.now();
    const r = await this.keys.verify(env.src, s.k, s.s, routeTranscript(this.cluster, env.src, env.dst, s.t, s.m));
    this.counters.verifyUs += Math.round((performance.now() - t0) * 1000);
    if (r !== null) return this.refuse();
    const d = decode<unknown>(s.m, anyValue);
    if (!d.ok) return this.refuse();
    const opened = { type: 'rt.route', src: env.src, dst: env.dst, ttl: env.ttl, msg: d.msg };
    if (validateWire(opened) !== null) return this.refuse();
    this.counters.verified++;
    return opened as unknown as WireMessage;
  }

  /**
   * A message from a neighbour, ready for the core: sealed gossip opened, a routed
   * envelope for us opened, proofs in sync rows and history verified (failing ones
   * removed); null when it must be dropped.
   */
  async inbound(msg: WireMessage): Promise<WireMessage | null> {
    const m = msg as unknown as Record<string, unknown> & { type: string };
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

  /** A message of ours as it goes on the wire: payloads inside their seals only, our routed envelopes sealed. */
  async outbound(msg: WireMessage): Promise<WireMessage> {
    const m = msg as unknown as Record<string, unknown> & { type: string };
    if (m.type === 'rt.route' && m.src === this.identity.id && m.msg !== undefined && m.seal === undefined) return this.sealRoute(m as never);
    return stripSealed(msg);
  }

  /** Does this outgoing message need an asynchronous step (a signature)? */
  needsSigning(msg: WireMessage): boolean {
    const m = msg as unknown as Record<string, unknown>;
    return m.type === 'rt.route' && m.src === this.identity.id && m.msg !== undefined && m.seal === undefined;
  }

  /** Does this incoming message need an asynchronous check? */
  needsCheck(msg: WireMessage): boolean {
    const t = (msg as { type: string }).type;
    return t === 'pt.gossip' || t === 'mem.sync' || t === 'chat.history' || (t === 'rt.route' && (msg as { dst?: string }).dst === this.identity.id);
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
