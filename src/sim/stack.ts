import type { NodeId } from '../core/types';
import { HyParView, type HpvIn, type HpvOut, type HyParViewConfig } from '../core/hyparview';
import { Plumtree, type PlumtreeConfig, type PtDeliver, type PtIn, type PtOut } from '../core/plumtree';
import { Network, type NetworkConfig, type SimNode, type SimStack } from './network';
import { hyparviewStack, nodeRng } from './hyparview';

/**
 * HyParView + Plumtree as one simulated node, wired as src/core/node.ts wires them in the
 * real node: HyParView's neighborUp/neighborDown events become Plumtree's neighbour
 * inputs (in the order HyParView emits them), its announce event and the two protocols'
 * sends and timers go out unchanged (the network runs them), and a `broadcast` input
 * originates a Plumtree broadcast. Membership, KVS and chat are left
 * out: this stack measures the overlay and the broadcast layer alone.
 *
 * Routing: a message or a timer goes to Plumtree if its `type` starts with 'pt.', else to
 * HyParView (the two protocols' type prefixes never overlap), so no wrapper objects are
 * allocated per message. Deliveries and payload (GOSSIP) sends are reported to a
 * BroadcastTally, if given, in the order Plumtree emits them.
 *
 * Each protocol gets its own Rng (HyParView the same one it gets in the HyParView-only
 * simulation, so the overlay a seed builds does not depend on whether Plumtree runs).
 */
export type StackIn = HpvIn | { type: 'broadcast'; kind: string; data: unknown };
export type StackOut = HpvOut | PtOut;

/** Counts a stack reports: deliveries (with their hop count) and payload sends. */
export interface BroadcastSink {
  deliver(node: number, d: PtDeliver, now: number): void;
  payloadSent(id: string): void;
}

// handle() is never re-entered (the network runs effects after it returns), and HyParView
// never calls back into itself: one buffer per protocol serves every node. Each call reads
// what it appended from its start index on; a buffer is emptied only once it grows
// (`length = 0` drops the backing store: an allocation per call otherwise).
const HPV_OUT: HpvOut[] = [];
const PT_OUT: PtOut[] = [];

export class StackNode implements SimNode<StackIn, StackOut> {
  readonly hyparview: HyParView;
  readonly plumtree: Plumtree;

  constructor(
    readonly id: NodeId,
    /** Index reported to the sink (dense, 0..N-1). */
    readonly index: number,
    seed: number,
    config: { hyparview?: Partial<HyParViewConfig>; plumtree?: Partial<PlumtreeConfig> },
    private readonly sink: BroadcastSink | null,
  ) {
    this.hyparview = new HyParView(id, config.hyparview ?? {}, nodeRng(seed, id));
    this.plumtree = new Plumtree(id, config.plumtree ?? {}, nodeRng(seed, `${id}/plumtree`));
  }

  activeView(): NodeId[] {
    return this.hyparview.activeView();
  }

  passiveView(): NodeId[] {
    return this.hyparview.passiveView();
  }

  handle(input: StackIn, now: number, out: StackOut[]): void {
    switch (input.type) {
      case 'message':
        if (isPt((input.msg as { type: string }).type)) this.toPt(input as unknown as PtIn, now, out);
        else this.toHpv(input, now, out);
        return;
      case 'timer':
        if (isPt((input.timer as { type: string }).type)) this.toPt(input as unknown as PtIn, now, out);
        else this.toHpv(input, now, out);
        return;
      case 'broadcast':
        this.toPt(input, now, out);
        return;
      default:
        this.toHpv(input, now, out);
    }
  }

  private toHpv(input: HpvIn, now: number, out: StackOut[]): void {
    const buf = HPV_OUT;
    const start = buf.length;
    this.hyparview.handle(input, now, buf);
    for (let k = start; k < buf.length; k++) {
      const e = buf[k]!;
      // The event { type: 'neighborUp' | 'neighborDown', peer } is also Plumtree's input shape.
      if (e.type === 'event' && e.event.type !== 'announce') this.toPt(e.event, now, out);
      else out.push(e);
    }
    if (buf.length > 1024) buf.length = 0;
  }

  private toPt(input: PtIn, now: number, out: StackOut[]): void {
    const buf = PT_OUT;
    const start = buf.length;
    this.plumtree.handle(input, now, buf);
    for (let k = start; k < buf.length; k++) {
      const e = buf[k]!;
      if (e.type === 'event') {
        this.sink?.deliver(this.index, e.event, now);
        continue;
      }
      if (e.type === 'send' && e.msg.type === 'pt.gossip') this.sink?.payloadSent(e.msg.id);
      out.push(e);
    }
    if (buf.length > 1024) buf.length = 0;
  }
}

function isPt(type: string): boolean {
  return type.charCodeAt(0) === 112 /* p */ && type.charCodeAt(1) === 116 /* t */ && type.charCodeAt(2) === 46; /* . */
}

/** The network side of the stack: HyParView's inputs and background timers (Plumtree's timers all quiesce). */
export const hpvPtStack: SimStack<StackIn, StackOut> = hyparviewStack as unknown as SimStack<StackIn, StackOut>;

export type StackNetwork = Network<StackIn, StackOut, StackNode>;

export function createStackNetwork(config: Partial<NetworkConfig> & { seed: number }): StackNetwork {
  return new Network<StackIn, StackOut, StackNode>(hpvPtStack, config);
}
