import type { NodeId } from '../core/types';
import { randInt, shuffled, type SeededRng } from '../core/rng';

/** What the 'fixed'-overlay helpers read of a network. */
export interface LinkSource {
  liveIds(): NodeId[];
  isAlive(id: NodeId): boolean;
  neighbors(id: NodeId): NodeId[];
}

/**
 * A connected random overlay where every node has about `degree` links: a random ring
 * (connectivity) plus random chords until each node has `degree`, none above degree + 2.
 * Lay it with Network.link() on a 'fixed' network.
 */
export function randomOverlay(ids: readonly NodeId[], degree: number, rng: SeededRng): [NodeId, NodeId][] {
  const adj = new Map<NodeId, Set<NodeId>>(ids.map((id) => [id, new Set()]));
  const edges: [NodeId, NodeId][] = [];
  const add = (a: NodeId, b: NodeId) => {
    if (a === b || adj.get(a)!.has(b)) return false;
    adj.get(a)!.add(b);
    adj.get(b)!.add(a);
    edges.push([a, b]);
    return true;
  };
  const ring = shuffled(rng, ids);
  for (let i = 0; i < ring.length && ring.length > 1; i++) add(ring[i]!, ring[(i + 1) % ring.length]!);
  for (const a of shuffled(rng, ids)) {
    for (let tries = 0; adj.get(a)!.size < degree && tries < 50; tries++) {
      const b = ids[randInt(rng, ids.length)]!;
      if (adj.get(b)!.size < degree + 2) add(a, b);
    }
  }
  return edges;
}

/** Connected components of the live nodes over the open links. */
export function linkComponents(net: LinkSource): NodeId[][] {
  const seen = new Set<NodeId>();
  const result: NodeId[][] = [];
  for (const start of net.liveIds()) {
    if (seen.has(start)) continue;
    const comp: NodeId[] = [];
    const stack = [start];
    seen.add(start);
    while (stack.length) {
      const x = stack.pop()!;
      comp.push(x);
      for (const y of net.neighbors(x)) {
        if (net.isAlive(y) && !seen.has(y)) {
          seen.add(y);
          stack.push(y);
        }
      }
    }
    result.push(comp);
  }
  return result;
}
