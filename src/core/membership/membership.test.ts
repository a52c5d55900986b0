import { describe, expect, it } from 'vitest';
import { SeededRng } from '../rng';
import { DEFAULT_MEMBERSHIP_CONFIG, Membership, type MemberEvent, type MemberOut, type MembershipConfig, type MemberIn } from './membership';
import { validateMemberMessage, validateMemberUpdate, type MemberMessage, type MemberRecord, type MemberUpdate } from './messages';

const T0 = 1_700_000_000_000;
const cfg: Partial<MembershipConfig> = {};

function make(me = 'me', config: Partial<MembershipConfig> = cfg, seed = 1) {
  const m = new Membership(me, config, new SeededRng(seed));
  const step = (input: MemberIn, now: number): MemberOut[] => {
    const out: MemberOut[] = [];
    m.handle(input, now, out);
    return out;
  };
  return { m, step };
}

/** Effects with events unwrapped: `of(out, 'changed')` lists the changed events. */
type Item = Exclude<MemberOut, { type: 'event' }> | MemberEvent;
const flat = (out: MemberOut[]): Item[] => out.map((e) => (e.type === 'event' ? e.event : e));
const of = <T extends Item['type']>(out: MemberOut[], type: T) => flat(out).filter((e) => e.type === type) as Extract<Item, { type: T }>[];
const alive = (id: string, incarnation: number, nick = id): MemberUpdate => ({ type: 'alive', id, incarnation, nick, active: [], meta: {} });
let broadcastSeq = 0;
/** A broadcast as Plumtree delivers it: ALIVE/LEFT from the member itself, SUSPECT/DEAD from the accuser. */
const deliver = (data: MemberUpdate): MemberIn => {
  const origin = data.type === 'alive' || data.type === 'left' ? data.id : data.by;
  return { type: 'deliver', origin, id: `${origin}:t:${++broadcastSeq}`, data };
};
/** A sync row with the member's own latest word as proof (its LEFT for a member that left, else its ALIVE). */
const row = (id: string, incarnation: number, status: MemberRecord['status'], age = 0): MemberRecord => ({
  id,
  incarnation,
  status,
  age,
  proof: { id: `${id}:t:${++broadcastSeq}`, data: status === 'left' ? { type: 'left', id, incarnation } : alive(id, incarnation) },
});
const sync = (from: string, records: MemberRecord[]): MemberIn => ({ type: 'message', from, msg: { type: 'mem.sync', records } });

describe('Membership', () => {
  it('starts with its start time as incarnation and schedules heartbeat and sweep', () => {
    const { m, step } = make();
    const out = step({ type: 'start', nick: 'ann' }, T0 + 0.7);
    expect(m.incarnation()).toBe(T0);
    expect(of(out, 'timer').map((t) => t.timer.type).sort()).toEqual(['mem.alive', 'mem.sweep']);
    const alive = of(out, 'timer').find((t) => t.timer.type === 'mem.alive')!;
    // alone: the period is max(aliveIntervalMs, 1 member / heartbeatsPerSecond), +- the jitter
    const { aliveIntervalMs, heartbeatsPerSecond, aliveJitter } = DEFAULT_MEMBERSHIP_CONFIG;
    const period = Math.max(aliveIntervalMs, Math.round(1000 / heartbeatsPerSecond));
    expect(m.period()).toBe(period);
    expect(alive.delayMs).toBeGreaterThanOrEqual(period * (1 - aliveJitter));
    expect(alive.delayMs).toBeLessThanOrEqual(period * (1 + aliveJitter));
    expect(m.live()).toEqual(['me']);
    expect(m.get('me')).toMatchObject({ nick: 'ann', status: 'alive' });
  });

  it('sends its table to a new neighbour and announces itself when it gets its first one', () => {
    const { step } = make();
    step({ type: 'start', nick: 'ann' }, T0);
    // our own ALIVE back through Plumtree: the proof our row carries (without it, no row of ours)
    step(deliver(alive('me', T0, 'ann')), T0 + 5);
    step(deliver(alive('b', 5)), T0 + 10);
    const out = step({ type: 'neighborUp', peer: 'c' }, T0 + 20);
    const [s] = of(out, 'send');
    expect(s!.to).toBe('c');
    const msg = s!.msg as Extract<MemberMessage, { type: 'mem.sync' }>;
    expect(msg.records.map((r) => [r.id, r.status, r.age])).toEqual([['me', 'alive', 0], ['b', 'alive', 10]]);
    expect(validateMemberMessage(msg)).toBeNull();
    const [announce] = of(out, 'timer');
    expect(announce!.timer).toEqual({ type: 'mem.announce' });
    const b = step({ type: 'timer', timer: announce!.timer }, T0 + 120);
    expect(of(b, 'broadcast')[0]!.data).toMatchObject({ type: 'alive', id: 'me', incarnation: T0, nick: 'ann' });
  });

  it('applies SWIM precedence: higher incarnation wins, then left > dead > suspect > alive', () => {
    const { m, step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    expect(of(step(deliver(alive('x', 10)), T0), 'changed')).toEqual([{ type: 'changed', joined: ['x'], left: [] }]);
    const s = step(deliver({ type: 'suspect', id: 'x', incarnation: 10, by: 'y' }), T0 + 1);
    expect(m.get('x')!.status).toBe('suspect');
    expect(m.live()).toEqual(['me', 'x']);
    expect(m.placement()).toEqual(['me']);
    expect(of(s, 'changed')).toEqual([]);
    expect(of(s, 'placementChanged')).toEqual([{ type: 'placementChanged', members: ['me'] }]);
    step(deliver(alive('x', 10)), T0 + 2); // a heartbeat does not clear a suspicion
    expect(m.get('x')!.status).toBe('suspect');
    step(deliver(alive('x', 11)), T0 + 3); // a refutation does
    expect(m.get('x')!.status).toBe('alive');
    const d = step(deliver({ type: 'dead', id: 'x', incarnation: 11, by: 'y' }), T0 + 4);
    expect(of(d, 'changed')).toEqual([{ type: 'changed', joined: [], left: ['x'] }]);
    step(deliver(alive('x', 11)), T0 + 5); // late ALIVE of the dead incarnation
    expect(m.get('x')!.status).toBe('dead');
    step(deliver({ type: 'left', id: 'x', incarnation: 11 }), T0 + 6);
    expect(m.get('x')!.status).toBe('left');
    step(deliver({ type: 'dead', id: 'x', incarnation: 11, by: 'y' }), T0 + 7);
    expect(m.get('x')!.status).toBe('left');
    step(deliver(alive('x', 12)), T0 + 8); // the member came back (reload)
    expect(m.get('x')!.status).toBe('alive');
  });

  it('a member that left is out of live() at once and out of placement() after leaveGraceMs', () => {
    const { m, step } = make('me', { leaveGraceMs: 3_000 });
    step({ type: 'start', nick: 'me' }, T0);
    step(deliver(alive('x', 10)), T0);
    const out = step(deliver({ type: 'left', id: 'x', incarnation: 10 }), T0 + 100);
    expect(of(out, 'changed')).toEqual([{ type: 'changed', joined: [], left: ['x'] }]);
    expect(m.live()).toEqual(['me']);
    expect(m.placement()).toEqual(['me', 'x']);
    expect(of(out, 'placementChanged')).toEqual([]);
    const grace = of(out, 'timer').find((t) => t.timer.type === 'mem.leftGrace')!;
    expect(grace.delayMs).toBe(3_000);
    const after = step({ type: 'timer', timer: grace.timer }, T0 + 3_100);
    expect(of(after, 'placementChanged')).toEqual([{ type: 'placementChanged', members: ['me'] }]);
    expect(m.placement()).toEqual(['me']);
  });

  it('a member reloaded within the grace (same id, higher incarnation) never leaves placement()', () => {
    const { m, step } = make('me', { leaveGraceMs: 3_000 });
    step({ type: 'start', nick: 'me' }, T0);
    step(deliver(alive('x', 10)), T0);
    const left = step(deliver({ type: 'left', id: 'x', incarnation: 10 }), T0 + 100);
    const back = step(deliver(alive('x', 11)), T0 + 900);
    expect(of(back, 'changed')).toEqual([{ type: 'changed', joined: ['x'], left: [] }]);
    expect(of(back, 'placementChanged')).toEqual([]);
    const grace = of(left, 'timer').find((t) => t.timer.type === 'mem.leftGrace')!;
    expect(of(step({ type: 'timer', timer: grace.timer }, T0 + 3_100), 'placementChanged')).toEqual([]);
    expect(m.placement()).toEqual(['me', 'x']);
    expect(m.live()).toEqual(['me', 'x']);
  });

  it('with leaveGraceMs 0 a member that left is out of placement() at once; a death is never graced', () => {
    const { m, step } = make('me', { leaveGraceMs: 0 });
    step({ type: 'start', nick: 'me' }, T0);
    step(deliver(alive('x', 10)), T0);
    expect(of(step(deliver({ type: 'left', id: 'x', incarnation: 10 }), T0 + 1), 'placementChanged')).toEqual([{ type: 'placementChanged', members: ['me'] }]);
    const g = make('me', { leaveGraceMs: 3_000 });
    g.step({ type: 'start', nick: 'me' }, T0);
    g.step(deliver(alive('y', 10)), T0);
    const d = g.step(deliver({ type: 'dead', id: 'y', incarnation: 10, by: 'z' }), T0 + 1);
    expect(of(d, 'placementChanged')).toEqual([{ type: 'placementChanged', members: ['me'] }]);
    expect(m.placement()).toEqual(['me']);
  });

  it('refutes a suspicion or a death of itself with a higher incarnation', () => {
    const { m, step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    const out = step(deliver({ type: 'suspect', id: 'me', incarnation: T0, by: 'x' }), T0 + 50);
    expect(m.incarnation()).toBe(T0 + 50);
    expect(of(out, 'broadcast')[0]!.data).toMatchObject({ type: 'alive', id: 'me', incarnation: T0 + 50 });
    expect(of(step(deliver({ type: 'suspect', id: 'me', incarnation: T0, by: 'y' }), T0 + 60), 'broadcast')).toEqual([]);
    step(deliver({ type: 'dead', id: 'me', incarnation: T0 + 50, by: 'x' }), T0 + 60);
    expect(m.incarnation()).toBe(T0 + 60);
    step(deliver({ type: 'dead', id: 'me', incarnation: T0 + 60, by: 'x' }), T0 + 60);
    expect(m.incarnation()).toBe(T0 + 61); // clock did not move: +1
    expect(m.stats().refutations).toBe(3);
    expect(m.live()).toContain('me');
  });

  it('refuses far-future incarnations: a forged LEFT at MAX_SAFE_INTEGER changes nothing, and every claim it accepts the victim can refute', () => {
    const victim = make('v');
    const other = make('o');
    victim.step({ type: 'start', nick: 'v' }, T0);
    other.step({ type: 'start', nick: 'o' }, T0);
    other.step(deliver(alive('v', T0)), T0);
    const forged: MemberUpdate = { type: 'left', id: 'v', incarnation: Number.MAX_SAFE_INTEGER };
    other.step(deliver(forged), T0 + 1);
    victim.step(deliver(forged), T0 + 1);
    expect(other.m.live()).toContain('v');
    expect(other.m.stats().futureRefused).toBe(1);
    expect(victim.m.incarnation()).toBe(T0);
    // the largest LEFT the other node accepts (60 s ahead): the victim's refutation beats it
    const edge: MemberUpdate = { type: 'left', id: 'v', incarnation: T0 + 2 + 60_000 };
    other.step(deliver(edge), T0 + 2);
    expect(other.m.live()).not.toContain('v');
    const refute = of(victim.step(deliver(edge), T0 + 2), 'broadcast')[0]!.data as MemberUpdate;
    expect(refute).toMatchObject({ type: 'alive', id: 'v', incarnation: T0 + 2 + 60_001 });
    other.step(deliver(refute), T0 + 3);
    expect(other.m.live()).toContain('v');
    expect(other.m.get('v')!.incarnation).toBe(T0 + 60_003);
    // with the victim's clock 50 s behind, an accusation is still refuted: an accusation
    // counts at most at the accused's own latest (proven) incarnation, so the refutation
    // only has to beat that
    const lagging = make('w');
    lagging.step({ type: 'start', nick: 'w' }, T0 - 50_000);
    const own = lagging.m.incarnation();
    const out = lagging.step(deliver({ type: 'suspect', id: 'w', incarnation: T0 + 60_000, by: 'x' }), T0 - 50_000);
    const answer = of(out, 'broadcast')[0]!.data as MemberUpdate;
    expect(answer).toMatchObject({ type: 'alive', id: 'w' });
    expect(answer.incarnation).toBeGreaterThan(own);
    // sync rows are bounded the same way
    other.step(sync('x', [row('z', Number.MAX_SAFE_INTEGER, 'alive')]), T0 + 4);
    expect(other.m.get('z')).toBeUndefined();
  });

  it('pings a neighbour that went down; an answer means it is alive', () => {
    const { m, step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    step(deliver(alive('x', 1)), T0);
    step({ type: 'neighborUp', peer: 'x' }, T0);
    const out = step({ type: 'neighborDown', peer: 'x' }, T0 + 100);
    const [ping] = of(out, 'send');
    expect(ping).toMatchObject({ to: 'x', transient: true, msg: { type: 'mem.ping' } });
    const nonce = (ping!.msg as { nonce: number }).nonce;
    const [probe] = of(out, 'timer');
    step({ type: 'message', from: 'x', msg: { type: 'mem.ack', nonce } }, T0 + 200);
    expect(step({ type: 'timer', timer: probe!.timer }, T0 + 3100)).toEqual([]);
    expect(m.get('x')!.status).toBe('alive');
  });

  it('suspects a neighbour that went down and stays silent, then declares it dead', () => {
    const { m, step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    step(deliver(alive('x', 1)), T0);
    step({ type: 'neighborUp', peer: 'x' }, T0);
    const [probe] = of(step({ type: 'neighborDown', peer: 'x' }, T0 + 100), 'timer');
    const s = step({ type: 'timer', timer: probe!.timer }, T0 + 3100);
    expect(of(s, 'broadcast')).toEqual([{ type: 'broadcast', data: { type: 'suspect', id: 'x', incarnation: 1, by: 'me' } }]);
    expect(m.get('x')!.status).toBe('suspect');
    const [suspectTimer] = of(s, 'timer');
    expect(suspectTimer!.delayMs).toBe(5000);
    const d = step({ type: 'timer', timer: suspectTimer!.timer }, T0 + 8100);
    expect(of(d, 'broadcast')).toEqual([{ type: 'broadcast', data: { type: 'dead', id: 'x', incarnation: 1, by: 'me' } }]);
    expect(of(d, 'changed')).toEqual([{ type: 'changed', joined: [], left: ['x'] }]);
  });

  it('a neighbour whose link goes down right after its will is suspected at once, without a probe', () => {
    const { m, step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    step(deliver(alive('x', 1)), T0);
    step({ type: 'neighborUp', peer: 'x' }, T0);
    expect(step({ type: 'will', peer: 'x' }, T0 + 100)).toEqual([]); // a hint: nothing yet
    expect(m.get('x')!.status).toBe('alive');
    const out = step({ type: 'neighborDown', peer: 'x' }, T0 + 1100);
    expect(of(out, 'send')).toEqual([]); // no ping: it would be relayed through a connection x no longer has
    expect(of(out, 'broadcast')).toEqual([{ type: 'broadcast', data: { type: 'suspect', id: 'x', incarnation: 1, by: 'me' } }]);
    expect(m.get('x')!.status).toBe('suspect');
    expect(m.stats().suspectedAfterWill).toBe(1);
  });

  it('a will long before the link goes down, or from a member that is not a neighbour, changes nothing', () => {
    const { m, step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    step(deliver(alive('x', 1)), T0);
    step(deliver(alive('y', 1)), T0);
    step({ type: 'neighborUp', peer: 'x' }, T0);
    step({ type: 'will', peer: 'x' }, T0 + 100); // x's connection dropped and came back; it answered the link check
    expect(step({ type: 'will', peer: 'y' }, T0 + 100)).toEqual([]);
    const out = step({ type: 'neighborDown', peer: 'x' }, T0 + 100 + 3001);
    expect(of(out, 'send')).toMatchObject([{ to: 'x', msg: { type: 'mem.ping' } }]);
    expect(of(out, 'broadcast')).toEqual([]);
    expect(m.get('x')!.status).toBe('alive');
    expect(m.get('y')!.status).toBe('alive');
    expect(m.stats().suspectedAfterWill).toBe(0);
  });

  it('a will cuts short a probe already waiting for a lost neighbour', () => {
    const { m, step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    step(deliver(alive('x', 1)), T0);
    step({ type: 'neighborUp', peer: 'x' }, T0);
    const [probe] = of(step({ type: 'neighborDown', peer: 'x' }, T0 + 100), 'timer');
    const out = step({ type: 'will', peer: 'x' }, T0 + 300);
    expect(of(out, 'broadcast')).toEqual([{ type: 'broadcast', data: { type: 'suspect', id: 'x', incarnation: 1, by: 'me' } }]);
    expect(m.get('x')!.status).toBe('suspect');
    expect(of(step({ type: 'timer', timer: probe!.timer }, T0 + 1100), 'broadcast')).toEqual([]); // suspected once
    expect(m.stats().suspicionsRaised).toBe(1);
  });

  it('does not suspect a neighbour whose LEAVE arrived during the probe', () => {
    const { m, step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    step(deliver(alive('x', 1)), T0);
    step({ type: 'neighborUp', peer: 'x' }, T0);
    const [probe] = of(step({ type: 'neighborDown', peer: 'x' }, T0 + 100), 'timer');
    step(deliver({ type: 'left', id: 'x', incarnation: 1 }), T0 + 300);
    expect(of(step({ type: 'timer', timer: probe!.timer }, T0 + 3100), 'broadcast')).toEqual([]);
    expect(m.get('x')!.status).toBe('left');
  });

  it('alone, it pings the members it still thinks alive: the one that closed meanwhile is suspected and dies, the one that answers stays', () => {
    const { m, step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    // a 3-member cluster: 30 s heartbeat periods, so silence alone would take 2 minutes
    const member = (id: string): MemberUpdate => ({ type: 'alive', id, incarnation: 1, nick: id, active: [], meta: {}, every: 30_000 });
    step(deliver(member('x')), T0);
    step(deliver(member('y')), T0);
    step({ type: 'neighborUp', peer: 'x' }, T0);
    // the link to x drops while x is still there: the probe is answered, x stays alive
    const down = step({ type: 'neighborDown', peer: 'x' }, T0 + 100);
    const nonce = (of(down, 'send')[0]!.msg as { nonce: number }).nonce;
    step({ type: 'message', from: 'x', msg: { type: 'mem.ack', nonce } }, T0 + 150);
    step({ type: 'timer', timer: of(down, 'timer')[0]!.timer }, T0 + 1100);
    expect(m.get('x')!.status).toBe('alive');
    // x then closes and its LEFT never reaches us; no link, no path to judge
    expect(of(step({ type: 'timer', timer: { type: 'mem.sweep' } }, T0 + 9_000), 'send')).toEqual([]);
    const sweep = step({ type: 'timer', timer: { type: 'mem.sweep' } }, T0 + 10_100);
    const pings = of(sweep, 'send');
    expect(pings.map((p) => p.to).sort()).toEqual(['x', 'y']);
    expect(pings.every((p) => p.transient && p.msg.type === 'mem.ping')).toBe(true);
    // y answers, x does not
    const yNonce = (pings.find((p) => p.to === 'y')!.msg as { nonce: number }).nonce;
    step({ type: 'message', from: 'y', msg: { type: 'mem.ack', nonce: yNonce } }, T0 + 10_200);
    const timeouts = of(sweep, 'timer').filter((t) => t.timer.type === 'mem.probe');
    const outs = timeouts.map((t) => step({ type: 'timer', timer: t.timer }, T0 + 11_100));
    expect(m.get('y')!.status).toBe('alive');
    expect(m.get('x')!.status).toBe('suspect');
    // not pinged again before unreachableAfterMs
    expect(of(step({ type: 'timer', timer: { type: 'mem.sweep' } }, T0 + 12_000), 'send')).toEqual([]);
    const suspectTimer = outs.flatMap((o) => of(o, 'timer')).find((t) => t.timer.type === 'mem.suspect')!;
    step({ type: 'timer', timer: suspectTimer.timer }, T0 + 16_100);
    expect(m.get('x')!.status).toBe('dead');
    expect(m.live()).toEqual(['me', 'y']);
  });

  it('turns a suspicion it only heard of into a local death without broadcasting', () => {
    const { m, step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    step(deliver(alive('x', 1)), T0);
    const [t] = of(step(deliver({ type: 'suspect', id: 'x', incarnation: 1, by: 'y' }), T0 + 10), 'timer');
    const out = step({ type: 'timer', timer: t!.timer }, T0 + 5010);
    expect(of(out, 'broadcast')).toEqual([]);
    expect(m.get('x')!.status).toBe('dead');
  });

  it('expires silent members locally, revives them on a fresh heartbeat, and drops old tombstones', () => {
    const { m, step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    step(deliver(alive('me', T0)), T0);
    step(deliver(alive('x', 1)), T0);
    expect(m.get('x')!.status).toBe('alive');
    step({ type: 'timer', timer: { type: 'mem.sweep' } }, T0 + 19_000);
    expect(m.get('x')!.status).toBe('alive');
    const out = step({ type: 'timer', timer: { type: 'mem.sweep' } }, T0 + 20_000);
    expect(of(out, 'changed')).toEqual([{ type: 'changed', joined: [], left: ['x'] }]);
    // Expired entries are not spread in syncs (they are an opinion).
    const s = of(step({ type: 'neighborUp', peer: 'p' }, T0 + 20_001), 'send')[0]!.msg as Extract<MemberMessage, { type: 'mem.sync' }>;
    expect(s.records.map((r) => r.id)).toEqual(['me']);
    step(deliver(alive('x', 1)), T0 + 25_000);
    expect(m.get('x')!.status).toBe('alive');
    step({ type: 'timer', timer: { type: 'mem.sweep' } }, T0 + 45_000);
    expect(m.get('x')!.status).toBe('dead');
    step({ type: 'timer', timer: { type: 'mem.sweep' } }, T0 + 105_000);
    expect(m.get('x')).toBeUndefined();
  });

  it('heartbeats grow rarer with the cluster (each node handles about heartbeatsPerSecond of them), and a member is expired after 4 of its own periods', () => {
    const { m, step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    step(deliver(alive('me', T0)), T0);
    step({ type: 'neighborUp', peer: 'm0' }, T0);
    // 100 members, each linked to its successor: all reachable from me through m0
    const ring = (i: number): MemberUpdate => ({ type: 'alive', id: `m${i}`, incarnation: 1, nick: `m${i}`, active: [`m${(i + 1) % 100}`], meta: {}, every: 1_000_000 });
    for (let i = 0; i < 100; i++) step(deliver(ring(i)), T0);
    expect(m.live()).toHaveLength(101);
    // 101 live members / heartbeatsPerSecond (0.03): a heartbeat every 3,367 s, announced in the ALIVE
    const { heartbeatsPerSecond, aliveJitter } = DEFAULT_MEMBERSHIP_CONFIG;
    const period = Math.round((101 * 1000) / heartbeatsPerSecond);
    expect(m.period()).toBe(period);
    const beat = step({ type: 'timer', timer: { type: 'mem.alive' } }, T0 + 60_000);
    expect((of(beat, 'broadcast')[0]!.data as Extract<MemberUpdate, { type: 'alive' }>).every).toBe(period);
    const next = of(beat, 'timer').find((t) => t.timer.type === 'mem.alive')!;
    expect(next.delayMs).toBeGreaterThanOrEqual(period * (1 - aliveJitter));
    expect(next.delayMs).toBeLessThanOrEqual(period * (1 + aliveJitter));
    // a member announcing a 1,000 s period is not expired by expireAfterMs (20 s) of silence, but after 4,000 s
    step({ type: 'timer', timer: { type: 'mem.sweep' } }, T0 + 3_900_000);
    expect(m.get('m5')!.status).toBe('alive');
    step({ type: 'timer', timer: { type: 'mem.sweep' } }, T0 + 4_000_001);
    expect(m.get('m5')!.status).toBe('dead');
  });

  it('expires a member that no path of announced links joins to it after unreachableAfterMs, long before its heartbeat expiry', () => {
    const { m, step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    step({ type: 'neighborUp', peer: 'a' }, T0);
    const member = (id: string, active: string[]): MemberUpdate => ({ type: 'alive', id, incarnation: 1, nick: id, active, meta: {}, every: 600_000 });
    step(deliver({ ...member('me', []), incarnation: T0 }), T0);
    step(deliver(member('a', ['me', 'b'])), T0);
    step(deliver(member('b', ['a', 'c'])), T0);
    step(deliver(member('c', ['b'])), T0);
    step(deliver(member('d', ['c'])), T0);
    step({ type: 'timer', timer: { type: 'mem.sweep' } }, T0 + 1000);
    // b dies: c and d, whose only announced path to us ran through b, are cut off
    step(deliver({ type: 'dead', id: 'b', incarnation: 1, by: 'a' }), T0 + 2000);
    step({ type: 'timer', timer: { type: 'mem.sweep' } }, T0 + 3000);
    expect(m.live()).toEqual(['a', 'c', 'd', 'me']);
    step({ type: 'timer', timer: { type: 'mem.sweep' } }, T0 + 12_999);
    expect(m.live()).toEqual(['a', 'c', 'd', 'me']);
    // d announces a new link to a before the deadline: it is reachable again and stays
    step(deliver({ ...member('d', ['a']), incarnation: 2 }), T0 + 5000);
    step({ type: 'timer', timer: { type: 'mem.sweep' } }, T0 + 13_001);
    expect(m.live()).toEqual(['a', 'd', 'me']);
    expect(m.stats().cutOff).toBe(1);
  });

  it('merges sync rows by age: stale liveness is ignored, tombstones keep their age', () => {
    const { m, step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    step(sync('p', [row('a', 1, 'alive', 100), row('b', 1, 'alive', 25_000), row('c', 1, 'dead', 59_000), row('d', 1, 'left', 70_000)]), T0);
    expect(m.get('a')!.status).toBe('alive');
    expect(m.get('b')).toBeUndefined();
    expect(m.get('c')!.status).toBe('dead');
    expect(m.get('d')).toBeUndefined();
    step({ type: 'timer', timer: { type: 'mem.sweep' } }, T0 + 1_000);
    expect(m.get('c')).toBeUndefined();
    // A row from a sync refreshes liveness by its age.
    step({ type: 'timer', timer: { type: 'mem.sweep' } }, T0 + 19_000);
    step(sync('p', [row('a', 1, 'alive', 50)]), T0 + 19_000);
    step({ type: 'timer', timer: { type: 'mem.sweep' } }, T0 + 21_000);
    expect(m.get('a')!.status).toBe('alive');
  });

  it('learns it was declared dead from a sync row about itself, and refutes', () => {
    const { m, step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    const out = step(sync('p', [row('me', T0, 'dead', 10)]), T0 + 100);
    expect(m.incarnation()).toBeGreaterThan(T0);
    expect(of(out, 'broadcast')[0]!.data).toMatchObject({ type: 'alive', id: 'me' });
  });

  it('a reloaded node starts above the incarnations of its previous life', () => {
    const old = make('x');
    old.step({ type: 'start', nick: 'x' }, T0);
    old.step(deliver({ type: 'suspect', id: 'x', incarnation: T0, by: 'y' }), T0 + 5);
    const { m, step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    step(deliver(alive('x', old.m.incarnation())), T0 + 10);
    step(deliver({ type: 'dead', id: 'x', incarnation: old.m.incarnation(), by: 'y' }), T0 + 20);
    const reloaded = make('x', cfg, 2);
    reloaded.step({ type: 'start', nick: 'x' }, T0 + 30);
    expect(reloaded.m.incarnation()).toBeGreaterThan(old.m.incarnation());
    step(deliver(alive('x', reloaded.m.incarnation())), T0 + 40);
    expect(m.get('x')!.status).toBe('alive');
  });

  it('starts above an incarnation of its own heard before start (clock stepped back)', () => {
    const { m, step } = make();
    step(sync('p', [row('me', T0 + 1000, 'alive', 0)]), T0);
    step({ type: 'start', nick: 'me' }, T0);
    expect(m.incarnation()).toBe(T0 + 1001);
  });

  it('raises its incarnation on local changes and debounces the announcement; rejects oversized meta', () => {
    const { m, step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    const a = step({ type: 'local', nick: 'bob' }, T0 + 10);
    const b = step({ type: 'local', active: ['p', 'q'], meta: { rooms: ['lobby'] } }, T0 + 20);
    expect(of(a, 'timer')).toHaveLength(1);
    expect(of(b, 'timer')).toHaveLength(0);
    expect(m.incarnation()).toBe(T0 + 20);
    const c = step({ type: 'timer', timer: { type: 'mem.announce' } }, T0 + 110);
    expect(of(c, 'broadcast')[0]!.data).toEqual({ type: 'alive', id: 'me', incarnation: T0 + 20, nick: 'bob', active: ['p', 'q'], meta: { rooms: ['lobby'] }, every: m.period() });
    step({ type: 'local', meta: { big: 'x'.repeat(5000) } }, T0 + 200);
    expect(m.get('me')!.meta).toEqual({ rooms: ['lobby'] });
    expect(m.stats().rejected).toBe(1);
  });

  it('reports live members whose nick, active view or meta changed as updated; heartbeats, suspicions and refutations with the same info do not', () => {
    const { step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    step(deliver(alive('x', 10)), T0);
    const info = (id: string, incarnation: number, over: { nick?: string; active?: string[]; meta?: Record<string, unknown> }): MemberUpdate => ({
      type: 'alive', id, incarnation, nick: over.nick ?? id, active: over.active ?? [], meta: over.meta ?? {},
    });
    expect(of(step(deliver(info('x', 11, { nick: 'xavier' })), T0 + 1), 'changed')).toEqual([{ type: 'changed', joined: [], left: [], updated: ['x'] }]);
    expect(of(step(deliver(info('x', 12, { nick: 'xavier', active: ['me'] })), T0 + 2), 'changed')).toEqual([{ type: 'changed', joined: [], left: [], updated: ['x'] }]);
    expect(of(step(deliver(info('x', 13, { nick: 'xavier', active: ['me'], meta: { rooms: ['dev'] } })), T0 + 3), 'changed')).toEqual([
      { type: 'changed', joined: [], left: [], updated: ['x'] },
    ]);
    // the same info again: a heartbeat at the same incarnation, then a higher one
    expect(of(step(deliver(info('x', 13, { nick: 'xavier', active: ['me'], meta: { rooms: ['dev'] } })), T0 + 4), 'changed')).toEqual([]);
    expect(of(step(deliver(info('x', 14, { nick: 'xavier', active: ['me'], meta: { rooms: ['dev'] } })), T0 + 5), 'changed')).toEqual([]);
    expect(of(step(deliver({ type: 'suspect', id: 'x', incarnation: 14, by: 'y' }), T0 + 6), 'changed')).toEqual([]);
    expect(of(step(deliver(info('x', 15, { nick: 'xavier', active: ['me'], meta: { rooms: ['dev'] } })), T0 + 7), 'changed')).toEqual([]);
    // our own info counts too; a member that joins is listed as joined only
    const local = step({ type: 'local', nick: 'ann', meta: { rooms: ['lobby'] } }, T0 + 8);
    expect(of(local, 'changed')).toEqual([{ type: 'changed', joined: [], left: [], updated: ['me'] }]);
    expect(of(step({ type: 'local', meta: { rooms: ['lobby'] } }, T0 + 9), 'changed')).toEqual([]);
    expect(of(step(deliver(info('y', 1, { nick: 'yann' })), T0 + 10), 'changed')).toEqual([{ type: 'changed', joined: ['y'], left: [] }]);
  });

  it('view(): placement and away for the stores, live members with nick and rooms for chat', () => {
    const { m, step } = make('me', { leaveGraceMs: 3_000 });
    step({ type: 'start', nick: 'ann' }, T0);
    step({ type: 'local', meta: { rooms: ['lobby', 'dev'] } }, T0);
    step(deliver({ type: 'alive', id: 'x', incarnation: 10, nick: 'xavier', active: [], meta: { rooms: ['ops', 7] } }), T0);
    step(deliver(alive('y', 10, 'yann')), T0);
    step(deliver(alive('z', 10, 'zed')), T0);
    step(deliver({ type: 'suspect', id: 'y', incarnation: 10, by: 'x' }), T0 + 1);
    step(deliver({ type: 'left', id: 'z', incarnation: 10 }), T0 + 2);
    expect(m.view()).toEqual({
      placement: ['me', 'x', 'z'],
      away: ['z'],
      live: [
        { id: 'me', nick: 'ann', rooms: ['lobby', 'dev'] },
        { id: 'x', nick: 'xavier', rooms: ['ops'] },
        { id: 'y', nick: 'yann', rooms: [] },
      ],
    });
  });

  it('leaves: broadcasts LEFT, stops heartbeats and stops answering pings', () => {
    const { m, step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    const out = step({ type: 'leave' }, T0 + 10);
    expect(of(out, 'broadcast')).toEqual([{ type: 'broadcast', data: { type: 'left', id: 'me', incarnation: T0 } }]);
    expect(of(out, 'changed')).toEqual([{ type: 'changed', joined: [], left: ['me'] }]);
    expect(step({ type: 'timer', timer: { type: 'mem.alive' } }, T0 + 5000)).toEqual([]);
    expect(step({ type: 'message', from: 'p', msg: { type: 'mem.ping', nonce: 1 } }, T0 + 5000)).toEqual([]);
    expect(m.live()).toEqual([]);
  });

  it('counts and drops invalid broadcast payloads without throwing', () => {
    const { m, step } = make();
    step({ type: 'start', nick: 'me' }, T0);
    for (const bad of [null, 1, 'x', { type: 'alive' }, { type: 'alive', id: 'x', incarnation: -1, nick: '', active: [], meta: {} }, { type: 'evil', id: 'x' }]) {
      expect(step({ type: 'deliver', origin: 'x', id: 'x:t:1', data: bad }, T0)).toEqual([]);
    }
    expect(m.stats().invalid).toBe(6);
    expect(m.live()).toEqual(['me']);
  });

  it('bounds the table: tombstones make room first, live members beyond the bound are refused', () => {
    const { m, step } = make('me', { maxMembers: 3 });
    step({ type: 'start', nick: 'me' }, T0);
    step(deliver(alive('a', 1)), T0);
    step(deliver(alive('z', 1)), T0);
    step(deliver({ type: 'dead', id: 'z', incarnation: 1, by: 'a' }), T0);
    expect(m.all().map((e) => e.id)).toEqual(['a', 'me', 'z']);
    step(deliver(alive('b', 1)), T0);
    expect(m.all().map((e) => e.id)).toEqual(['a', 'b', 'me']);
    step(deliver(alive('c', 1)), T0);
    expect(m.get('c')).toBeUndefined();
    expect(m.stats().rejected).toBe(1);
  });

  it('splits a large table into wire-sized sync messages', () => {
    const { step } = make('me', { syncChunkBytes: 16 * 1024 });
    step({ type: 'start', nick: 'me' }, T0);
    step(deliver(alive('me', T0)), T0);
    for (let i = 0; i < 200; i++) step(deliver({ ...alive(`n${i}`, 1), meta: { blob: 'y'.repeat(1000) } } as MemberUpdate), T0);
    const msgs = of(step({ type: 'neighborUp', peer: 'p' }, T0), 'send').map((s) => s.msg as Extract<MemberMessage, { type: 'mem.sync' }>);
    expect(msgs.length).toBeGreaterThan(1);
    expect(msgs.reduce((a, s) => a + s.records.length, 0)).toBe(201);
    for (const s of msgs) expect(validateMemberMessage(s)).toBeNull();
  });
});

describe('membership validation', () => {
  it('accepts what the protocol produces and rejects malformed or oversized values', () => {
    expect(validateMemberUpdate(alive('x', 1))).toBeNull();
    expect(validateMemberUpdate({ type: 'left', id: 'x', incarnation: 3 })).toBeNull();
    const bad: unknown[] = [
      undefined, [], { type: 'alive', id: 'x', incarnation: 1, nick: 'n'.repeat(65), active: [], meta: {} },
      { type: 'alive', id: 'x', incarnation: 1, nick: 'n', active: Array(65).fill('p'), meta: {} },
      { type: 'alive', id: 'x', incarnation: 1, nick: 'n', active: [], meta: [] },
      { type: 'alive', id: 'x', incarnation: 1, nick: 'n', active: [], meta: { a: 'x'.repeat(4096) } },
      { type: 'alive', id: 'x', incarnation: 1, nick: 'n', active: [], meta: nest(20) },
      { type: 'suspect', id: 'x', incarnation: 1.5, by: 'y' },
      { type: 'dead', id: '', incarnation: 1, by: 'y' },
    ];
    for (const v of bad) expect(validateMemberUpdate(v)).not.toBeNull();
    expect(validateMemberMessage({ type: 'mem.sync', records: [row('a', 1, 'alive')] })).toBeNull();
    expect(validateMemberMessage({ type: 'mem.sync', records: [{ ...row('a', 1, 'alive'), status: 'zombie' }] })).not.toBeNull();
    expect(validateMemberMessage({ type: 'mem.sync', records: [{ ...row('a', 1, 'alive'), age: -1 }] })).not.toBeNull();
    expect(validateMemberMessage({ type: 'mem.sync', records: Array(513).fill(row('a', 1, 'alive')) })).not.toBeNull();
    expect(validateMemberMessage({ type: 'mem.ping', nonce: 'x' })).not.toBeNull();
  });

  describe('forgery (docs/security.md, Signatures)', () => {
    it('100 forged ALIVE sync rows place nobody: hearsay, proofs by another origin, or proofs about another member', () => {
      const { m, step } = make();
      step({ type: 'start', nick: 'me' }, T0);
      step(deliver(alive('a', 1)), T0);
      const forged: MemberRecord[] = [];
      for (let i = 0; i < 100; i++) {
        const id = `nfake${i}`;
        if (i % 3 === 0) forged.push({ id, incarnation: 1, status: 'alive', age: 0 });
        // the attacker's own broadcast, passed off as the member's
        else if (i % 3 === 1) forged.push({ id, incarnation: 1, status: 'alive', age: 0, proof: { id: `evil:t:${i}`, data: alive(id, 1) } });
        // the attacker's own ALIVE, passed off as another member's row
        else forged.push({ id, incarnation: 1, status: 'alive', age: 0, proof: { id: `${id}:t:${i}`, data: alive('evil', 1) } });
      }
      step(sync('evil', forged), T0 + 10);
      expect(m.placement()).toEqual(['a', 'me']);
      expect(m.live()).toEqual(['a', 'me']);
      // not even kept as heard-of: the table holds no entry for any of them
      expect(m.all().map((e) => e.id)).toEqual(['a', 'me']);
      // the two thirds that carried a proof were counted as forged
      expect(m.stats().forged).toBe(66);
    });

    it('refuses a LEFT or ALIVE about a member from anyone but the member, and keeps accusations to their accuser', () => {
      const { m, step } = make();
      step({ type: 'start', nick: 'me' }, T0);
      step(deliver(alive('victim', 5)), T0);
      const huge = Number.MAX_SAFE_INTEGER;
      step({ type: 'deliver', origin: 'evil', id: 'evil:t:1', data: { type: 'left', id: 'victim', incarnation: huge } }, T0 + 1);
      step({ type: 'deliver', origin: 'evil', id: 'evil:t:2', data: { ...alive('victim', huge), nick: 'pwned' } }, T0 + 1);
      // a SUSPECT signed by its accuser is heard, but never past the victim's own incarnation
      step({ type: 'deliver', origin: 'evil', id: 'evil:t:3', data: { type: 'dead', id: 'victim', incarnation: 7, by: 'someone-else' } }, T0 + 1);
      expect(m.stats().forged).toBe(3);
      expect(m.get('victim')).toMatchObject({ status: 'alive', incarnation: 5, nick: 'victim' });
      expect(m.placement()).toEqual(['me', 'victim']);
      // a LEFT in the victim's own words counts
      step(deliver({ type: 'left', id: 'victim', incarnation: 5 }), T0 + 2);
      expect(m.get('victim')!.status).toBe('left');
    });
  });
});

function nest(depth: number): Record<string, unknown> {
  let v: Record<string, unknown> = {};
  for (let i = 0; i < depth; i++) v = { v };
  return v;
}
