import type { NodeId, Seal } from '../types';
import { int, isObject, nodeId, optional, type Check } from '../validate';

/**
 * Direct messages to nodes that are not HyParView neighbours (KV requests to replicas,
 * /tell, history requests) travel over the overlay instead of opening more WebRTC links,
 * so a tab keeps at most activeSize connections whatever the cluster size.
 *
 * Link-state routing: membership already spreads every member's active view (for the UI
 * graph), so each node knows the whole overlay and takes the first hop of a shortest
 * path (BFS). The table is recomputed lazily after the topology changes. When no path is
 * known the caller falls back to the signaling relay.
 */
export interface RouteEnvelope<M = unknown> {
  type: 'rt.route';
  src: NodeId;
  dst: NodeId;
  ttl: number;
  /**
   * The message carried: the composer's union of routable messages (validated on
   * receipt). In the runtime it travels inside `seal` instead, as the bytes `src` signed
   * (hops forward them untouched), and the destination's runtime opens it: the core sees
   * `msg` only at the source and the destination.
   */
  msg?: M;
  /** The source's signature and the message bytes it covers (core/types.ts `Seal`). */
  seal?: Seal;
}

export const ROUTE_TTL = 12;

export const routeFields: Record<string, Check> = {
  src: nodeId,
  dst: nodeId,
  ttl: int(0, ROUTE_TTL),
  seal: optional((v) => (isObject(v) ? null : 'not a seal')),
};

/** Each member's announced active view; `status` 'suspect' makes it a destination only (see computeFirstHops). */
type Topology = Iterable<{ id: NodeId; active: readonly NodeId[]; status?: string }>;

export class Router {
  private myActive: NodeId[] = [];
  /** Where the members' active views come from; read on the first lookup after a change. */
  private source: Topology | (() => Topology) = [];
  private firstHop: Map<NodeId, NodeId> | null = null;

  constructor(private readonly me: NodeId) {}

  /**
   * `members` lists each known live member's announced active view, or is a function that
   * returns that list: it is called only when a route is next looked up, so a burst of
   * membership changes (a cluster forming: every join changes every node's member list)
   * costs one table build, not one per change.
   */
  setTopology(myActive: readonly NodeId[], members: Topology | (() => Topology)): void {
    this.myActive = [...myActive];
    this.source = members;
    this.firstHop = null;
  }

  private adjacency(): { adj: Map<NodeId, Set<NodeId>>; suspects: Set<NodeId> } {
    const adj = new Map<NodeId, Set<NodeId>>();
    const suspects = new Set<NodeId>();
    const link = (a: NodeId, b: NodeId) => {
      if (a === b) return;
      let s = adj.get(a);
      if (!s) adj.set(a, (s = new Set()));
      s.add(b);
      let t = adj.get(b);
      if (!t) adj.set(b, (t = new Set()));
      t.add(a);
    };
    const members = typeof this.source === 'function' ? this.source() : this.source;
    for (const m of members) {
      if (m.id === this.me) continue;
      if (m.status === 'suspect') suspects.add(m.id);
      for (const n of m.active) if (n !== this.me) link(m.id, n);
    }
    return { adj, suspects };
  }

  /** The neighbour to hand a message for `dst` to, or null when no path is known. */
  nextHop(dst: NodeId): NodeId | null {
    if (this.myActive.includes(dst)) return dst;
    if (!this.firstHop) this.firstHop = this.computeFirstHops();
    return this.firstHop.get(dst) ?? null;
  }

  /**
   * Breadth-first from this node's neighbours. A suspect member (probably crashed: its
   * neighbours' links to it timed out, and the others' views still list it for seconds)
   * is reached but not gone through, so routes avoid it while any other path exists; the
   * nodes reachable only through suspects get a route through them afterwards.
   */
  private computeFirstHops(): Map<NodeId, NodeId> {
    const { adj, suspects } = this.adjacency();
    const first = new Map<NodeId, NodeId>();
    const queue: NodeId[] = [];
    const held: NodeId[] = [];
    let avoid = true;
    const reach = (v: NodeId, hop: NodeId): void => {
      first.set(v, hop);
      (avoid && suspects.has(v) ? held : queue).push(v);
    };
    const expand = (): void => {
      for (let i = 0; i < queue.length; i++) for (const v of adj.get(queue[i]!) ?? []) if (v !== this.me && !first.has(v)) reach(v, first.get(queue[i]!)!);
    };
    for (const n of this.myActive) reach(n, n);
    expand();
    // then on through the suspects, for the nodes reachable only that way
    avoid = false;
    queue.splice(0, queue.length, ...held);
    expand();
    return first;
  }
}
