/**
 * One node's whole protocol stack, still pure: HyParView decides the links, Plumtree
 * broadcasts over them, membership (a Plumtree payload) lists live members with their
 * active views, the router carries direct messages over the overlay, and the KVS and chat
 * sit on top. The browser runtime and the simulator feed it inputs and run its effects.
 *
 *   hyparview --neighborUp/Down--> plumtree, membership, chat
 *   plumtree  --deliver(kind)----> membership ('member') | chat ('chat')
 *   membership --changed---------> kv (placement), chat (rooms), router (topology)
 *   membership, chat --broadcast-> plumtree (kind 'member' | 'chat')
 *
 * Every protocol follows core/protocol.ts: its effects are `send`, `timer`, `disconnect`,
 * `reply`, `persist` and typed `event`s; the adapters below (`toHpv`, `toPt`, ...) run
 * one protocol and route its effects, events to the other protocols or out as NodeOut.
 */
import type { NodeId, Rng } from './types';
import { HyParView, isHpvMessage, validateHpvMessage, type HpvEvent, type HpvIn, type HpvOut, type HpvMessage, type HyParViewConfig } from './hyparview';
import { Plumtree, isPtMessage, validatePlumtreeMessage as validatePtMessage, type PtIn, type PtOut, type PtMessage, type PlumtreeConfig } from './plumtree';
import { Membership, MEMBER_KIND, isMemberMessage, validateMemberMessage, type MemberIn, type MemberOut, type MemberMessage, type MembershipConfig, type MemberInfo } from './membership';
import { KvStore, validateKvMessage, type KvIn, type KvOut, type KvMessage, type KvConfig, type Entry } from './kv';
import type { ClusterView } from './protocol';
import { Segments, validateSegMessage, type SegIn, type SegOut, type SegMessage, type SegRecord, type SegmentsConfig } from './segments';
import { CHAT_KIND, Chat, isChatWire, validateChatMessage, type ChatIn, type ChatOut, type ChatWire, type ChatConfig } from './chat';
import type { ChatMessage } from './chat';
import { Router, ROUTE_TTL, routeFields, type RouteEnvelope } from './routing/router';
import { shape } from './validate';

export type { Entry, ChatMessage, MemberInfo, SegRecord };

export type WireMessage = HpvMessage | PtMessage | MemberMessage | KvMessage | ChatWire | SegMessage | RouteEnvelope;

export interface CoreConfig {
  hyparview?: Partial<HyParViewConfig>;
  plumtree?: Partial<PlumtreeConfig>;
  membership?: Partial<MembershipConfig>;
  kv?: Partial<KvConfig>;
  chat?: Partial<ChatConfig>;
  segments?: Partial<SegmentsConfig>;
}

type Proto = 'hpv' | 'pt' | 'mem' | 'kv' | 'chat' | 'seg';
export interface NodeTimer {
  p: Proto;
  t: unknown;
}

export type ApiCall =
  | { type: 'kv.put'; key: string; value: unknown }
  | { type: 'kv.get'; key: string }
  | { type: 'kv.delete'; key: string }
  | { type: 'kv.keys'; prefix: string }
  /** A quorum read that answers `{ value, version }` (undefined when absent). */
  | { type: 'kv.inspect'; key: string }
  | { type: 'chat.send'; room: string; text: string }
  | { type: 'chat.tell'; nick: string; text: string }
  | { type: 'chat.join'; room: string }
  | { type: 'chat.leave'; room: string }
  | { type: 'chat.nick'; nick: string }
  | { type: 'seg.put' | 'seg.update'; key: string; value: unknown }
  | { type: 'seg.peek' | 'seg.take'; key: string; afterId: number; timeoutMs?: number }
  /** The caller gave up on the waiting peek/take `target` (AbortSignal). */
  | { type: 'seg.cancel'; target: number };

export type NodeIn =
  /** `contacts`: nodes to rejoin through first (a reloaded tab's previous neighbours). */
  | { type: 'start'; nick: string; rooms?: string[]; kvEntries?: Entry[]; chatHistory?: ChatMessage[]; segRecords?: SegRecord[]; contacts?: NodeId[] }
  | { type: 'frame'; from: NodeId; msg: WireMessage }
  | { type: 'linkDown'; peer: NodeId }
  | { type: 'timer'; timer: NodeTimer }
  | { type: 'announce'; from: NodeId; clients: number; isolated: boolean }
  | { type: 'api'; req: number; call: ApiCall }
  | { type: 'adopt'; entries: Entry[] }
  /** End of the runtime's turn: send what the KVS held back (`kv.deferFlush`, see needsFlush()). */
  | { type: 'flush' }
  | { type: 'leave' };

export type CoreEvent =
  | { type: 'peers' }
  | { type: 'members' }
  | { type: 'chat'; message: ChatMessage }
  | { type: 'rooms' }
  | { type: 'kv'; key: string; entry: { value: unknown; version: { ts: number; node: NodeId }; deleted: boolean } }
  | { type: 'segments'; key: string };

export type NodeOut =
  | { type: 'send'; to: NodeId; msg: WireMessage; transient?: boolean }
  | { type: 'disconnect'; peer: NodeId }
  | { type: 'timer'; delayMs: number; timer: NodeTimer }
  | { type: 'announce'; isolated: boolean }
  | { type: 'reply'; req: number; ok: true; value?: unknown }
  | { type: 'reply'; req: number; ok: false; error: string }
  | { type: 'event'; event: CoreEvent }
  | { type: 'persistKv'; put: Entry[]; remove: string[] }
  /** `remove`: chat storage keys (core/chat `storageKey`). */
  | { type: 'persistChat'; put: ChatMessage[]; remove: string[] }
  | { type: 'persistSeg'; put: SegRecord[]; remove: string[] }
  | { type: 'dropped'; reason: string };

const validateRoute = shape(routeFields);

/** The protocol a message type belongs to: the part before the first '.' or '_'. */
function protocolOf(type: string): string {
  const m = /^[a-z]+/.exec(type);
  return m ? m[0] : '';
}

/** Validates any message a peer may send; null when acceptable. */
export function validateWire(v: unknown, nested = false): string | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not an object';
  const t = (v as { type?: unknown }).type;
  if (typeof t !== 'string') return 'missing type';
  if (t === 'rt.route') {
    if (nested) return 'nested route';
    return validateRoute(v) ?? validateWire((v as RouteEnvelope).msg, true);
  }
  switch (protocolOf(t)) {
    case 'hpv': return nested ? 'hpv message cannot be routed' : validateHpvMessage(v);
    case 'pt': return nested ? 'pt message cannot be routed' : validatePtMessage(v);
    case 'mem': return validateMemberMessage(v);
    case 'kv': return validateKvMessage(v);
    case 'chat': return validateChatMessage(v);
    case 'seg': return validateSegMessage(v);
    default: return `unknown message type ${JSON.stringify(t).slice(0, 40)}`;
  }
}

export class CoreNode {
  readonly hyparview: HyParView;
  readonly plumtree: Plumtree;
  readonly membership: Membership;
  readonly kv: KvStore;
  readonly chat: Chat;
  readonly segments: Segments;
  private readonly router: Router;
  private now = 0;
  private out: NodeOut[] = [];
  private active = new Set<NodeId>();
  private left = false;
  private started = false;

  constructor(
    readonly id: NodeId,
    config: CoreConfig,
    rng: Rng,
  ) {
    this.hyparview = new HyParView(id, config.hyparview ?? {}, rng);
    this.plumtree = new Plumtree(id, config.plumtree ?? {}, rng);
    this.membership = new Membership(id, config.membership ?? {}, rng);
    this.kv = new KvStore(id, config.kv ?? {}, rng);
    this.chat = new Chat(id, config.chat ?? {}, rng);
    this.segments = new Segments(id, config.segments ?? {}, rng);
    this.router = new Router(id);
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
        return this.onFrame(input.from, input.msg);
      case 'linkDown':
        return this.toHpv({ type: 'linkDown', peer: input.peer });
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
        return this.toKv({ type: 'load', records: input.entries });
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

  activeView(): NodeId[] {
    return this.hyparview.activeView();
  }

  private onFrame(from: NodeId, msg: WireMessage): void {
    if (msg.type === 'rt.route') return this.onRoute(from, msg);
    this.dispatch(from, msg);
  }

  private dispatch(from: NodeId, msg: WireMessage): void {
    if (isHpvMessage(msg)) return this.toHpv({ type: 'message', from, msg });
    if (isPtMessage(msg)) return this.toPt({ type: 'message', from, msg });
    if (isMemberMessage(msg)) return this.toMembership({ type: 'message', from, msg });
    if (isChatWire(msg)) return this.toChat({ type: 'message', from, msg });
    switch (protocolOf(msg.type)) {
      case 'kv': return this.toKv({ type: 'message', from, msg: msg as KvMessage });
      case 'seg': return this.toSeg({ type: 'message', from, msg: msg as SegMessage });
    }
  }

  private onRoute(_hop: NodeId, env: RouteEnvelope): void {
    if (env.dst === this.id) return this.dispatch(env.src, env.msg as WireMessage);
    if (env.ttl <= 0) return void this.out.push({ type: 'dropped', reason: 'route ttl expired' });
    this.forward({ ...env, ttl: env.ttl - 1 });
  }

  /** A direct message to any member: over a link, along the overlay, or via signaling. */
  private sendDirect(to: NodeId, msg: WireMessage): void {
    if (to === this.id) return this.dispatch(this.id, msg);
    if (this.active.has(to)) return void this.out.push({ type: 'send', to, msg });
    this.forward({ type: 'rt.route', src: this.id, dst: to, ttl: ROUTE_TTL, msg });
  }

  private forward(env: RouteEnvelope): void {
    const hop = this.router.nextHop(env.dst);
    if (hop !== null && this.active.has(hop)) this.out.push({ type: 'send', to: hop, msg: env });
    else this.out.push({ type: 'send', to: env.dst, msg: env, transient: true });
  }

  private onTimer(timer: NodeTimer): void {
    switch (timer.p) {
      case 'hpv': return this.toHpv({ type: 'timer', timer: timer.t as never });
      case 'pt': return this.toPt({ type: 'timer', timer: timer.t as never });
      case 'mem': return this.toMembership({ type: 'timer', timer: timer.t as never });
      case 'kv': return this.toKv({ type: 'timer', timer: timer.t as never });
      case 'chat': return;
      case 'seg': return this.toSeg({ type: 'timer', timer: timer.t as never });
    }
  }

  private onApi(req: number, call: ApiCall): void {
    switch (call.type) {
      case 'kv.put': return this.toKv({ type: 'put', req, key: call.key, value: call.value });
      case 'kv.get': return this.toKv({ type: 'get', req, key: call.key });
      case 'kv.delete': return this.toKv({ type: 'delete', req, key: call.key });
      case 'kv.keys': return this.toKv({ type: 'keys', req, prefix: call.prefix });
      case 'kv.inspect': return this.toKv({ type: 'inspect', req, key: call.key });
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

  // --- protocol adapters: run one protocol, then route its effects ---

  private toHpv(input: HpvIn): void {
    const out: HpvOut[] = [];
    this.hyparview.handle(input, this.now, out);
    for (const e of out) {
      switch (e.type) {
        case 'send': this.out.push({ type: 'send', to: e.to, msg: e.msg, transient: e.transient }); break;
        case 'timer': this.out.push({ type: 'timer', delayMs: e.delayMs, timer: { p: 'hpv', t: e.timer } }); break;
        case 'disconnect': this.out.push({ type: 'disconnect', peer: e.peer }); break;
        case 'event': this.onHpvEvent(e.event); break;
      }
    }
  }

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

  private topologyChanged(): void {
    this.router.setTopology([...this.active], this.liveMemberInfos());
    if (!this.left) this.toMembership({ type: 'local', active: [...this.active] });
    this.out.push({ type: 'event', event: { type: 'peers' } });
  }

  private toPt(input: PtIn): void {
    const out: PtOut[] = [];
    this.plumtree.handle(input, this.now, out);
    for (const e of out) {
      switch (e.type) {
        case 'send': this.out.push({ type: 'send', to: e.to, msg: e.msg }); break;
        case 'timer': this.out.push({ type: 'timer', delayMs: e.delayMs, timer: { p: 'pt', t: e.timer } }); break;
        case 'event': {
          const d = e.event;
          if (d.kind === MEMBER_KIND) this.toMembership({ type: 'deliver', data: d.data });
          else if (d.kind === CHAT_KIND) this.toChat({ type: 'deliver', from: d.origin, data: d.data });
          else this.out.push({ type: 'dropped', reason: `broadcast of unknown kind ${d.kind.slice(0, 20)}` });
          break;
        }
      }
    }
  }

  private toMembership(input: MemberIn): void {
    const out: MemberOut[] = [];
    this.membership.handle(input, this.now, out);
    let changed = false;
    for (const e of out) {
      switch (e.type) {
        case 'send': this.sendDirect(e.to, e.msg); break;
        case 'timer': this.out.push({ type: 'timer', delayMs: e.delayMs, timer: { p: 'mem', t: e.timer } }); break;
        case 'event':
          switch (e.event.type) {
            case 'broadcast':
              if (!this.left || input.type === 'leave') this.toPt({ type: 'broadcast', kind: MEMBER_KIND, data: e.event.data });
              break;
            case 'placementChanged':
              this.placementToKvSeg();
              break;
            case 'changed':
              changed = true;
              // a member left (or came back) within its leave grace: the KVS's quorums change
              if (e.event.left.length > 0 || e.event.joined.length > 0) this.placementToKvSeg();
              break;
          }
          break;
      }
    }
    if (changed) this.membersChanged();
  }

  /**
   * Members joined or left, or one announced another nick, rooms or active view
   * (membership's `changed`): the router, chat and the UI need the new views.
   */
  private membersChanged(): void {
    this.router.setTopology([...this.active], this.liveMemberInfos());
    this.toChat({ type: 'members', view: this.membership.view() });
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
    const view = this.clusterView();
    this.toKv({ type: 'members', view });
    this.toSeg({ type: 'members', view });
  }

  private clusterView(): ClusterView {
    return this.membership.view();
  }

  private toKv(input: KvIn): void {
    const out: KvOut[] = [];
    this.kv.handle(input, this.now, out);
    for (const e of out) {
      switch (e.type) {
        case 'send': this.sendDirect(e.to, e.msg); break;
        case 'timer': this.out.push({ type: 'timer', delayMs: e.delayMs, timer: { p: 'kv', t: e.timer } }); break;
        case 'reply': this.out.push(e); break;
        case 'persist': this.out.push({ type: 'persistKv', put: e.put, remove: e.remove }); break;
        case 'event': {
          const { value, version, deleted } = e.event.entry;
          this.out.push({ type: 'event', event: { type: 'kv', key: e.event.key, entry: { value, version: { ts: version.ts, node: version.node }, deleted } } });
          break;
        }
        case 'disconnect': break;
      }
    }
  }

  private toSeg(input: SegIn): void {
    const out: SegOut[] = [];
    this.segments.handle(input, this.now, out);
    for (const e of out) {
      switch (e.type) {
        case 'send': this.sendDirect(e.to, e.msg); break;
        case 'timer': this.out.push({ type: 'timer', delayMs: e.delayMs, timer: { p: 'seg', t: e.timer } }); break;
        case 'reply': this.out.push(e); break;
        case 'event': this.out.push({ type: 'event', event: { type: 'segments', key: e.event.key } }); break;
        case 'persist': this.out.push({ type: 'persistSeg', put: e.put, remove: e.remove }); break;
        case 'disconnect': break;
      }
    }
  }

  private toChat(input: ChatIn): void {
    const out: ChatOut[] = [];
    this.chat.handle(input, this.now, out);
    for (const e of out) {
      switch (e.type) {
        case 'send': this.sendDirect(e.to, e.msg); break;
        case 'reply': this.out.push(e); break;
        case 'persist': this.out.push({ type: 'persistChat', put: e.put, remove: e.remove }); break;
        case 'event':
          switch (e.event.type) {
            case 'broadcast': this.toPt({ type: 'broadcast', kind: CHAT_KIND, data: e.event.data }); break;
            case 'delivered': this.out.push({ type: 'event', event: { type: 'chat', message: e.event.message } }); break;
            case 'meta':
              this.toMembership({ type: 'local', nick: e.event.nick, meta: { rooms: e.event.rooms } });
              this.out.push({ type: 'event', event: { type: 'rooms' } });
              break;
          }
          break;
      }
    }
  }
}
