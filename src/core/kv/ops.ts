/**
 * The operations a KvStore has open, by op id (client requests it coordinates, handoff
 * offers and pushes, anti-entropy exchanges, tombstone checks), and small helpers the
 * parts of the store share.
 */
import type { NodeId } from '../types';
import type { KvMessage, ListItem, VersionTuple } from './messages';
import type { Entry, Version } from './types';

export interface WriteOp {
  kind: 'write';
  req: number;
  verb: 'put' | 'delete';
  entry: Entry;
  pref: readonly NodeId[];
  quorum: number;
  deadline: number;
  asked: Set<NodeId>;
  acked: Set<NodeId>;
  /** Preference node -> the stand-in that got its write (hinted handoff). */
  standIns: Map<NodeId, NodeId>;
  replied: boolean;
  /** Waiting for the writer's seal (KvConfig.sealWrites): nothing sent yet. */
  sealing: boolean;
  /** The entry's size estimate for the outbox's message-size limits. */
  bytes: number;
}

export interface ReadOp {
  kind: 'read';
  req: number;
  /** An `inspect` request: the reply carries the version too. */
  inspect: boolean;
  key: string;
  pref: readonly NodeId[];
  /** The preference list and, once replicas were late, the next nodes on the ring. */
  asked: Set<NodeId>;
  quorum: number;
  /** Each answer: the replica's entry, only its version (a head read), or null (not held). */
  answers: Map<NodeId, Entry | Head | null>;
  /**
   * Replicas unresponsive when the read started (KvState.unresponsive): asked all the same,
   * but the read does not wait for them, as for members known to be away.
   */
  gone: ReadonlySet<NodeId>;
  /** The replica asked for the entry at the start (the others for heads); undefined when this node holds a copy. */
  full: NodeId | undefined;
  /** Nodes that answered with a head newer than every entry in hand, asked for the entry since. */
  fetching: Set<NodeId>;
  started: number;
  /** Replicas are late (`lateAfter()`): one copy of the key in hand will do. */
  late: boolean;
  /** `hintAfterMs` passed: R answers of any kind will do. */
  patienceOver: boolean;
  /** The timer for `hintAfterMs` is armed. */
  patienceArmed: boolean;
  /** A first copy came: the silent replicas were given a deadline relative to it. */
  hedged: boolean;
  replied: boolean;
}

/** A replica's answer to a head read: the version it holds, without the value. */
export interface Head {
  head: true;
  version: Version;
  deleted: boolean;
}

export const isHead = (a: Entry | Head): a is Head => 'head' in a;

export interface ListOp {
  kind: 'list';
  req: number;
  prefix: string;
  asked: Set<NodeId>;
  answered: Set<NodeId>;
  items: Map<string, ListItem>;
  groups: NodeId[][];
}

export interface OfferOp {
  kind: 'offer';
  target: NodeId;
  versions: Map<string, Version>;
}

export interface PushOp {
  kind: 'push';
  target: NodeId;
  versions: Map<string, Version>;
  /** Part of a handoff batch (frees the target's handoff slot when done). */
  handoff: boolean;
}

export interface DigestOp {
  kind: 'digest';
  target: NodeId;
}

export interface PullOp {
  kind: 'pull';
  target: NodeId;
}

export interface GcOp {
  kind: 'gc';
  items: Map<string, { version: Version; others: NodeId[] }>;
  waiting: Set<NodeId>;
  have: Map<NodeId, Set<string>>;
}

export type Op = WriteOp | ReadOp | ListOp | OfferOp | PushOp | DigestOp | PullOp | GcOp;

/** Messages that answer an operation (they echo its op id). */
export type ReplyMessage = Extract<
  KvMessage,
  { type: 'kv.putAck' | 'kv.getReply' | 'kv.listReply' | 'kv.want' | 'kv.pushAck' | 'kv.diff' | 'kv.pullReply' | 'kv.gcHave' }
>;

/** Budget for the key/version lists of one message: wire/ caps frames at 256 KiB. */
export const LIST_BYTES = 160 * 1024;
export const tupleBytes = (key: string): number => key.length * 3 + 48;

export const sameVersion = (a: Version, b: Version): boolean => a.ts === b.ts && a.node === b.node;
export const tupleOf = (e: Entry): VersionTuple => [e.key, e.version.ts, e.version.node];
/**
 * Cuts `items` (with their sizes `bytes`) into runs of at most `maxItems` items and
 * `maxBytes` bytes, in order; one oversized item goes alone. Batched messages use it.
 */
export function chunkRuns<T>(items: readonly T[], bytes: readonly number[], maxItems: number, maxBytes: number, emit: (run: T[]) => void): void {
  let start = 0;
  let size = 0;
  for (let i = 0; i <= items.length; i++) {
    const full = i === items.length || (i > start && (size + bytes[i]! > maxBytes || i - start >= maxItems));
    if (!full) {
      size += bytes[i]!;
      continue;
    }
    if (i > start) emit(items.slice(start, i));
    start = i;
    size = i < items.length ? bytes[i]! : 0;
  }
}

/** A key as error messages quote it (long keys cut). */
export const showKey = (key: string): string => `'${key.length > 60 ? `${key.slice(0, 60)}…` : key}'`;
