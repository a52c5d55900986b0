import type { NodeId, Rng } from '../core/types';
import { HyParView, validateHpvMessage, type HpvEvent, type HpvIn, type HpvMessage, type HpvOut, type HpvTimer, type HyParViewConfig } from '../core/hyparview';
import { Plumtree, validatePlumtreeMessage, type PlumtreeConfig, type PtDeliver, type PtIn, type PtMessage, type PtOut, type PtTimer } from '../core/plumtree';
import { MEMBER_KIND, Membership, validateMemberMessage, type MemberIn, type MemberMessage, type MemberOut, type MembershipConfig, type MemberTimer } from '../core/membership';
import { SeededRng } from '../core/rng';
import { Network, type Adapter, type NetworkConfig, type SimNode } from './network';
import { hyparviewAdapter, nodeRng } from './hyparview';

/**
 * The broadcast layer as one simulated node: Plumtree over an overlay, optionally with
 * membership on top. The overlay is either HyParView in the same node (its neighborUp /
 * neighborDown events feed Plumtree, in the order HyParView emits them) or the network's
 * 'fixed' links (the network's neighborUp / neighborDown inputs). Membership, when present,
 * hears the same neighbour changes (then a `local` update with the active view), gets
 * Plumtree's deliveries of kind 'member' and broadcasts through Plumtree. This is how
 * core/node.ts composes these three protocols; the router, KV, segments and chat are left
 * out, so the broadcast layer is measured alone. The whole CoreNode runs through core.ts.
 *
 * Routing: a message or a timer goes to Plumtree if its `type` starts with 'pt.', to
 * membership with 'mem.', else to HyParView (the prefixes never overlap), so no wrapper
 * objects are allocated per message.
 */
export type PtHostIn =
  /** HyParView starts (`contacts`), membership starts (`nick`, default the node id). */
  | { type: 'start'; contacts?: NodeId[]; nick?: string }
  | { type: 'join'; contact: NodeId; clients?: number }
  | { type: 'message'; from: NodeId; msg: HpvMessage | PtMessage | MemberMessage }
  | { type: 'timer'; timer: HpvTimer | PtTimer | MemberTimer }
  | { type: 'linkDown'; peer: NodeId }
  | { type: 'announce'; from: NodeId; clients: number; known: boolean; isolated: boolean }
  /** Membership says goodbye, then HyParView. */
  | { type: 'leave' }
  /** 'fixed' links: the network opened (closed) a link. */
  | { type: 'neighborUp'; peer: NodeId }
  | { type: 'neighborDown'; peer: NodeId }
  /** Originate a Plumtree broadcast. */
  | { type: 'broadcast'; kind: string; data: unknown };

export type PtHostOut = HpvOut | PtOut | MemberOut;

/** Where a node reports deliveries (with their hop count) and payload (GOSSIP) sends. */
export interface BroadcastSink {
  deliver(node: PlumtreeNode, d: PtDeliver, now: number): void;
  payloadSent(id: string): void;
}

export interface PlumtreeNodeOptions {
  /** Dense index reported with deliveries (0..N-1). */
  index?: number;
  plumtree?: Partial<PlumtreeConfig>;
  plumtreeRng: Rng;
  /** Run HyParView in the node (else the network's 'fixed' links are the overlay). */
  hyparview?: { config?: Partial<HyParViewConfig>; rng: Rng };
  membership?: { config?: Partial<MembershipConfig>; rng: Rng };
  sink?: BroadcastSink | null;
  /** Check every message with the protocols' validators (counted in `invalid`, then ignored). */
  validate?: boolean;
}

// handle() is never re-entered (the network runs effects after it returns): one buffer
// per protocol serves every node. Each call reads what it appended, from its start index
// to its end index; Plumtree and membership can nest (a membership delivery rebroadcasts),
// so a buffer is emptied only by the outermost call using it, and only once it grows
// (`length = 0` drops the backing store: an allocation per call otherwise).
const HPV_OUT: HpvOut[] = [];
const PT_OUT: PtOut[] = [];
const MEM_OUT: MemberOut[] = [];
let ptDepth = 0;
let memDepth = 0;

export class PlumtreeNode implements SimNode<PtHostIn, PtHostOut> {
  readonly index: number;
  readonly plumtree: Plumtree;
  readonly hyparview: HyParView | null;
  readonly membership: Membership | null;
  /** Called for every delivery at this node (after the sink). */
  onDeliver: ((d: PtDeliver) => void) | null = null;
  /** Messages that failed validation (with `validate`). */
  invalid = 0;
  /** Last time (virtual ms) membership's live set changed here (joins or departures; nick or view updates do not count). */
  lastChange = 0;
  private readonly sink: BroadcastSink | null;
  private readonly validate: boolean;
  /** The overlay neighbours, without HyParView: what the network's neighbour inputs said. */
  private readonly active = new Set<NodeId>();

  constructor(
    readonly id: NodeId,
    opts: PlumtreeNodeOptions,
  ) {
    this.index = opts.index ?? 0;
    this.plumtree = new Plumtree(id, opts.plumtree ?? {}, opts.plumtreeRng);
    this.hyparview = opts.hyparview ? new HyParView(id, opts.hyparview.config ?? {}, opts.hyparview.rng) : null;
    this.membership = opts.membership ? new Membership(id, opts.membership.config ?? {}, opts.membership.rng) : null;
    this.sink = opts.sink ?? null;
    this.validate = opts.validate ?? false;
  }

  activeView(): NodeId[] {
    return this.hyparview ? this.hyparview.activeView() : [...this.active];
  }

  passiveView(): NodeId[] {
    return this.hyparview ? this.hyparview.passiveView() : [];
  }

  handle(input: PtHostIn, now: number, out: PtHostOut[]): void {
    switch (input.type) {
      case 'message': {
        const t = input.msg.type;
        if (isPt(t)) {
          if (this.validate && validatePlumtreeMessage(input.msg) !== null) return void this.invalid++;
          return this.toPt(input as PtIn, now, out);
        }
        if (isMem(t)) {
          if (!this.membership || (this.validate && validateMemberMessage(input.msg) !== null)) return void this.invalid++;
          return this.toMem(input as MemberIn, now, out);
        }
        if (!this.hyparview || (this.validate && validateHpvMessage(input.msg) !== null)) return void this.invalid++;
        return this.toHpv(input as HpvIn, now, out);
      }
      case 'timer': {
        const t = input.timer.type;
        if (isPt(t)) return this.toPt(input as PtIn, now, out);
        if (isMem(t)) return this.toMem(input as MemberIn, now, out);
        return this.toHpv(input as HpvIn, now, out);
      }
      case 'broadcast':
        return this.toPt(input, now, out);
      case 'neighborUp':
      case 'neighborDown':
        if (input.type === 'neighborUp') this.active.add(input.peer);
        else this.active.delete(input.peer);
        return this.neighbor(input, now, out);
      case 'start':
        if (this.membership) this.toMem({ type: 'start', nick: input.nick ?? this.id }, now, out);
        if (this.hyparview) this.toHpv(input.contacts ? { type: 'start', contacts: input.contacts } : { type: 'start' }, now, out);
        return;
      case 'leave':
        if (this.membership) this.toMem(input, now, out);
        if (this.hyparview) this.toHpv(input, now, out);
        return;
      default:
        if (this.hyparview) this.toHpv(input, now, out);
    }
  }

  /** A neighbour came or went: Plumtree first, then membership (and its `local` active view). */
  private neighbor(e: Exclude<HpvEvent, { type: 'announce' }>, now: number, out: PtHostOut[]): void {
    // The event { type: 'neighborUp' | 'neighborDown', peer } is also Plumtree's and membership's input shape.
    this.toPt(e, now, out);
    if (this.membership) {
      this.toMem(e, now, out);
      this.toMem({ type: 'local', active: this.activeView() }, now, out);
    }
  }

  private toHpv(input: HpvIn, now: number, out: PtHostOut[]): void {
    const buf = HPV_OUT;
    const start = buf.length;
    this.hyparview!.handle(input, now, buf);
    for (let k = start; k < buf.length; k++) {
      const e = buf[k]!;
      if (e.type === 'event' && e.event.type !== 'announce') this.neighbor(e.event, now, out);
      else out.push(e);
    }
    if (buf.length > 1024) buf.length = 0;
  }

  private toPt(input: PtIn, now: number, out: PtHostOut[]): void {
    const buf = PT_OUT;
    const start = buf.length;
    this.plumtree.handle(input, now, buf);
    const end = buf.length;
    ptDepth++;
    for (let k = start; k < end; k++) {
      const e = buf[k]!;
      if (e.type === 'event') {
        const d = e.event;
        this.sink?.deliver(this, d, now);
        this.onDeliver?.(d);
        if (this.membership && d.kind === MEMBER_KIND) this.toMem({ type: 'deliver', origin: d.origin, id: d.id, data: d.data }, now, out);
        continue;
      }
      if (e.type === 'send' && e.msg.type === 'pt.gossip') this.sink?.payloadSent(e.msg.id);
      out.push(e);
    }
    if (--ptDepth === 0 && buf.length > 1024) buf.length = 0;
  }

  private toMem(input: MemberIn, now: number, out: PtHostOut[]): void {
    const buf = MEM_OUT;
    const start = buf.length;
    this.membership!.handle(input, now, buf);
    const end = buf.length;
    memDepth++;
    for (let k = start; k < end; k++) {
      const e = buf[k]!;
      if (e.type !== 'event') {
        out.push(e);
        continue;
      }
      const ev = e.event;
      if (ev.type === 'broadcast') this.toPt({ type: 'broadcast', kind: MEMBER_KIND, data: ev.data }, now, out);
      else if (ev.type === 'changed' && (ev.joined.length > 0 || ev.left.length > 0)) this.lastChange = now;
    }
    if (--memDepth === 0 && buf.length > 1024) buf.length = 0;
  }
}

/** `type` starts with 'pt.' (char codes: no substring allocated per message). */
function isPt(type: string): boolean {
  return type.charCodeAt(0) === 112 /* p */ && type.charCodeAt(1) === 116 /* t */ && type.charCodeAt(2) === 46; /* . */
}

/** `type` starts with 'mem.'. */
function isMem(type: string): boolean {
  return type.charCodeAt(0) === 109 /* m */ && type.charCodeAt(1) === 101 /* e */ && type.charCodeAt(2) === 109 /* m */ && type.charCodeAt(3) === 46; /* . */
}

/**
 * The network side: HyParView's inputs and background timers (Plumtree's timers all
 * quiesce), and the 'fixed' links' neighbour inputs.
 */
export const plumtreeAdapter: Adapter<PtHostIn, PtHostOut, PlumtreeNode> = {
  message: (from, msg) => ({ type: 'message', from, msg: msg as PtMessage }),
  timer: (timer) => ({ type: 'timer', timer: timer as PtTimer }),
  linkDown: (peer) => ({ type: 'linkDown', peer }),
  announce: (from, clients, known, isolated) => ({ type: 'announce', from, clients, known, isolated }),
  neighborUp: (peer) => ({ type: 'neighborUp', peer }),
  neighborDown: (peer) => ({ type: 'neighborDown', peer }),
  // Plumtree's periodic anti-entropy tick never quiesces either.
  isBackgroundTimer: (t) => (t as PtTimer).type === 'pt.aeTick' || hyparviewAdapter.isBackgroundTimer!(t),
};

export type PlumtreeNetwork = Network<PtHostIn, PtHostOut, PlumtreeNode>;

export function createPlumtreeNetwork(config: Partial<NetworkConfig> & { seed: number }): PlumtreeNetwork {
  return new Network<PtHostIn, PtHostOut, PlumtreeNode>(plumtreeAdapter, config);
}

/**
 * Latencies of the small 'fixed' overlays of the Plumtree and membership tests: links of
 * 5-40 ms with up to 3 ms of jitter per message, relays at about twice the slowest link.
 */
export const FIXED_OVERLAY: Partial<NetworkConfig> = {
  links: 'fixed',
  linkLatency: { min: 5, max: 40 },
  jitter: { min: 0, max: 3 },
  relayLatency: { min: 80, max: 83 },
};

/** Counts every node of a Plumtree network reports: payload sends, deliveries, last delivery hops. */
export class PtTally implements BroadcastSink {
  /** Payload (GOSSIP) sends per message id. */
  readonly payloadSends = new Map<string, number>();
  /** Deliveries per message id per node: id -> node -> count. */
  readonly deliveries = new Map<string, Map<NodeId, number>>();
  /** Largest hop count seen per message id (its last delivery hop). */
  readonly ldh = new Map<string, number>();

  deliver(node: PlumtreeNode, d: PtDeliver): void {
    let per = this.deliveries.get(d.id);
    if (!per) this.deliveries.set(d.id, (per = new Map()));
    per.set(node.id, (per.get(node.id) ?? 0) + 1);
    this.ldh.set(d.id, Math.max(this.ldh.get(d.id) ?? 0, d.hops));
  }

  payloadSent(id: string): void {
    this.payloadSends.set(id, (this.payloadSends.get(id) ?? 0) + 1);
  }
}

/** Plumtree alone on a 'fixed' overlay, validating what it receives (the Plumtree property tests). */
export function ptNode(id: NodeId, seed: number, sink: BroadcastSink, config: Partial<PlumtreeConfig> = {}): PlumtreeNode {
  return new PlumtreeNode(id, { plumtree: config, plumtreeRng: new SeededRng(`${id}/${seed}`), sink, validate: true });
}

/** Membership over Plumtree on a 'fixed' overlay, validating what it receives (the membership property tests). */
export function memberNode(id: NodeId, seed: number, config: Partial<MembershipConfig> = {}, plumtree: Partial<PlumtreeConfig> = {}): PlumtreeNode {
  return new PlumtreeNode(id, {
    plumtree,
    plumtreeRng: new SeededRng(`pt/${id}/${seed}`),
    membership: { config, rng: new SeededRng(`mem/${id}/${seed}`) },
    validate: true,
  });
}

/**
 * HyParView + Plumtree (the broadcast scenario). Each protocol has its own Rng,
 * HyParView the one it has in the HyParView-only simulation, so a seed builds the same
 * overlay whether Plumtree runs or not.
 */
export function hpvPtNode(
  id: NodeId,
  index: number,
  seed: number,
  config: { hyparview?: Partial<HyParViewConfig>; plumtree?: Partial<PlumtreeConfig> },
  sink: BroadcastSink | null,
): PlumtreeNode {
  return new PlumtreeNode(id, {
    index,
    hyparview: { config: config.hyparview, rng: nodeRng(seed, id) },
    plumtree: config.plumtree,
    plumtreeRng: nodeRng(seed, `${id}/plumtree`),
    sink,
  });
}
