/**
 * Public vocabulary of the Dynamo-style KVS (docs/architecture.md), in the terms of the
 * protocol contract (core/protocol.ts). The wire messages live in messages.ts; the
 * state machine in store.ts and its parts.
 */
import type { Hlc } from '../clock/hlc';
import { approxEncodedSize } from '../data-protocol';
import type { ClusterView, Effect, ReplyEffect } from '../protocol';
import type { NodeId, Seal } from '../types';
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
  requestTimeoutMs: number;
  /**
   * A preference node that has not acknowledged a write after this many ms gets a stand-in:
   * the write goes to the next node on the ring (hinted handoff). `>= requestTimeoutMs` disables it.
   */
  hintAfterMs: number;
  /**
   * Floor of the measured delay after which a read stops waiting for silent replicas (it
   * answers from a copy in hand and asks the next ring nodes): twice the slowest recent
   * replica answer (a decaying high-water mark), at least this, at most `hintAfterMs`.
   */
  speculateMinMs: number;
  /** Mean period of the anti-entropy round (ms); also drives tombstone collection. */
  antiEntropyIntervalMs: number;
  /** Digest buckets per replica pair in anti-entropy. */
  aeBuckets: number;
  /** Keys per handoff / re-replication offer (and per anti-entropy push or pull). */
  handoffBatch: number;
  /** Value bytes per handoff push message (one oversized value still goes alone). */
  handoffBytes: number;
  /** Pause between handoff batches: keeps a large move from freezing a tab. */
  handoffIntervalMs: number;
  /** Pause after an offer that made no progress (target dead or not yet agreeing it owns the key). */
  handoffRetryMs: number;
  maxKeyLength: number;
  /** Limit on a value's encoded size, measured with `sizeOf`. */
  maxValueBytes: number;
  /** A tombstone is collected no earlier than this many ms after the delete. */
  tombstoneGraceMs: number;
  /**
   * Keys (tombstones included) one node stores at most. A write of a new key past it is
   * refused: a peer's replica write is not acknowledged (its quorum does not count this
   * node), handoffs and repairs skip it, a local put fails with an error; counted as
   * `keyCapRefused`. It bounds the memory any writer can make a node spend: 200,000 small
   * entries are tens of MB; the bench's 10,000 keys over 8 tabs put about 3,750 on each.
   */
  maxKeys: number;
  /** A cluster-wide listing returning more keys than this is rejected. */
  maxListKeys: number;
  /**
   * Hold replica writes, their acknowledgements and request timers until a `flush` input
   * instead of sending them at the end of every input: the runtime flushes once per task,
   * so a client pipelining puts sends one `kv.puts` per replica per task. The simulator
   * leaves it off (every input flushes).
   */
  deferFlush: boolean;
  /**
   * Writes this node coordinates are sealed before they go anywhere: the store asks for
   * the new entry to be signed (event `sealEntry`) and starts the write (local copy,
   * replica writes) once the `sealed` input brings the seal, which the entry then carries
   * wherever it is stored or sent (docs/security.md, "Signed entries"). On in the browser
   * runtime; off in the simulator and the core's tests.
   */
  sealWrites: boolean;
  /**
   * Digest reads: a read asks one replica for the entry and the others only for their
   * version (`kv.heads`), or only versions when this node holds a copy; the entry is fetched
   * from a replica whose version is newer than every entry in hand. Off: every replica sends
   * its entry (for comparison in tests and benchmarks).
   */
  headReads: boolean;
  /** Encoded size of a value in bytes (the runtime passes msgpack's). May throw for unencodable values. */
  sizeOf: (value: unknown) => number;
}

export const DEFAULT_KV_CONFIG: Readonly<KvConfig> = Object.freeze({
  n: 3,
  w: 2,
  r: 2,
  vnodes: 64,
  requestTimeoutMs: 3000,
  hintAfterMs: 1000,
  speculateMinMs: 100,
  antiEntropyIntervalMs: 10_000,
  aeBuckets: 64,
  handoffBatch: 200,
  handoffBytes: 128 * 1024,
  handoffIntervalMs: 50,
  handoffRetryMs: 1000,
  maxKeyLength: 256,
  maxValueBytes: 64 * 1024,
  tombstoneGraceMs: 5 * 60_000,
  maxKeys: 200_000,
  maxListKeys: 100_000,
  deferFlush: false,
  sealWrites: false,
  headReads: true,
  sizeOf: approxEncodedSize,
});

/** Last-writer-wins version: total order by `ts`, then by `node`. */
export interface Version {
  ts: Hlc;
  node: NodeId;
}

/** A key's value at a version: what a replica holds, what `persist` writes and `load` reads back. */
export interface Entry {
  key: string;
  /** null for a tombstone. */
  value: unknown;
  version: Version;
  /** A tombstone: the key was deleted at `version`. */
  deleted: boolean;
  /**
   * The writer's signature over (key, version, deleted, value), made by the runtime
   * (KvConfig.sealWrites); opaque to the core, kept and sent with the entry.
   */
  seal?: Seal;
}

/** Where an entry is stored (the `remove` list of a persist effect holds these). */
export function storageKey(entry: Entry): string {
  return entry.key;
}

/** Request timers cover every operation started in one flush. */
export type KvTimer =
  | { type: 'kv.opTimeout'; ops: number[] }
  | { type: 'kv.hint'; ops: number[] }
  | { type: 'kv.handoff' }
  | { type: 'kv.ae' }
  /** Re-send unacknowledged watch registrations and notes (watch.ts). */
  | { type: 'kv.watchRetry' };

export type KvIn =
  /**
   * Placement: `view.placement` (keys are placed on it), `view.away` (members of it gone
   * for now: they keep their ranges, so nothing moves if they come back soon, but quorums
   * do not wait for them). The same placement sent again changes nothing.
   */
  | { type: 'members'; view: ClusterView }
  /** Entries from earlier `persist` effects (at start, before joining; or adopted from an orphaned store). */
  | { type: 'load'; records: Entry[] }
  | { type: 'message'; from: NodeId; msg: KvMessage }
  | { type: 'timer'; timer: KvTimer }
  /** Replies without a value. */
  | { type: 'put'; req: number; key: string; value: unknown }
  /** Replies the value (undefined when absent or deleted). */
  | { type: 'get'; req: number; key: string }
  /** The same quorum read as `get`; replies a `KvInspected`, undefined when absent or deleted. */
  | { type: 'inspect'; req: number; key: string }
  /** Replies without a value. */
  | { type: 'delete'; req: number; key: string }
  /** Cluster-wide listing of live (non-deleted) keys starting with `prefix`; replies them sorted. */
  | { type: 'keys'; req: number; prefix: string }
  /** End of the runtime's turn: send what `deferFlush` held back. */
  | { type: 'flush' }
  /** The answer to a `sealEntry` event: the write `op` starts now, its entry carrying `seal`. */
  | { type: 'sealed'; op: number; seal: Seal }
  /** This node's watched prefixes, the whole set (watch.ts); at most 16. Replies without a value. */
  | { type: 'watch'; req: number; prefixes: string[] };

/** What an `inspect` request replies for a key that has a value. */
export interface KvInspected {
  value: unknown;
  /** The newest version among the answers (HLC timestamp and writer). */
  version: Version;
}

export type KvEvent =
  /**
   * A local replica changed (UI live updates); `entry.deleted` for a tombstone. Keys dropped
   * from the local replica (handed off, tombstone collected) only show in `persist`.
   */
  | { type: 'changed'; key: string; entry: Entry }
  /**
   * An acknowledged write of a key under a watched prefix, anywhere in the cluster: each
   * version at most once, versions of a key in increasing order (watch.ts).
   */
  | { type: 'watch'; entry: Entry }
  /** Notifications may have been lost (a watcher too slow, or a notifying member gone): re-list. */
  | { type: 'watchResync'; reason: 'overflow' | 'member-lost' }
  /** Sign this entry of a write we coordinate (KvConfig.sealWrites); answer with a `sealed` input for `op`. */
  | { type: 'sealEntry'; op: number; entry: Entry };

export type KvOut = Effect<KvMessage, KvTimer, KvEvent, Entry>;
export type KvReply = ReplyEffect;

/** Names of the KVS's event counters (see KvCounters). */
export const KV_COUNTERS = [
  'requestsOk',
  'requestsFailed',
  'readRepairs',
  'speculativeReads',
  'readRetries',
  /** Reads whose newest version came as a head only, so its entry was asked for (digest reads). */
  'headFetches',
  /** Read timers that found a silent replica still answering other requests, so waited on (see Requests.onHint). */
  'readsWaitedForBusy',
  'readsWithoutQuorum',
  'replicaCountChanges',
  'hintedWrites',
  'hintsStored',
  'handoffOffered',
  'handoffPushed',
  'handoffDropped',
  'handoffTimeouts',
  /** Offered keys answered 'later' because another offerer was already asked to push that version (rereplication.ts). */
  'handoffDeferred',
  'aeRounds',
  'aeInSync',
  'aePushed',
  'aePulled',
  'aeBucketsDeferred',
  'tombstonesCollected',
  'lateReplies',
  'unexpectedReplies',
  'invalidMessages',
  'placementChanges',
  'loaded',
  'loadInvalid',
  'sizeOfErrors',
  'clockAheadIgnored',
  'futureRefused',
  'keyCapRefused',
  'tooLargeRefused',
  'gcDropRefused',
  /** Watch catch-ups started (notes may have been lost with a member). */
  'watchCatchUps',
  /** Watch catch-ups that could not complete: the application was told to re-list. */
  'watchResyncs',
] as const;
export type KvCounterName = (typeof KV_COUNTERS)[number];
export type KvRequestKind = Extract<KvIn, { req: number }>['type'];
export const KV_REQUEST_KINDS: readonly KvRequestKind[] = ['put', 'get', 'inspect', 'delete', 'keys', 'watch'];

/** Event counts since start: cheap to read (no pass over the keys). */
export interface KvCounters extends Record<KvCounterName, number> {
  /** Client requests received, per kind. */
  requests: Record<KvRequestKind, number>;
  /** Messages sent and received (valid ones), per type. */
  sent: Partial<Record<KvMessage['type'], number>>;
  received: Partial<Record<KvMessage['type'], number>>;
}

export interface KvStats extends KvCounters {
  /** Local entries, tombstones included. */
  entries: number;
  tombstones: number;
  /** Local entries this node is not a replica of (stand-in copies, keys being handed off). */
  notOwned: number;
  /** Size of the placement set. */
  members: number;
  /** Open operations (requests, offers, pushes, digests, tombstone checks). */
  pendingOps: number;
  handoffPending: number;
  handoffInflight: number;
  /** Watch notes sent and not yet acknowledged by their watchers. */
  watchPending: number;
  /** Nodes registered as watching keys here (this node included when it watches). */
  watchers: number;
  /** Live members that have not yet confirmed this node's own watch registration. */
  watchUnregistered: number;
}

/** -1, 0, 1 like a comparator: the newer version is the greater. */
export function compareVersions(a: Version, b: Version): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}
