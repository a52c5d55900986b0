/**
 * Public vocabulary of data segments (DESIGN.md §3 "Data segments", §4 `segments`).
 * Wire messages live in messages.ts, the state machine in segments.ts.
 */
import type { NodeId, SendEffect, TimerEffect } from '../types';
import type { SegMessage, SegRecord } from './messages';
import { approxEncodedSize } from '../data-protocol';

export interface SegmentsConfig {
  /** Replicas per key, owner included (length of the preference list). */
  n: number;
  /** Copies (owner included) an operation must reach before it is acknowledged. */
  w: number;
  /** Virtual nodes per member on the placement ring. */
  vnodes: number;
  /** put/update without an answer after this many ms are rejected (they may still be applied). */
  requestTimeout: number;
  /** Coordinator re-sends an unanswered request, a would-be owner re-sends its claim, holders re-nudge (ms). */
  retryInterval: number;
  /** Owner re-sends operations a replica has not acknowledged after this many ms; also the tick period. */
  retransmit: number;
  /** A registered waiting peek/take is re-registered this often; the owner forgets it after 3x without refresh. */
  keepalive: number;
  maxKeyLength: number;
  /** Limit on a value's encoded size, measured with `sizeOf`. */
  maxValueBytes: number;
  /** A put on a queue holding this many items is rejected. */
  maxItems: number;
  /** Waiting peek/take calls (and requests queued during a takeover) per key at the owner. */
  maxWaiters: number;
  /** Value bytes per snapshot part (state transfer). */
  chunkBytes: number;
  /** Operations per `seg_ops` message. */
  opsBatch: number;
  /** Owner log entries kept for lagging replicas; a replica further behind gets a snapshot. */
  maxLog: number;
  /** How long (ms, owner clock) the result of a request is kept to answer its retries. */
  dedupTtl: number;
  /** At most this many remembered results per key (oldest dropped first). */
  maxDone: number;
  /** Emit `persist` effects (whole record of each changed key, once per `handle` call). */
  persist: boolean;
  /** Encoded size of a value in bytes (the runtime passes msgpack's). May throw for unencodable values. */
  sizeOf: (value: unknown) => number;
}

export const DEFAULT_SEGMENTS_CONFIG: Readonly<SegmentsConfig> = {
  n: 3,
  w: 2,
  vnodes: 64,
  requestTimeout: 10_000,
  retryInterval: 1000,
  retransmit: 250,
  keepalive: 5000,
  maxKeyLength: 256,
  maxValueBytes: 64 * 1024,
  maxItems: 100_000,
  maxWaiters: 10_000,
  chunkBytes: 128 * 1024,
  opsBatch: 256,
  maxLog: 5000,
  dedupTtl: 120_000,
  maxDone: 5000,
  persist: true,
  sizeOf: approxEncodedSize,
};

export type SegTimer =
  /** Periodic work: re-sends, re-registrations, retransmissions, claim retries (armed only while there is work). */
  | { type: 'seg_tick' }
  /** A client request's deadline (put/update: requestTimeout; peek/take: their timeoutMs). */
  | { type: 'seg_deadline'; req: number };

export type SegIn =
  /** Alive members including me; the same on every node eventually. */
  | { type: 'members'; live: NodeId[] }
  | { type: 'message'; from: NodeId; msg: SegMessage }
  | { type: 'timer'; timer: SegTimer }
  | { type: 'put' | 'update'; req: number; key: string; value: unknown }
  | { type: 'peek' | 'take'; req: number; key: string; afterId: number; timeoutMs?: number }
  /** The caller's AbortSignal fired: reject that waiting peek/take (no effect on put/update). */
  | { type: 'cancel'; req: number }
  /** Records from earlier `persist` effects, before the first `members` (optional). */
  | { type: 'load'; state: unknown[] };

export type SegReply =
  /** put/update: `id`; peek/take: `id` and `value`. */
  | { type: 'reply'; req: number; ok: true; id?: number; value?: unknown }
  | { type: 'reply'; req: number; ok: false; error: string };

export type SegOut =
  | SendEffect<SegMessage>
  | TimerEffect<SegTimer>
  | SegReply
  /** This node's copy of `key` changed (UI refresh). */
  | { type: 'changed'; key: string }
  /** Store `put` records (one per key, replacing the previous one) and delete `remove` keys; before later sends. */
  | { type: 'persist'; put: SegRecord[]; remove: string[] };

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
