import { describe, expect, it } from 'vitest';
import type { NodeId } from '../core/types';
import { Network, type Adapter, type SimNode } from './network';

/** A scripted node: 'do' inputs make it emit the given effects; it logs every input. */
type In =
  | { type: 'message'; from: NodeId; msg: unknown }
  | { type: 'timer'; timer: unknown }
  | { type: 'linkDown'; peer: NodeId }
  | { type: 'announce'; from: NodeId; clients: number; known: boolean; isolated: boolean }
  | { type: 'do'; effects: Out[] };
type Out =
  | { type: 'send'; to: NodeId; msg: unknown; transient?: boolean }
  | { type: 'timer'; delayMs: number; timer: unknown }
  | { type: 'disconnect'; peer: NodeId }
  | { type: 'announce' }
  | { type: 'event'; event: { type: 'announce'; isolated?: boolean } | { type: 'neighborUp'; peer: NodeId } }
  | { type: 'note'; text: string };

class Scripted implements SimNode<In, Out> {
  log: { at: number; input: In }[] = [];
  peers: NodeId[] = [];
  constructor(private readonly react?: (input: In, out: Out[]) => void) {}
  handle(input: In, now: number, out: Out[]): void {
    this.log.push({ at: now, input });
    if (input.type === 'do') out.push(...input.effects);
    this.react?.(input, out);
  }
  activeView(): NodeId[] {
    return this.peers;
  }
  received(): unknown[] {
    return this.log.flatMap((l) => (l.input.type === 'message' ? [l.input.msg] : []));
  }
  downs(): { at: number; peer: NodeId }[] {
    return this.log.flatMap((l) => (l.input.type === 'linkDown' ? [{ at: l.at, peer: l.input.peer }] : []));
  }
}

const notes: string[] = [];
const stack: Adapter<In, Out, Scripted> = {
  message: (from, msg) => ({ type: 'message', from, msg }),
  timer: (timer) => ({ type: 'timer', timer }),
  linkDown: (peer) => ({ type: 'linkDown', peer }),
  announce: (from, clients, known, isolated) => ({ type: 'announce', from, clients, known, isolated }),
  isBackgroundTimer: (t) => t === 'periodic',
  onEffect: (node, e) => {
    if (e.type === 'note') notes.push(`${node}:${e.text}`);
    if (e.type === 'event') notes.push(`${node}:event ${e.event.type}`);
  },
};

const fixed = { linkLatency: 10, relayLatency: 50, dialDelay: 100, dialFailDelay: 3_000, detectDelay: 4_000, signalingLatency: 20 };

function net(nodes: string[], config: Record<string, unknown> = {}) {
  const n = new Network<In, Out, Scripted>(stack, { seed: 7, ...fixed, ...config });
  const map = new Map<string, Scripted>();
  for (const id of nodes) {
    const s = new Scripted();
    n.add(id, s);
    map.set(id, s);
  }
  const act = (id: string, ...effects: Out[]) => n.input(id, { type: 'do', effects });
  return { n, node: (id: string) => map.get(id)!, act };
}

describe('Network links', () => {
  it('dials on the first send, then delivers in FIFO order after dial delay and latency', () => {
    const { n, node, act } = net(['a', 'b']);
    act('a', ...Array.from({ length: 20 }, (_, i) => ({ type: 'send' as const, to: 'b', msg: i })));
    n.runFor(1_000);
    act('a', { type: 'send', to: 'b', msg: 'late' });
    n.runFor(1_000);
    const got = node('b').log.filter((l) => l.input.type === 'message');
    expect(got.map((l) => (l.input as { msg: unknown }).msg)).toEqual([...Array.from({ length: 20 }, (_, i) => i), 'late']);
    expect(got[0]!.at).toBe(110);
    expect(got[20]!.at).toBe(1_010);
    expect(n.openLinks()).toEqual([['a', 'b']]);
    expect(n.stats.dials).toBe(1);
  });

  it('a transient send without a link is relayed and opens nothing; with a link it uses the link', () => {
    const { n, node, act } = net(['a', 'b']);
    act('a', { type: 'send', to: 'b', msg: 'r', transient: true });
    n.runFor(1_000);
    expect(node('b').log.find((l) => l.input.type === 'message')!.at).toBe(50);
    expect(n.openLinks()).toEqual([]);
    expect(n.stats.relayed).toBe(1);
    act('a', { type: 'send', to: 'b', msg: 'open' });
    n.runFor(1_000);
    act('b', { type: 'send', to: 'a', msg: 'back', transient: true });
    n.runFor(1_000);
    expect(node('a').log.find((l) => l.input.type === 'message')!.at).toBe(2_010);
    expect(n.stats.relayed).toBe(1);
  });

  it('disconnect: the peer gets linkDown after what was sent before; its later sends are dropped', () => {
    const { n, node, act } = net(['a', 'b']);
    act('a', { type: 'send', to: 'b', msg: 1 });
    n.runFor(1_000);
    act('a', { type: 'send', to: 'b', msg: 'bye' }, { type: 'disconnect', peer: 'b' });
    act('b', { type: 'send', to: 'a', msg: 'crossing' });
    n.runFor(1_000);
    expect(node('b').received()).toEqual([1, 'bye']);
    expect(node('b').downs()).toEqual([{ at: 1_010, peer: 'a' }]);
    expect(node('b').log.findIndex((l) => l.input.type === 'linkDown')).toBeGreaterThan(node('b').log.findIndex((l) => l.input.type === 'message' && l.input.msg === 'bye'));
    expect(node('a').received()).toEqual([]);
    expect(node('a').downs()).toEqual([]);
    expect(n.openLinks()).toEqual([]);
  });

  it('a dial to a dead node fails with linkDown after dialFailDelay', () => {
    const { n, node, act } = net(['a', 'b']);
    n.crash('b');
    act('a', { type: 'send', to: 'b', msg: 1 }, { type: 'send', to: 'b', msg: 2 });
    n.runFor(10_000);
    expect(node('a').downs()).toEqual([{ at: 3_000, peer: 'b' }]);
    expect(node('b').log).toEqual([]);
    expect(n.stats.dialFailures).toBe(1);
  });

  it('a crash is noticed after detectDelay by every peer holding a link', () => {
    const { n, node, act } = net(['a', 'b', 'c']);
    act('a', { type: 'send', to: 'b', msg: 1 }, { type: 'send', to: 'c', msg: 1 });
    n.runFor(1_000);
    n.crash('a');
    act('b', { type: 'send', to: 'a', msg: 'lost' });
    n.runFor(10_000);
    expect(node('b').downs()).toEqual([{ at: 5_000, peer: 'a' }]);
    expect(node('c').downs()).toEqual([{ at: 5_000, peer: 'a' }]);
    expect(node('a').received()).toEqual([]);
    expect(n.liveIds()).toEqual(['b', 'c']);
  });

  it('leave: the node handles its leave input, then its links close gracefully', () => {
    const { n, node, act } = net(['a', 'b']);
    act('a', { type: 'send', to: 'b', msg: 1 });
    n.runFor(1_000);
    n.leave('a', { type: 'do', effects: [{ type: 'send', to: 'b', msg: 'goodbye' }] });
    n.runFor(1_000);
    expect(node('b').received()).toEqual([1, 'goodbye']);
    expect(node('b').downs()).toEqual([{ at: 1_010, peer: 'a' }]);
    expect(n.isAlive('a')).toBe(false);
  });

  it('message loss drops messages but still counts them as sent', () => {
    const { n, node, act } = net(['a', 'b'], { lossRate: 1 });
    act('a', { type: 'send', to: 'b', msg: 1 }, { type: 'send', to: 'b', msg: 2, transient: true });
    n.runFor(1_000);
    expect(node('b').received()).toEqual([]);
    expect(n.stats.sent).toBe(2);
    expect(n.stats.dropped).toBe(2);
  });

  it('a partition cuts links, relays, dials and announces until healed', () => {
    const { n, node, act } = net(['a', 'b', 'c']);
    act('a', { type: 'send', to: 'b', msg: 1 });
    n.runFor(1_000);
    n.partition([['a'], ['b', 'c']]);
    act('a', { type: 'send', to: 'b', msg: 'cut' }, { type: 'send', to: 'c', msg: 'dial' }, { type: 'send', to: 'c', msg: 'relay', transient: true });
    act('b', { type: 'announce' });
    n.runFor(10_000);
    expect(node('a').downs().map((d) => d.peer).sort()).toEqual(['b', 'c']);
    expect(node('b').downs().map((d) => d.peer)).toEqual(['a']);
    expect(node('b').received()).toEqual([1]);
    expect(node('c').received()).toEqual([]);
    expect(node('a').log.some((l) => l.input.type === 'announce')).toBe(false);
    const heard = node('c').log.find((l) => l.input.type === 'announce')!.input;
    expect(heard).toMatchObject({ from: 'b', clients: 2 });
    n.heal();
    act('a', { type: 'send', to: 'c', msg: 'again' });
    n.runFor(1_000);
    expect(node('c').received()).toEqual(['again']);
  });
});

describe('Network timers, announces and effects', () => {
  it('timers fire after their delay; other effects go to onEffect', () => {
    notes.length = 0;
    const { n, node, act } = net(['a']);
    act('a', { type: 'timer', delayMs: 250, timer: 't1' }, { type: 'note', text: 'hi' });
    n.runFor(1_000);
    expect(node('a').log.filter((l) => l.input.type === 'timer')).toEqual([{ at: 250, input: { type: 'timer', timer: 't1' } }]);
    expect(notes).toEqual(['a:hi']);
  });

  it('settle() holds background timers until in-flight work is done, then resumes them with their remaining delay', () => {
    const { n, node, act } = net(['a', 'b']);
    act('a', { type: 'timer', delayMs: 100, timer: 'periodic' }, { type: 'timer', delayMs: 3_000, timer: 'oneshot' });
    n.runFor(50);
    expect(n.settle()).toBe(true);
    expect(n.now).toBe(3_000);
    expect(node('a').log.filter((l) => l.input.type === 'timer').map((l) => l.input)).toEqual([{ type: 'timer', timer: 'oneshot' }]);
    n.runFor(1_000);
    const periodic = node('a').log.find((l) => l.input.type === 'timer' && l.input.timer === 'periodic')!;
    expect(periodic.at).toBe(3_050);
  });

  it('announce reaches every live node, the announcer too, with clients, known and isolated', () => {
    const { n, node, act } = net(['a', 'b', 'c', 'd']);
    node('a').peers = ['b'];
    node('b').peers = ['a'];
    n.crash('d');
    act('a', { type: 'announce' });
    n.runFor(100);
    const heard = (id: string) => node(id).log.find((l) => l.input.type === 'announce')?.input;
    expect(heard('a')).toEqual({ type: 'announce', from: 'a', clients: 3, known: true, isolated: false });
    expect(heard('b')).toEqual({ type: 'announce', from: 'a', clients: 3, known: true, isolated: false });
    expect(heard('c')).toEqual({ type: 'announce', from: 'a', clients: 3, known: false, isolated: false });
    expect(heard('d')).toBeUndefined();
  });

  it('an announce event (as HyParView emits it) is published like an announce effect; other events go to onEffect', () => {
    notes.length = 0;
    const { n, node, act } = net(['a', 'b']);
    act('a', { type: 'event', event: { type: 'announce' } }, { type: 'event', event: { type: 'neighborUp', peer: 'b' } });
    act('b', { type: 'event', event: { type: 'announce', isolated: true } });
    n.runFor(100);
    const heard = (id: string) => node(id).log.filter((l) => l.input.type === 'announce').map((l) => l.input);
    expect(heard('b')).toEqual([
      { type: 'announce', from: 'a', clients: 2, known: false, isolated: true },
      { type: 'announce', from: 'b', clients: 2, known: true, isolated: true },
    ]);
    expect(n.stats.announces).toBe(2);
    expect(notes).toEqual(['a:event neighborUp']);
  });

  it('charges messages to the cause of the input they descend from, not to background timers', () => {
    const s = new Network<In, Out, Scripted>(stack, { seed: 1, ...fixed });
    const relay = (to: string) => (input: In, out: Out[]) => {
      if (input.type === 'message' && input.msg === 'ping') out.push({ type: 'send', to, msg: 'pong' });
      if (input.type === 'timer' && input.timer === 'periodic') out.push({ type: 'send', to, msg: 'bg' });
    };
    s.add('a', new Scripted(relay('b')));
    s.add('b', new Scripted(relay('a')));
    s.input('a', { type: 'do', effects: [{ type: 'send', to: 'b', msg: 'ping' }, { type: 'timer', delayMs: 10, timer: 'periodic' }] }, { cause: 5 });
    s.runFor(1_000);
    expect(s.messagesCausedBy(5)).toBe(2);
    expect(s.messagesCausedBy(0)).toBe(1);
  });
});

describe('Network determinism', () => {
  function trace(seed: number): string {
    const n = new Network<In, Out, Scripted>(stack, { seed });
    const ids = ['a', 'b', 'c', 'd', 'e'];
    const nodes = ids.map((id) => {
      const s = new Scripted((input, out) => {
        if (input.type === 'message' && typeof input.msg === 'number' && input.msg < 30) {
          out.push({ type: 'send', to: ids[(input.msg * 7) % 5]!, msg: input.msg + 1, transient: input.msg % 3 === 0 });
        }
      });
      n.add(id, s);
      return s;
    });
    n.input('a', { type: 'do', effects: [{ type: 'send', to: 'b', msg: 0 }, { type: 'send', to: 'c', msg: 1 }] });
    n.runFor(60_000);
    return JSON.stringify(nodes.map((s) => s.log));
  }

  it('the same seed replays exactly; another seed differs', () => {
    expect(trace(3)).toBe(trace(3));
    expect(trace(3)).not.toBe(trace(4));
  });
});
