import type { NodeId } from '../types';
import { SeededRng } from '../rng';
import { Plumtree, type PlumtreeConfig, type PtIn, type PtOut } from '../plumtree/plumtree';
import { validatePlumtreeMessage, type PtMessage } from '../plumtree/messages';
import type { TestNet, TestNode } from '../plumtree/testnet';
import { Membership, type MemberIn, type MemberOut, type MembershipConfig } from './membership';
import { MEMBER_KIND, validateMemberMessage, type MemberMessage } from './messages';

/**
 * A test-network node running Membership over Plumtree, wired as the runtime will:
 * HyParView events go to both, Plumtree deliveries of kind 'member' go to Membership,
 * Membership broadcasts go out through Plumtree, and the active view is reported to
 * Membership as a `local` change.
 */
export class MemberNode implements TestNode {
  readonly pt: Plumtree;
  readonly mem: Membership;
  invalid = 0;
  /** Times at which our live set changed (for convergence timing). */
  lastChange = 0;

  constructor(
    private readonly net: TestNet<MemberNode>,
    readonly id: NodeId,
    seed: number,
    memberConfig: Partial<MembershipConfig> = {},
    ptConfig: Partial<PlumtreeConfig> = {},
  ) {
    this.pt = new Plumtree(id, ptConfig, new SeededRng(`pt/${id}/${seed}`));
    this.mem = new Membership(id, memberConfig, new SeededRng(`mem/${id}/${seed}`));
  }

  start(nick = this.id): void {
    this.toMem({ type: 'start', nick });
  }

  toPt(input: PtIn): void {
    const out: PtOut[] = [];
    this.pt.handle(input, this.net.now, out);
    for (const e of out) {
      if (e.type === 'send') this.net.send(this.id, e.to, e.msg, e.transient);
      else if (e.type === 'timer') {
        const timer = e.timer;
        this.net.timer(this, e.delayMs, () => this.toPt({ type: 'timer', timer }));
      } else if (e.type === 'event' && e.event.kind === MEMBER_KIND) this.toMem({ type: 'deliver', origin: e.event.origin, id: e.event.id, data: e.event.data });
    }
  }

  toMem(input: MemberIn): void {
    const out: MemberOut[] = [];
    this.mem.handle(input, this.net.now, out);
    for (const e of out) {
      switch (e.type) {
        case 'send':
          this.net.send(this.id, e.to, e.msg, e.transient);
          break;
        case 'timer': {
          const timer = e.timer;
          this.net.timer(this, e.delayMs, () => this.toMem({ type: 'timer', timer }));
          break;
        }
        case 'event':
          if (e.event.type === 'broadcast') this.toPt({ type: 'broadcast', kind: MEMBER_KIND, data: e.event.data });
          // Live set changes only: `updated` alone (a member's nick or view) is not convergence.
          else if (e.event.type === 'changed' && (e.event.joined.length > 0 || e.event.left.length > 0)) this.lastChange = this.net.now;
          break;
      }
    }
  }

  receive(from: NodeId, msg: unknown): void {
    if (validatePlumtreeMessage(msg) === null) this.toPt({ type: 'message', from, msg: msg as PtMessage });
    else if (validateMemberMessage(msg) === null) this.toMem({ type: 'message', from, msg: msg as MemberMessage });
    else this.invalid++;
  }

  neighborUp(peer: NodeId): void {
    this.toPt({ type: 'neighborUp', peer });
    this.toMem({ type: 'neighborUp', peer });
    this.toMem({ type: 'local', active: this.net.neighbors(this.id) });
  }

  neighborDown(peer: NodeId): void {
    this.toPt({ type: 'neighborDown', peer });
    this.toMem({ type: 'neighborDown', peer });
    this.toMem({ type: 'local', active: this.net.neighbors(this.id) });
  }
}
