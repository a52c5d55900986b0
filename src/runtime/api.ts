/**
 * The node's public API: `window.p2p` (docs/architecture.md) plus the read-only views and the
 * change notifications the UI needs. Tests, benchmarks and the UI all go through this.
 */
export type NodeId = string;

export type { LinkInfo } from '../net/transport';
export type { CandidateType, LinkPath, PathType } from '../net/link-stats';
import type { LinkInfo } from '../net/transport';

/** The ICE configuration new links use (src/runtime/ice-config.ts). */
export interface IceInfo {
  /** relay: every link goes through a TURN server. */
  policy: 'all' | 'relay';
  /** STUN/TURN URLs (never the credentials). */
  servers: string[];
  /** url: `?ice=`; server: the server's /config.json; default: public STUN off loopback, none on it. */
  source: 'url' | 'server' | 'default';
  /** Seconds the current TURN credentials stay valid (they are renewed at half-life). */
  credentialExpiresInS: number | null;
  /** The last fetch of the server's configuration failed: why. */
  error: string | null;
}

export interface ChatMessage {
  id: string;
  room: string;
  from: NodeId;
  nick: string;
  text: string;
  /** HLC timestamp (wall ms * 1024 + counter); `hlcWall(ts)` (core/clock/hlc) is the author's wall clock in ms. */
  ts: number;
  /** Set for /tell messages: the one recipient. */
  to?: NodeId;
}

export interface ChatApi {
  send(text: string, room?: string): Promise<void>;
  history(room?: string): ChatMessage[];
  join(room: string): Promise<void>;
  leave(room: string): Promise<void>;
  rooms(): string[];
  members(room?: string): string[];
  setNick(nick: string): void;
  /** Rooms this node has joined (rooms() lists every room with a live member). */
  joined(): string[];
  /** Direct message to one member (the /tell command). */
  tell(nick: string, text: string): Promise<void>;
}

export interface KvEntryInfo {
  key: string;
  value: unknown;
  /** HLC timestamp and writer of the version that won. */
  version: { ts: number; node: NodeId };
  replicas: NodeId[];
}

/** Most distinct keys one kv.getMany call reads. */
export const MAX_GET_MANY = 10_000;

/** One key's outcome in kv.getMany. */
export type KvGetResult = { key: string; value: unknown; error?: undefined } | { key: string; error: string; value?: undefined };

export interface KvApi {
  put(key: string, value: unknown): Promise<void>;
  get(key: string): Promise<unknown>;
  /**
   * Reads many keys at once (at most MAX_GET_MANY distinct keys per call): every read goes
   * out in the same turn, so each replica gets them in a few batched messages instead of
   * one round trip per key. One result per key, in the order given: `{key, value}` (value
   * undefined when the key is absent) or `{key, error}` when that key's read failed; the
   * promise itself rejects only when `keys` is not an array of at most MAX_GET_MANY strings.
   */
  getMany(keys: string[]): Promise<KvGetResult[]>;
  delete(key: string): Promise<void>;
  keys(prefix?: string): Promise<string[]>;
  replicas(key: string): string[];
  /**
   * The cluster's replica count N (one value agreed through the membership: the largest any
   * live tab asks for, `?replicas=`, default 4) and the write and read quorums W and R (majorities of N).
   */
  replication(): { n: number; w: number; r: number };
  localKeys(): string[];
  /** Value with its version and replicas (a quorum read), or undefined when absent. */
  inspect(key: string): Promise<KvEntryInfo | undefined>;
  /**
   * Follows every acknowledged put and delete of a key under `prefix` ('' for all) anywhere
   * in the cluster: each version at most once, versions of a key in increasing order, and
   * `{type: 'resync'}` when notifications may have been lost (re-list then). Returns the
   * unsubscribe function, with `ready` (the cluster confirmed the registration). At most 16
   * distinct prefixes per tab (throws beyond). docs: src/core/kv/README.md, "Watches".
   */
  watch(prefix: string, listener: (e: KvWatchEvent) => void, opts?: KvWatchOptions): KvWatchHandle;
}

/** What a kv.watch listener receives. */
export type KvWatchEvent =
  | { type: 'put'; key: string; value: unknown; version: { ts: number; node: NodeId } }
  | { type: 'delete'; key: string; version: { ts: number; node: NodeId } }
  /** Notifications may have been lost (this tab fell behind, or a member that notified it died): re-list. */
  | { type: 'resync'; reason: 'overflow' | 'member-lost' };

export interface KvWatchOptions {
  /** Unsubscribes when aborted. */
  signal?: AbortSignal;
}

/** Call to unsubscribe; `ready` settles once the members confirmed the registration. */
export type KvWatchHandle = (() => void) & { ready: Promise<void> };

export interface SegmentsApi {
  put(key: string, value: unknown): Promise<number>;
  update(key: string, value: unknown): Promise<number>;
  peek(key: string, afterId?: number, opts?: { signal?: AbortSignal; timeoutMs?: number }): Promise<{ id: number; value: unknown }>;
  take(key: string, afterId?: number, opts?: { signal?: AbortSignal; timeoutMs?: number }): Promise<{ id: number; value: unknown }>;
  /** The queue's preference list in this tab's view: its owner first, then its replicas. */
  replicas(key: string): string[];
}

export interface MemberView {
  id: NodeId;
  nick: string;
  status: 'alive' | 'suspect' | 'dead' | 'left';
  incarnation: number;
  /** The member's HyParView active view, as it last announced it. */
  active: NodeId[];
  rooms: string[];
}

export type SignalingState = 'connecting' | 'open' | 'closed';

export interface NodeInfo {
  id: NodeId;
  nick: string;
  cluster: string;
  signaling: { url: string; state: SignalingState }[];
  /** Plumtree eager peers (the broadcast tree's edges at this node). */
  eager: NodeId[];
  lazy: NodeId[];
  /** 'joining' until the first neighbour (or alone), then 'joined'; 'left' after leave(). */
  state: 'joining' | 'joined' | 'alone' | 'left';
  ice?: IceInfo;
  /** The cluster secret: absent or `protected: false` for an open cluster. */
  secret?: SecretStatus;
}

/** The secret's state as the UI shows it. */
export interface SecretStatus {
  /** A cluster secret is set: topics are derived from it and payloads encrypted. */
  protected: boolean;
  /** Payloads that failed to decrypt. */
  undecryptable: number;
  /** Payloads from other tabs that decrypted. */
  decrypted: number;
  /** Only undecryptable payloads so far, and a few of them: this tab's secret is not the others'. */
  wrongSecret: boolean;
}

/** What changed; the UI re-reads the matching views. */
export type NodeEvent =
  | { type: 'peers' }
  | { type: 'members' }
  | { type: 'signaling' }
  | { type: 'chat'; message: ChatMessage }
  | { type: 'chatError'; room: string; error: string }
  | { type: 'rooms' }
  /**
   * This tab's replica of `key` changed. `entry` is the new local copy (a real node always
   * sends it; treat it as read-only): enough for a display to follow writes without a
   * quorum read. `deleted` marks a tombstone.
   */
  | { type: 'kv'; key: string; entry?: { value: unknown; version: { ts: number; node: NodeId }; deleted: boolean } }
  /** An acknowledged write under a prefix this tab watches (kv.watch hands it to its listeners). */
  | { type: 'kvWatch'; key: string; entry: { value: unknown; version: { ts: number; node: NodeId }; deleted: boolean } }
  /** Watch notifications may have been lost: watchers re-list. */
  | { type: 'kvWatchResync'; reason: 'overflow' | 'member-lost' }
  | { type: 'segments'; key: string }
  | { type: 'stats' };

export interface P2PApi {
  id: NodeId;
  ready: Promise<void>;
  peers(): string[];
  passive(): string[];
  members(): string[];
  leave(): Promise<void>;
  stats(): Record<string, number>;
  /**
   * This tab's WebRTC links: open ones with their path (host / srflx / relay, RTT),
   * dials in progress, and peers it could not reach with the reason.
   */
  links(): LinkInfo[];
  chat: ChatApi;
  kv: KvApi;
  segments: SegmentsApi;
  info(): NodeInfo;
  memberViews(): MemberView[];
  on(listener: (e: NodeEvent) => void): () => void;
}
