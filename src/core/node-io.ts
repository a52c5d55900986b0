/**
 * What goes into a CoreNode (`NodeIn`: frames, timers, API calls, ...) and what comes out
 * (`NodeOut`: sends, timers, replies, events, persists), in the protocols' own terms:
 * a timer is one protocol's timer tagged with it, a persist names the store its records
 * go to. core/node.ts composes the protocols behind these.
 */
import type { NodeId, Seal } from './types';
import type { HpvTimer } from './hyparview';
import type { PtTimer } from './plumtree';
import type { MemberTimer } from './membership';
import { storageKey as kvStorageKey, type Entry, type KvTimer } from './kv';
import { storageKey as segStorageKey, type SegRecord, type SegTimer } from './segments';
import { storageKey as chatStorageKey, type ChatMessage } from './chat';
import type { WireMessage } from './messages';

/** A timer of one of the protocols, tagged with it (chat has none). */
export type NodeTimer =
  | { p: 'hpv'; t: HpvTimer }
  | { p: 'pt'; t: PtTimer }
  | { p: 'mem'; t: MemberTimer }
  | { p: 'kv'; t: KvTimer }
  | { p: 'seg'; t: SegTimer };

export type ApiCall =
  | { type: 'kv.put'; key: string; value: unknown }
  | { type: 'kv.get'; key: string }
  | { type: 'kv.delete'; key: string }
  | { type: 'kv.keys'; prefix: string }
  /** A quorum read that answers `{ value, version }` (undefined when absent). */
  | { type: 'kv.inspect'; key: string }
  /** This tab's watched prefixes, the whole set (core/kv/watch.ts). */
  | { type: 'kv.watch'; prefixes: string[] }
  | { type: 'chat.send'; room: string; text: string }
  | { type: 'chat.tell'; nick: string; text: string }
  | { type: 'chat.join'; room: string }
  | { type: 'chat.leave'; room: string }
  | { type: 'chat.nick'; nick: string }
  | { type: 'seg.put' | 'seg.update'; key: string; value: unknown }
  | { type: 'seg.peek' | 'seg.take'; key: string; afterId: number; timeoutMs?: number }
  /** The caller gave up on the waiting peek/take `target` (AbortSignal). */
  | { type: 'seg.cancel'; target: number };

/** `contacts`: nodes to rejoin through first (a reloaded tab's previous neighbours). */
export type StartInput = { type: 'start'; nick: string; rooms?: string[]; kvEntries?: Entry[]; chatHistory?: ChatMessage[]; segRecords?: SegRecord[]; contacts?: NodeId[] };

export type NodeIn =
  | StartInput
  | { type: 'frame'; from: NodeId; msg: WireMessage }
  | { type: 'linkDown'; peer: NodeId }
  /** `from`'s last will, verified by the runtime: its signaling connection closed (a hint for membership). */
  | { type: 'will'; from: NodeId }
  | { type: 'timer'; timer: NodeTimer }
  | { type: 'announce'; from: NodeId; clients: number; isolated: boolean }
  | { type: 'api'; req: number; call: ApiCall }
  /** Data of an orphaned store (runtime/orphans.ts): KV entries and chat messages, loaded like persisted ones. */
  | { type: 'adopt'; entries: Entry[]; chat?: ChatMessage[] }
  /** End of the runtime's turn: send what the KVS held back (`kv.deferFlush`, see needsFlush()). */
  | { type: 'flush' }
  /** The answer to a `seal` effect: the broadcast goes out now, with its seal. */
  | { type: 'sealed'; id: string; kind: string; data: unknown; seal: Seal }
  /** The answer to a `sealEntry` effect: the KV write `op` starts now, its entry carrying `seal`. */
  | { type: 'entrySealed'; op: number; seal: Seal }
  | { type: 'leave' };

export type CoreEvent =
  | { type: 'peers' }
  | { type: 'members' }
  | { type: 'chat'; message: ChatMessage }
  | { type: 'rooms' }
  | { type: 'kv'; key: string; entry: { value: unknown; version: { ts: number; node: NodeId }; deleted: boolean } }
  /** An acknowledged write under a watched prefix, anywhere in the cluster (core/kv/watch.ts). */
  | { type: 'kvWatch'; key: string; entry: { value: unknown; version: { ts: number; node: NodeId }; deleted: boolean } }
  /** Watch notifications may have been lost: watchers re-list. */
  | { type: 'kvWatchResync'; reason: 'overflow' | 'member-lost' }
  | { type: 'segments'; key: string };

/**
 * Storage changes of one protocol's store: write `put` under `STORAGE_KEY[store](record)`,
 * delete the records whose storage keys are in `remove`.
 */
export type PersistOut =
  | { type: 'persist'; store: 'kv'; put: Entry[]; remove: string[] }
  | { type: 'persist'; store: 'chat'; put: ChatMessage[]; remove: string[] }
  | { type: 'persist'; store: 'seg'; put: SegRecord[]; remove: string[] };

export type PersistStore = PersistOut['store'];

/** Where each store keeps a record: the persisting protocol's `storageKey`. */
export const STORAGE_KEY: { readonly kv: (e: Entry) => string; readonly chat: (m: ChatMessage) => string; readonly seg: (r: SegRecord) => string } = Object.freeze({
  kv: kvStorageKey,
  chat: chatStorageKey,
  seg: segStorageKey,
});

export type ReplyOut =
  | { type: 'reply'; req: number; ok: true; value?: unknown }
  | { type: 'reply'; req: number; ok: false; error: string };

export type NodeOut =
  | { type: 'send'; to: NodeId; msg: WireMessage; transient?: boolean }
  | { type: 'disconnect'; peer: NodeId }
  | { type: 'timer'; delayMs: number; timer: NodeTimer }
  | { type: 'announce'; isolated: boolean }
  /**
   * Seal this broadcast of ours (CoreConfig.sealBroadcasts): sign `data` as the broadcast
   * `id` of `kind`, and answer with a `sealed` input (in the order asked).
   */
  | { type: 'seal'; id: string; kind: string; data: unknown }
  /**
   * Sign this entry of a KV write we coordinate (kv.sealWrites): the writer's signature
   * over (key, version, deleted, value); answer with an `entrySealed` input for `op`.
   */
  | { type: 'sealEntry'; op: number; entry: Entry }
  | ReplyOut
  | { type: 'event'; event: CoreEvent }
  | PersistOut
  | { type: 'dropped'; reason: string };
