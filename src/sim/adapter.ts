import type { NodeId } from '../core/types';
import type { ReplyEffect } from '../core/protocol';
import type { Dist } from './dist';

/**
 * What the network (network.ts) hosts and how it is configured: a node (`SimNode`), the
 * adapter that builds its inputs and classifies its timers (`Adapter`), the link modes,
 * the network's parameters and counters.
 */

/** A node as the network sees it: one pure state machine. */
export interface SimNode<In, Out> {
  handle(input: In, now: number, out: Out[]): void;
  /** Overlay neighbours (HyParView's active view): metrics, announce `known` and `isolated`. */
  activeView?(): NodeId[];
}

/**
 * How the network talks to one kind of node: it builds the node's inputs, classifies its
 * timers and says what else the node understands. Effects are recognised by `type`:
 * 'send' {to, msg, transient?}, 'timer' {delayMs, timer}, 'disconnect' {peer},
 * 'announce' {isolated?} or 'event' {event: {type: 'announce', isolated?}}, 'reply'
 * (core/protocol.ts) and, with `storageKey`, 'persist' {put, remove}; anything else goes
 * to `onEffect`.
 */
export interface Adapter<In, Out, N = SimNode<In, Out>, C = never> {
  /** A message from `from` as node `at` receives it (`msg` is what `encode` returned, if given). */
  message(from: NodeId, msg: unknown, at: NodeId): In;
  timer(timer: unknown): In;
  /** What goes on the wire for `msg` (validate, encode); runs once per send, at the sender. */
  encode?(from: NodeId, msg: unknown): unknown;
  /** 'dial' links: the link to `peer` failed (crash detected, dial failed, or the peer closed it). */
  linkDown?(peer: NodeId): In;
  /** 'fixed' links: a link to `peer` opened (closed) at this node. */
  neighborUp?(peer: NodeId): In;
  neighborDown?(peer: NodeId): In;
  /** `from`'s announce, as node `at` hears it from the signaling server. */
  announce?(from: NodeId, clients: number, known: boolean, isolated: boolean, at: NodeId): In;
  /** The membership oracle: the sorted ids of the nodes up, as this node learns them. */
  members?(ids: readonly NodeId[]): In;
  /** Storage key of a persisted record: enables the node's disk. */
  storageKey?(record: unknown): string;
  /** A restarted node's records from its disk. */
  load?(records: unknown[]): In;
  /** A client request (`request()`, `call()`); the node answers with a `reply` effect. */
  request?(req: number, call: C): In;
  /**
   * Work a node holds until the end of its turn (the runtime's flush): after any input
   * that leaves `pending` true, `input` follows at the same instant, after what is
   * already queued for it.
   */
  flush?: { pending(node: N): boolean; input: In };
  /**
   * Periodic timers that never quiesce (shuffle, ...). They are held during `settle()`,
   * and work they start is not charged to the cause (e.g. a join) that armed them.
   */
  isBackgroundTimer?(timer: unknown): boolean;
  /** Effects the network does not execute (events other than announce, ...). */
  onEffect?(node: NodeId, effect: Out, now: number): void;
}

/** How nodes reach each other (see the class comment). */
export type LinkMode = 'dial' | 'fixed' | 'mesh';

export interface NetworkConfig {
  seed: number;
  links: LinkMode;
  /** Virtual time at the start (ms). */
  start: number;
  /** One-way latency of a link, drawn once per link ('mesh': once per message). */
  linkLatency: Dist;
  /** Added to each message's latency; links stay FIFO. */
  jitter: Dist;
  /** One-way latency of a message relayed by the signaling server (transient, no link). */
  relayLatency: Dist;
  /** From the first send to an open link (offer/answer through signaling, ICE, DTLS). */
  dialDelay: Dist;
  /** Until a dial to a dead node reports `linkDown`. */
  dialFailDelay: Dist;
  /** Until a crash is noticed by a peer holding a link (heartbeat timeout), or by a member through the oracle. */
  detectDelay: Dist;
  /** Until an announce reaches the other nodes. */
  signalingLatency: Dist;
  /** Probability that any one message is lost (links are reliable in WebRTC; this models relay loss and stress). */
  lossRate: number;
  /** Probability that a message that is not lost arrives twice. */
  duplicateRate: number;
  /** Each node's clock runs ahead by a fixed offset drawn in [0, clockSkew) ms. */
  clockSkew: number;
  /** Maximum age of the connected components used for announce `known`. */
  knownStaleness: number;
}

export const DEFAULT_NETWORK_CONFIG: Readonly<Omit<NetworkConfig, 'seed'>> = Object.freeze({
  links: 'dial',
  start: 0,
  linkLatency: { min: 10, max: 100 },
  jitter: 0,
  relayLatency: { min: 30, max: 150 },
  dialDelay: { min: 150, max: 600 },
  dialFailDelay: { min: 3_000, max: 5_000 },
  detectDelay: { min: 4_000, max: 5_000 },
  signalingLatency: { min: 20, max: 100 },
  lossRate: 0,
  duplicateRate: 0,
  clockSkew: 0,
  knownStaleness: 1_000,
});

export interface NetworkStats {
  /** Send effects executed (including relayed and lost ones). */
  sent: number;
  delivered: number;
  /** Lost to `lossRate`, a blocked pair, a partition, a dead receiver or a closed link end. */
  dropped: number;
  /** Sends that arrive twice (`duplicateRate`). */
  duplicated: number;
  relayed: number;
  dials: number;
  dialFailures: number;
  announces: number;
  /** Sends by message `type`. */
  byType: Map<string, number>;
}

/** A node's answer to a client request (core/protocol.ts). */
export type Reply = ReplyEffect;
