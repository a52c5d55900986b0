/**
 * The UI's mock cluster (`?mock=1`, src/ui/dev/): this tab and its fake members are real
 * CoreNodes on the simulator (src/sim, the whole CoreNode behind the real wire codec),
 * run in real time in the page, and this tab's API is the browser node's own code
 * (runtime/core-api.ts, requests.ts, join.ts) over the simulated node: one implementation,
 * nothing to drift, no signaling or WebRTC. Seeded: the same options give the same
 * cluster (ids, nicknames, keys, who talks when) in virtual time.
 *
 * Behaviour worth knowing when testing the UI against it:
 * - It rejects what the real node rejects, with the real errors (keys, values, rooms,
 *   /tell to an unknown nickname, timeouts).
 * - The replicas of keys starting with `unreachable/` never hear of them (the network
 *   drops that traffic): a put or get of such a key fails after the KV request timeout
 *   with the real quorum error, as when the replicas are down.
 * - With `chatter`, members post chat messages, write sensor keys and queue jobs now and
 *   then, and answer this tab in chat.
 * - With `churn`, members crash or leave now and then (the others notice it as in a real
 *   cluster: heartbeat timeout, suspicion) and new ones join.
 */
import type { CoreQueries, NodeIn, NodeOut } from '../core/node';
import type { NodeId } from '../core/types';
import { SeededRng, randInt } from '../core/rng';
import type { WireMessage } from '../core/messages';
import { createCoreNetwork, type CoreNetwork } from '../sim/core';
import { RealTimeDriver } from '../sim/realtime';
import { browserCoreConfig } from '../runtime/core-driver';
import { coreApi, type CoreApi } from '../runtime/core-api';
import { RequestTracker } from '../runtime/requests';
import { JoinState } from '../runtime/join';
import type { TimerHandle } from '../runtime/timers';
import type { ChatApi, KvApi, LinkInfo, MemberView, NodeEvent, NodeInfo, P2PApi, SegmentsApi } from '../runtime/api';

export interface MockNodeOptions {
  /** This tab's nickname (default: "you"). */
  nick?: string;
  cluster?: string;
  /** Fake members besides this tab (default 5; 0 gives the empty "alone" state). */
  peers?: number;
  seed?: number;
  /** Fake members post chat messages and write keys/segments now and then (default true). */
  chatter?: boolean;
  /** Members fail and new ones join over time (default true). */
  churn?: boolean;
  /** Number of seeded sensor keys in the KV store (default 140, enough to page). */
  keys?: number;
  /** One-way latency of a link between two members, ms (default 10..60). */
  latencyMs?: [number, number];
}

export interface MockNode extends P2PApi {
  /** Stops the cluster's clock (leave() does too). */
  dispose(): void;
  /** Another member of the fake cluster writes (`value` undefined: deletes) `key`; returns who, or null when alone. */
  writeElsewhere(key: string, value: unknown): string | null;
}

const NICKS = ['ada', 'grace', 'linus', 'barbara', 'ken', 'radia', 'edsger', 'leslie', 'frances', 'donald', 'margaret', 'tony'];
const LINES = [
  'anyone seen the replication lag graph?',
  'joined from my laptop, hi all',
  'the broadcast tree looks tidy now',
  'closing a tab to test re-replication',
  'brb',
  'keys are back to 3 copies',
  'nice, the plumtree pruned the duplicate edge',
  'what does /tell do again?',
];
const HISTORY = [
  'morning! cluster is up',
  'KV looks healthy, every key has 4 replicas',
  'try /join ops if you are on call',
  'I will close my tab in a bit to test re-replication',
];
/** Virtual time the cluster runs before the page sees it: members join, data is written and replicated. */
const WARMUP_MS = 20_000;
/** Members start this far apart. */
const JOIN_GAP_MS = 300;
/** The seed data is written this long before the page sees the cluster. */
const SEED_DATA_BEFORE_MS = 8_000;
/** How often members churn and chatter. */
const TICK_MS = 1_000;
/** Give the goodbyes this long on the wire, as the browser node does. */
const LEAVE_LINGER_MS = 100;
/** At most this many fake members at once with churn. */
const MAX_MEMBERS = 8;

export function createMockNode(opts: MockNodeOptions = {}): MockNode {
  return new MockTab(opts);
}

class MockTab implements MockNode {
  readonly id: NodeId;
  readonly ready: Promise<void>;
  readonly chat: ChatApi;
  readonly kv: KvApi;
  readonly segments: SegmentsApi;
  private readonly net: CoreNetwork;
  private readonly driver: RealTimeDriver;
  private readonly query: CoreQueries;
  private readonly api: CoreApi;
  private readonly requests: RequestTracker;
  private readonly join: JoinState;
  private readonly rng: SeededRng;
  private readonly cluster: string;
  private readonly listeners = new Set<(e: NodeEvent) => void>();
  private readonly counters = new Map<string, number>();
  /** This tab's events, handed to the listeners once the simulation step that made them is over. */
  private events: NodeEvent[] = [];
  private readonly others: NodeId[] = [];
  private readonly nicks = new Map<NodeId, string>();
  private nickIdx = 0;
  private left = false;
  /** The simulation was brought up to now in this JS turn (see step). */
  private turnPumped = false;

  constructor(private readonly opts: MockNodeOptions) {
    const seed = opts.seed ?? 7;
    this.rng = new SeededRng(`mock/${seed}`);
    this.cluster = opts.cluster ?? 'default';
    const [lo, hi] = opts.latencyMs ?? [10, 60];
    const wall = Date.now();
    this.net = createCoreNetwork({
      seed,
      config: browserCoreConfig(),
      network: { start: wall - WARMUP_MS, linkLatency: { min: lo, max: hi } },
      onEffect: (node, e) => this.onEffect(node, e),
      onWire: (node, dir, type, bytes) => {
        if (node !== this.id) return;
        this.count(`${dir}.${type}`);
        this.count(`bytes.${dir}`, bytes);
      },
      onAnnounce: (node, from, clients) => {
        if (node === this.id && from === this.id) this.join.onOwnAnnounce(clients);
      },
    });
    this.net.dropIf = (_from, _to, msg) => aboutUnreachableKey(msg as WireMessage);
    this.net.onReply = (node, req) => {
      const r = this.net.takeReply(node, req);
      if (node === this.id && r) this.requests.settle(r);
    };
    this.driver = new RealTimeDriver(this.net, { after: () => this.flushEvents() });

    this.id = this.newId();
    this.net.add(this.id);
    this.query = this.net.node(this.id)!.query;
    const tab = this;
    this.requests = new RequestTracker(
      {
        step: (input) => this.step(input),
        get stopped() {
          return tab.left;
        },
        timer: (fn, delay) => this.timer(fn, delay),
      },
      15_000,
    );
    this.join = new JoinState(this.id, [], {
      query: this.query,
      driver: {
        started: true,
        get stopped() {
          return tab.left;
        },
        schedule: (fn, delay) => this.net.later(delay, fn),
      },
      signalingOpen: () => true,
      // the simulated CoreNode announces on the simulated signaling server itself
      announce: () => undefined,
      dial: () => undefined,
      close: () => undefined,
      changed: () => this.events.push({ type: 'peers' }),
    });
    this.ready = this.join.ready;
    this.api = coreApi({
      query: this.query,
      call: (call, timeout, signal) => this.requests.call(call, timeout, signal),
      roomsChanged: () => Promise.resolve(),
      nickChanged: () => Promise.resolve(),
      error: (where, e) => console.error(`mock node: ${where}`, e),
      on: (listener) => this.on(listener),
    });
    this.chat = this.api.chat;
    this.kv = this.api.kv;
    this.segments = this.api.segments;

    this.warmUp(opts.peers ?? 5, opts.nick ?? 'you');
    this.driver.pump();
  }

  // --- the cluster's life ---

  /** Members join, then this tab; seed data is written; all of it runs in virtual time up to now. */
  private warmUp(peers: number, nick: string): void {
    for (let i = 0; i < peers; i++) this.net.later(i * JOIN_GAP_MS, () => this.addMember());
    this.net.later(peers * JOIN_GAP_MS, () => this.net.handle(this.id, { type: 'start', nick, rooms: ['lobby'] }));
    this.net.later(WARMUP_MS - SEED_DATA_BEFORE_MS, () => this.seedData());
    this.net.later(WARMUP_MS, () => this.tick());
    this.net.runUntil(this.net.now + WARMUP_MS);
    // nobody listened yet: what matters is the state the events led to
    this.events = [];
    this.join.check();
  }

  private addMember(): NodeId {
    const id = this.newId();
    const nick = NICKS[this.nickIdx % NICKS.length]! + (this.nickIdx >= NICKS.length ? String(this.nickIdx) : '');
    this.nickIdx++;
    const rooms = ['lobby'];
    if (this.rng.next() < 0.5) rooms.push('random');
    if (this.rng.next() < 0.3) rooms.push('ops');
    this.net.add(id);
    this.nicks.set(id, nick);
    this.others.push(id);
    this.net.handle(id, { type: 'start', nick, rooms });
    return id;
  }

  private seedData(): void {
    const writers = this.liveOthers();
    if (writers.length === 0) return;
    const writer = () => writers[randInt(this.rng, writers.length)]!;
    const put = (key: string, value: unknown) => this.as(writer(), { type: 'kv.put', key, value });
    put('config/replication', { n: 3, w: 2, r: 2 });
    put('config/hyparview', { active: 5, passive: 30, arwl: 6, prwl: 3, shuffleMs: 10_000 });
    put('greeting', 'hello from the cluster');
    put('counter/visits', 42);
    put('flags/dark-mode', false);
    put('blob/avatar', new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]));
    for (const id of writers) put(`users/${this.nicks.get(id)}`, { nick: this.nicks.get(id), since: '2024-05-01' });
    for (let i = 1; i <= (this.opts.keys ?? 140); i++) put(`sensor/${String(i).padStart(3, '0')}`, this.reading());
    const jobs = ['resize image 17', 'send digest email', 'rebuild search index'];
    jobs.forEach((job, i) => this.as(writer(), { type: 'seg.put', key: 'jobs', value: { job, attempt: 1, n: i + 1 } }));
    this.as(writer(), { type: 'seg.put', key: 'events', value: 'tab opened' });
    this.as(writer(), { type: 'seg.put', key: 'events', value: 'tab closed' });
    HISTORY.forEach((text, i) => this.net.later(i * 500, () => this.say(writers[i % writers.length]!, 'lobby', text)));
  }

  /** Once a second: members churn and chatter (as the options say). */
  private tick(): void {
    if (this.left) return;
    const others = this.liveOthers();
    if (this.opts.churn ?? true) {
      if (this.rng.next() < 0.07 && others.length > 3) {
        const victim = others[randInt(this.rng, others.length)]!;
        if (this.rng.next() < 0.5) this.net.crash(victim);
        else this.net.leave(victim, { type: 'leave' });
      } else if (this.rng.next() < 0.05 && others.length < MAX_MEMBERS - 1) {
        this.addMember();
      }
    }
    if ((this.opts.chatter ?? true) && others.length > 0) {
      const who = others[randInt(this.rng, others.length)]!;
      const rooms = this.net.node(who)!.query.chat.joined();
      if (this.rng.next() < 0.12 && rooms.length > 0) this.say(who, rooms[randInt(this.rng, rooms.length)]!, LINES[randInt(this.rng, LINES.length)]!);
      if (this.rng.next() < 0.08) this.as(who, { type: 'kv.put', key: `sensor/${String(1 + randInt(this.rng, Math.max(1, this.opts.keys ?? 140))).padStart(3, '0')}`, value: this.reading() });
      if (this.rng.next() < 0.06) this.as(who, { type: 'seg.put', key: 'jobs', value: { job: ['thumbnail', 'reindex', 'email', 'backup'][randInt(this.rng, 4)], attempt: 1 } });
    }
    this.net.later(TICK_MS, () => this.tick());
  }

  /** Another member reacts to this tab's chat: an answer in the room now and then, a thank-you for a /tell. */
  private answer(at: NodeId, m: { from: NodeId; room: string; text: string; to?: NodeId }): void {
    if (!(this.opts.chatter ?? true) || m.from !== this.id) return;
    const mine = this.query.chat.nick();
    if (m.to === at) {
      this.net.later(1_200 + this.rng.next() * 1_000, () => this.as(at, { type: 'chat.tell', nick: mine, text: `(private) thanks ${mine}, noted` }));
      return;
    }
    if (m.to !== undefined) return;
    // one member answers: the first other member of the room, in id order
    const first = this.net.node(at)!.query.chat.members(m.room).filter((id) => id !== this.id).sort()[0];
    if (first !== at || !(m.text.includes('?') || this.rng.next() < 0.4)) return;
    const reply = `@${mine} ${m.text.includes('?') ? 'good question!' : 'got it'} “${m.text.slice(0, 40)}”`;
    this.net.later(900 + this.rng.next() * 1_500, () => this.say(at, m.room, reply));
  }

  private say(who: NodeId, room: string, text: string): void {
    this.as(who, { type: 'chat.send', room, text });
  }

  /** Member `who` makes an API call (its reply is dropped). */
  /** Another member of the fake cluster writes (`value` undefined: deletes) `key`; returns who, or null when alone. */
  writeElsewhere(key: string, value: unknown): NodeId | null {
    const others = this.liveOthers();
    if (others.length === 0) return null;
    const who = others[randInt(this.rng, others.length)]!;
    const call = value === undefined ? { type: 'kv.delete' as const, key } : { type: 'kv.put' as const, key, value };
    if (this.driver.pumping) this.as(who, call);
    else {
      this.driver.pump();
      this.as(who, call);
      this.flushEvents();
      this.driver.poke();
    }
    return who;
  }

  private as(who: NodeId, call: Extract<NodeIn, { type: 'api' }>['call']): void {
    if (this.net.isAlive(who)) this.net.request(who, call);
  }

  private reading(): { celsius: number; ok: boolean } {
    return { celsius: Math.round((18 + this.rng.next() * 8) * 10) / 10, ok: this.rng.next() > 0.1 };
  }

  private liveOthers(): NodeId[] {
    return this.others.filter((id) => this.net.isAlive(id));
  }

  /** A node id in the browser's format (runtime/identity.ts), drawn from the seeded Rng. */
  private newId(): NodeId {
    let s = '';
    for (let i = 0; i < 11; i++) s += randInt(this.rng, 36).toString(36);
    return `n${s}`;
  }

  // --- this tab's node ---

  private onEffect(node: NodeId, e: NodeOut): void {
    if (node !== this.id) {
      if (e.type === 'event' && e.event.type === 'chat') this.answer(node, e.event.message);
      return;
    }
    if (e.type === 'event') this.events.push(e.event);
    else if (e.type === 'dropped') this.count('drop.core');
  }

  /** One input to this tab's node: at once, or queued for this instant while the simulation runs. */
  private step(input: NodeIn): void {
    if (this.driver.pumping) {
      this.net.input(this.id, input);
      return;
    }
    // Bring the simulation up to now once per JS turn, not before every call: calls made in
    // one turn (a kv.getMany, pipelined puts) then share one flush, as in the browser node,
    // whose core driver flushes held replica messages at the end of the turn.
    if (!this.turnPumped) {
      this.driver.pump();
      this.turnPumped = true;
      queueMicrotask(() => (this.turnPumped = false));
    }
    this.net.handle(this.id, input);
    this.flushEvents();
    this.driver.poke();
  }

  private timer(fn: () => void, delay: number): TimerHandle {
    let armed = true;
    this.net.later(delay, () => {
      if (armed) fn();
    });
    this.driver.poke();
    return { cancel: () => (armed = false) };
  }

  private flushEvents(): void {
    if (this.events.length === 0) return;
    const events = this.events;
    this.events = [];
    if (events.some((e) => e.type === 'peers' || e.type === 'members')) this.join.check();
    for (const e of events) this.emit(e);
  }

  private emit(e: NodeEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        console.error('mock node listener failed', err);
      }
    }
  }

  private count(name: string, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }

  // --- P2PApi ---

  peers(): string[] {
    return this.api.peers();
  }

  passive(): string[] {
    return this.api.passive();
  }

  members(): string[] {
    return this.api.members();
  }

  memberViews(): MemberView[] {
    return this.api.memberViews();
  }

  info(): NodeInfo {
    return {
      id: this.id,
      nick: this.query.chat.nick(),
      cluster: this.cluster,
      signaling: [{ url: 'sim://mock-cluster', state: this.left ? 'closed' : 'open' }],
      eager: this.query.overlay.eager(),
      lazy: this.query.overlay.lazy(),
      state: this.join.state,
      ice: { policy: 'all', servers: [], source: 'default', credentialExpiresInS: null, error: null },
    };
  }

  /** The simulated links: direct paths, round trip twice the link's latency. */
  links(): LinkInfo[] {
    if (!this.net.isAlive(this.id)) return [];
    const now = this.net.now;
    return this.net.linksOf(this.id).map(({ peer, latency, openAt }) =>
      openAt > now
        ? { peer, state: 'connecting' as const, path: null, since: now }
        : { peer, state: 'open' as const, path: { type: 'host' as const, local: 'host' as const, remote: 'host' as const, rttMs: Math.round(2 * latency * 10) / 10, protocol: 'udp', relayProtocol: null }, since: openAt },
    );
  }

  stats(): Record<string, number> {
    return {
      ...Object.fromEntries(this.counters),
      'kv.localKeys': this.query.kv.localCount(),
      'kv.placementChanges': this.query.stats.kvCounters().placementChanges,
    };
  }

  on(listener: (e: NodeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  async leave(): Promise<void> {
    if (this.left) return;
    this.driver.pump();
    this.net.leave(this.id, { type: 'leave' });
    this.join.left();
    this.left = true;
    this.driver.pump();
    await new Promise((r) => setTimeout(r, LEAVE_LINGER_MS));
    this.driver.pump();
    this.requests.rejectAll();
    this.dispose();
    this.emit({ type: 'members' });
    this.emit({ type: 'peers' });
  }

  dispose(): void {
    this.driver.stop();
  }
}

/** A KV message (or a routed one) about a key under `unreachable/`: its replicas never hear of it. */
function aboutUnreachableKey(msg: WireMessage): boolean {
  const t = msg.type;
  if (!t.startsWith('kv.') && t !== 'rt.route') return false;
  return JSON.stringify(msg).includes('"unreachable/');
}
