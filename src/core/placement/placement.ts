/**
 * Where keys live, as one node sees it: the placement set (from the membership's
 * ClusterView, this node always included), the members of it that are away for now, and
 * the consistent-hashing ring over the set. The KVS and data segments keep one each.
 */
import type { ClusterView } from '../protocol';
import type { NodeId } from '../types';
import { Ring } from './ring';

const isId = (m: unknown): m is NodeId => typeof m === 'string' && m.length > 0;

export class Placement {
  private ring: Ring;
  private placed: Set<NodeId>;
  private gone = new Set<NodeId>();

  constructor(
    readonly me: NodeId,
    private readonly vnodes: number,
    private n: number,
  ) {
    this.placed = new Set([me]);
    this.ring = Ring.of(this.placed, vnodes, n);
  }

  /**
   * Takes a new placement set and its away members; entries that are not node ids are
   * ignored, this node is always placed and never away. Returns the ring of the previous
   * set when the set changed (the ring is rebuilt), null when it did not: a change of
   * `away` alone moves no key.
   */
  update(placement: readonly NodeId[], away: readonly NodeId[] = []): Ring | null {
    this.gone = new Set(Array.isArray(away) ? away.filter((m) => isId(m) && m !== this.me) : []);
    const next = new Set<NodeId>(Array.isArray(placement) ? placement.filter(isId) : []);
    next.add(this.me);
    if (next.size === this.placed.size && [...next].every((m) => this.placed.has(m))) return null;
    const previous = this.ring;
    this.placed = next;
    this.ring = Ring.of(next, this.vnodes, this.n);
    return previous;
  }

  /** Replicas per key (the preference list's length). */
  get replicas(): number {
    return this.n;
  }

  /**
   * A new replica count. Returns the previous ring when it changed (every key's
   * preference list may have changed), null when it did not.
   */
  setReplicas(n: number): Ring | null {
    if (n === this.n) return null;
    const previous = this.ring;
    this.n = n;
    this.ring = Ring.of(this.placed, this.vnodes, n);
    return previous;
  }

  /** Members of the placement set, sorted. */
  members(): readonly NodeId[] {
    return this.ring.members;
  }

  /** The placement set in the order it was given (this node last when it was not in it). */
  set(): ReadonlySet<NodeId> {
    return this.placed;
  }

  has(id: NodeId): boolean {
    return this.placed.has(id);
  }

  get size(): number {
    return this.placed.size;
  }

  isAway(id: NodeId): boolean {
    return this.gone.has(id);
  }

  /** The first N distinct members clockwise of hash(key), all of them when fewer (shared array: do not modify). */
  preferenceList(key: string): readonly NodeId[] {
    return this.ring.preferenceList(key);
  }

  /** The first node of the key's preference list. */
  owner(key: string): NodeId {
    return this.ring.preferenceList(key)[0] ?? this.me;
  }

  /** This node is in the key's preference list. */
  owns(key: string): boolean {
    return this.ring.preferenceList(key).includes(this.me);
  }

  /** Every member clockwise of hash(key): stand-ins after the preference list. */
  walk(key: string): NodeId[] {
    return this.ring.walk(key);
  }

  /** The distinct preference lists of the ring's ranges (replica groups). */
  groups(): NodeId[][] {
    return this.ring.segments();
  }

  /** Quorum `q` (W or R) over `replicas`, or every replica that is there when fewer are (away members do not count); at least 1. */
  quorum(q: number, replicas: readonly NodeId[]): number {
    let there = 0;
    for (const m of replicas) if (!this.gone.has(m)) there++;
    return Math.max(1, Math.min(q, there));
  }
}

/**
 * A ClusterView of a plain member list, for test networks: `placement` and `away` in the
 * order given (the membership's are sorted; the protocols do not rely on it), `live` the
 * members not away, with an empty nick and no rooms.
 */
export function viewOf(placement: Iterable<NodeId>, away: Iterable<NodeId> = []): ClusterView {
  const gone = new Set(away);
  const members = [...new Set(placement)];
  return {
    placement: members,
    away: [...gone],
    live: members.filter((id) => !gone.has(id)).map((id) => ({ id, nick: '', rooms: [] })),
  };
}

/** Upper bound of the cluster's replica count (a member asking for more is read as asking for this). */
export const MAX_REPLICAS = 7;
/** The replica count a member asks for unless configured otherwise (docs/durability.md). */
export const DEFAULT_REPLICAS = 4;
/** The write and read quorum of `n` replicas: a majority. */
export const majority = (n: number): number => Math.floor(n / 2) + 1;

/**
 * The replica count a member's meta asks for (`meta.replicas`), or null when it asks for
 * none or for something that is not a replica count. Above MAX_REPLICAS reads as MAX_REPLICAS.
 */
export function askedReplicas(meta: unknown): number | null {
  const v = typeof meta === 'object' && meta !== null ? (meta as { replicas?: unknown }).replicas : undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) return null;
  return Math.min(v, MAX_REPLICAS);
}
