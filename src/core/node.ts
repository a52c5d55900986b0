/**
 * One node's whole protocol stack, still pure: HyParView decides the links, Plumtree
 * broadcasts over them, membership (a Plumtree payload) lists live members with their
 * active views, the router carries direct messages over the overlay, and the KVS,
 * segments and chat sit on top. The browser runtime and the simulator feed it inputs and
 * run its effects (inputs and effects: node-io.ts; the wire union and its validator:
 * messages.ts); they read it through `query` (queries.ts).
 *
 *   hyparview --neighborUp/Down--> plumtree, membership, chat
 *   plumtree  --deliver(kind)----> the broadcast handler of that kind:
 *                                  membership (MEMBER_KIND) | chat (CHAT_KIND)
 *   membership --changed---------> kv, segments (placement), chat (rooms), router (topology)
 *   membership, chat --broadcast-> plumtree (with their kind)
 *
 * Broadcasts can be sealed (CoreConfig.sealBroadcasts, on in the runtime): the composer
 * takes a Plumtree id for each broadcast and asks for it to be sealed (effect `seal`); the
 * runtime signs it and hands it back (input `sealed`), and only then does Plumtree send it,
 * with the seal, which every copy and every proof of it carries. A LEFT cannot wait for a
 * signature while the page is going away, so each ALIVE of ours that goes out has the
 * LEFT of its incarnation sealed in advance (`presealedLeft`). Routed envelopes are
 * sealed by the runtime on their way out (RouteEnvelope.seal). The core never looks
 * inside a seal (docs/security.md).
 *
 * Every protocol follows core/protocol.ts. `run` is the one adapter: it runs a protocol
 * and routes its effects through that protocol's `Port` (how its sends travel, how its
 * timers are tagged, where its events and persists go). Timers and messages are typed
 * unions of the protocols' own (as iroh-gossip's `Timer`/`Message` enums wrap each
 * sub-protocol's), so a switch on the tag or a protocol's `isXMessage` guard narrows.
 */
import type { NodeId, Rng, Seal } from './types';
import type { Effect, SendEffect } from './protocol';
import { HyParView, isHpvMessage, type HpvEvent, type HpvIn, type HpvMessage, type HpvTimer, type HyParViewConfig } from './hyparview';
import { TokenBuckets, type RateConfig } from './limits/rate';
import { validateMemberUpdate } from './membership/messages';
import { validateChatBroadcast } from './chat/validate';
import { Plumtree, isPtMessage, type PtGossip, type PtDeliver, type PtEvent, type PtIn, type PtMessage, type PtTimer, type PlumtreeConfig } from './plumtree';
import { Membership, MEMBER_KIND, isMemberMessage, type MemberIn, type MemberMessage, type MemberTimer, type MembershipConfig, type MemberInfo, type MemberUpdate } from './membership';
import { DEFAULT_REPLICAS, majority, MAX_REPLICAS } from './placement';
import { KvStore, isKvMessage, type Entry, type KvConfig, type KvEvent, type KvIn, type KvMessage, type KvTimer } from './kv';
import { Segments, isSegMessage, type SegEvent, type SegIn, type SegMessage, type SegRecord, type SegTimer, type SegmentsConfig } from './segments';
import { Chat, CHAT_KIND, isChatWire, type ChatConfig, type ChatEvent, type ChatIn, type ChatMessage, type ChatWire } from './chat';
import { Router, ROUTE_TTL, type RouteEnvelope } from './routing/router';
import type { RoutedMessage } from './messages';
import { coreQueries, type CoreQueries } from './queries';
import type { ApiCall, NodeIn, NodeOut, NodeTimer, PersistOut } from './node-io';

export { validateWire, type RoutedMessage, type WireMessage } from './messages';
export type { CoreQueries } from './queries';
export { STORAGE_KEY, type ApiCall, type CoreEvent, type NodeIn, type NodeOut, type NodeTimer, type PersistOut, type PersistStore, type ReplyOut, type StartInput } from './node-io';
export type { Entry, ChatMessage, MemberInfo, SegRecord };

export interface CoreConfig {
  hyparview?: Partial<HyParViewConfig>;
  plumtree?: Partial<PlumtreeConfig>;
  membership?: Partial<MembershipConfig>;
  kv?: Partial<KvConfig>;
  chat?: Partial<ChatConfig>;
  segments?: Partial<SegmentsConfig>;
  /** Per-link and per-source message rates (see LimitsConfig). */
  limits?: Partial<LimitsConfig>;
  /**
   * Seal every broadcast before it goes out (effect `seal`, input `sealed`): on in the
   * browser runtime, which signs them; off in the simulator and the core's tests.
   */
  sealBroadcasts?: boolean;
}

/**
 * Message rates a node accepts (token buckets, core/limits/rate.ts), on top of each
 * protocol's own bounds. They bound the work one peer can make us do; honest traffic stays
 * well below them (the bench's 5,000 puts/s over 8 tabs puts at most a few thousand
 * messages a second on one link, KV batches included).
 */
export interface LimitsConfig {
  /** Messages per link: per neighbour, or per proven sender of relayed frames. */
  link: RateConfig;
  /** Routed messages for us per source (`rt.route` src, proven by its seal in the runtime). */
  routeSrc: RateConfig;
}

export const DEFAULT_LIMITS: Readonly<LimitsConfig> = Object.freeze({
  link: Object.freeze({ burst: 20_000, perSec: 10_000 }),
  routeSrc: Object.freeze({ burst: 10_000, perSec: 5_000 }),
});

/** What the node-level limits refused. */
export interface LimitStats {
  /** Messages dropped by their link's rate (LimitsConfig.link). */
  linkRateLimited: number;
  /** Routed messages for us dropped by their source's rate (LimitsConfig.routeSrc). */
  routeRateLimited: number;
}

/**
 * How one protocol's effects leave `run`: the composer's half of an adapter.
 * `M`, `T`, `E`, `R`: the protocol's messages, timers, events and persisted records.
 */
interface Port<M, T, E, R> {
  /**
   * `overLink`: the protocol talks to neighbours only (HyParView, Plumtree); its sends go
   * out as emitted. `toMember`: it talks to any member; sends are routed (sendDirect).
   */
  send(e: SendEffect<M>): void;
  timer(t: T): NodeTimer;
  event(e: E): void;
  /** Absent for protocols that persist nothing (R = never); a persist from one is reported as dropped. */
  persist?(put: R[], remove: string[]): PersistOut;
}

/** A protocol as `run` drives it (core/protocol.ts `Protocol.handle`). */
interface Runnable<In, M, T, E, R> {
  handle(input: In, now: number, out: Effect<M, T, E, R>[]): void;
}

/** Receives a Plumtree delivery of one broadcast kind (Partisan's broadcast handler). */
type BroadcastHandler = (d: PtDeliver) => void;

/** The handler of a broadcast kind and the validator of its payloads (Plumtree's admission). */
interface BroadcastKind {
  handle: BroadcastHandler;
  validate: (data: unknown) => string | null;
}

export class CoreNode {
  /** Read-only views of the protocols, for everyone outside core/. */
  readonly query: CoreQueries;
  private readonly hyparview: HyParView;
  private readonly plumtree: Plumtree;
  private readonly membership: Membership;
  private readonly kv: KvStore;
  private readonly replicaAsk: number;
  /** The cluster's replica count last handed to the KVS (ClusterView.replicas). */
  private kvReplicas: number | undefined;
  private readonly chat: Chat;
  private readonly segments: Segments;
  private readonly router: Router;
  /** Plumtree deliveries by broadcast kind: a protocol that broadcasts registers its kind. */
  private readonly broadcastHandlers = new Map<string, BroadcastKind>();
  private readonly linkBuckets: TokenBuckets;
  private readonly routeBuckets: TokenBuckets;
  private readonly limitCounters: LimitStats = { linkRateLimited: 0, routeRateLimited: 0 };
  private now = 0;
  private out: NodeOut[] = [];
  private active = new Set<NodeId>();
  private left = false;
  private started = false;
  private readonly sealing: boolean;
  /** Ids of LEFTs being sealed in advance, and the latest one sealed (see the file comment). */
  private readonly presealing = new Set<string>();
  private presealedLeft: { id: string; data: MemberUpdate; seal: Seal } | null = null;

  private readonly hpvPort: Port<HpvMessage, HpvTimer, HpvEvent, never> = {
    send: (e) => this.overLink(e),
    timer: (t) => ({ p: 'hpv', t }),
    event: (e) => this.onHpvEvent(e),
  };

  private readonly ptPort: Port<PtMessage, PtTimer, PtEvent, never> = {
    send: (e) => this.overLink(e),
    timer: (t) => ({ p: 'pt', t }),
    event: (d) => this.onDeliver(d),
  };

  private readonly kvPort: Port<KvMessage, KvTimer, KvEvent, Entry> = {
    send: (e) => this.toMember(e),
    timer: (t) => ({ p: 'kv', t }),
    event: (e) => {
      if (e.type === 'watchResync') return void this.out.push({ type: 'event', event: { type: 'kvWatchResync', reason: e.reason } });
      if (e.type === 'sealEntry') return void this.out.push({ type: 'sealEntry', op: e.op, entry: e.entry });
      const { key, value, version, deleted } = e.entry;
      const entry = { value, version: { ts: version.ts, node: version.node }, deleted };
      this.out.push({ type: 'event', event: { type: e.type === 'watch' ? 'kvWatch' : 'kv', key, entry } });
    },
    persist: (put, remove) => ({ type: 'persist', store: 'kv', put, remove }),
  };

  private readonly segPort: Port<SegMessage, SegTimer, SegEvent, SegRecord> = {
    send: (e) => this.toMember(e),
    timer: (t) => ({ p: 'seg', t }),
    event: (e) => this.out.push({ type: 'event', event: { type: 'segments', key: e.key } }),
    persist: (put, remove) => ({ type: 'persist', store: 'seg', put, remove }),
  };

  private readonly chatPort: Port<ChatWire, never, ChatEvent, ChatMessage> = {
    send: (e) => this.toMember(e),
    // chat sets no timers (T = never)
    timer: (t) => t,
    event: (e) => this.onChatEvent(e),
    persist: (put, remove) => ({ type: 'persist', store: 'chat', put, remove }),
  };

  constructor(
    readonly id: NodeId,
    config: CoreConfig,
    rng: Rng,
  ) {
    this.hyparview = new HyParView(id, config.hyparview ?? {}, rng);
    this.plumtree = new Plumtree(id, config.plumtree ?? {}, rng, (msg) => this.admitGossip(msg));
    this.membership = new Membership(id, config.membership ?? {}, rng);
    // the replica count this node asks the cluster for (meta.replicas; the largest ask wins)
    this.replicaAsk = Math.min(MAX_REPLICAS, Math.max(1, Math.floor(config.kv?.n ?? DEFAULT_REPLICAS)));
    this.kv = new KvStore(id, { ...config.kv, n: this.replicaAsk, w: config.kv?.w ?? majority(this.replicaAsk), r: config.kv?.r ?? majority(this.replicaAsk) }, rng);
    this.chat = new Chat(id, config.chat ?? {}, rng);
    this.segments = new Segments(id, config.segments ?? {}, rng);
    this.router = new Router(id);
    this.sealing = config.sealBroadcasts === true;
    const limits = { ...DEFAULT_LIMITS, ...config.limits };
    this.linkBuckets = new TokenBuckets(limits.link);
    this.routeBuckets = new TokenBuckets(limits.routeSrc);
    this.query = coreQueries({
      limits: () => ({ ...this.limitCounters }),
      hyparview: this.hyparview,
      plumtree: this.plumtree,
      membership: this.membership,
      kv: this.kv,
      chat: this.chat,
      segments: this.segments,
    });
    this.handleBroadcasts(MEMBER_KIND, validateMemberUpdate, (d) => this.toMembership(d.seal ? { type: 'deliver', origin: d.origin, id: d.id, data: d.data, seal: d.seal } : { type: 'deliver', origin: d.origin, id: d.id, data: d.data }));
    this.handleBroadcasts(CHAT_KIND, validateChatBroadcast, (d) => this.toChat({ type: 'deliver', from: d.origin, data: d.data, proof: d.seal ? { id: d.id, seal: d.seal } : { id: d.id } }));
  }

  handle(input: NodeIn, now: number, out: NodeOut[]): void {
    this.now = now;
    this.out = out;
    switch (input.type) {
      case 'start':
        if (this.started) return;
        this.started = true;
        if (input.kvEntries?.length) this.toKv({ type: 'load', records: input.kvEntries });
        if (input.chatHistory?.length) this.toChat({ type: 'load', records: input.chatHistory });
        if (input.segRecords?.length) this.toSeg({ type: 'load', records: input.segRecords });
        this.toMembership({ type: 'start', nick: input.nick });
        this.toChat({ type: 'start', nick: input.nick, rooms: input.rooms });
        this.placementToKvSeg();
        this.toHpv({ type: 'start', contacts: input.contacts });
        return;
      case 'frame':
        if (!this.linkBuckets.take(input.from, now)) return void this.limitCounters.linkRateLimited++;
        if (input.msg.type === 'rt.route') return this.onRoute(input.msg);
        return this.dispatch(input.from, input.msg);
      case 'linkDown':
        return this.toHpv({ type: 'linkDown', peer: input.peer });
      case 'will':
        if (input.from === this.id || this.left) return;
        return this.toMembership({ type: 'will', peer: input.from });
      case 'timer':
        return this.onTimer(input.timer);
      case 'announce':
        if (input.from === this.id || this.left) return;
        return this.toHpv({
          type: 'announce',
          from: input.from,
          clients: input.clients,
          isolated: input.isolated,
          known: this.membership.get(input.from)?.status === 'alive',
        });
      case 'api':
        return this.onApi(input.req, input.call);
      case 'adopt':
        if (input.chat?.length) this.toChat({ type: 'load', records: input.chat });
        return this.toKv({ type: 'load', records: input.entries });
      case 'sealed':
        return this.onSealed(input.id, input.kind, input.data, input.seal);
      case 'entrySealed':
        return this.toKv({ type: 'sealed', op: input.op, seal: input.seal });
      case 'flush':
        return this.toKv({ type: 'flush' });
      case 'leave':
        if (this.left) return;
        this.left = true;
        this.toMembership({ type: 'leave' });
        this.toHpv({ type: 'leave' });
        return;
    }
  }

  /** With `kv.deferFlush`, writes are held until a `flush` input: the driver sends one when this is true. */
  needsFlush(): boolean {
    return this.kv.needsFlush();
  }

  /** HyParView's active view (the simulator's `SimNode` reads it; others use `query.overlay`). */
  activeView(): NodeId[] {
    return this.hyparview.activeView();
  }

  // --- inputs to the protocols ---

  private dispatch(from: NodeId, msg: HpvMessage | PtMessage | RoutedMessage): void {
    if (isHpvMessage(msg)) return this.toHpv({ type: 'message', from, msg });
    if (isPtMessage(msg)) return this.toPt({ type: 'message', from, msg });
    if (isMemberMessage(msg)) return this.toMembership({ type: 'message', from, msg });
    if (isKvMessage(msg)) return this.toKv({ type: 'message', from, msg });
    if (isSegMessage(msg)) return this.toSeg({ type: 'message', from, msg });
    if (isChatWire(msg)) return this.toChat({ type: 'message', from, msg });
  }

  private onRoute(env: RouteEnvelope<RoutedMessage>): void {
    if (env.dst === this.id) {
      // the runtime opens a sealed envelope for us before it gets here
      if (env.msg === undefined) return void this.out.push({ type: 'dropped', reason: 'routed message still sealed' });
      if (!this.routeBuckets.take(env.src, this.now)) return void this.limitCounters.routeRateLimited++;
      return this.dispatch(env.src, env.msg);
    }
    if (env.ttl <= 0) return void this.out.push({ type: 'dropped', reason: 'route ttl expired' });
    this.forward({ ...env, ttl: env.ttl - 1 });
  }

  /** A send of a neighbours-only protocol: over the link, or relayed when `transient`. */
  private overLink(e: SendEffect<HpvMessage | PtMessage>): void {
    this.out.push(e);
  }

  /** A send of a protocol that talks to any member (see sendDirect). */
  private toMember(e: SendEffect<RoutedMessage>): void {
    this.sendDirect(e.to, e.msg);
  }

  /** A direct message to any member: over a link, along the overlay, or via signaling. */
  private sendDirect(to: NodeId, msg: RoutedMessage): void {
    if (to === this.id) return this.dispatch(this.id, msg);
    if (this.active.has(to)) return void this.out.push({ type: 'send', to, msg });
    this.forward({ type: 'rt.route', src: this.id, dst: to, ttl: ROUTE_TTL, msg });
  }

  private forward(env: RouteEnvelope<RoutedMessage>): void {
    const hop = this.router.nextHop(env.dst);
    if (hop !== null && this.active.has(hop)) this.out.push({ type: 'send', to: hop, msg: env });
    else this.out.push({ type: 'send', to: env.dst, msg: env, transient: true });
  }

  private onTimer(timer: NodeTimer): void {
    switch (timer.p) {
      case 'hpv': return this.toHpv({ type: 'timer', timer: timer.t });
      case 'pt': return this.toPt({ type: 'timer', timer: timer.t });
      case 'mem': return this.toMembership({ type: 'timer', timer: timer.t });
      case 'kv': return this.toKv({ type: 'timer', timer: timer.t });
      case 'seg': return this.toSeg({ type: 'timer', timer: timer.t });
    }
  }

  private onApi(req: number, call: ApiCall): void {
    switch (call.type) {
      case 'kv.put': return this.toKv({ type: 'put', req, key: call.key, value: call.value });
      case 'kv.get': return this.toKv({ type: 'get', req, key: call.key });
      case 'kv.delete': return this.toKv({ type: 'delete', req, key: call.key });
      case 'kv.keys': return this.toKv({ type: 'keys', req, prefix: call.prefix });
      case 'kv.inspect': return this.toKv({ type: 'inspect', req, key: call.key });
      case 'kv.watch': return this.toKv({ type: 'watch', req, prefixes: call.prefixes });
      case 'chat.send': return this.toChat({ type: 'send', req, room: call.room, text: call.text });
      case 'chat.tell': return this.toChat({ type: 'tell', req, nick: call.nick, text: call.text });
      case 'chat.join': return this.toChat({ type: 'join', req, room: call.room });
      case 'chat.leave': return this.toChat({ type: 'leave', req, room: call.room });
      case 'chat.nick': return this.toChat({ type: 'setNick', req, nick: call.nick });
      case 'seg.put': return this.toSeg({ type: 'put', req, key: call.key, value: call.value });
      case 'seg.update': return this.toSeg({ type: 'update', req, key: call.key, value: call.value });
      case 'seg.peek': return this.toSeg({ type: 'peek', req, key: call.key, afterId: call.afterId, timeoutMs: call.timeoutMs });
      case 'seg.take': return this.toSeg({ type: 'take', req, key: call.key, afterId: call.afterId, timeoutMs: call.timeoutMs });
      case 'seg.cancel': return this.toSeg({ type: 'cancel', req: call.target });
    }
  }

  // --- the adapter: run one protocol, then route its effects through its port ---

  private run<In, M, T, E, R>(protocol: Runnable<In, M, T, E, R>, input: In, port: Port<M, T, E, R>): void {
    const out: Effect<M, T, E, R>[] = [];
    protocol.handle(input, this.now, out);
    for (const e of out) {
      switch (e.type) {
        case 'send': port.send(e); break;
        case 'timer': this.out.push({ type: 'timer', delayMs: e.delayMs, timer: port.timer(e.timer) }); break;
        case 'disconnect': this.out.push(e); break;
        case 'reply': this.out.push(e); break;
        case 'persist':
          if (port.persist) this.out.push(port.persist(e.put, e.remove));
          else this.out.push({ type: 'dropped', reason: 'persist from a protocol without a store' });
          break;
        case 'event': port.event(e.event); break;
      }
    }
  }

  private toHpv(input: HpvIn): void {
    this.run(this.hyparview, input, this.hpvPort);
  }

  private toPt(input: PtIn): void {
    this.run(this.plumtree, input, this.ptPort);
  }

  private toKv(input: KvIn): void {
    this.run(this.kv, input, this.kvPort);
  }

  private toSeg(input: SegIn): void {
    this.run(this.segments, input, this.segPort);
  }

  private toChat(input: ChatIn): void {
    this.run(this.chat, input, this.chatPort);
  }

  /**
   * Membership's port is per call: its `changed` event is acted on once the call's other
   * effects are routed (a call may also deliver our own broadcast back into membership).
   */
  private toMembership(input: MemberIn): void {
    let changed = false;
    this.run(this.membership, input, {
      send: (e) => this.toMember(e),
      timer: (t) => ({ p: 'mem', t }),
      event: (e) => {
        switch (e.type) {
          case 'broadcast':
            // after leave() only the LEFT announcement itself goes out
            if (!this.left || input.type === 'leave') this.broadcast(MEMBER_KIND, e.data);
            return;
          case 'placementChanged':
            // a member turned suspect (or back): routes avoid suspects as hops (Router)
            this.router.setTopology([...this.active], () => this.liveMemberInfos());
            return this.placementToKvSeg();
          case 'changed':
            changed = true;
            // a member left (or came back) within its leave grace: the KVS's quorums change
            if (e.left.length > 0 || e.joined.length > 0) this.placementToKvSeg();
            return;
        }
      },
    });
    if (changed) this.membersChanged();
  }

  // --- events between the protocols ---

  private onHpvEvent(e: HpvEvent): void {
    switch (e.type) {
      case 'announce':
        this.out.push({ type: 'announce', isolated: this.active.size === 0 });
        return;
      case 'neighborUp':
        this.active.add(e.peer);
        this.topologyChanged();
        this.toPt({ type: 'neighborUp', peer: e.peer });
        this.toMembership({ type: 'neighborUp', peer: e.peer });
        this.toChat({ type: 'neighborUp', peer: e.peer });
        return;
      case 'neighborDown':
        this.active.delete(e.peer);
        this.topologyChanged();
        this.toPt({ type: 'neighborDown', peer: e.peer });
        this.toMembership({ type: 'neighborDown', peer: e.peer });
        this.toChat({ type: 'neighborDown', peer: e.peer });
        return;
    }
  }

  private onChatEvent(e: ChatEvent): void {
    switch (e.type) {
      case 'broadcast':
        return this.broadcast(CHAT_KIND, e.data);
      case 'delivered':
        return void this.out.push({ type: 'event', event: { type: 'chat', message: e.message } });
      case 'meta':
        this.toMembership({ type: 'local', nick: e.nick, meta: { rooms: e.rooms, replicas: this.replicaAsk } });
        this.out.push({ type: 'event', event: { type: 'rooms' } });
        return;
    }
  }

  /** Registers the protocol that receives Plumtree deliveries of `kind`, and the validator of their payloads. */
  private handleBroadcasts(kind: string, validate: (data: unknown) => string | null, handle: BroadcastHandler): void {
    this.broadcastHandlers.set(kind, { handle, validate });
  }

  /**
   * Plumtree's admission of a new gossip (docs/security.md, Bounds): a kind we handle, a
   * payload its protocol accepts, and a seal when broadcasts are sealed (the runtime has
   * verified it before the core sees the gossip). A gossip that fails is neither cached,
   * delivered nor forwarded.
   */
  private admitGossip(msg: PtGossip): string | null {
    const kind = this.broadcastHandlers.get(msg.kind);
    if (kind === undefined) return 'unknown kind';
    if (this.sealing && msg.seal === undefined) return 'not sealed';
    return kind.validate(msg.data);
  }

  /**
   * Originates a broadcast of `kind` (delivered here too, through its handler): at once,
   * or once sealed (see the file comment).
   */
  private broadcast(kind: string, data: unknown): void {
    if (!this.sealing) return this.toPt({ type: 'broadcast', kind, data });
    const pre = this.presealedLeft;
    if (pre && kind === MEMBER_KIND && isOwnLeft(data, this.id)) {
      // the page may be going away: no waiting for a signature. The presealed LEFT names
      // our latest broadcast ALIVE's incarnation, which is all anyone knows of ours.
      this.presealedLeft = null;
      return this.toPt({ type: 'broadcast', kind, data: pre.data, id: pre.id, seal: pre.seal });
    }
    this.out.push({ type: 'seal', id: this.plumtree.newMessageId(), kind, data });
  }

  private onSealed(id: string, kind: string, data: unknown, seal: Seal): void {
    if (this.presealing.delete(id)) {
      if (!this.left) this.presealedLeft = { id, data: data as MemberUpdate, seal };
      return;
    }
    // after leave() only the LEFT itself still goes out
    if (this.left && !(kind === MEMBER_KIND && isOwnLeft(data, this.id))) return;
    this.toPt({ type: 'broadcast', kind, data, id, seal });
    const u = data as MemberUpdate;
    if (kind === MEMBER_KIND && !this.left && u.type === 'alive' && u.id === this.id) {
      const leftId = this.plumtree.newMessageId();
      this.presealing.add(leftId);
      this.out.push({ type: 'seal', id: leftId, kind, data: { type: 'left', id: this.id, incarnation: u.incarnation } });
    }
  }

  private onDeliver(d: PtDeliver): void {
    const kind = this.broadcastHandlers.get(d.kind);
    if (kind) kind.handle(d);
    else this.out.push({ type: 'dropped', reason: `broadcast of unknown kind ${d.kind.slice(0, 20)}` });
  }

  private topologyChanged(): void {
    this.router.setTopology([...this.active], () => this.liveMemberInfos());
    if (!this.left) this.toMembership({ type: 'local', active: [...this.active] });
    this.out.push({ type: 'event', event: { type: 'peers' } });
  }

  /**
   * Members joined or left, or one announced another nick, rooms or active view
   * (membership's `changed`): the router, chat and the UI need the new views.
   */
  private membersChanged(): void {
    this.router.setTopology([...this.active], () => this.liveMemberInfos());
    const view = this.membership.view();
    this.toChat({ type: 'members', view });
    // a member asking for another replica count changes the cluster's without moving placement
    if (view.replicas !== this.kvReplicas) this.placementToKvSeg();
    this.out.push({ type: 'event', event: { type: 'members' } });
  }

  private liveMemberInfos(): MemberInfo[] {
    return this.membership.all().filter((m) => m.status === 'alive' || m.status === 'suspect');
  }

  /**
   * The KVS places keys on the view's placement and is told who of it is away (left within
   * the leave grace, see MembershipConfig.leaveGraceMs). Segments are small and move at
   * once: they place keys on the placement without the away members.
   */
  private placementToKvSeg(): void {
    const view = this.membership.view();
    this.kvReplicas = view.replicas;
    this.toKv({ type: 'members', view });
    this.toSeg({ type: 'members', view });
  }
}

/** Our own LEFT (membership's broadcast as it leaves). */
function isOwnLeft(data: unknown, me: NodeId): boolean {
  return typeof data === 'object' && data !== null && (data as { type?: unknown }).type === 'left' && (data as { id?: unknown }).id === me;
}
