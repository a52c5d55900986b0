/**
 * A small seeded network of KvStore nodes for tests: a virtual clock and event queue,
 * random latency, message loss and duplication, per-node clock skew, crashes, restarts
 * from the entries each node persisted, and membership changes delivered to each node
 * after its own detection delay (so views disagree for a while, as in a real cluster).
 * Same seed, same run.
 */
import { VirtualClock } from '../../sim/clock';
import { viewOf } from '../placement';
import { SeededRng } from '../rng';
import type { NodeId } from '../types';
import { validateKvMessage, type KvMessage } from './messages';
import { KvStore } from './store';
import type { Entry, KvConfig, KvIn, KvOut, KvReply } from './types';

export interface TestNetOptions {
  seed: number;
  /** Node count (ids n0, n1, ...) or explicit ids. */
  nodes: number | NodeId[];
  config?: Partial<KvConfig>;
  /** One-way latency range in ms. */
  latency?: [number, number];
  /** Probability that a message is lost. */
  loss?: number;
  /** Probability that a delivered message is delivered twice. */
  duplicate?: number;
  /** Range of the delay before a node learns of a membership change. */
  detection?: [number, number];
  /** Each node's clock is offset by up to this many ms. */
  clockSkew?: number;
  /** Start time of the virtual clock (ms). */
  start?: number;
}

interface SimNode {
  id: NodeId;
  store: KvStore;
  alive: boolean;
  incarnation: number;
  skew: number;
  /** What this node persisted: survives crashes. */
  disk: Map<string, Entry>;
  replies: Map<number, KvReply>;
  flushQueued: boolean;
}

export class TestNet {
  readonly clock: VirtualClock;
  readonly rng: SeededRng;
  readonly nodes = new Map<NodeId, SimNode>();
  /** Ground truth of who is up; what nodes are told after their detection delay. */
  readonly truth = new Set<NodeId>();
  private nextReq = 1;
  /** Directed links (from -> to) that drop everything. */
  private readonly blocked = new Set<string>();
  readonly counters = { sent: 0, lost: 0, delivered: 0, duplicated: 0 };
  readonly latency: [number, number];
  loss: number;
  readonly duplicate: number;
  readonly detection: [number, number];

  constructor(readonly opts: TestNetOptions) {
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
    // a formed cluster: everybody knows everybody from the start
    for (const id of ids) this.input(id, { type: 'members', view: viewOf(this.truth) });
  }

  private makeNode(id: NodeId, incarnation: number, disk: Map<string, Entry>): SimNode {
    const skew = Math.floor(this.rng.next() * (this.opts.clockSkew ?? 0));
    const store = new KvStore(id, { ...this.opts.config }, new SeededRng(`${this.opts.seed}/${id}/${incarnation}`));
    return { id, store, alive: true, incarnation, skew, disk, replies: new Map(), flushQueued: false };
  }

  /** Virtual time (ms). */
  get now(): number {
    return this.clock.now;
  }

  private schedule(delay: number, fire: () => void): void {
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

  store(id: NodeId): KvStore {
    return this.node(id).store;
  }

  liveIds(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.alive).map((n) => n.id);
  }

  /** Feed one input to a live node and run its effects. */
  input(id: NodeId, input: KvIn): void {
    const n = this.node(id);
    if (!n.alive) return;
    const out: KvOut[] = [];
    n.store.handle(input, this.now + n.skew, out);
    this.execute(n, out);
    // deferFlush: like the runtime's end of turn, inputs of one instant are flushed together
    if (input.type !== 'flush' && n.store.needsFlush() && !n.flushQueued) {
      n.flushQueued = true;
      const inc = n.incarnation;
      this.schedule(0, () => {
        n.flushQueued = false;
        if (n.alive && n.incarnation === inc && this.nodes.get(n.id) === n) this.input(n.id, { type: 'flush' });
      });
    }
  }

  private execute(n: SimNode, out: KvOut[]): void {
    const inc = n.incarnation;
    for (const e of out) {
      switch (e.type) {
        case 'send':
          this.transmit(n.id, e.to, e.msg);
          break;
        case 'timer':
          this.schedule(e.delayMs, () => {
            if (n.alive && n.incarnation === inc && this.nodes.get(n.id) === n) this.input(n.id, { type: 'timer', timer: e.timer });
          });
          break;
        case 'reply':
          n.replies.set(e.req, e);
          break;
        case 'persist':
          for (const p of e.put) n.disk.set(p.key, structuredClone(p));
          for (const k of e.remove) n.disk.delete(k);
          break;
        case 'event':
        case 'disconnect':
          break;
      }
    }
  }

  private transmit(from: NodeId, to: NodeId, msg: KvMessage): void {
    this.counters.sent++;
    const bad = validateKvMessage(msg);
    if (bad) throw new Error(`node ${from} sent an invalid message (${bad}): ${JSON.stringify(msg).slice(0, 200)}`);
    if (this.blocked.has(`${from}>${to}`) || this.rng.next() < this.loss) {
      this.counters.lost++;
      return;
    }
    const copies = this.rng.next() < this.duplicate ? 2 : 1;
    if (copies === 2) this.counters.duplicated++;
    for (let i = 0; i < copies; i++) {
      const wire = structuredClone(msg); // no shared objects between nodes, like a real wire
      this.schedule(this.between(this.latency), () => {
        const t = this.nodes.get(to);
        if (!t || !t.alive) return;
        this.counters.delivered++;
        this.input(to, { type: 'message', from, msg: wire });
      });
    }
  }

  /** Tell every live node the current truth, each after its own detection delay. */
  private announce(): void {
    for (const n of this.nodes.values()) {
      if (!n.alive) continue;
      const inc = n.incarnation;
      this.schedule(this.between(this.detection), () => {
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

  /** Crash without anyone noticing (membership not updated): the silent-failure case. */
  crashUndetected(...ids: NodeId[]): void {
    for (const id of ids) this.node(id).alive = false;
  }

  /** Start a node (new or crashed) from its disk; it learns the members at once, the others later. */
  restart(id: NodeId): void {
    const old = this.nodes.get(id);
    const n = this.makeNode(id, (old?.incarnation ?? -1) + 1, old?.disk ?? new Map());
    this.nodes.set(id, n);
    this.input(id, { type: 'load', records: [...n.disk.values()].map((e) => structuredClone(e)) });
    this.truth.add(id);
    this.input(id, { type: 'members', view: viewOf(this.truth) });
    this.announce();
  }

  /** Every node stops and starts again from its disk (e.g. all tabs reloaded). */
  restartAll(): void {
    const ids = [...this.nodes.keys()].filter((id) => this.truth.has(id) || this.node(id).alive);
    for (const id of ids) this.node(id).alive = false;
    for (const id of ids) {
      const old = this.node(id);
      const n = this.makeNode(id, old.incarnation + 1, old.disk);
      this.nodes.set(id, n);
      this.input(id, { type: 'load', records: [...n.disk.values()].map((e) => structuredClone(e)) });
    }
    for (const id of ids) this.input(id, { type: 'members', view: viewOf(this.truth) });
  }

  /** Drop every message between `a` and `b` in both directions (or lift that). */
  partition(a: NodeId, b: NodeId, on = true): void {
    for (const k of [`${a}>${b}`, `${b}>${a}`]) on ? this.blocked.add(k) : this.blocked.delete(k);
  }

  /** Cut a node off from everyone (or reconnect it). */
  isolate(id: NodeId, on = true): void {
    for (const other of this.nodes.keys()) if (other !== id) this.partition(id, other, on);
  }

  /** Process events up to `now + ms`. */
  run(ms: number): void {
    this.clock.run(ms);
  }

  /**
   * Process events until `done()` holds; false if `maxMs` of virtual time passed first.
   * With `every`, `done` is checked every that many virtual ms instead of after every event
   * (for expensive checks).
   */
  runUntil(done: () => boolean, maxMs: number, every = 0): boolean {
    return this.clock.runUntil(done, maxMs, every);
  }

  /** Issue a client request without running the network; see reply(). */
  request(id: NodeId, request: ClientRequest): number {
    const req = this.nextReq++;
    this.input(id, { ...request, req } as KvIn);
    return req;
  }

  reply(id: NodeId, req: number): KvReply | undefined {
    return this.node(id).replies.get(req);
  }

  /** Issue a client request and run until its reply; throws if it hangs (no reply by 3 timeouts). */
  call(id: NodeId, request: ClientRequest): KvReply {
    const n = this.node(id);
    const req = this.request(id, request);
    const limit = 3 * n.store.config.requestTimeoutMs + 1000;
    if (!this.runUntil(() => n.replies.has(req) || !n.alive, limit)) {
      throw new Error(`request ${JSON.stringify(request).slice(0, 120)} at ${id} got no reply within ${limit} ms (hung)`);
    }
    const r = n.replies.get(req);
    if (!r) throw new Error(`node ${id} died before answering`);
    return r;
  }

  put(id: NodeId, key: string, value: unknown): KvReply {
    return this.call(id, { type: 'put', key, value });
  }
  /** Replies the value. */
  get(id: NodeId, key: string): KvReply {
    return this.call(id, { type: 'get', key });
  }
  /** Replies `{ value, version }`, undefined when absent or deleted. */
  inspect(id: NodeId, key: string): KvReply {
    return this.call(id, { type: 'inspect', key });
  }
  del(id: NodeId, key: string): KvReply {
    return this.call(id, { type: 'delete', key });
  }
  /** Replies the sorted key list. */
  keys(id: NodeId, prefix = ''): KvReply {
    return this.call(id, { type: 'keys', prefix });
  }

  /** Live nodes whose local replica has `key` (tombstones included). */
  holders(key: string): NodeId[] {
    return this.liveIds().filter((id) => this.store(id).localEntry(key) !== undefined).sort();
  }

  /** A random live node. */
  anyLive(): NodeId {
    const live = this.liveIds();
    return live[Math.floor(this.rng.next() * live.length)]!;
  }
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
export type ClientRequest = DistributiveOmit<Extract<KvIn, { req: number }>, 'req'>;
