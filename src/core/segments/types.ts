/**
 * Public vocabulary of data segments (docs/architecture.md, `window.p2p.segments`), in
 * the terms of the protocol contract (core/protocol.ts). Wire messages live in
 * messages.ts, the state machine in segments.ts and its parts.
 */
import { approxEncodedSize } from '../data-protocol';
import type { ClusterView, Effect, ReplyEffect } from '../protocol';
import type { NodeId } from '../types';
import type { SegMessage, SegRecord } from './messages';

export interface SegmentsConfig {
  /** Replicas per key, owner included (length of the preference list). */
  n: number;
  /** Copies (owner included) an operation must reach before it is acknowledged. */
  w: number;
  /** Virtual nodes per member on the placement ring. */
  vnodes: number;
  /** put/update without an answer after this many ms are rejected (they may still be applied). */
  requestTimeoutMs: number;
  /** Coordinator re-sends an unanswered request, a would-be owner re-sends its claim, holders re-nudge (ms). */
  retryIntervalMs: number;
  /** Owner re-sends operations a replica has not acknowledged after this many ms; also the tick period. */
  retransmitMs: number;
  /** A registered waiting peek/take is re-registered this often; the owner forgets it after 3x without refresh. */
  keepaliveMs: number;
  maxKeyLength: number;
  /** Limit on a value's encoded size, measured with `sizeOf`. */
  maxValueBytes: number;
  /** A put on a queue holding this many items is rejected. */
  maxItems: number;
  /**
   * Queues (keys) this node keeps state for, as owner or replica: a request, claim or
   * replica write that would add one more is refused and counted (`keyCapRefused`). It
   * bounds what any peer can make a node hold by naming new keys.
   */
  maxKeys: number;
  /** Waiting peek/take calls (and requests queued during a takeover) per key at the owner. */
  maxWaiters: number;
  /** Value bytes per snapshot part (state transfer). */
  chunkBytes: number;
  /** Operations per `seg.ops` message. */
  opsBatch: number;
  /** Owner log entries kept for lagging replicas; a replica further behind gets a snapshot. */
  maxLog: number;
  /** How long (ms, owner clock) the result of a request is kept to answer its retries. */
  dedupTtlMs: number;
  /** At most this many remembered results per key (oldest dropped first). */
  maxDone: number;
  /** Emit `persist` effects (whole record of each changed key, once per `handle` call). */
  persist: boolean;
  /** Encoded size of a value in bytes (the runtime passes msgpack's). May throw for unencodable values. */
  sizeOf: (value: unknown) => number;
}

export const DEFAULT_SEGMENTS_CONFIG: Readonly<SegmentsConfig> = Object.freeze({
  n: 3,
  w: 2,
  vnodes: 64,
  requestTimeoutMs: 10_000,
  retryIntervalMs: 1000,
  retransmitMs: 250,
  keepaliveMs: 5000,
  maxKeyLength: 256,
  maxValueBytes: 64 * 1024,
  maxItems: 100_000,
  maxKeys: 10_000,
  maxWaiters: 10_000,
  chunkBytes: 128 * 1024,
  opsBatch: 256,
  maxLog: 5000,
  dedupTtlMs: 120_000,
  maxDone: 5000,
  persist: true,
  sizeOf: approxEncodedSize,
});

export type SegTimer =
  /** Periodic work: re-sends, re-registrations, retransmissions, claim retries (armed only while there is work). */
  | { type: 'seg.tick' }
  /** A client request's deadline (put/update: requestTimeoutMs; peek/take: their timeoutMs). */
  | { type: 'seg.deadline'; req: number };

export type SegIn =
  /** Placement: `view.placement` without `view.away` (segments move at once); the same set again changes nothing. */
  | { type: 'members'; view: ClusterView }
  | { type: 'message'; from: NodeId; msg: SegMessage }
  | { type: 'timer'; timer: SegTimer }
  /** Replies the new item's id. */
  | { type: 'put' | 'update'; req: number; key: string; value: unknown }
  /** Replies a `SegItem`. */
  | { type: 'peek' | 'take'; req: number; key: string; afterId: number; timeoutMs?: number }
  /** The caller's AbortSignal fired: reject that waiting peek/take (no effect on put/update). */
  | { type: 'cancel'; req: number }
  /** Records from earlier `persist` effects, before the first `members` (validated: a bad one is skipped and counted). */
  | { type: 'load'; records: SegRecord[] };

/** What `peek` and `take` reply. */
export interface SegItem {
  id: number;
  value: unknown;
}

export type SegEvent =
  /** This node's copy of `key` changed, or the waiting calls registered here (UI refresh). */
  { type: 'changed'; key: string };

export type SegOut = Effect<SegMessage, SegTimer, SegEvent, SegRecord>;
export type SegReply = ReplyEffect;

/** Names of the event counters of data segments (see SegStats). */
export const SEG_COUNTERS = [
  'requestsOk',
  'requestsFailed',
  'requestsTimedOut',
  'duplicateReq',
  'waitsTimedOut',
  'waitsCancelled',
  'cancelIgnored',
  'lateReplies',
  'redirected',
  'restores',
  'restored',
  'restoreFailed',
  'restoreNoop',
  'dedupHits',
  'placementChanges',
  'claims',
  'claimsRefused',
  'fetches',
  'activations',
  'ballotsLost',
  /** Messages naming a ballot whose epoch is more than MAX_AHEAD_MS ahead of our clock, refused. */
  'ballotsAheadRefused',
  /** Requests, claims and replica writes refused because they would add a queue past `maxKeys`. */
  'keyCapRefused',
  'stepDowns',
  'fenced',
  'lateAcks',
  'retransmits',
  'snapshotsBuilt',
  'snapshotsSent',
  'snapshotsInstalled',
  'snapshotTooLarge',
  'released',
  'waitersExpired',
  'inconsistentPut',
  'inconsistentTake',
  'invalidMessages',
  'invalidRecords',
  'loaded',
  'loadSkipped',
  'sizeErrors',
] as const;
export type SegCounterName = (typeof SEG_COUNTERS)[number];

export interface SegStats extends Record<SegCounterName, number> {
  /** Keys this node holds a copy of. */
  keys: number;
  /** Keys this node serves as an active owner. */
  owned: number;
  /** Requests this node coordinates. */
  calls: number;
  /** Waiting peek/take calls registered at this node (as owner). */
  waiters: number;
  /** Messages sent and received (valid ones from peers), per type. */
  sent: Partial<Record<SegMessage['type'], number>>;
  received: Partial<Record<SegMessage['type'], number>>;
}

/** One queue as this node holds it (for the UI). */
export interface QueueView {
  key: string;
  items: { id: number; value: unknown }[];
  /** Waiting peek/take calls registered here (only on the owner). */
  waiting: number;
  /** The owner in this node's view (first live node of the preference list). */
  owner: NodeId;
  /** Epoch of the ballot whose state this copy holds. */
  epoch: number;
}
