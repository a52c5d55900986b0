import type { NodeId } from '../types';
import { SeededRng, randInt, shuffled } from '../rng';

/**
 * A small seeded event-queue network for the property tests of plumtree/ and
 * membership/ (the shared simulator lives in sim/; this one stays deliberately tiny).
 *
 * - virtual time in ms; events ordered by (time, sequence), so a seed replays exactly;
 * - links are symmetric with a fixed random base latency and a little jitter per
 *   message, FIFO per direction (as a reliable, ordered WebRTC data channel);
 * - a send over a missing link is dropped (the channel is closed); a `transient` send
 *   reaches any live node (the signaling relay);
 * - crash: the node stops at once; nobody is told (tests decide when neighbours detect it).
 */
export interface TestNode {
  readonly id: NodeId;
  receive(from: NodeId, msg: unknown): void;
  neighborUp(peer: NodeId): void;
  neighborDown(peer: NodeId): void;
}

interface Event {
  at: number;
  seq: number;
  run: () => void;
}

export interface TestNetOptions {
  seed: number;
  minLatency?: number;
  maxLatency?: number;
  jitter?: number;
}

export class TestNet<N extends TestNode = TestNode> {
  now = 0;
  readonly rng: SeededRng;
  readonly nodes = new Map<NodeId, N>();
  readonly alive = new Set<NodeId>();
  readonly links = new Map<NodeId, Set<NodeId>>();
  /** Messages sent, by message `type`. */
  readonly sent = new Map<string, number>();
  dropped = 0;
  /** Test hook: messages for which this returns true are lost. */
  dropIf: ((from: NodeId, to: NodeId, msg: unknown) => boolean) | null = null;

  private readonly heap: Event[] = [];
  private seq = 0;
  private readonly baseLatency = new Map<string, number>();
  private readonly lastArrival = new Map<string, number>();
  private readonly minLatency: number;
  private readonly maxLatency: number;
  private readonly jitter: number;

  constructor(opts: TestNetOptions) {
    this.rng = new SeededRng(opts.seed);
    this.minLatency = opts.minLatency ?? 5;
    this.maxLatency = opts.maxLatency ?? 40;
    this.jitter = opts.jitter ?? 3;
  }

  add(node: N): void {
    this.nodes.set(node.id, node);
    this.alive.add(node.id);
    if (!this.links.has(node.id)) this.links.set(node.id, new Set());
  }

  neighbors(id: NodeId): NodeId[] {
    return [...(this.links.get(id) ?? [])];
  }

  linked(a: NodeId, b: NodeId): boolean {
    return this.links.get(a)?.has(b) ?? false;
  }

  /** Open a link; both ends learn it after `delay` (one end may hear first, as in reality). */
  link(a: NodeId, b: NodeId, delay = 0): void {
    if (a === b || this.linked(a, b)) return;
    this.links.get(a)!.add(b);
    this.links.get(b)!.add(a);
    const key = a < b ? `${a}|${b}` : `${b}|${a}`;
    this.baseLatency.set(key, this.minLatency + this.rng.next() * (this.maxLatency - this.minLatency));
    for (const [x, y] of [[a, b], [b, a]] as const) {
      this.at(this.now + delay, () => {
        if (this.alive.has(x) && this.linked(x, y)) this.nodes.get(x)!.neighborUp(y);
      });
    }
  }

  /** Close a link; each live end is told after its own delay (failure detection time). */
  unlink(a: NodeId, b: NodeId, delayA = 0, delayB = delayA): void {
    if (!this.linked(a, b)) return;
    this.links.get(a)!.delete(b);
    this.links.get(b)!.delete(a);
    this.at(this.now + delayA, () => this.alive.has(a) && this.nodes.get(a)!.neighborDown(b));
    this.at(this.now + delayB, () => this.alive.has(b) && this.nodes.get(b)!.neighborDown(a));
  }

  /** Stop a node silently; its links stay until `detect` (or the test) closes them. */
  crash(id: NodeId): void {
    this.alive.delete(id);
  }

  /**
   * Replace a crashed node by a fresh instance with the same id (a tab reload). Links
   * the old instance still had are closed; only the peers are told.
   */
  restart(node: N): void {
    for (const peer of this.neighbors(node.id)) {
      this.links.get(node.id)!.delete(peer);
      this.links.get(peer)!.delete(node.id);
      this.at(this.now, () => this.alive.has(peer) && this.nodes.get(peer)!.neighborDown(node.id));
    }
    this.nodes.set(node.id, node);
    this.alive.add(node.id);
  }

  /** Neighbours of crashed `id` notice after a random delay in [minDelay, maxDelay]. */
  detect(id: NodeId, minDelay: number, maxDelay: number): void {
    for (const peer of this.neighbors(id)) {
      const d = minDelay + this.rng.next() * (maxDelay - minDelay);
      this.unlink(id, peer, 0, d);
    }
  }

  send(from: NodeId, to: NodeId, msg: unknown, transient = false): void {
    const type = (msg as { type?: unknown }).type;
    const key = typeof type === 'string' ? type : '?';
    this.sent.set(key, (this.sent.get(key) ?? 0) + 1);
    if (!this.alive.has(from)) return;
    if ((!transient && !this.linked(from, to)) || this.dropIf?.(from, to, msg)) {
      this.dropped++;
      return;
    }
    const k = `${from}>${to}`;
    const pair = from < to ? `${from}|${to}` : `${to}|${from}`;
    const base = this.baseLatency.get(pair) ?? this.maxLatency * 2; // relay is slower
    const arrive = Math.max(this.now + base + this.rng.next() * this.jitter, this.lastArrival.get(k) ?? 0);
    this.lastArrival.set(k, arrive);
    this.at(arrive, () => {
      if (!this.alive.has(to)) return;
      if (!transient && !this.linked(from, to)) return;
      this.nodes.get(to)!.receive(from, msg);
    });
  }

  /** Run `fn` at virtual time `t` (no-op guards are the caller's business). */
  at(t: number, fn: () => void): void {
    const e: Event = { at: Math.max(t, this.now), seq: this.seq++, run: fn };
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (before(h[p]!, e)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  /** Run `fn` at time now + delay while `node` (this very instance) is alive. */
  timer(node: N, delay: number, fn: () => void): void {
    this.at(this.now + delay, () => {
      if (this.alive.has(node.id) && this.nodes.get(node.id) === node) fn();
    });
  }

  runUntil(t: number, maxEvents = 50_000_000): void {
    let n = 0;
    while (this.heap.length > 0 && this.heap[0]!.at <= t) {
      if (++n > maxEvents) throw new Error(`more than ${maxEvents} events before t=${t}`);
      const e = this.pop();
      this.now = e.at;
      e.run();
    }
    this.now = Math.max(this.now, t);
  }

  runFor(ms: number): void {
    this.runUntil(this.now + ms);
  }

  pending(): number {
    return this.heap.length;
  }

  private pop(): Event {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        let best = last;
        if (l < h.length && before(h[l]!, best)) {
          m = l;
          best = h[l]!;
        }
        if (r < h.length && before(h[r]!, best)) m = r;
        if (m === i) break;
        h[i] = h[m]!;
        i = m;
      }
      h[i] = last;
    }
    return top;
  }
}

const before = (a: Event, b: Event): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq);

/**
 * A connected random overlay where every node has about `degree` links: a random ring
 * (connectivity) plus random chords until each node has `degree`, none above degree + 2.
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

/** Connected components of the live nodes over the current links. */
export function components(net: TestNet): NodeId[][] {
  const seen = new Set<NodeId>();
  const result: NodeId[][] = [];
  for (const start of net.alive) {
    if (seen.has(start)) continue;
    const comp: NodeId[] = [];
    const stack = [start];
    seen.add(start);
    while (stack.length) {
      const x = stack.pop()!;
      comp.push(x);
      for (const y of net.links.get(x) ?? []) {
        if (net.alive.has(y) && !seen.has(y)) {
          seen.add(y);
          stack.push(y);
        }
      }
    }
    result.push(comp);
  }
  return result;
}
