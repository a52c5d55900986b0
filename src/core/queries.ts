/**
 * The one read-only window onto a CoreNode (`core.query`): everything the runtime, the
 * UI, benches and test helpers may read of the protocols, grouped by area. Nothing here
 * changes state; writes go through `CoreNode.handle`. The protocol objects themselves
 * stay private to `core/node.ts`, so a protocol can change its internals without a
 * reader outside core/ noticing.
 */
import type { NodeId } from './types';
import type { ClusterView } from './protocol';
import type { HyParView, HpvStats } from './hyparview';
import type { Plumtree, PlumtreeStats } from './plumtree';
import type { Membership, MemberInfo, MembershipStats } from './membership';
import type { KvStore, Entry, KvCounters, KvStats } from './kv';
import type { Segments, QueueView, SegStats } from './segments';
import type { Chat, ChatMessage, ChatStats } from './chat';
import type { LimitStats } from './node';

export interface OverlayQueries {
  /** HyParView active view: the neighbours this node keeps links to. */
  active(): NodeId[];
  passive(): NodeId[];
  /** Nodes asked to be neighbours (JOIN / NEIGHBOR sent, no answer yet). */
  pending(): NodeId[];
  /** Plumtree eager peers of `origin`'s broadcast tree (default: this node's own). */
  eager(origin?: NodeId): NodeId[];
  lazy(origin?: NodeId): NodeId[];
}

export interface MemberQueries {
  /** Live members (alive or suspect), this node included, sorted. */
  live(): NodeId[];
  /** Every member this node knows, dead and left ones included. */
  all(): MemberInfo[];
  get(id: NodeId): MemberInfo | undefined;
  /** What the data protocols place keys on (see ClusterView). */
  view(): ClusterView;
}

export interface KvQueries {
  /** The key's preference list in this node's view. */
  replicas(key: string): NodeId[];
  /** The cluster's replica count and the write/read quorums in force. */
  replication(): { n: number; w: number; r: number };
  /** Keys with a live value on this node, sorted. */
  localKeys(): string[];
  /** localKeys().length without the sort. */
  localCount(): number;
  /** The local replica's entry, tombstones included. */
  localEntry(key: string): Entry | undefined;
  /** Every local entry, tombstones included: what the node's storage must hold. */
  entries(): IterableIterator<Entry>;
}

export interface ChatQueries {
  /** Messages of a room, oldest first. */
  history(room: string): ChatMessage[];
  /** Rooms with at least one live member. */
  rooms(): string[];
  /** Rooms this node has joined. */
  joined(): string[];
  members(room: string): NodeId[];
  nick(): string;
  /** The room of a call that names none (ChatConfig.defaultRoom). */
  defaultRoom(): string;
}

export interface SegmentQueries {
  /** The key's preference list in this node's view (the owner first). */
  replicas(key: string): NodeId[];
  ownerOf(key: string): NodeId;
  /** Queues this node holds a copy of. */
  queues(): QueueView[];
  /** Keys this node serves as the active owner. */
  ownedKeys(): string[];
}

/** Each protocol's typed counters. */
export interface StatsQueries {
  hyparview(): HpvStats;
  plumtree(): PlumtreeStats;
  membership(): MembershipStats;
  /** KvStats without its pass over the local keys. */
  kvCounters(): KvCounters;
  kv(): KvStats;
  segments(): SegStats;
  chat(): ChatStats;
  /** What the node-level rate limits refused (core/node.ts LimitsConfig). */
  limits(): LimitStats;
}

export interface CoreQueries {
  readonly overlay: OverlayQueries;
  readonly members: MemberQueries;
  readonly kv: KvQueries;
  readonly chat: ChatQueries;
  readonly segments: SegmentQueries;
  readonly stats: StatsQueries;
}

/** The protocols a CoreNode composes, as the queries read them. */
export interface QueriedProtocols {
  hyparview: HyParView;
  plumtree: Plumtree;
  membership: Membership;
  kv: KvStore;
  chat: Chat;
  segments: Segments;
  limits: () => LimitStats;
}

export function coreQueries(p: QueriedProtocols): CoreQueries {
  return Object.freeze({
    overlay: Object.freeze({
      active: () => p.hyparview.activeView(),
      passive: () => p.hyparview.passiveView(),
      pending: () => p.hyparview.pendingRequests(),
      eager: (origin?: NodeId) => p.plumtree.eagerPeers(origin),
      lazy: (origin?: NodeId) => p.plumtree.lazyPeers(origin),
    }),
    members: Object.freeze({
      live: () => p.membership.live(),
      all: () => p.membership.all(),
      get: (id: NodeId) => p.membership.get(id),
      view: () => p.membership.view(),
    }),
    kv: Object.freeze({
      replicas: (key: string) => p.kv.replicas(key),
      replication: () => p.kv.replication(),
      localKeys: () => p.kv.localKeys(),
      localCount: () => p.kv.localCount(),
      localEntry: (key: string) => p.kv.localEntry(key),
      entries: () => p.kv.entries(),
    }),
    chat: Object.freeze({
      history: (room: string) => p.chat.history(room),
      rooms: () => p.chat.rooms(),
      joined: () => p.chat.joined(),
      members: (room: string) => p.chat.members(room),
      nick: () => p.chat.nick(),
      defaultRoom: () => p.chat.config.defaultRoom,
    }),
    segments: Object.freeze({
      replicas: (key: string) => p.segments.replicas(key),
      ownerOf: (key: string) => p.segments.ownerOf(key),
      queues: () => p.segments.queues(),
      ownedKeys: () => p.segments.ownedKeys(),
    }),
    stats: Object.freeze({
      hyparview: () => p.hyparview.stats(),
      plumtree: () => p.plumtree.stats(),
      membership: () => p.membership.stats(),
      kvCounters: () => p.kv.counters(),
      kv: () => p.kv.stats(),
      segments: () => p.segments.stats(),
      chat: () => p.chat.stats(),
      limits: () => p.limits(),
    }),
  });
}
