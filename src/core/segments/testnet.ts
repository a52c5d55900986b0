/**
 * A small seeded network of Segments nodes for tests: a virtual clock and event queue,
 * random latency (so messages are reordered), loss and duplication, abrupt crashes,
 * joins, restarts from what each node persisted, and membership changes delivered to
 * each node after its own detection delay (views disagree for a while, as in a real
 * cluster). Same seed, same run.
 */
import { VirtualClock } from '../../sim/clock';
import { viewOf } from '../placement';
import { SeededRng } from '../rng';
import type { NodeId } from '../types';
import { validateSegMessage, type SegMessage, type SegRecord } from './messages';
import { Segments } from './segments';
import type { SegIn, SegmentsConfig, SegOut, SegReply } from './types';

export type { SegReply };

export interface SegNetOptions {
  seed: number;
  /** Node count (ids n0, n1, ...) or explicit ids. */
  nodes: number | NodeId[];
  config?: Partial<SegmentsConfig>;
  /** One-way latency range in ms. */
  latency?: [number, number];
  /** Probability that a message is lost. */
  loss?: number;
  /** Probability that a delivered message is delivered twice. */
  duplicate?: number;
  /** Range of the delay before a node learns of a membership change. */
  detection?: [number, number];
  start?: number;
}

export interface SimNode {
  id: NodeId;
  seg: Segments;
  alive: boolean;
  incarnation: number;
  /** What this node persisted: survives crashes. */
  disk: Map<string, SegRecord>;
  replies: Map<number, SegReply>;
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
export type ClientRequest = DistributiveOmit<Extract<SegIn, { req: number; key: string }>, 'req'>;

export class SegNet {
  readonly clock: VirtualClock;
  readonly rng: SeededRng;
  readonly nodes = new Map<NodeId, SimNode>();
  /** Ground truth of who is up; what nodes are told after their detection delay. */
  readonly truth = new Set<NodeId>();
  readonly counters = { sent: 0, lost: 0, delivered: 0, duplicated: 0 };
  loss: number;
  /** Called (on the event queue, right after the reply) for every reply a node produces. */
  onReply: ((node: NodeId, req: number, reply: SegReply) => void) | null = null;
  private nextReq = 1;
  private readonly latency: [number, number];
  private readonly duplicate: number;
  private readonly detection: [number, number];

  constructor(readonly opts: SegNetOptions) {
    this.rng = new SeededRng(opts.seed);
    this.clock = new VirtualClock(opts.start ?? 1_000_000);
    this.latency = opts.latency ?? [1, 20];
    this.loss = opts.loss ?? 0;
    this.duplicate = opts.duplicate ?? 0;
    this.detection = opts.detection ?? [200, 800];
    const ids = typeof opts.nodes === 'number' ? Array.from({ length: opts.nodes }, (_, i) => `n${i}`) : opts.nodes;
    for (const id of ids) {
      this.nodes.set(id, this.makeNode(id, 0, new Map()));
      this.truth.add(id);
    }
    for (const id of ids) this.input(id, { type: 'members', view: viewOf(this.truth) });
  }

  private makeNode(id: NodeId, incarnation: number, disk: Map<string, SegRecord>): SimNode {
    const seg = new Segments(id, { ...this.opts.config }, new SeededRng(`${this.opts.seed}/${id}/${incarnation}`));
    return { id, seg, alive: true, incarnation, disk, replies: new Map() };
  }

  /** Virtual time (ms). */
  get now(): number {
    return this.clock.now;
  }

  /** Run `fire` after `delay` ms of virtual time. */
  later(delay: number, fire: () => void): void {
    this.clock.later(delay, fire);
  }

  private between(range: [number, number]): number {
    return range[0] + this.rng.next() * (range[1] - range[0]);
  }

  node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  seg(id: NodeId): Segments {
    return this.node(id).seg;
  }

  liveIds(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.alive).map((n) => n.id);
  }

  /** Feed one input to a live node and run its effects. */
  input(id: NodeId, input: SegIn): void {
    const n = this.node(id);
    if (!n.alive) return;
    const out: SegOut[] = [];
    n.seg.handle(input, this.now, out);
    this.execute(n, out);
  }

  private execute(n: SimNode, out: SegOut[]): void {
    const inc = n.incarnation;
    const current = () => n.alive && n.incarnation === inc && this.nodes.get(n.id) === n;
    for (const e of out) {
      switch (e.type) {
        case 'send':
          this.transmit(n.id, e.to, e.msg);
          break;
        case 'timer':
          this.later(e.delayMs, () => {
            if (current()) this.input(n.id, { type: 'timer', timer: e.timer });
          });
          break;
        case 'reply': {
          if (n.replies.has(e.req)) throw new Error(`node ${n.id} answered request ${e.req} twice`);
          n.replies.set(e.req, e);
          const cb = this.onReply;
          if (cb) this.later(0, () => cb(n.id, e.req, e));
          break;
        }
        case 'persist':
          for (const r of e.put) n.disk.set(r.key, r);
          for (const k of e.remove) n.disk.delete(k);
          break;
        case 'event':
        case 'disconnect':
          break;
      }
    }
  }

  private transmit(from: NodeId, to: NodeId, msg: SegMessage): void {
    this.counters.sent++;
    const bad = validateSegMessage(msg);
    if (bad) throw new Error(`node ${from} sent an invalid message (${bad}): ${JSON.stringify(msg).slice(0, 200)}`);
    if (this.rng.next() < this.loss) {
      this.counters.lost++;
      return;
    }
    const copies = this.rng.next() < this.duplicate ? 2 : 1;
    if (copies === 2) this.counters.duplicated++;
    for (let i = 0; i < copies; i++) {
      const wire = structuredClone(msg); // no shared objects between nodes, like a real wire
      this.later(this.between(this.latency), () => {
        const t = this.nodes.get(to);
        if (!t || !t.alive) return;
        this.counters.delivered++;
        this.input(to, { type: 'message', from, msg: wire });
      });
    }
  }

  /** Tell every live node the current truth, each after its own detection delay. */
  private announce(except?: NodeId): void {
    for (const n of this.nodes.values()) {
      if (!n.alive || n.id === except) continue;
      const inc = n.incarnation;
      this.later(this.between(this.detection), () => {
        if (n.alive && n.incarnation === inc && this.nodes.get(n.id) === n) this.input(n.id, { type: 'members', view: viewOf(this.truth) });
      });
    }
  }

  /** Abrupt stop (tab killed): no goodbye; its disk survives for a restart. */
  crash(...ids: NodeId[]): void {
    for (const id of ids) {
      this.node(id).alive = false;
      this.truth.delete(id);
    }
    this.announce();
  }

  /** A new node (empty disk) starts; it learns the members at once, the others after their detection delay. */
  join(id: NodeId): void {
    if (this.nodes.get(id)?.alive) throw new Error(`${id} is already up`);
    const n = this.makeNode(id, (this.nodes.get(id)?.incarnation ?? -1) + 1, new Map());
    this.nodes.set(id, n);
    this.truth.add(id);
    this.input(id, { type: 'members', view: viewOf(this.truth) });
    this.announce(id);
  }

  /** Start a crashed node again from its disk. */
  restart(id: NodeId): void {
    const old = this.node(id);
    if (old.alive) throw new Error(`${id} is up`);
    const n = this.makeNode(id, old.incarnation + 1, old.disk);
    this.nodes.set(id, n);
    this.input(id, { type: 'load', records: [...n.disk.values()].map((r) => structuredClone(r)) });
    this.truth.add(id);
    this.input(id, { type: 'members', view: viewOf(this.truth) });
    this.announce(id);
  }

  /** Process events up to `now + ms`. */
  run(ms: number): void {
    this.clock.run(ms);
  }

  /** Process events until `done()` holds; false if `maxMs` of virtual time passed first. */
  runUntil(done: () => boolean, maxMs: number): boolean {
    return this.clock.runUntil(done, maxMs);
  }

  /** Issue a client request without running the network; see reply(). */
  request(id: NodeId, request: ClientRequest): number {
    const req = this.nextReq++;
    this.input(id, { ...request, req } as SegIn);
    return req;
  }

  reply(id: NodeId, req: number): SegReply | undefined {
    return this.node(id).replies.get(req);
  }

  cancel(id: NodeId, req: number): void {
    this.input(id, { type: 'cancel', req });
  }

  /** Issue a request and run until its reply; throws if none comes within `maxMs`. */
  call(id: NodeId, request: ClientRequest, maxMs = 60_000): SegReply {
    const n = this.node(id);
    const req = this.request(id, request);
    if (!this.runUntil(() => n.replies.has(req) || !n.alive, maxMs)) {
      throw new Error(`seed ${this.opts.seed}: ${JSON.stringify(request).slice(0, 120)} at ${id} got no reply within ${maxMs} ms`);
    }
    const r = n.replies.get(req);
    if (!r) throw new Error(`seed ${this.opts.seed}: node ${id} died before answering`);
    return r;
  }

  /** put and update reply the new item's id; peek and take a `SegItem` `{ id, value }`. */
  put(id: NodeId, key: string, value: unknown): SegReply {
    return this.call(id, { type: 'put', key, value });
  }
  update(id: NodeId, key: string, value: unknown): SegReply {
    return this.call(id, { type: 'update', key, value });
  }
  peek(id: NodeId, key: string, afterId = 0, timeoutMs?: number): SegReply {
    return this.call(id, { type: 'peek', key, afterId, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  }
  take(id: NodeId, key: string, afterId = 0, timeoutMs?: number): SegReply {
    return this.call(id, { type: 'take', key, afterId, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  }

  /** The owner of `key` according to node `id` (default: any live node). */
  ownerOf(key: string, id = this.liveIds()[0]!): NodeId {
    return this.seg(id).ownerOf(key);
  }

  /** True once every live node knows exactly the live set. */
  converged(): boolean {
    const truth = [...this.truth].sort().join();
    return this.liveIds().every((id) => this.seg(id).members().join() === truth);
  }
}
