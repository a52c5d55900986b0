import { describe, expect, it } from 'vitest';
import { SeededRng } from '../rng';
import type { NodeId } from '../types';
import { HyParView, type HpvIn, type HpvOut, type HpvTimer } from './hyparview';
import type { HyParViewConfig } from './config';
import type { HpvMessage } from './messages';

function make(config: Partial<HyParViewConfig> = {}, seed = 1, id = 'me'): HyParView {
  return new HyParView(id, config, new SeededRng(seed));
}

function step(h: HyParView, input: HpvIn, now = 0): HpvOut[] {
  const out: HpvOut[] = [];
  h.handle(input, now, out);
  return out;
}

const msg = (h: HyParView, from: NodeId, m: HpvMessage, now = 0) => step(h, { type: 'message', from, msg: m }, now);

type Sent = { to: NodeId; msg: HpvMessage; transient?: boolean };
function sends(out: HpvOut[], type?: HpvMessage['type']): Sent[] {
  return out.filter((e): e is Extract<HpvOut, { type: 'send' }> => e.type === 'send' && (!type || e.msg.type === type));
}
const disconnects = (out: HpvOut[]) => out.flatMap((e) => (e.type === 'disconnect' ? [e.peer] : []));
const ups = (out: HpvOut[]) => out.flatMap((e) => (e.type === 'event' && e.event.type === 'neighborUp' ? [e.event.peer] : []));
const downs = (out: HpvOut[]) => out.flatMap((e) => (e.type === 'event' && e.event.type === 'neighborDown' ? [e.event.peer] : []));
const isAnnounce = (e: HpvOut) => e.type === 'event' && e.event.type === 'announce';
const timers = (out: HpvOut[]) => out.flatMap((e) => (e.type === 'timer' ? [e] : []));

/** Put peers in the active view the way a peer does it: its high priority NEIGHBOR. */
function connect(h: HyParView, peers: NodeId[]): void {
  for (const p of peers) msg(h, p, { type: 'hpv.neighbor', priority: 'high' });
}

/** Fill the passive view through a shuffle reply. */
function learn(h: HyParView, peers: NodeId[]): void {
  msg(h, 'x', { type: 'hpv.shuffleReply', nodes: peers });
}

function requestTimer(out: HpvOut[], peer: NodeId): HpvTimer {
  const t = timers(out).find((e) => e.timer.type === 'hpv.request' && e.timer.peer === peer);
  if (!t) throw new Error(`no request timer for ${peer}`);
  return t.timer;
}

describe('HyParView join', () => {
  it('sends JOIN to the contact and adds it only on its accepting reply', () => {
    const h = make();
    const out = step(h, { type: 'join', contact: 'c' });
    expect(sends(out, 'hpv.join')).toEqual([{ type: 'send', to: 'c', msg: { type: 'hpv.join' } }]);
    expect(requestTimer(out, 'c')).toMatchObject({ type: 'hpv.request', peer: 'c' });
    expect(h.activeView()).toEqual([]);
    const reply = msg(h, 'c', { type: 'hpv.neighborReply', accept: true });
    expect(ups(reply)).toEqual(['c']);
    expect(h.activeView()).toEqual(['c']);
  });

  it('contact adds the joiner, accepts, and sends FORWARD_JOIN(arwl) to every other neighbour', () => {
    const h = make({ arwl: 6 });
    connect(h, ['a', 'b']);
    const out = msg(h, 'j', { type: 'hpv.join' });
    expect(h.activeView().sort()).toEqual(['a', 'b', 'j']);
    expect(sends(out, 'hpv.neighborReply')).toEqual([{ type: 'send', to: 'j', msg: { type: 'hpv.neighborReply', accept: true } }]);
    const fj = sends(out, 'hpv.forwardJoin');
    expect(fj.map((s) => s.to).sort()).toEqual(['a', 'b']);
    for (const s of fj) expect(s.msg).toEqual({ type: 'hpv.forwardJoin', node: 'j', ttl: 6 });
  });

  it('a full contact drops a random neighbour with DISCONNECT(alive) and keeps it passive', () => {
    const h = make({ activeSize: 3 });
    connect(h, ['a', 'b', 'c']);
    const out = msg(h, 'j', { type: 'hpv.join' });
    expect(h.activeView()).toHaveLength(3);
    expect(h.activeView()).toContain('j');
    const [victim] = downs(out);
    expect(victim).toBeDefined();
    expect(sends(out, 'hpv.disconnect')).toEqual([{ type: 'send', to: victim, msg: { type: 'hpv.disconnect', alive: true } }]);
    expect(disconnects(out)).toEqual([victim]);
    expect(h.passiveView()).toContain(victim);
  });

  it('a JOIN that gets no reply fails over to the passive view and announces', () => {
    const h = make();
    step(h, { type: 'start' });
    learn(h, ['p']);
    const out = step(h, { type: 'join', contact: 'c' });
    const t = requestTimer(out, 'c');
    const after = step(h, { type: 'timer', timer: t }, 5_000);
    expect(disconnects(after)).toContain('c');
    expect(sends(after, 'hpv.neighbor')).toEqual([{ type: 'send', to: 'p', msg: { type: 'hpv.neighbor', priority: 'high' } }]);
    expect(after.some(isAnnounce)).toBe(true);
  });
});

describe('HyParView rejoin through previous neighbours', () => {
  it('a node started with contacts asks them at its first isolation check, and still announces', () => {
    const h = make({ activeSize: 3 });
    const start = step(h, { type: 'start', contacts: ['a', 'b', 'c', 'd', 'me'] });
    expect(h.passiveView().sort()).toEqual(['a', 'b', 'c', 'd']);
    const check = timers(start).find((t) => t.timer.type === 'hpv.isolation');
    expect(check?.delayMs).toBe(0);
    const out = step(h, { type: 'timer', timer: check!.timer });
    const asked = sends(out, 'hpv.neighbor');
    // one high priority request (the view is empty), low ones for the other free slots
    expect(asked).toHaveLength(3);
    expect(asked.filter((s) => s.msg.type === 'hpv.neighbor' && s.msg.priority === 'high')).toHaveLength(1);
    expect(out.some(isAnnounce)).toBe(true);
    // the first accepting contact makes it a member of the overlay again
    const to = asked[0]!.to;
    expect(ups(msg(h, to, { type: 'hpv.neighborReply', accept: true }))).toEqual([to]);
    expect(h.activeView()).toEqual([to]);
  });

  it('a contact that is gone times out and leaves the passive view', () => {
    const h = make({ activeSize: 1 });
    const start = step(h, { type: 'start', contacts: ['gone'] });
    const out = step(h, { type: 'timer', timer: timers(start).find((t) => t.timer.type === 'hpv.isolation')!.timer });
    expect(sends(out, 'hpv.neighbor').map((s) => s.to)).toEqual(['gone']);
    step(h, { type: 'timer', timer: requestTimer(out, 'gone') }, 5_000);
    expect(h.passiveView()).not.toContain('gone');
  });
});

describe('HyParView FORWARD_JOIN walk', () => {
  it('ends at ttl 0: NEIGHBOR(high) to the joiner, added only after it accepts', () => {
    const h = make();
    connect(h, ['a', 'b', 'c']);
    const out = msg(h, 'a', { type: 'hpv.forwardJoin', node: 'j', ttl: 0 });
    expect(sends(out)).toEqual([{ type: 'send', to: 'j', msg: { type: 'hpv.neighbor', priority: 'high' } }]);
    expect(h.activeView()).not.toContain('j');
    expect(ups(msg(h, 'j', { type: 'hpv.neighborReply', accept: true }))).toEqual(['j']);
    expect(h.activeView()).toContain('j');
  });

  it('ends where the sender is the only neighbour', () => {
    const h = make();
    connect(h, ['a']);
    const out = msg(h, 'a', { type: 'hpv.forwardJoin', node: 'j', ttl: 5 });
    expect(sends(out).map((s) => [s.to, s.msg.type])).toEqual([['j', 'hpv.neighbor']]);
  });

  it('at ttl == prwl adds the joiner to the passive view and forwards with ttl - 1, never back to the sender', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const h = make({ prwl: 3 }, seed);
      connect(h, ['a', 'b', 'c']);
      const out = msg(h, 'a', { type: 'hpv.forwardJoin', node: 'j', ttl: 3 });
      const fwd = sends(out, 'hpv.forwardJoin');
      expect(fwd).toHaveLength(1);
      expect(['b', 'c']).toContain(fwd[0]!.to);
      expect(fwd[0]!.msg).toEqual({ type: 'hpv.forwardJoin', node: 'j', ttl: 2 });
      expect(h.passiveView()).toContain('j');
    }
  });

  it('elsewhere only forwards', () => {
    const h = make({ prwl: 3 });
    connect(h, ['a', 'b']);
    const out = msg(h, 'a', { type: 'hpv.forwardJoin', node: 'j', ttl: 5 });
    expect(sends(out)).toEqual([{ type: 'send', to: 'b', msg: { type: 'hpv.forwardJoin', node: 'j', ttl: 4 } }]);
    expect(h.passiveView()).not.toContain('j');
  });

  it('an end-point whose NEIGHBOR times out never adds the joiner and closes the dial', () => {
    const h = make();
    connect(h, ['a']);
    const out = msg(h, 'a', { type: 'hpv.forwardJoin', node: 'j', ttl: 0 });
    const after = step(h, { type: 'timer', timer: requestTimer(out, 'j') }, 5_000);
    expect(h.activeView()).toEqual(['a']);
    expect(disconnects(after)).toContain('j');
    expect(h.pendingRequests()).toEqual([]);
  });
});

describe('HyParView NEIGHBOR', () => {
  it('accepts a low priority request into a free slot', () => {
    const h = make();
    const out = msg(h, 'p', { type: 'hpv.neighbor', priority: 'low' });
    expect(h.activeView()).toEqual(['p']);
    expect(sends(out)).toEqual([{ type: 'send', to: 'p', msg: { type: 'hpv.neighborReply', accept: true } }]);
  });

  it('refuses a low priority request when full: transient reply, link closed, sender kept passive', () => {
    const h = make({ activeSize: 2 });
    connect(h, ['a', 'b']);
    const out = msg(h, 'p', { type: 'hpv.neighbor', priority: 'low' });
    expect(h.activeView().sort()).toEqual(['a', 'b']);
    expect(sends(out)).toEqual([{ type: 'send', to: 'p', msg: { type: 'hpv.neighborReply', accept: false }, transient: true }]);
    expect(disconnects(out)).toEqual(['p']);
    expect(h.passiveView()).toContain('p');
  });

  it('always accepts a high priority request, dropping a neighbour if full', () => {
    const h = make({ activeSize: 2 });
    connect(h, ['a', 'b']);
    const out = msg(h, 'p', { type: 'hpv.neighbor', priority: 'high' });
    expect(h.activeView()).toContain('p');
    expect(h.activeView()).toHaveLength(2);
    expect(downs(out)).toHaveLength(1);
  });

  it('a flood of high priority NEIGHBORs evicts at most evictionRate neighbours (no eclipse)', () => {
    const h = make({ activeSize: 5, evictionRate: { burst: 4, perSec: 0.2 } });
    const honest = ['a', 'b', 'c', 'd', 'e'];
    connect(h, honest);
    // 100 attacker ids ask within one second: 4 evictions, the rest refused as low priority
    for (let i = 0; i < 100; i++) msg(h, `x${i}`, { type: 'hpv.neighbor', priority: 'high' }, i * 10);
    expect(h.activeView().filter((p) => honest.includes(p)).length).toBeGreaterThanOrEqual(1);
    expect(h.stats()).toMatchObject({ evictions: 4, evictionsRateLimited: 96 });
    // the budget refills: one more eviction 5 s later, no more
    msg(h, 'y0', { type: 'hpv.neighbor', priority: 'high' }, 6_000);
    msg(h, 'y1', { type: 'hpv.neighbor', priority: 'high' }, 6_001);
    expect(h.stats()).toMatchObject({ evictions: 5, evictionsRateLimited: 97 });
    // a request into a free slot needs no token
    const c = make({ activeSize: 5, evictionRate: { burst: 0, perSec: 0 } });
    connect(c, ['a', 'b']);
    expect(c.activeView()).toEqual(['a', 'b']);
  });

  it('a refused request leaves the peer out, closes the link and cools the peer down', () => {
    const h = make();
    step(h, { type: 'start' });
    connect(h, ['a']);
    learn(h, ['p']);
    // The periodic top-up asks p (low: the view is not empty).
    const tick = step(h, { type: 'timer', timer: { type: 'hpv.shuffle' } }, 10);
    expect(sends(tick, 'hpv.neighbor')).toEqual([{ type: 'send', to: 'p', msg: { type: 'hpv.neighbor', priority: 'low' } }]);
    const out = msg(h, 'p', { type: 'hpv.neighborReply', accept: false }, 20);
    expect(h.activeView()).toEqual(['a']);
    expect(disconnects(out)).toEqual(['p']);
    expect(sends(out, 'hpv.neighbor')).toEqual([]);
    // Still cooling down on the next tick, so p is not asked again.
    const again = step(h, { type: 'timer', timer: { type: 'hpv.shuffle' } }, 1_000);
    expect(sends(again, 'hpv.neighbor')).toEqual([]);
  });

  it('each refusal in a row doubles the wait before the same peer is asked again', () => {
    const h = make({ rejectCooldownMs: 10_000 });
    step(h, { type: 'start' });
    connect(h, ['a']);
    learn(h, ['p']);
    const asksP = (now: number) => sends(step(h, { type: 'timer', timer: { type: 'hpv.shuffle' } }, now), 'hpv.neighbor').some((x) => x.to === 'p');
    expect(asksP(10)).toBe(true);
    msg(h, 'p', { type: 'hpv.neighborReply', accept: false }, 20); // 1st refusal: 10 s
    expect(asksP(10_000)).toBe(false);
    expect(asksP(10_030)).toBe(true);
    msg(h, 'p', { type: 'hpv.neighborReply', accept: false }, 10_040); // 2nd: 20 s
    expect(asksP(25_000)).toBe(false);
    expect(asksP(30_050)).toBe(true);
    msg(h, 'p', { type: 'hpv.neighborReply', accept: false }, 30_060); // 3rd: 40 s
    expect(asksP(60_000)).toBe(false);
    expect(asksP(70_070)).toBe(true);
    // accepted at last: the count starts again
    msg(h, 'p', { type: 'hpv.neighborReply', accept: true }, 70_080);
    expect(h.activeView()).toContain('p');
  });

  it('a reply to no request is not taken as a neighbour', () => {
    const h = make();
    const out = msg(h, 'p', { type: 'hpv.neighborReply', accept: true });
    expect(h.activeView()).toEqual([]);
    expect(disconnects(out)).toEqual(['p']);
  });

  it('crossed requests both end as neighbours', () => {
    const h = make();
    step(h, { type: 'start' });
    connect(h, ['a']);
    learn(h, ['p']);
    step(h, { type: 'timer', timer: { type: 'hpv.shuffle' } }, 10); // asks p
    const out = msg(h, 'p', { type: 'hpv.neighbor', priority: 'low' }, 20); // p asks us meanwhile
    expect(h.activeView()).toContain('p');
    expect(disconnects(out)).toEqual([]);
    msg(h, 'p', { type: 'hpv.neighborReply', accept: true }, 30);
    expect(h.activeView().filter((x) => x === 'p')).toHaveLength(1);
    expect(h.pendingRequests()).toEqual([]);
  });
});

describe('HyParView DISCONNECT and failures', () => {
  it('DISCONNECT(alive) moves the peer to the passive view and refills from another passive node', () => {
    const h = make();
    step(h, { type: 'start' });
    connect(h, ['a', 'b']);
    learn(h, ['p']);
    const out = msg(h, 'a', { type: 'hpv.disconnect', alive: true });
    expect(downs(out)).toEqual(['a']);
    expect(disconnects(out)).toContain('a');
    expect(h.activeView()).toEqual(['b']);
    expect(h.passiveView()).toContain('a');
    // a just dropped us: it is cooling down, so p is asked.
    expect(sends(out, 'hpv.neighbor')).toEqual([{ type: 'send', to: 'p', msg: { type: 'hpv.neighbor', priority: 'low' } }]);
  });

  it('DISCONNECT(not alive) forgets the peer', () => {
    const h = make();
    connect(h, ['a', 'b']);
    msg(h, 'a', { type: 'hpv.disconnect', alive: false });
    expect(h.passiveView()).not.toContain('a');
  });

  it('a failed neighbour is replaced with high priority when the view is empty', () => {
    const h = make();
    step(h, { type: 'start' });
    connect(h, ['a']);
    learn(h, ['p', 'q']);
    const out = step(h, { type: 'linkDown', peer: 'a' });
    expect(downs(out)).toEqual(['a']);
    expect(h.passiveView()).not.toContain('a');
    const asks = sends(out, 'hpv.neighbor');
    expect(asks.filter((s) => s.msg.type === 'hpv.neighbor' && s.msg.priority === 'high')).toHaveLength(1);
  });

  it('a failed neighbour is replaced with low priority otherwise', () => {
    const h = make();
    connect(h, ['a', 'b']);
    learn(h, ['p']);
    const out = step(h, { type: 'linkDown', peer: 'a' });
    expect(sends(out, 'hpv.neighbor')).toEqual([{ type: 'send', to: 'p', msg: { type: 'hpv.neighbor', priority: 'low' } }]);
  });

  it('a candidate that cannot be reached is dropped and the next passive node is tried', () => {
    const h = make({ activeSize: 2 });
    connect(h, ['a', 'b']);
    learn(h, ['p', 'q']);
    const first = step(h, { type: 'linkDown', peer: 'a' });
    const [asked] = sends(first, 'hpv.neighbor');
    const other = asked!.to === 'p' ? 'q' : 'p';
    const out = step(h, { type: 'linkDown', peer: asked!.to }); // the dial failed
    expect(h.passiveView()).not.toContain(asked!.to);
    expect(sends(out, 'hpv.neighbor').map((s) => s.to)).toEqual([other]);
  });

  it('a linkDown for a peer in no view is ignored (tail of a graceful close)', () => {
    const h = make();
    connect(h, ['a', 'b']);
    msg(h, 'a', { type: 'hpv.disconnect', alive: true });
    const out = step(h, { type: 'linkDown', peer: 'a' });
    expect(out).toEqual([]);
    expect(h.passiveView()).toContain('a');
  });

  it('walk traffic from a non-neighbour closes that stale link', () => {
    const h = make();
    connect(h, ['a', 'b']);
    const out = msg(h, 'z', { type: 'hpv.shuffle', origin: 'o', ttl: 1, nodes: ['o'] });
    expect(disconnects(out)).toEqual(['z']);
  });
});

describe('HyParView SHUFFLE', () => {
  it('the timer sends a sample of both views on a walk and re-arms itself', () => {
    const h = make({ shuffleActive: 3, shufflePassive: 4, shuffleTtl: 6 });
    step(h, { type: 'start' });
    connect(h, ['a', 'b', 'c', 'd', 'e']);
    learn(h, ['p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
    const out = step(h, { type: 'timer', timer: { type: 'hpv.shuffle' } }, 100);
    const [s] = sends(out, 'hpv.shuffle');
    expect(s).toBeDefined();
    const m = s!.msg as Extract<HpvMessage, { type: 'hpv.shuffle' }>;
    expect(m.origin).toBe('me');
    expect(m.ttl).toBe(6);
    expect(m.nodes[0]).toBe('me');
    expect(m.nodes).toHaveLength(1 + 3 + 4);
    expect(m.nodes).not.toContain(s!.to);
    expect(new Set(m.nodes).size).toBe(m.nodes.length);
    const next = timers(out).find((t) => t.timer.type === 'hpv.shuffle');
    expect(next!.delayMs).toBeGreaterThanOrEqual(5_000);
    expect(next!.delayMs).toBeLessThanOrEqual(15_000);
  });

  it('walks less often while replies bring nothing new (1 in 2, 4, 8, 16, then 32 periods), and every period again once an active peer is lost', () => {
    const h = make();
    step(h, { type: 'start' });
    connect(h, ['a', 'b', 'c']);
    learn(h, ['p1', 'p2']);
    let now = 0;
    const period = () => {
      now += 10_000;
      return sends(step(h, { type: 'timer', timer: { type: 'hpv.shuffle' } }, now), 'hpv.shuffle').length;
    };
    const walks: number[] = [];
    for (let i = 0; i < 128; i++) {
      const walked = period();
      walks.push(walked);
      // every reply names only nodes already in the views (a small cluster)
      if (walked) msg(h, 'a', { type: 'hpv.shuffleReply', nodes: ['b', 'p1'] }, now + 1);
    }
    expect(walks.flatMap((w, i) => (w ? [i] : []))).toEqual([0, 1, 3, 7, 15, 31, 63, 95, 127]);
    // an active peer lost: one walk per period again
    msg(h, 'c', { type: 'hpv.disconnect', alive: false }, now + 3);
    expect([period(), period()]).toEqual([1, 1]);
  });

  it('walks at the slowest rate from the start when its views hold as many ids as the server counts other clients', () => {
    const walksOver = (clients: number): number[] => {
      const h = make();
      step(h, { type: 'start' });
      connect(h, ['a', 'b', 'c']);
      learn(h, ['p1', 'p2']);
      step(h, { type: 'announce', from: 'a', clients, known: true, isolated: false });
      const walks: number[] = [];
      for (let i = 0, now = 0; i < 70; i++) {
        now += 10_000;
        if (sends(step(h, { type: 'timer', timer: { type: 'hpv.shuffle' } }, now), 'hpv.shuffle').length > 0) walks.push(i);
      }
      return walks;
    };
    // 6 clients: me and the 5 ids the views hold
    expect(walksOver(6)).toEqual([0, 32, 64]);
    // 50 clients: walks every period (no reply came back to say they teach nothing)
    expect(walksOver(50)).toHaveLength(70);
  });

  it('is forwarded while ttl lasts, to a neighbour other than sender and origin', () => {
    const h = make();
    connect(h, ['a', 'o', 'b']);
    const out = msg(h, 'a', { type: 'hpv.shuffle', origin: 'o', ttl: 4, nodes: ['o', 'x'] });
    expect(sends(out)).toEqual([{ type: 'send', to: 'b', msg: { type: 'hpv.shuffle', origin: 'o', ttl: 3, nodes: ['o', 'x'] } }]);
  });

  it('where it ends, the origin gets a transient reply of passive ids and the nodes enter the passive view', () => {
    const h = make();
    connect(h, ['a']);
    learn(h, ['p1', 'p2', 'p3']);
    const out = msg(h, 'a', { type: 'hpv.shuffle', origin: 'o', ttl: 1, nodes: ['o', 'x', 'y'] });
    const [r] = sends(out, 'hpv.shuffleReply');
    expect(r!.to).toBe('o');
    expect(r!.transient).toBe(true);
    const nodes = (r!.msg as Extract<HpvMessage, { type: 'hpv.shuffleReply' }>).nodes;
    expect(nodes).toHaveLength(3);
    for (const n of nodes) expect(['p1', 'p2', 'p3']).toContain(n);
    expect(h.passiveView()).toEqual(expect.arrayContaining(['o', 'x', 'y']));
  });

  it('the passive view stays bounded and never holds us or a neighbour', () => {
    const h = make({ passiveSize: 5 });
    connect(h, ['a']);
    learn(h, ['me', 'a', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7']);
    const pv = h.passiveView();
    expect(pv).toHaveLength(5);
    expect(pv).not.toContain('me');
    expect(pv).not.toContain('a');
  });
});

describe('HyParView bootstrap through signaling', () => {
  it('start without a join announces; with a join it does not', () => {
    const alone = make();
    const s = step(alone, { type: 'start' });
    const check = timers(s).find((t) => t.timer.type === 'hpv.isolation')!;
    expect(check.delayMs).toBe(0);
    expect(step(alone, { type: 'timer', timer: check.timer }).some(isAnnounce)).toBe(true);

    const joiner = make();
    const s2 = step(joiner, { type: 'start' });
    step(joiner, { type: 'join', contact: 'c' });
    const c2 = timers(s2).find((t) => t.timer.type === 'hpv.isolation')!;
    expect(step(joiner, { type: 'timer', timer: c2.timer }).some(isAnnounce)).toBe(false);
  });

  it('re-announces with backoff while isolated', () => {
    const h = make({ announceMinMs: 1_000, announceMaxMs: 5_000 });
    let out = step(h, { type: 'start' });
    const delays: number[] = [];
    let now = 0;
    for (let i = 0; i < 5; i++) {
      const t = timers(out).find((e) => e.timer.type === 'hpv.isolation')!;
      now += t.delayMs;
      out = step(h, { type: 'timer', timer: t.timer }, now);
      expect(out.some(isAnnounce)).toBe(true);
      delays.push(timers(out).find((e) => e.timer.type === 'hpv.isolation')!.delayMs);
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 5_000, 5_000]);
  });

  it('answers an isolated announcer with a transient welcome; in a large cluster only sometimes', () => {
    const h = make();
    connect(h, ['a']);
    const out = step(h, { type: 'announce', from: 'n', clients: 3, known: false, isolated: true });
    expect(sends(out)).toEqual([{ type: 'send', to: 'n', msg: { type: 'hpv.welcome', isolated: false, bridge: false, clients: 3 }, transient: true }]);
    let answers = 0;
    for (let i = 0; i < 1000; i++) {
      answers += sends(step(h, { type: 'announce', from: `n${i}`, clients: 300, known: false, isolated: true })).length;
    }
    expect(answers).toBeGreaterThan(0);
    expect(answers).toBeLessThan(30); // about 3/300 of 1000
  });

  it('an isolated node always answers in a small cluster', () => {
    const h = make();
    const out = step(h, { type: 'announce', from: 'n', clients: 12, known: false, isolated: true });
    expect(sends(out)[0]!.msg).toEqual({ type: 'hpv.welcome', isolated: true, bridge: true, clients: 12 });
  });

  it('does not answer a connected announcer it knows', () => {
    const h = make();
    connect(h, ['a']);
    expect(sends(step(h, { type: 'announce', from: 'n', clients: 5, known: true, isolated: false }))).toEqual([]);
  });

  it('the announcer joins its first connected welcomer; an isolated one only after the grace', () => {
    const h = make({ welcomeGraceMs: 300 });
    step(h, { type: 'start' });
    const a = msg(h, 'w1', { type: 'hpv.welcome', isolated: true, bridge: true, clients: 4 });
    expect(sends(a, 'hpv.join')).toEqual([]);
    const grace = timers(a).find((t) => t.timer.type === 'hpv.welcomeGrace')!;
    const b = msg(h, 'w2', { type: 'hpv.welcome', isolated: false, bridge: false, clients: 4 }, 100);
    expect(sends(b, 'hpv.join').map((s) => s.to)).toEqual(['w2']);
    // The grace timer finds a JOIN out and does nothing.
    expect(sends(step(h, { type: 'timer', timer: grace.timer }, 300))).toEqual([]);
  });

  it('lone nodes of a small cluster converge on the smallest welcomer id', () => {
    const h = make({ welcomeGraceMs: 300 });
    step(h, { type: 'start' });
    msg(h, 'w5', { type: 'hpv.welcome', isolated: true, bridge: true, clients: 4 });
    const a = msg(h, 'w2', { type: 'hpv.welcome', isolated: true, bridge: true, clients: 4 });
    msg(h, 'w9', { type: 'hpv.welcome', isolated: true, bridge: true, clients: 4 });
    void a;
    const out = step(h, { type: 'timer', timer: { type: 'hpv.welcomeGrace' } }, 300);
    expect(sends(out, 'hpv.join').map((s) => s.to)).toEqual(['w2']);
  });

  it('a connected node that hears a stranger announce answers with a bridge welcome, and the announcer bridges', () => {
    const hearer = make({}, 1, 'h');
    connect(hearer, ['a']);
    const out = step(hearer, { type: 'announce', from: 'x', clients: 8, known: false, isolated: false });
    expect(sends(out)).toEqual([{ type: 'send', to: 'x', msg: { type: 'hpv.welcome', isolated: false, bridge: true, clients: 8 }, transient: true }]);

    // The announcer, connected in its own island of a small cluster, checks for islands.
    const x = make({}, 2, 'x');
    const started = step(x, { type: 'start' });
    connect(x, ['b']);
    step(x, { type: 'announce', from: 'x', clients: 8, known: true, isolated: false }); // its own echo: learns clients
    const check = timers(started).find((t) => t.timer.type === 'hpv.isolation')!;
    const fired = step(x, { type: 'timer', timer: check.timer }, 10_000);
    expect(fired.some(isAnnounce)).toBe(true);
    const bridged = msg(x, 'h', { type: 'hpv.welcome', isolated: false, bridge: true, clients: 8 }, 10_100);
    expect(sends(bridged)).toEqual([{ type: 'send', to: 'h', msg: { type: 'hpv.neighbor', priority: 'high' } }]);
  });
});

describe('HyParView stats', () => {
  it('counts the views, our requests and their outcomes, refusals, evictions, failures, shuffles and welcomes', () => {
    const h = make({ activeSize: 2, passiveSize: 10 });
    step(h, { type: 'join', contact: 'c' });
    expect(h.stats()).toMatchObject({ active: 0, pending: 1, joinsSent: 1 });
    msg(h, 'c', { type: 'hpv.neighborReply', accept: true });
    connect(h, ['a']);
    learn(h, ['p', 'q']);
    expect(h.stats()).toMatchObject({ active: 2, passive: 2, pending: 0, requestsAccepted: 1, shuffleRepliesReceived: 1 });

    msg(h, 'l', { type: 'hpv.neighbor', priority: 'low' }); // full: refused
    msg(h, 'j', { type: 'hpv.join' }); // cannot be refused: a neighbour is dropped
    expect(h.stats()).toMatchObject({ active: 2, refusalsSent: 1, evictions: 1 });

    const [first] = h.activeView();
    const out = step(h, { type: 'linkDown', peer: first! });
    const asked = sends(out, 'hpv.neighbor').map((s) => s.to);
    expect(asked).toHaveLength(1);
    expect(h.stats()).toMatchObject({ active: 1, pending: 1, linkFailures: 1, neighborRequestsSent: 1 });
    msg(h, asked[0]!, { type: 'hpv.neighborReply', accept: false });
    // cooling down: the refuser and the neighbour dropped for the JOIN
    expect(h.stats()).toMatchObject({ pending: 0, requestsRefused: 1, coolingDown: 2 });

    step(h, { type: 'timer', timer: { type: 'hpv.shuffle' } });
    expect(h.stats().shufflesSent).toBe(1);
    expect(sends(step(h, { type: 'announce', from: 'n', clients: 3, known: false, isolated: true }), 'hpv.welcome')).toHaveLength(1);
    msg(h, 'w', { type: 'hpv.welcome', isolated: false, bridge: false, clients: 3 });
    expect(h.stats()).toMatchObject({ welcomesSent: 1, welcomesReceived: 1 });
  });

  it('counts announces and request timeouts', () => {
    const h = make();
    const start = step(h, { type: 'start' });
    const check = timers(start).find((t) => t.timer.type === 'hpv.isolation')!;
    expect(step(h, { type: 'timer', timer: check.timer }).some(isAnnounce)).toBe(true);
    expect(h.stats().announces).toBe(1);
    const out = step(h, { type: 'join', contact: 'c' });
    step(h, { type: 'timer', timer: requestTimer(out, 'c') }, 5_000);
    expect(h.stats()).toMatchObject({ requestsTimedOut: 1, pending: 0 });
  });
});

describe('HyParView leave', () => {
  it('sends DISCONNECT(not alive) to every neighbour, closes every link and then ignores input', () => {
    const h = make();
    connect(h, ['a', 'b']);
    const out = step(h, { type: 'leave' });
    expect(sends(out).map((s) => [s.to, s.msg])).toEqual(
      expect.arrayContaining([
        ['a', { type: 'hpv.disconnect', alive: false }],
        ['b', { type: 'hpv.disconnect', alive: false }],
      ]),
    );
    expect(disconnects(out).sort()).toEqual(['a', 'b']);
    expect(downs(out).sort()).toEqual(['a', 'b']);
    expect(h.activeView()).toEqual([]);
    expect(step(h, { type: 'message', from: 'c', msg: { type: 'hpv.join' } })).toEqual([]);
  });
});

describe('HyParView invariants under random input', () => {
  const peers = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'me'];
  function randomMessage(rng: SeededRng): HpvMessage {
    const p = () => peers[Math.floor(rng.next() * peers.length)]!;
    const ids = () => Array.from({ length: Math.floor(rng.next() * 8) }, p);
    switch (Math.floor(rng.next() * 8)) {
      case 0: return { type: 'hpv.join' };
      case 1: return { type: 'hpv.forwardJoin', node: p(), ttl: Math.floor(rng.next() * 7) };
      case 2: return { type: 'hpv.neighbor', priority: rng.next() < 0.5 ? 'high' : 'low' };
      case 3: return { type: 'hpv.neighborReply', accept: rng.next() < 0.5 };
      case 4: return { type: 'hpv.disconnect', alive: rng.next() < 0.5 };
      case 5: return { type: 'hpv.shuffle', origin: p(), ttl: Math.floor(rng.next() * 7), nodes: ids() };
      case 6: return { type: 'hpv.shuffleReply', nodes: ids() };
      default: return { type: 'hpv.welcome', isolated: rng.next() < 0.5, bridge: rng.next() < 0.5, clients: 1 + Math.floor(rng.next() * 40) };
    }
  }

  it.each([1, 2, 3, 4, 5])('views stay bounded, disjoint and without us (seed %i)', (seed) => {
    const rng = new SeededRng(seed);
    const h = make({ activeSize: 3, passiveSize: 6 }, seed);
    const pendingTimers: HpvTimer[] = [];
    let now = 0;
    for (let i = 0; i < 2000; i++) {
      now += Math.floor(rng.next() * 500);
      const from = peers[Math.floor(rng.next() * (peers.length - 1))]!;
      const r = rng.next();
      let input: HpvIn;
      if (r < 0.75) input = { type: 'message', from, msg: randomMessage(rng) };
      else if (r < 0.85) input = { type: 'linkDown', peer: from };
      else if (r < 0.95 && pendingTimers.length > 0) input = { type: 'timer', timer: pendingTimers.splice(Math.floor(rng.next() * pendingTimers.length), 1)[0]! };
      else input = { type: 'announce', from, clients: 1 + Math.floor(rng.next() * 40), known: rng.next() < 0.5, isolated: rng.next() < 0.5 };
      if (i === 0) input = { type: 'start' };
      const out = step(h, input, now);
      for (const e of out) if (e.type === 'timer') pendingTimers.push(e.timer);
      const av = h.activeView();
      const pv = h.passiveView();
      const where = `seed ${seed}, step ${i}, input ${JSON.stringify(input)}`;
      expect(av.length, where).toBeLessThanOrEqual(3);
      expect(pv.length, where).toBeLessThanOrEqual(6);
      expect(new Set(av).size, where).toBe(av.length);
      expect(new Set(pv).size, where).toBe(pv.length);
      expect(av, where).not.toContain('me');
      expect(pv, where).not.toContain('me');
      for (const p of av) expect(pv, where).not.toContain(p);
      for (const e of out) if (e.type === 'send') expect(e.to, where).not.toBe('me');
      // neighborUp / neighborDown alternate per peer: no duplicate up without a down.
      for (const p of ups(out)) expect(av, where).toContain(p);
    }
  });
});
