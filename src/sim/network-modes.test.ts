import { describe, expect, it } from 'vitest';
import type { NodeId } from '../core/types';
import type { ReplyEffect } from '../core/protocol';
import { Network, type Adapter, type NetworkConfig, type SimNode } from './network';

/**
 * The network's 'fixed' and 'mesh' link modes, the membership oracle, disks and
 * restarts, client requests, flush, loss, duplication, jitter, skew and blocked pairs,
 * on a scripted node ('do' inputs make it emit the given effects; it logs every input).
 */
type In =
  | { type: 'message'; from: NodeId; msg: unknown }
  | { type: 'timer'; timer: unknown }
  | { type: 'linkDown'; peer: NodeId }
  | { type: 'neighborUp'; peer: NodeId }
  | { type: 'neighborDown'; peer: NodeId }
  | { type: 'members'; ids: readonly NodeId[] }
  | { type: 'load'; records: unknown[] }
  | { type: 'ask'; req: number; what: string }
  | { type: 'flush' }
  | { type: 'do'; effects: Out[] };
type Out =
  | { type: 'send'; to: NodeId; msg: unknown; transient?: boolean }
  | { type: 'timer'; delayMs: number; timer: unknown }
  | { type: 'disconnect'; peer: NodeId }
  | ReplyEffect
  | { type: 'persist'; put: { k: string; v: number }[]; remove: string[] };

class Scripted implements SimNode<In, Out> {
  log: { at: number; input: In }[] = [];
  /** Writes held until `flush`. */
  held = 0;
  constructor(private readonly react?: (input: In, out: Out[], now: number) => void) {}
  handle(input: In, now: number, out: Out[]): void {
    this.log.push({ at: now, input });
    if (input.type === 'do') out.push(...input.effects);
    if (input.type === 'flush') this.held = 0;
    this.react?.(input, out, now);
  }
  inputs<T extends In['type']>(type: T): { at: number; input: Extract<In, { type: T }> }[] {
    return this.log.filter((l) => l.input.type === type) as { at: number; input: Extract<In, { type: T }> }[];
  }
  received(): unknown[] {
    return this.inputs('message').map((l) => l.input.msg);
  }
}

const adapter: Adapter<In, Out, Scripted, string> = {
  message: (from, msg) => ({ type: 'message', from, msg }),
  timer: (timer) => ({ type: 'timer', timer }),
  linkDown: (peer) => ({ type: 'linkDown', peer }),
  neighborUp: (peer) => ({ type: 'neighborUp', peer }),
  neighborDown: (peer) => ({ type: 'neighborDown', peer }),
  members: (ids) => ({ type: 'members', ids }),
  storageKey: (r) => (r as { k: string }).k,
  load: (records) => ({ type: 'load', records }),
  request: (req, what) => ({ type: 'ask', req, what }),
  flush: { pending: (n) => n.held > 0, input: { type: 'flush' } },
};

function build(config: Partial<NetworkConfig>, ids: string[], react?: (id: string) => (input: In, out: Out[], now: number) => void) {
  const net = new Network<In, Out, Scripted, string>(adapter, { seed: 3, linkLatency: 10, relayLatency: 50, detectDelay: 1_000, ...config }, (id) => new Scripted(react?.(id)));
  for (const id of ids) net.add(id);
  const node = (id: string) => net.node(id)!;
  const act = (id: string, ...effects: Out[]) => net.handle(id, { type: 'do', effects });
  return { net, node, act };
}

describe("'fixed' links", () => {
  it('link(): both ends hear neighborUp after the delay; sends use the link, a transient send without one is relayed, others are dropped', () => {
    const { net, node, act } = build({ links: 'fixed' }, ['a', 'b', 'c']);
    net.link('a', 'b', 5);
    net.runFor(100);
    expect(node('a').inputs('neighborUp')).toEqual([{ at: 5, input: { type: 'neighborUp', peer: 'b' } }]);
    expect(node('b').inputs('neighborUp')).toEqual([{ at: 5, input: { type: 'neighborUp', peer: 'a' } }]);
    expect(net.neighbors('a')).toEqual(['b']);
    act('a', { type: 'send', to: 'b', msg: 'linked' }, { type: 'send', to: 'c', msg: 'unlinked' }, { type: 'send', to: 'c', msg: 'relayed', transient: true });
    net.runFor(100);
    expect(node('b').inputs('message')).toEqual([{ at: 110, input: { type: 'message', from: 'a', msg: 'linked' } }]);
    expect(node('c').inputs('message')).toEqual([{ at: 150, input: { type: 'message', from: 'a', msg: 'relayed' } }]);
    expect(net.stats.dropped).toBe(1);
    expect(net.stats.relayed).toBe(1);
  });

  it('unlink(): what is in flight is lost; each end hears neighborDown after its own delay', () => {
    const { net, node, act } = build({ links: 'fixed' }, ['a', 'b']);
    net.link('a', 'b');
    net.runFor(1);
    act('a', { type: 'send', to: 'b', msg: 'in flight' });
    net.unlink('a', 'b', 3, 7);
    net.runFor(100);
    expect(node('b').received()).toEqual([]);
    expect(node('a').inputs('neighborDown')).toEqual([{ at: 4, input: { type: 'neighborDown', peer: 'b' } }]);
    expect(node('b').inputs('neighborDown')).toEqual([{ at: 8, input: { type: 'neighborDown', peer: 'a' } }]);
    expect(net.linked('a', 'b')).toBe(false);
  });

  it('a silent crash is noticed by nobody until detect(); then each peer hears neighborDown after its own delay', () => {
    const { net, node, act } = build({ links: 'fixed' }, ['a', 'b', 'c']);
    net.link('a', 'b');
    net.link('a', 'c');
    net.runFor(1);
    net.crash('a', { silent: true });
    act('b', { type: 'send', to: 'a', msg: 'to the dead' });
    net.runFor(10_000);
    expect(node('b').inputs('neighborDown')).toEqual([]);
    net.detect('a', { min: 200, max: 300 });
    net.runFor(1_000);
    for (const id of ['b', 'c']) {
      const downs = node(id).inputs('neighborDown');
      expect(downs.map((d) => d.input.peer)).toEqual(['a']);
      expect(downs[0]!.at - 10_001).toBeGreaterThanOrEqual(200);
      expect(downs[0]!.at - 10_001).toBeLessThan(300);
    }
    expect(node('a').received()).toEqual([]);
  });

  it('jitter keeps a link FIFO', () => {
    const { net, node, act } = build({ links: 'fixed', jitter: { min: 0, max: 50 } }, ['a', 'b']);
    net.link('a', 'b');
    act('a', ...Array.from({ length: 50 }, (_, i) => ({ type: 'send' as const, to: 'b', msg: i })));
    net.runFor(1_000);
    expect(node('b').received()).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const times = node('b').inputs('message').map((l) => l.at);
    expect(new Set(times).size).toBeGreaterThan(1);
  });
});

describe("'mesh' links", () => {
  it('every node reaches every other without a link; each message draws its own latency, so they may overtake', () => {
    const { net, node, act } = build({ links: 'mesh', linkLatency: { min: 1, max: 100 } }, ['a', 'b']);
    act('a', ...Array.from({ length: 50 }, (_, i) => ({ type: 'send' as const, to: 'b', msg: i })));
    net.runFor(1_000);
    const got = node('b').received() as number[];
    expect([...got].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(got).not.toEqual([...got].sort((x, y) => x - y));
    expect(net.openLinks()).toEqual([]);
  });

  it('block() and isolate() drop messages both ways until lifted; dropIf drops what it matches', () => {
    const { net, node, act } = build({ links: 'mesh' }, ['a', 'b', 'c']);
    net.block('a', 'b');
    act('a', { type: 'send', to: 'b', msg: 1 }, { type: 'send', to: 'c', msg: 2 });
    act('b', { type: 'send', to: 'a', msg: 3 });
    net.runFor(100);
    expect(node('b').received()).toEqual([]);
    expect(node('a').received()).toEqual([]);
    expect(node('c').received()).toEqual([2]);
    net.block('a', 'b', false);
    net.isolate('c');
    act('a', { type: 'send', to: 'b', msg: 4 }, { type: 'send', to: 'c', msg: 5 });
    net.runFor(100);
    expect(node('b').received()).toEqual([4]);
    expect(node('c').received()).toEqual([2]);
    net.isolate('c', false);
    net.dropIf = (_from, _to, msg) => msg === 'drop me';
    act('a', { type: 'send', to: 'c', msg: 'drop me' }, { type: 'send', to: 'c', msg: 'keep me' });
    net.runFor(100);
    expect(node('c').received()).toEqual([2, 'keep me']);
  });

  it('duplicateRate 1 delivers every message twice; lossRate 1 none', () => {
    const dup = build({ links: 'mesh', duplicateRate: 1 }, ['a', 'b']);
    dup.act('a', { type: 'send', to: 'b', msg: 'x' });
    dup.net.runFor(100);
    expect(dup.node('b').received()).toEqual(['x', 'x']);
    expect(dup.net.stats.duplicated).toBe(1);
    const lossy = build({ links: 'mesh', lossRate: 1, duplicateRate: 1 }, ['a', 'b']);
    lossy.act('a', { type: 'send', to: 'b', msg: 'x' });
    lossy.net.runFor(100);
    expect(lossy.node('b').received()).toEqual([]);
  });

  it('clockSkew: each node sees the time ahead by its own fixed offset', () => {
    const { net, node } = build({ links: 'mesh', clockSkew: 1_000, start: 5_000 }, ['a', 'b', 'c']);
    for (const id of ['a', 'b', 'c']) net.input(id, { type: 'do', effects: [] }, { delay: 10 });
    net.runFor(100);
    const seen = ['a', 'b', 'c'].map((id) => node(id).log[0]!.at - 5_010);
    for (const s of seen) expect(s).toBeGreaterThanOrEqual(0);
    for (const s of seen) expect(s).toBeLessThan(1_000);
    expect(new Set(seen).size).toBe(3);
  });
});

describe('the membership oracle', () => {
  it('a crash reaches every live node after its own detectDelay; a silent one only with detect()', () => {
    const { net, node } = build({ links: 'mesh', detectDelay: { min: 100, max: 900 } }, ['a', 'b', 'c', 'd']);
    for (const id of net.liveIds()) net.tellMembers(id);
    expect(node('a').inputs('members').map((m) => m.input.ids)).toEqual([['a', 'b', 'c', 'd']]);
    net.crash('d', { silent: true });
    net.runFor(5_000);
    expect(net.members()).toEqual(['a', 'b', 'c', 'd']);
    expect(node('a').inputs('members')).toHaveLength(1);
    net.detect('d');
    net.runFor(5_000);
    const heard = ['a', 'b', 'c'].map((id) => node(id).inputs('members'));
    for (const h of heard) expect(h.map((m) => m.input.ids)).toEqual([['a', 'b', 'c', 'd'], ['a', 'b', 'c']]);
    const at = heard.map((h) => h[1]!.at - 5_000);
    for (const t of at) expect(t).toBeGreaterThanOrEqual(100);
    expect(new Set(at).size).toBe(3);
    expect(node('d').inputs('members')).toHaveLength(1);
  });

  it('restart: the node comes back from its disk (records as persisted, later changes not), learns the members at once, the others later', () => {
    const { net, node, act } = build({ links: 'mesh' }, ['a', 'b']);
    const rec = { k: 'x', v: 1 };
    act('a', { type: 'persist', put: [rec, { k: 'y', v: 2 }], remove: [] }, { type: 'timer', delayMs: 500, timer: 'old life' });
    rec.v = 99;
    act('a', { type: 'persist', put: [], remove: ['y'] });
    net.crash('a');
    net.runFor(2_000);
    expect(net.members()).toEqual(['b']);
    const before = node('a');
    net.restart('a');
    expect(node('a')).not.toBe(before);
    expect(net.incarnation('a')).toBe(1);
    expect(node('a').log.map((l) => l.input)).toEqual([
      { type: 'load', records: [{ k: 'x', v: 1 }] },
      { type: 'members', ids: ['a', 'b'] },
    ]);
    expect(node('b').inputs('members')).toHaveLength(1);
    net.runFor(2_000);
    expect(node('b').inputs('members').map((m) => m.input.ids)).toEqual([['b'], ['a', 'b']]);
    expect(node('a').inputs('timer')).toEqual([]);
    net.restart('a', undefined, { wipe: true });
    expect(node('a').inputs('load')).toEqual([]);
  });
});

describe('requests, replies and flush', () => {
  const answering = (id: string) => (input: In, out: Out[]) => {
    if (input.type !== 'ask') return;
    if (input.what === 'now') out.push({ type: 'reply', req: input.req, ok: true, value: `${id} says now` });
    if (input.what === 'later') out.push({ type: 'timer', delayMs: 300, timer: { answer: input.req } });
    if (input.what === 'twice') out.push({ type: 'reply', req: input.req, ok: true }, { type: 'reply', req: input.req, ok: false, error: 'again' });
  };
  const timerReply = (input: In, out: Out[]) => {
    if (input.type === 'timer') out.push({ type: 'reply', req: (input.timer as { answer: number }).answer, ok: false, error: 'late' });
  };

  it('request() is handled at once, call() runs until the reply; onReply hears each reply from the queue', () => {
    const { net } = build({ links: 'mesh' }, ['a'], (id) => (input, out) => {
      answering(id)(input, out);
      timerReply(input, out);
    });
    const heard: string[] = [];
    net.onReply = (node, req, r) => heard.push(`${node}/${req}:${r.ok}`);
    const req = net.request('a', 'now');
    expect(net.reply('a', req)).toEqual({ type: 'reply', req, ok: true, value: 'a says now' });
    expect(heard).toEqual([]);
    expect(net.call('a', 'later')).toMatchObject({ ok: false, error: 'late' });
    expect(net.now).toBe(300);
    expect(heard).toEqual([`a/${req}:true`]);
    net.runFor(0);
    expect(heard).toEqual([`a/${req}:true`, `a/${req + 1}:false`]);
    expect(() => net.call('a', 'never', 1_000)).toThrow(/no reply within 1000 ms/);
    expect(() => net.request('a', 'twice')).toThrow(/answered request \d+ twice/);
  });

  it('flush follows, once, any input that leaves work held, after what is already queued at that instant', () => {
    const { net, node } = build({ links: 'mesh' }, ['a'], () => (input, _out) => {
      if (input.type === 'ask') node('a').held++;
    });
    net.input('a', { type: 'do', effects: [] });
    net.request('a', 'w1');
    net.request('a', 'w2');
    net.runFor(10);
    expect(node('a').log.map((l) => l.input.type)).toEqual(['ask', 'ask', 'do', 'flush']);
  });
});
