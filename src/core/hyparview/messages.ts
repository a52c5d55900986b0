import type { NodeId } from '../types';
import { arrayOf, bool, int, nodeId, oneOf, union } from '../validate';

/**
 * HyParView wire messages (Leitão, Pereira, Rodrigues: "HyParView: a membership protocol
 * for reliable gossip-based broadcast", DSN 2007), plus `welcome`, our answer to an
 * announce heard on the signaling server (bootstrap and island healing, see README.md).
 *
 * The paper's NEIGHBOR reply is an explicit `neighborReply` here: the requester adds the
 * peer to its active view only when the reply accepts, so an unreachable node never
 * enters an active view and both ends agree on the edge.
 */

/** Ask the receiver (the contact) to add the sender to its active view and introduce it. */
export interface HpvJoin {
  type: 'hpv.join';
}

/** Random walk introducing `node` (paper: FORWARD_JOIN); `ttl` counts down from ARWL. */
export interface HpvForwardJoin {
  type: 'hpv.forwardJoin';
  node: NodeId;
  ttl: number;
}

/** Ask to become neighbours. 'high' (sender's active view is empty, or a join walk ended here) cannot be refused. */
export interface HpvNeighbor {
  type: 'hpv.neighbor';
  priority: 'high' | 'low';
}

/** Answer to `hpv.neighbor` and to `hpv.join`. */
export interface HpvNeighborReply {
  type: 'hpv.neighborReply';
  accept: boolean;
}

/** The sender dropped the receiver from its active view. `alive`: the sender stays up, keep it in the passive view. */
export interface HpvDisconnect {
  type: 'hpv.disconnect';
  alive: boolean;
}

/** Passive-view exchange walking `ttl` hops from `origin` (paper: SHUFFLE). */
export interface HpvShuffle {
  type: 'hpv.shuffle';
  origin: NodeId;
  ttl: number;
  nodes: NodeId[];
}

/** Sent by the node where a shuffle walk ended, straight to its origin (transient). */
export interface HpvShuffleReply {
  type: 'hpv.shuffleReply';
  nodes: NodeId[];
}

/**
 * Answer to an announce heard on signaling (transient).
 * - `isolated`: the sender's active view is empty (a weaker contact: the announcer waits a
 *   little for a connected one before joining through it).
 * - `bridge`: "connect to me even if you have neighbours": the sender is isolated, or it
 *   does not know the (connected) announcer, so the two are in different islands.
 * - `clients`: subscriber count the signaling server reported with the announce.
 */
export interface HpvWelcome {
  type: 'hpv.welcome';
  isolated: boolean;
  bridge: boolean;
  clients: number;
}

export type HpvMessage =
  | HpvJoin
  | HpvForwardJoin
  | HpvNeighbor
  | HpvNeighborReply
  | HpvDisconnect
  | HpvShuffle
  | HpvShuffleReply
  | HpvWelcome;

/** Bounds on what a peer may send; our own messages stay far below them. */
export const MAX_TTL = 64;
export const MAX_SHUFFLE_NODES = 64;
export const MAX_CLIENTS = 1_000_000_000;

const ttl = int(0, MAX_TTL);
const nodes = arrayOf(nodeId, MAX_SHUFFLE_NODES);

const check = union({
  'hpv.join': {},
  'hpv.forwardJoin': { node: nodeId, ttl },
  'hpv.neighbor': { priority: oneOf('high', 'low') },
  'hpv.neighborReply': { accept: bool },
  'hpv.disconnect': { alive: bool },
  'hpv.shuffle': { origin: nodeId, ttl, nodes },
  'hpv.shuffleReply': { nodes },
  'hpv.welcome': { isolated: bool, bridge: bool, clients: int(0, MAX_CLIENTS) },
});

/** Shape and size check of a HyParView message from a peer; null when acceptable. Never throws. */
export function validateHpvMessage(v: unknown): string | null {
  return check(v);
}

/** A message of this protocol (by its `hpv.` prefix): lets the composer route without casts. */
export function isHpvMessage(m: { type: string }): m is HpvMessage {
  return m.type.startsWith('hpv.');
}
