/**
 * Public vocabulary of the Dynamo-style KVS (DESIGN.md §3 "KVS").
 * The wire messages live in messages.ts; the state machine in store.ts.
 */
import type { Hlc } from '../clock/hlc';
import type { NodeId, SendEffect, TimerEffect } from '../types';
import type { KvMessage } from './messages';

export interface KvConfig {
  /** Replicas per key (length of the preference list). */
  n: number;
  /** Write quorum: acknowledgements needed before a put/delete succeeds. */
  w: number;
  /** Read quorum: answers needed before a get returns. */
  r: number;
  /** Virtual nodes (ring tokens) per live member. */
  vnodes: number;
  /** A client request that has not reached its quorum after this many ms is rejected. */
  requestTimeout: number;
  /**
   * A preference node that has not acknowledged a write after this many ms gets a stand-in:
   * the write goes to the next node on the ring (hinted handoff). `>= requestTimeout` disables it.
   */
  hintAfter: number;
  /** Mean period of the anti-entropy round (ms); also drives tombstone collection. */
  antiEntropyInterval: number;
  /** Digest buckets per replica pair in anti-entropy. */
  aeBuckets: number;
  /** Keys per handoff / re-replication offer (and per anti-entropy push or pull). */
  handoffBatch: number;
  /** Value bytes per handoff push message (one oversized value still goes alone). */
  handoffBytes: number;
  /** Pause between handoff batches (ms): keeps a large move from freezing a tab. */
  handoffInterval: number;
  /** After an offer that made no progress (target dead or not yet agreeing it owns the key). */
  handoffRetry: number;
  maxKeyLength: number;
  /** Limit on a value's encoded size, measured with the `sizeOf` option. */
  maxValueBytes: number;
  /** A tombstone is collected no earlier than this many ms after the delete. */
  tombstoneGrace: number;
  /** A cluster-wide listing returning more keys than this is rejected. */
  maxListKeys: number;
  /**
   * Hold replica writes, their acknowledgements and request timers until a `flush` input
   * instead of sending them at the end of every input: the runtime flushes once per task,
   * so a client pipelining puts sends one `kv_puts` per replica per task. The simulator
   * leaves it off (every input flushes).
   */
  deferFlush: boolean;
}

export const DEFAULT_KV_CONFIG: Readonly<KvConfig> = {
  n: 3,
  w: 2,
  r: 2,
  vnodes: 64,
  requestTimeout: 3000,
  hintAfter: 1000,
  antiEntropyInterval: 10_000,
  aeBuckets: 64,
  handoffBatch: 200,
  handoffBytes: 128 * 1024,
  handoffInterval: 50,
  handoffRetry: 1000,
  maxKeyLength: 256,
  maxValueBytes: 64 * 1024,
  tombstoneGrace: 5 * 60_000,
  maxListKeys: 100_000,
  deferFlush: false,
};

export interface KvOptions extends Partial<KvConfig> {
  /** Encoded size of a value in bytes (the runtime passes msgpack's). May throw for unencodable values. */
  sizeOf?: (value: unknown) => number;
}

/** Last-writer-wins version: total order by `ts`, then by `node`. */
export interface Version {
  ts: Hlc;
  node: NodeId;
}

export interface Entry {
  key: string;
  /** null for a tombstone. */
  value: unknown;
  version: Version;
  /** A tombstone: the key was deleted at `version`. */
  deleted: boolean;
}

/** Request timers cover every operation started in one flush. */
export type KvTimer =
  | { type: 'kv_op_timeout'; ops: number[] }
  | { type: 'kv_hint'; ops: number[] }
  | { type: 'kv_handoff' }
  | { type: 'kv_ae' };

export type KvIn =
  /** The live member set changed (always includes me): drives placement, handoff, re-replication. */
  /**
   * `live`: the placement set, me included. `away`: members of it that are known to be
   * gone for now (left within the membership's leave grace): they keep their ranges (no
   * data moves if they come back soon), but quorums do not wait for them.
   */
  | { type: 'members'; live: NodeId[]; away?: NodeId[] }
  /** Entries restored from storage at start, before joining. */
  | { type: 'load'; entries: Entry[] }
  | { type: 'message'; from: NodeId; msg: KvMessage }
  | { type: 'timer'; timer: KvTimer }
  | { type: 'put'; req: number; key: string; value: unknown }
  | { type: 'get'; req: number; key: string }
  | { type: 'delete'; req: number; key: string }
  /** Cluster-wide listing of live (non-deleted) keys starting with `prefix`. */
  | { type: 'keys'; req: number; prefix: string }
  /** End of the runtime's turn: send what `deferFlush` held back. */
  | { type: 'flush' };

export type KvReply =
  /**
   * get: `value` (undefined when absent or deleted) and `version` of the newest answer
   * (absent when no replica had the key); keys: `keys` sorted; put/delete: nothing.
   */
  | { type: 'reply'; req: number; ok: true; value?: unknown; version?: Version; keys?: string[] }
  | { type: 'reply'; req: number; ok: false; error: string };

export type KvOut =
  | SendEffect<KvMessage>
  | TimerEffect<KvTimer>
  | KvReply
  /** Write `put` and delete `remove` (keys) in storage, before running later sends of the same batch. */
  | { type: 'persist'; put: Entry[]; remove: string[] }
  /** A local replica changed (UI live updates); `entry.deleted` for a tombstone. */
  | { type: 'changed'; key: string; entry: Entry };

/** -1, 0, 1 like a comparator: the newer version is the greater. */
export function compareVersions(a: Version, b: Version): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}
