import type { NodeId, Seal } from '../types';
import { arrayOf, int, isObject, nodeId, oneOf, optional, shape, str, tuple, union, any, type Check } from '../validate';

/**
 * Plumtree wire messages (Leitão, Pereira, Rodrigues: "Epidemic Broadcast Trees", SRDS 2007).
 *
 * `round` counts hops: the origin sends round 1, a node that received round r forwards
 * r + 1, so the round a node receives is the length of the path the copy travelled.
 * An IHAVE entry carries the round the receiver would get by grafting that announcer,
 * which is what the tree optimisation compares with the eager path's round.
 *
 * Trees are per origin (see plumtree.ts), so PRUNE and GRAFT name the origin whose tree
 * they change. A message id is `${origin}:${tag}:${counter}`: the origin of an IHAVE
 * entry is read from its id (originOf), and a GOSSIP whose id does not start with its
 * origin is rejected.
 */
export interface PtGossip {
  type: 'pt.gossip';
  /** `${origin}:${tag}:${counter}`, unique across restarts of the same node id (see Plumtree). */
  id: string;
  origin: NodeId;
  round: number;
  /** Payload handler name (chat, member, kv, ...), Partisan-style. */
  kind: string;
  data: unknown;
  /**
   * Set on a copy sent by anti-entropy (answer to `pt.aeWant`): the record is the stored
   * original, passed through unchanged; the flag only tells the receiver that this copy
   * is no tree traffic (no eager/lazy change, no PRUNE on a duplicate).
   */
  ae?: true;
  /**
   * The origin's signature over (id, kind, data) in the runtime (core/types.ts `Seal`):
   * kept with the message and forwarded with it, never inspected here.
   */
  seal?: Seal;
}

/** Anti-entropy summary of the messages held for exchange: count and XOR of their id hashes. */
export interface PtAeSum {
  type: 'pt.aeSum';
  n: number;
  h: number;
}

/** Anti-entropy: the ids held for exchange (sent when a `pt.aeSum` did not match). */
export interface PtAeIds {
  type: 'pt.aeIds';
  ids: string[];
}

/** Anti-entropy: send these held messages (answered with `pt.gossip` copies marked `ae`). */
export interface PtAeWant {
  type: 'pt.aeWant';
  ids: string[];
}

/**
 * A broadcast as its origin issued it (Plumtree id, payload, seal), kept by the protocol
 * that handled it as proof of what the origin said: membership rows carry each member's
 * own latest update, chat history each message's. The origin is `originOf(id)`; the kind
 * is the one of the protocol that carries it.
 */
export interface BroadcastProof {
  id: string;
  data: unknown;
  seal?: Seal;
}

export interface PtIhave {
  type: 'pt.ihave';
  entries: [id: string, round: number][];
}

/** Join `origin`'s tree over this link and send these payloads (ids may be empty: the tree optimisation only re-links). */
export interface PtGraft {
  type: 'pt.graft';
  origin: NodeId;
  ids: string[];
  round?: number;
}

/** Leave `origin`'s tree over this link (the sender got a duplicate over it). */
export interface PtPrune {
  type: 'pt.prune';
  origin: NodeId;
}

export type PtMessage = PtGossip | PtIhave | PtGraft | PtPrune | PtAeSum | PtAeIds | PtAeWant;

export const MAX_MESSAGE_ID_LENGTH = 256;
export const MAX_KIND_LENGTH = 64;
/** Entries per IHAVE / ids per GRAFT on the wire; larger batches are split by the sender. */
export const MAX_IHAVE_ENTRIES = 512;
export const MAX_ROUND = 65_535;

/** `${origin}:${tag}:${counter}`; tag and counter never contain ':'. */
export function makeMessageId(origin: NodeId, tag: string, counter: number): string {
  return `${origin}:${tag}:${counter.toString(36)}`;
}

/** The origin part of a message id ('' when the id is not well formed). */
export function originOf(id: string): NodeId {
  const last = id.lastIndexOf(':');
  const cut = last > 0 ? id.lastIndexOf(':', last - 1) : -1;
  return cut > 0 && last > cut + 1 && last < id.length - 1 ? id.slice(0, cut) : '';
}

/** A Plumtree message id (`${origin}:${tag}:${counter}`, bounded). */
export const messageId: Check = (v) =>
  typeof v !== 'string' || v.length > MAX_MESSAGE_ID_LENGTH || nodeId(originOf(v)) !== null ? 'not a message id' : null;
const round = int(0, MAX_ROUND);
const seal: Check = optional((v) => (isObject(v) ? null : 'not a seal'));

/** Shape of a BroadcastProof (its `data` is validated by the protocol of its kind). */
export const proofCheck: Check = shape({ id: messageId, data: any, seal });

const check = union({
  'pt.gossip': { id: messageId, origin: nodeId, round, kind: str(MAX_KIND_LENGTH), data: any, seal, ae: optional(oneOf(true)) },
  'pt.ihave': { entries: arrayOf(tuple(messageId, round), MAX_IHAVE_ENTRIES) },
  'pt.graft': { origin: nodeId, ids: arrayOf(messageId, MAX_IHAVE_ENTRIES), round: optional(round) },
  'pt.prune': { origin: nodeId },
  'pt.aeSum': { n: int(0, MAX_IHAVE_ENTRIES), h: int(0, 0xffffffff) },
  'pt.aeIds': { ids: arrayOf(messageId, MAX_IHAVE_ENTRIES) },
  'pt.aeWant': { ids: arrayOf(messageId, MAX_IHAVE_ENTRIES) },
});

/**
 * Shape and size check of a Plumtree message from a peer; null when acceptable.
 * The payload `data` is not inspected here: the handler of its `kind` validates it.
 */
export function validatePlumtreeMessage(v: unknown): string | null {
  const e = check(v);
  if (e) return e;
  const m = v as PtMessage;
  if (m.type === 'pt.gossip' && originOf(m.id) !== m.origin) return 'pt.gossip: id does not belong to origin';
  return null;
}

export type PtTimer =
  /** graftTimeout1Ms after the first IHAVE of a missing id, then graftTimeout2Ms after each GRAFT. */
  | { type: 'pt.graftTimeout'; id: string }
  /** Flush the queued IHAVE announcements (ihaveBatchDelayMs after the first one queued). */
  | { type: 'pt.ihaveFlush' }
  /** Periodic anti-entropy exchange with one random neighbour (every antiEntropyIntervalMs). */
  | { type: 'pt.aeTick' }
  /** ihaveBatchDelayMs after anti-entropy brought something new: offer the sum to another neighbour than `from`. */
  | { type: 'pt.aeSpread'; from: NodeId };

/** A message of this protocol (by its `pt.` prefix): lets the composer route without casts. */
export function isPtMessage(m: { type: string }): m is PtMessage {
  return m.type.startsWith('pt.');
}
