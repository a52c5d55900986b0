/** The overlay as a graph: members are nodes, HyParView active links are edges, Plumtree eager links at this node are marked. */
import type { MemberView, NodeId } from '../../runtime/api';

export interface GraphNode {
  id: NodeId;
  nick: string;
  status: MemberView['status'];
  self: boolean;
}
export interface GraphLink {
  /** "a|b" with a < b: links are undirected. */
  key: string;
  a: NodeId;
  b: NodeId;
  /** An eager (broadcast tree) link of this node. */
  eager: boolean;
}
export interface GraphModel {
  nodes: GraphNode[];
  links: GraphLink[];
}

/**
 * Members' announced active views can lag behind; this node's own links come from its live
 * active view instead. Links to ids that are not members are left out (nothing to draw them to).
 */
export function buildGraph(members: MemberView[], selfId: NodeId, selfActive: NodeId[], eager: NodeId[]): GraphModel {
  const nodes: GraphNode[] = members.map((m) => ({ id: m.id, nick: m.nick, status: m.status, self: m.id === selfId }));
  const known = new Set(nodes.map((n) => n.id));
  const eagerSet = new Set(eager);
  const links = new Map<string, GraphLink>();
  const add = (x: NodeId, y: NodeId) => {
    if (x === y || !known.has(x) || !known.has(y)) return;
    const [a, b] = x < y ? [x, y] : [y, x];
    const key = `${a}|${b}`;
    if (links.has(key)) return;
    const other = a === selfId ? b : b === selfId ? a : null;
    links.set(key, { key, a, b, eager: other !== null && eagerSet.has(other) });
  };
  for (const m of members) {
    if (m.id === selfId) continue;
    // A member's stale claim of a link to us is dropped when our active view disagrees.
    for (const p of m.active) if (p !== selfId || selfActive.includes(m.id)) add(m.id, p);
  }
  for (const p of selfActive) add(selfId, p);
  // Eager peers are normally in the active view; draw them even if the views are briefly out of step.
  for (const p of eager) add(selfId, p);
  return { nodes, links: [...links.values()].sort((x, y) => (x.key < y.key ? -1 : 1)) };
}
