/**
 * KVS wire messages and their validator. Every request carries an `op` id chosen by the
 * sender; the answer echoes it, so late or duplicate answers (op closed) are dropped.
 * Version lists travel as tuples [key, ts, writer] to keep frames small.
 */
import type { NodeId, Seal } from '../types';
import { arrayOf, bool, int, nodeId, oneOf, optional, plainValue, shape, str, tuple, union, type Check } from '../validate';
import type { Entry } from './types';

/** Longest key accepted from the wire (the API limit, `maxKeyLength`, is usually lower). */
export const MAX_WIRE_KEY_LENGTH = 1024;
/** Longest list (keys, version tuples, entries) in one message. */
export const MAX_WIRE_ITEMS = 5000;
export const MAX_WIRE_BUCKETS = 4096;
/** Watched prefixes per node (watch.ts MAX_WATCH_PREFIXES). */
export const MAX_WIRE_WATCH_PREFIXES = 16;

/** [key, HLC timestamp, writer node]. */
export type VersionTuple = [key: string, ts: number, node: NodeId];
/**
 * One replica write in a `kv.puts` batch: [op, key, value, HLC timestamp, writer node,
 * 1 for a tombstone else 0, intended owner when this node stands in for it (hinted) or null].
 */
export type PutItem = [op: number, key: string, value: unknown, ts: number, node: NodeId, deleted: 0 | 1, hint: NodeId | null, seal?: Seal];
/** A replica's answer to a head read: [op, [HLC timestamp, writer, 1 for a tombstone else 0] or null]. */
export type HeadItem = [op: number, head: [ts: number, node: NodeId, deleted: 0 | 1] | null];
/** [key, HLC timestamp, writer node, 1 for a tombstone else 0]. */
export type ListItem = [key: string, ts: number, node: NodeId, deleted: 0 | 1];

export type KvMessage =
  /** Replica write (coordinator -> preference node, or stand-in with `hint` = intended owner). */
  | { type: 'kv.put'; op: number; entry: Entry; hint?: NodeId | null }
  | { type: 'kv.putAck'; op: number }
  /**
   * Several replica writes to one node, gathered while a tab issues many puts in one turn
   * (a pipelining client); answered by one `kv.putAcks`. A single write still travels as
   * `kv.put`.
   */
  | { type: 'kv.puts'; items: PutItem[] }
  | { type: 'kv.putAcks'; ops: number[] }
  | { type: 'kv.get'; op: number; key: string }
  | { type: 'kv.getReply'; op: number; entry: Entry | null }
  /** Reads batched per replica and turn (`deferFlush`): [op, key] each. */
  | { type: 'kv.gets'; items: [op: number, key: string][] }
  /** Their answers, batched the same way: [op, entry or null] each. */
  | { type: 'kv.getReplies'; items: [op: number, entry: Entry | null][] }
  /**
   * Reads that need only the replica's version of the key (the reader holds a copy, or
   * another replica sends the entry): [op, key] each, batched per replica and turn.
   */
  | { type: 'kv.heads'; items: [op: number, key: string][] }
  /** Their answers: [op, [HLC timestamp, writer, 1 for a tombstone else 0] or null (not held)] each. */
  | { type: 'kv.headReplies'; items: HeadItem[] }
  /** One page of a node's keys with `prefix`, after `after` (exclusive) in key order. */
  | { type: 'kv.list'; op: number; prefix: string; after?: string | null }
  | { type: 'kv.listReply'; op: number; items: ListItem[]; more: boolean }
  /** Handoff / re-replication: "I hold these versions; which do you lack?" */
  | { type: 'kv.offer'; op: number; items: VersionTuple[] }
  /**
   * `want`: lacked or older here. `transient`: held here at >= the offered version, but this
   * node does not own the key in its view, so it may drop it: not a confirmation.
   */
  | { type: 'kv.want'; op: number; want: string[]; transient: string[] }
  | { type: 'kv.push'; op: number; entries: Entry[] }
  | { type: 'kv.pushAck'; op: number; transient: string[] }
  /** Anti-entropy: per bucket, count and sum of hash(key, version) over the keys both nodes replicate. */
  | { type: 'kv.digest'; op: number; counts: number[]; sums: number[] }
  /** Buckets that differ and were listed in full, with this side's versions in them. */
  | { type: 'kv.diff'; op: number; buckets: number[]; items: VersionTuple[] }
  | { type: 'kv.pull'; op: number; keys: string[] }
  | { type: 'kv.pullReply'; op: number; entries: Entry[] }
  /** Tombstone collection, phase 1: "do you hold exactly these tombstones?" */
  | { type: 'kv.gcCheck'; op: number; items: VersionTuple[] }
  | { type: 'kv.gcHave'; op: number; keys: string[] }
  /** Phase 2: every replica held them; drop each if still at exactly that version. */
  | { type: 'kv.gcDrop'; items: VersionTuple[] }
  /** Watches (watch.ts): a node's whole set of watched prefixes, newest `gen` wins. */
  | { type: 'kv.watch'; gen: number; prefixes: string[] }
  | { type: 'kv.watchAck'; gen: number }
  /** Notifier -> a watcher it had forgotten (it left the notifier's placement) and sees again: register again. */
  | { type: 'kv.watchLost' }
  /** Coordinator -> watcher: an acknowledged write under a watched prefix, or `resync` (notes were dropped). */
  | { type: 'kv.note'; seq: number; entries: Entry[]; resync?: boolean }
  | { type: 'kv.noteAck'; seqs: number[] }
  /**
   * Watcher -> member, after notes may have been lost: the local entries under `prefixes`
   * whose version is at or after wall time `since` (ms), in key order after `after`.
   */
  | { type: 'kv.watchSync'; op: number; prefixes: string[]; since: number; after?: string }
  | { type: 'kv.watchSyncReply'; op: number; entries: Entry[]; more: boolean };

const opId = int(0);
const key: Check = (v) => str(MAX_WIRE_KEY_LENGTH)(v) ?? ((v as string).length === 0 ? 'empty key' : null);
const ts: Check = (v) => (typeof v !== 'number' || !Number.isFinite(v) || v < 0 ? 'not a timestamp' : null);
const version = shape({ ts, node: nodeId });
/** The core never looks inside a seal (the runtime checks it before the core sees the message). */
const seal: Check = optional((v) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? null : 'not a seal'));
const entry = shape({ key, value: plainValue, version, deleted: bool, seal });
const putItem7 = tuple(opId, key, plainValue, ts, nodeId, oneOf(0, 1), optional(nodeId));
const putItem8 = tuple(opId, key, plainValue, ts, nodeId, oneOf(0, 1), optional(nodeId), seal);
/** A PutItem: seven fields, or eight with the writer's seal. */
const putItem: Check = (v) => (Array.isArray(v) && v.length === 8 ? putItem8(v) : putItem7(v));
const versionTuple = tuple(key, ts, nodeId);
const keys = arrayOf(key, MAX_WIRE_ITEMS);
const entries = arrayOf(entry, MAX_WIRE_ITEMS);
const versionTuples = arrayOf(versionTuple, MAX_WIRE_ITEMS);

const check = union({
  'kv.put': { op: opId, entry, hint: optional(nodeId) },
  'kv.putAck': { op: opId },
  'kv.puts': { items: arrayOf(putItem, MAX_WIRE_ITEMS) },
  'kv.putAcks': { ops: arrayOf(opId, MAX_WIRE_ITEMS) },
  'kv.get': { op: opId, key },
  'kv.getReply': { op: opId, entry: optional(entry) },
  'kv.gets': { items: arrayOf(tuple(opId, key), MAX_WIRE_ITEMS) },
  'kv.getReplies': { items: arrayOf(tuple(opId, optional(entry)), MAX_WIRE_ITEMS) },
  'kv.heads': { items: arrayOf(tuple(opId, key), MAX_WIRE_ITEMS) },
  'kv.headReplies': { items: arrayOf(tuple(opId, optional(tuple(ts, nodeId, oneOf(0, 1)))), MAX_WIRE_ITEMS) },
  'kv.list': { op: opId, prefix: str(MAX_WIRE_KEY_LENGTH), after: optional(str(MAX_WIRE_KEY_LENGTH)) },
  'kv.listReply': { op: opId, items: arrayOf(tuple(key, ts, nodeId, oneOf(0, 1)), MAX_WIRE_ITEMS), more: bool },
  'kv.offer': { op: opId, items: versionTuples },
  'kv.want': { op: opId, want: keys, transient: keys },
  'kv.push': { op: opId, entries },
  'kv.pushAck': { op: opId, transient: keys },
  'kv.digest': {
    op: opId,
    counts: arrayOf(int(0), MAX_WIRE_BUCKETS),
    sums: arrayOf(int(0, 0xffffffff), MAX_WIRE_BUCKETS),
  },
  'kv.diff': { op: opId, buckets: arrayOf(int(0, MAX_WIRE_BUCKETS - 1), MAX_WIRE_BUCKETS), items: versionTuples },
  'kv.pull': { op: opId, keys },
  'kv.pullReply': { op: opId, entries },
  'kv.gcCheck': { op: opId, items: versionTuples },
  'kv.gcHave': { op: opId, keys },
  'kv.gcDrop': { items: versionTuples },
  'kv.watch': { gen: int(0), prefixes: arrayOf(str(MAX_WIRE_KEY_LENGTH), MAX_WIRE_WATCH_PREFIXES) },
  'kv.watchAck': { gen: int(0) },
  'kv.watchLost': {},
  'kv.note': { seq: opId, entries: arrayOf(entry, MAX_WIRE_ITEMS), resync: optional(bool) },
  'kv.noteAck': { seqs: arrayOf(opId, MAX_WIRE_ITEMS) },
  'kv.watchSync': {
    op: opId,
    prefixes: arrayOf(str(MAX_WIRE_KEY_LENGTH), MAX_WIRE_WATCH_PREFIXES),
    since: int(0),
    after: optional(str(MAX_WIRE_KEY_LENGTH)),
  },
  'kv.watchSyncReply': { op: opId, entries, more: bool },
});

/** A message of this protocol (by its `kv.` prefix; not validated). */
export function isKvMessage(m: { type: string }): m is KvMessage {
  return m.type.startsWith('kv.');
}

/** null when `v` is a well-formed KvMessage, else a short reason. Never throws. */
export function validateKvMessage(v: unknown): string | null {
  try {
    const e = check(v);
    if (e) return e;
    const m = v as KvMessage;
    if (m.type === 'kv.digest' && m.counts.length !== m.sums.length) return 'kv.digest: counts and sums differ in length';
    return null;
  } catch (e) {
    // only reachable through exotic inputs (getters that throw, revoked proxies)
    return `unreadable message: ${String(e).slice(0, 80)}`;
  }
}

/** null when `v` is a well-formed Entry (used for entries loaded from storage). Never throws. */
export function validateEntry(v: unknown): string | null {
  try {
    return entry(v);
  } catch (e) {
    return `unreadable entry: ${String(e).slice(0, 80)}`;
  }
}
