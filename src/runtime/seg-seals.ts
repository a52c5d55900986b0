/**
 * Signed data-segment items (docs/security.md, "Signed queue items").
 *
 * With signatures on (the browser runtime), the value of every queue item is, inside the
 * core, a sealed item packed into one binary (`packItem`): `b` the caller's value as
 * encoded bytes, `w` the node that put it (its writer), `s` the writer's Ed25519
 * signature over segItemTranscript(cluster, key, w, b) and `k` its public key (which
 * must hash to `w`). The core treats it as an opaque value: the owner sequences it, replicas copy it,
 * snapshots and the request table carry it, a takeover hands it on, exactly as written.
 *
 * - `seal` (a `put`/`update` on this tab): the caller's value, checked with the API's
 *   limits, encoded at call time and signed.
 * - `check` (a message from a peer): every item value a `seg.req`, `seg.ops`,
 *   `seg.install` or `seg.state` carries must be a sealed item of that message's key
 *   whose signature verifies (an item whose writer is the sender itself, proven by the
 *   link or the route seal, needs no check). One that does not drops the message whole:
 *   a replica never stores, acknowledges or hands on an altered item, and an owner never
 *   sequences one. The sender's retransmissions meet the same fate, so a dishonest owner
 *   stalls the keys it owns (it could refuse to serve them anyway), never corrupts a copy.
 * - `open` (a `peek`/`take` answer, whose `seg.reply` names no key): the item is checked
 *   against the key the caller asked for and decoded; one that fails rejects the call
 *   with an error naming the owner's fault instead of handing over what it altered.
 *
 * Checked signatures are remembered with the exact bytes they covered (`CheckedSeals`),
 * so an item verified when its `seg.ops` arrived costs nothing when it is served.
 */
import { keyProblem } from '../core/data-protocol';
import { segmentValueError } from '../core/segments';
import { plainValue } from '../core/validate';
import type { SegmentsApi } from './api';
import { decode, encode } from '../wire/codec';
import { segItemTranscript } from '../trust/transcripts';
import type { NodeIdentity } from './node-identity';
import { CheckedSeals, sigKey } from './checked-seals';
import { SigningBatch } from './signing-batch';

/** A queue item as its writer sealed it (the parts of the bytes the core holds: `packItem`). */
export interface SealedItem {
  /** The writer: the node where `put`/`update` was called. */
  w: string;
  /** The caller's value, encoded (wire/codec). */
  b: Uint8Array;
  s: Uint8Array;
  k: Uint8Array;
}

const FORMAT = 1;
const SIG_BYTES = 64;
const KEY_BYTES = 32;
const HEADER = 1 + SIG_BYTES + KEY_BYTES + 1;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A sealed item as one byte string, the value the core stores and sends: a format byte,
 * the 64-byte signature, the 32-byte public key, the writer id's length (one byte) and
 * UTF-8 bytes, then the encoded value. One binary per item, not a map of four fields:
 * a queue's persisted record and its snapshots copy one buffer per item.
 */
export function packItem(i: SealedItem): Uint8Array {
  const w = utf8.encode(i.w);
  if (i.s.byteLength !== SIG_BYTES || i.k.byteLength !== KEY_BYTES || w.byteLength > 255) throw new Error('not a sealable item');
  const out = new Uint8Array(HEADER + w.byteLength + i.b.byteLength);
  out[0] = FORMAT;
  out.set(i.s, 1);
  out.set(i.k, 1 + SIG_BYTES);
  out[HEADER - 1] = w.byteLength;
  out.set(w, HEADER);
  out.set(i.b, HEADER + w.byteLength);
  return out;
}

/** The parts of a packed item; null for anything else (an unsigned value, a malformed one). */
export function asSealedItem(v: unknown): SealedItem | null {
  if (!(v instanceof Uint8Array) || v.byteLength < HEADER || v[0] !== FORMAT) return null;
  const wl = v[HEADER - 1]!;
  if (v.byteLength < HEADER + wl) return null;
  let w: string;
  try {
    w = fromUtf8.decode(v.subarray(HEADER, HEADER + wl));
  } catch {
    return null;
  }
  return { w, s: v.subarray(1, 1 + SIG_BYTES), k: v.subarray(1 + SIG_BYTES, HEADER - 1), b: v.subarray(HEADER + wl) };
}

/**
 * Bytes a sealed item adds to the encoded value (format byte, signature, key, writer id
 * of at most 255 bytes, the binary's header) with a margin: the core's size limit for a
 * sealed value is the API's plus this.
 */
export const SEALED_ITEM_OVERHEAD = 512;

/** Segment messages whose item values are checked here (a `seg.reply` is checked by `open`: it names no key). */
const CARRIERS = new Set(['seg.req', 'seg.ops', 'seg.install', 'seg.state']);

/** The item values a segment message carries (every one must be a sealed item of its key). */
function* valuesOf(m: Record<string, unknown>): Generator<unknown> {
  switch (m.type) {
    case 'seg.req':
      if (m.kind === 'put' || m.kind === 'update' || m.kind === 'restore') yield m.value;
      return;
    case 'seg.ops':
      if (Array.isArray(m.ops)) for (const op of m.ops as { k?: unknown; value?: unknown }[]) if (op && (op.k === 'put' || op.k === 'restore')) yield op.value;
      return;
    default:
      // snapshot parts: queue items [id, value], and the request table's taken values
      if (Array.isArray(m.items)) for (const it of m.items) yield Array.isArray(it) ? it[1] : undefined;
      if (Array.isArray(m.done)) for (const d of m.done) if (Array.isArray(d) && d[1] === 1) yield d[4];
  }
}

export class SegItemSeals {
  readonly counters = { sealed: 0, verified: 0, cached: 0, refused: 0, messagesDropped: 0 };
  private readonly checked = new CheckedSeals();

  constructor(
    private readonly identity: NodeIdentity,
    private readonly cluster: string,
  ) {}

  /**
   * Encodes `value` (at once: later changes by the caller do not count) and signs it as an
   * item of queue `key` written by this node. The value must have passed the API's checks.
   */
  seal(key: string, value: unknown): Promise<Uint8Array> {
    const b = encode(value);
    return this.identity.sign(segItemTranscript(this.cluster, key, this.identity.id, b)).then((s) => {
      this.counters.sealed++;
      return packItem({ w: this.identity.id, b, s, k: this.identity.pub });
    });
  }

  /** Is `v` an item of queue `key` as its writer signed it? The writer's own word (`from`) needs no signature check. */
  async valid(key: string, v: unknown, from?: string): Promise<boolean> {
    const item = asSealedItem(v);
    if (!item) return this.refuse();
    if (item.w === from) return true;
    const t = segItemTranscript(this.cluster, key, item.w, item.b);
    const sig = sigKey(item.s);
    if (this.checked.has(sig, t, item.k)) {
      this.counters.cached++;
      return true;
    }
    if ((await this.identity.keys.verify(item.w, item.k, item.s, t)) !== null) return this.refuse();
    this.checked.add(sig, t, item.k);
    this.counters.verified++;
    return true;
  }

  /**
   * Does this message (validated or not) carry item values that `check` must see? A peek,
   * a take or a batch of take operations carries none and goes to the core without the
   * asynchronous step.
   */
  carries(m: { type: string }): boolean {
    return CARRIERS.has(m.type) && !valuesOf(m as unknown as Record<string, unknown>).next().done;
  }

  /**
   * The message when every item value it carries is a valid sealed item of its key, else
   * null (dropped whole). Malformed messages pass: the core's validation drops them.
   */
  async check<M extends { type: string }>(m: M, from?: string): Promise<M | null> {
    const r = m as unknown as Record<string, unknown>;
    if (typeof r.key !== 'string') return m;
    const oks = await Promise.all([...valuesOf(r)].map((v) => this.valid(r.key as string, v, from)));
    if (oks.every(Boolean)) return m;
    this.counters.messagesDropped++;
    return null;
  }

  /**
   * The caller's value of an item a `peek`/`take` on `key` was answered with (`id` for
   * the error); throws when the item is not as its writer put it.
   */
  async open(key: string, id: number, v: unknown): Promise<unknown> {
    const item = asSealedItem(v);
    if (!item) {
      this.refuse();
      throw new Error(`segment '${key}': item #${id} carries no signature of the node that put it; refused (its owner sent it altered, or it was stored before queue items were signed)`);
    }
    if (!(await this.valid(key, v))) throw new Error(`segment '${key}': item #${id} is not as its writer ${item.w} put it (the signature does not verify); refused`);
    const d = decode<unknown>(item.b, plainValue);
    if (!d.ok) throw new Error(`segment '${key}': item #${id} does not decode: ${d.error.message}`);
    return d.msg;
  }

  private refuse(): false {
    this.counters.refused++;
    return false;
  }
}

/** The API's limits on what a caller may put (the core's own are wider by SEALED_ITEM_OVERHEAD). */
export interface SegLimits {
  maxKeyLength: number;
  maxValueBytes: number;
  sizeOf: (value: unknown) => number;
}

/** Longest a sealed item waits for the other signatures of its burst before it goes to the core. */
const SEAL_BATCH_MS = 2;

/**
 * The segments API with signed items: `put`/`update` check the caller's value against
 * the API's limits, seal it and hand the core the sealed item, in the order they were
 * called; `peek`/`take` answer the caller's value of an item that verifies (`open`).
 * A key the core would refuse goes to it unsealed, for its error. The items of a burst
 * reach the core in one turn (SigningBatch), so the owner gets them batched, as it did
 * unsigned.
 */
export function sealedSegments(api: SegmentsApi, seals: SegItemSeals, limits: SegLimits): SegmentsApi {
  const batch = new SigningBatch(SEAL_BATCH_MS);
  const write = (kind: 'put' | 'update', key: string, value: unknown): Promise<number> => {
    if (keyProblem(key, limits.maxKeyLength)) return api[kind](key, value);
    const err = segmentValueError(key, value, limits.sizeOf, limits.maxValueBytes);
    if (err) return Promise.reject(new Error(err));
    return new Promise<number>((resolve) => {
      // the value is encoded at once (seal), so later changes by the caller do not count;
      // a value that cannot be encoded after all fails that call only
      batch.add(
        () => seals.seal(key, value),
        (r) => resolve(r.ok ? api[kind](key, r.value) : Promise.reject(r.error)),
      );
    });
  };
  const read = async (p: Promise<{ id: number; value: unknown }>, key: string) => {
    const r = await p;
    return { id: r.id, value: await seals.open(key, r.id, r.value) };
  };
  return {
    put: (key, value) => write('put', key, value),
    update: (key, value) => write('update', key, value),
    peek: (key, afterId, o) => read(api.peek(key, afterId, o), key),
    take: (key, afterId, o) => read(api.take(key, afterId, o), key),
    replicas: (key) => api.replicas(key),
  };
}
