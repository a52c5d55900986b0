import type { NodeId } from '../types';
import { SeededRng } from '../rng';
import { validatePlumtreeMessage } from './messages';
import { Plumtree, type PlumtreeConfig, type PtDeliver, type PtIn, type PtOut } from './plumtree';
import type { TestNet, TestNode } from './testnet';

/** Counters shared by all nodes of one test network. */
export class PtTally {
  /** Payload (GOSSIP) sends per message id. */
  readonly payloadSends = new Map<string, number>();
  /** Deliveries per message id per node: id -> node -> count. */
  readonly deliveries = new Map<string, Map<NodeId, number>>();
  /** Largest hop count seen per message id (its last delivery hop). */
  readonly ldh = new Map<string, number>();
  invalid = 0;
}

/** A test-network node running Plumtree alone (payload handlers plug in via onDeliver). */
export class PtNode implements TestNode {
  readonly pt: Plumtree;
  onDeliver?: (d: PtDeliver) => void;

  constructor(
    private readonly net: TestNet<PtNode>,
    readonly id: NodeId,
    private readonly tally: PtTally,
    config: Partial<PlumtreeConfig> = {},
    seed = 0,
  ) {
    this.pt = new Plumtree(id, config, new SeededRng(`${id}/${seed}`));
  }

  input(i: PtIn): void {
    const out: PtOut[] = [];
    this.pt.handle(i, this.net.now, out);
    for (const e of out) {
      if (e.type === 'send') {
        if (e.msg.type === 'pt.gossip') this.tally.payloadSends.set(e.msg.id, (this.tally.payloadSends.get(e.msg.id) ?? 0) + 1);
        this.net.send(this.id, e.to, e.msg, e.transient);
      } else if (e.type === 'timer') {
        const timer = e.timer;
        this.net.timer(this, e.delayMs, () => this.input({ type: 'timer', timer }));
      } else if (e.type === 'event') {
        const d = e.event;
        let per = this.tally.deliveries.get(d.id);
        if (!per) this.tally.deliveries.set(d.id, (per = new Map()));
        per.set(this.id, (per.get(this.id) ?? 0) + 1);
        this.tally.ldh.set(d.id, Math.max(this.tally.ldh.get(d.id) ?? 0, d.hops));
        this.onDeliver?.(d);
      }
    }
  }

  broadcast(kind: string, data: unknown): void {
    this.input({ type: 'broadcast', kind, data });
  }

  receive(from: NodeId, msg: unknown): void {
    if (validatePlumtreeMessage(msg) !== null) {
      this.tally.invalid++;
      return;
    }
    this.input({ type: 'message', from, msg: msg as never });
  }

  neighborUp(peer: NodeId): void {
    this.input({ type: 'neighborUp', peer });
  }

  neighborDown(peer: NodeId): void {
    this.input({ type: 'neighborDown', peer });
  }
}
