import type { NodeId } from '../core/types';

/**
 * Overlay metrics over a snapshot of the active-view graph of live nodes. Nodes are
 * indices into `ids`; `out[i]` lists i's active neighbours that are live (edges to dead
 * nodes, not yet noticed, are left out: nothing can flow over them).
 */
export interface OverlaySnapshot {
  ids: NodeId[];
  out: number[][];
}

export interface ViewSource {
  liveIds(): NodeId[];
  node(id: NodeId): { activeView(): NodeId[] } | undefined;
}

export function snapshot(net: ViewSource): OverlaySnapshot {
  const ids = net.liveIds();
  const index = new Map<NodeId, number>();
  ids.forEach((id, i) => index.set(id, i));
  const out = ids.map((id) => {
    const r: number[] = [];
    for (const p of net.node(id)!.activeView()) {
      const j = index.get(p);
      if (j !== undefined && j !== index.get(id)) r.push(j);
    }
    return r;
  });
  return { ids, out };
}

/** Fraction of directed active edges u→v whose reverse v→u exists (1 when there are none). */
export function symmetry(s: OverlaySnapshot): number {
  let edges = 0;
  let both = 0;
  for (let u = 0; u < s.out.length; u++) {
    for (const v of s.out[u]!) {
      edges++;
      if (s.out[v]!.includes(u)) both++;
    }
  }
  return edges === 0 ? 1 : both / edges;
}

/** Component label per node, treating every edge as undirected (a link carries both ways). */
export function componentLabels(s: OverlaySnapshot): Int32Array {
  const n = s.ids.length;
  const parent = new Int32Array(n);
  for (let i = 0; i < n; i++) parent[i] = i;
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  for (let u = 0; u < n; u++) {
    for (const v of s.out[u]!) {
      const a = find(u);
      const b = find(v);
      if (a !== b) parent[a] = b;
    }
  }
  const label = new Int32Array(n);
  for (let i = 0; i < n; i++) label[i] = find(i);
  return label;
}

/** Component sizes, largest first. */
export function componentSizes(s: OverlaySnapshot): number[] {
  const count = new Map<number, number>();
  for (const l of componentLabels(s)) count.set(l, (count.get(l) ?? 0) + 1);
  return [...count.values()].sort((a, b) => b - a);
}

/** Fraction of nodes in the largest component (1 for an empty graph). */
export function largestComponentFraction(s: OverlaySnapshot): number {
  if (s.ids.length === 0) return 1;
  return componentSizes(s)[0]! / s.ids.length;
}

export interface Spread {
  min: number;
  mean: number;
  max: number;
}

export function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { min: 0, mean: 0, max: 0 };
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  return { min, mean: sum / values.length, max };
}

/** Active-view sizes (edges to live nodes only). */
export function degrees(s: OverlaySnapshot): number[] {
  return s.out.map((o) => o.length);
}

/**
 * Open links that are in neither end's active view: a protocol that forgets to emit
 * `disconnect` leaks them (each is an open WebRTC connection in the browser).
 */
export function leakedLinks(links: readonly [NodeId, NodeId][], net: ViewSource): [NodeId, NodeId][] {
  return links.filter(([a, b]) => {
    const va = net.node(a)?.activeView() ?? [];
    const vb = net.node(b)?.activeView() ?? [];
    return !va.includes(b) && !vb.includes(a);
  });
}
