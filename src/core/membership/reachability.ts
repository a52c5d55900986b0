/**
 * Which live members a path of announced links joins to this node (membership.ts,
 * `findUnreachable`). An edge is a live member's active view entry naming another live
 * member, read both ways (views are symmetric in HyParView, but announcements lag), plus
 * this node's own links. Pure: a depth-first search over what the caller passes.
 */
import type { NodeId } from '../types';

/**
 * The live members reachable from `me` (itself included). `members`: every member with the
 * active view its own latest ALIVE announced; `live(id)`: alive or suspect.
 */
export function reachableFrom(
  me: NodeId,
  neighbors: Iterable<NodeId>,
  members: Iterable<{ id: NodeId; active: readonly NodeId[] }>,
  live: (id: NodeId) => boolean,
): Set<NodeId> {
  const adj = new Map<NodeId, NodeId[]>();
  const edge = (a: NodeId, b: NodeId) => {
    const l = adj.get(a);
    if (l) l.push(b);
    else adj.set(a, [b]);
  };
  for (const e of members) {
    if (!live(e.id)) continue;
    for (const p of e.active) {
      if (p === e.id || !live(p)) continue;
      edge(e.id, p);
      edge(p, e.id);
    }
  }
  for (const p of neighbors) {
    edge(me, p);
    edge(p, me);
  }
  const seen = new Set<NodeId>([me]);
  const stack: NodeId[] = [me];
  while (stack.length > 0) {
    for (const n of adj.get(stack.pop()!) ?? []) {
      if (seen.has(n)) continue;
      seen.add(n);
      stack.push(n);
    }
  }
  return seen;
}
