import { describe, expect, it } from 'vitest';
import { HlcClock, makeHlc } from '../clock/hlc';
import type { MemberSummary } from '../protocol';
import { SeededRng } from '../rng';
import { Chat, HISTORY_REQUEST_INTERVAL_MS, MAX_CLOCK_DRIFT_MS, storageKey } from './chat';
import { CHAT_LIMITS, DIRECT_ROOM, type ChatConfig, type ChatEvent, type ChatIn, type ChatMessage, type ChatOut } from './types';
import { validateChatBroadcast, validateChatMessage } from './validate';

/** Chat draws no random numbers; every protocol takes an Rng all the same. */
const rng = new SeededRng(1);

/** An effect with its event unwrapped (`{ type: 'event', event }` → event): what the tests read. */
type Item = Exclude<ChatOut, { type: 'event' }> | ChatEvent;
const flat = (out: ChatOut[]): Item[] => out.map((e) => (e.type === 'event' ? e.event : e));

/** The `members` input for these live members (chat reads `view.live` only). */
const membersIn = (live: MemberSummary[]): ChatIn => ({ type: 'members', view: { placement: [], away: [], live } });

/** The timestamp part of a chat storage key (`storageKey`). */
const tsOfKey = (key: string): number => Number(key.split('\u0000')[1]);

/**
 * A tiny in-memory cluster: every broadcast reaches every other node, sends go to their
 * target, and the effects each node produced are kept for inspection.
 */
class Net {
  readonly nodes = new Map<string, Chat>();
  readonly effects = new Map<string, Item[]>();
  /** Broadcasts sent so far (their Plumtree ids). */
  private broadcasts = 0;
  now = 1_000_000;

  add(id: string, nick = id, config: Partial<ChatConfig> = {}, rooms?: string[]): Chat {
    const chat = new Chat(id, config, rng);
    this.nodes.set(id, chat);
    this.effects.set(id, []);
    this.input(id, rooms ? { type: 'start', nick, rooms } : { type: 'start', nick });
    return chat;
  }

  input(id: string, input: ChatIn): Item[] {
    const raw: ChatOut[] = [];
    this.nodes.get(id)!.handle(input, this.now, raw);
    const out = flat(raw);
    this.effects.get(id)!.push(...out);
    for (const e of out) {
      if (e.type === 'broadcast') {
        expect(validateChatBroadcast(e.data)).toBeNull();
        // as Plumtree delivers it: to every node, the sender too, from its origin and with
        // the broadcast's id as proof
        const proof = { id: `${id}:t:${++this.broadcasts}` };
        for (const other of this.nodes.keys()) this.input(other, { type: 'deliver', from: id, data: e.data, proof });
      } else if (e.type === 'send' && this.nodes.has(e.to)) {
        expect(validateChatMessage(e.msg)).toBeNull();
        this.input(e.to, { type: 'message', from: id, msg: e.msg });
      }
    }
    return out;
  }

  /** Feed every node the members view built from the nodes' own state. */
  syncMembers(): void {
    const members = [...this.nodes].map(([id, c]) => ({ id, nick: c.nick(), rooms: c.joined() }));
    for (const id of this.nodes.keys()) this.input(id, membersIn(members));
  }

  delivered(id: string): ChatMessage[] {
    return this.effects.get(id)!.flatMap((e) => (e.type === 'delivered' ? [e.message] : []));
  }
}

const msg = (over: Partial<ChatMessage> & { ts: number }): ChatMessage => ({
  id: `x:${over.ts.toString(36)}`,
  room: 'lobby',
  from: 'x',
  nick: 'xavier',
  text: `hello at ${over.ts}`,
  ...over,
});

const deliver = (c: Chat, m: ChatMessage, now = 1_000_000): Item[] => {
  const out: ChatOut[] = [];
  c.handle({ type: 'deliver', from: m.from, data: { type: 'chat.message', message: m }, proof: { id: `${m.from}:t:${m.ts}` } }, now, out);
  return flat(out);
};

const replies = (out: Item[]) => out.filter((e) => e.type === 'reply');

describe('Chat: rooms and sending', () => {
  it('joins the default room at start and announces it in the membership meta', () => {
    const net = new Net();
    const a = net.add('a', 'alice');
    expect(a.joined()).toEqual(['lobby']);
    expect(a.rooms()).toEqual(['lobby']);
    expect(net.effects.get('a')).toContainEqual({ type: 'meta', rooms: ['lobby'], nick: 'alice' });
  });

  it('restores joined rooms given at start instead of the default room', () => {
    const net = new Net();
    const a = net.add('a', 'alice', {}, ['Dev', 'ops', 'bad room']);
    expect(a.joined()).toEqual(['dev', 'ops']);
  });

  it('a send is broadcast, shown locally, persisted and acknowledged', () => {
    const net = new Net();
    net.add('a', 'alice');
    const b = net.add('b', 'bob');
    const out = net.input('a', { type: 'send', req: 1, room: 'lobby', text: 'hi' });
    expect(out.map((e) => e.type)).toEqual(['delivered', 'broadcast', 'reply', 'persist']);
    expect(replies(out)).toEqual([{ type: 'reply', req: 1, ok: true }]);
    const persisted = out.find((e) => e.type === 'persist');
    expect(persisted).toMatchObject({ put: [{ room: 'lobby', text: 'hi', nick: 'alice', from: 'a' }], remove: [] });
    // b keeps the message with the broadcast it came in (its proof); a gets its own back
    // through Plumtree and adds the proof to its copy
    const proven = (p: typeof persisted) => p?.type === 'persist' && { ...p, put: p.put.map((m) => ({ ...m, proof: { id: 'a:t:1' } })) };
    expect(net.effects.get('b')!.find((e) => e.type === 'persist')).toEqual(proven(persisted));
    expect(net.effects.get('a')!.filter((e) => e.type === 'persist')).toEqual([persisted, proven(persisted)]);
    expect(b.history('lobby').map((m) => m.text)).toEqual(['hi']);
    expect(net.delivered('b').map((m) => m.text)).toEqual(['hi']);
  });

  it('refuses sending to a room not joined, empty and overlong messages, with clear errors', () => {
    const net = new Net();
    net.add('a', 'alice', { maxTextLength: 10 });
    const send = (room: string, text: string) => replies(net.input('a', { type: 'send', req: 7, room, text }))[0];
    expect(send('dev', 'hi')).toMatchObject({ ok: false, error: expect.stringContaining('/join dev') });
    expect(send('lobby', '   ')).toMatchObject({ ok: false, error: 'message is empty' });
    expect(send('lobby', 'x'.repeat(11))).toMatchObject({ ok: false, error: 'message is too long: 11 characters (max 10)' });
    expect(send('lobby', 'x'.repeat(10))).toMatchObject({ ok: true });
  });

  it('a room disappears from rooms() when its last member leaves', () => {
    const net = new Net();
    const a = net.add('a', 'alice');
    const b = net.add('b', 'bob');
    net.input('b', { type: 'join', room: 'dev' });
    net.syncMembers();
    expect(a.rooms()).toEqual(['dev', 'lobby']);
    expect(a.members('dev')).toEqual(['b']);
    expect(b.members('lobby')).toEqual(['a', 'b']);

    net.input('a', { type: 'join', room: 'dev', req: 1 });
    net.input('b', { type: 'leave', room: 'dev', req: 2 });
    net.syncMembers();
    expect(a.rooms()).toEqual(['dev', 'lobby']);
    expect(a.members('dev')).toEqual(['a']);

    net.input('a', { type: 'leave', room: 'dev' });
    net.syncMembers();
    expect(a.rooms()).toEqual(['lobby']);
    expect(b.rooms()).toEqual(['lobby']);
    expect(a.members('dev')).toEqual([]);
  });

  it('a member that disappears from the members view takes its rooms with it', () => {
    const net = new Net();
    const a = net.add('a', 'alice');
    a.handle(membersIn([{ id: 'z', nick: 'zed', rooms: ['secret'] }]), 0, []);
    expect(a.rooms()).toEqual(['lobby', 'secret']);
    a.handle(membersIn([]), 0, []);
    expect(a.rooms()).toEqual(['lobby']);
  });

  it('join and leave reply with errors for bad names, unknown rooms and too many rooms', () => {
    const net = new Net();
    net.add('a', 'alice', { maxRooms: 2 });
    const r = (input: ChatIn) => replies(net.input('a', input))[0];
    expect(r({ type: 'join', room: 'no spaces', req: 1 })).toMatchObject({ ok: false });
    expect(r({ type: 'join', room: 'x'.repeat(33), req: 1 })).toMatchObject({ ok: false, error: expect.stringContaining('longer') });
    expect(r({ type: 'join', room: '#Dev', req: 1 })).toMatchObject({ ok: true });
    expect(r({ type: 'join', room: 'ops', req: 1 })).toMatchObject({ ok: false, error: expect.stringContaining('2 rooms') });
    expect(r({ type: 'leave', room: 'ops', req: 1 })).toMatchObject({ ok: false, error: 'you are not in room "ops"' });
    expect(r({ type: 'leave', room: 'dev', req: 1 })).toMatchObject({ ok: true });
    expect(net.nodes.get('a')!.joined()).toEqual(['lobby']);
  });
});

describe('Chat: ordering, dedupe and bounded history', () => {
  it('keeps messages in timestamp order whatever the arrival order, ties by id', () => {
    const c = new Chat('me', {}, rng);
    c.handle({ type: 'start', nick: 'me' }, 0, []);
    for (const ts of [30, 10, 20]) deliver(c, msg({ ts: makeHlc(ts, 0) }));
    deliver(c, msg({ ts: makeHlc(20, 0), id: 'a:tie', from: 'a' }));
    expect(c.history('lobby').map((m) => m.id)).toEqual([
      msg({ ts: makeHlc(10, 0) }).id,
      'a:tie',
      msg({ ts: makeHlc(20, 0) }).id,
      msg({ ts: makeHlc(30, 0) }).id,
    ]);
  });

  it('orders a reply after the message it answers even when the replier clock is behind', () => {
    const a = new Chat('a', {}, rng);
    const b = new Chat('b', {}, rng);
    for (const c of [a, b]) c.handle({ type: 'start', nick: c === a ? 'alice' : 'bob' }, 0, []);
    const fromA: ChatOut[] = [];
    a.handle({ type: 'send', req: 1, room: 'lobby', text: 'question' }, 1_030_000, fromA);
    const question = flat(fromA).find((e) => e.type === 'broadcast')!;
    // b's wall clock runs 30 s behind a's.
    b.handle({ type: 'deliver', from: 'a', data: question.type === 'broadcast' && question.data }, 1_000_000, []);
    b.handle({ type: 'send', req: 2, room: 'lobby', text: 'answer' }, 1_000_001, []);
    expect(b.history('lobby').map((m) => m.text)).toEqual(['question', 'answer']);
  });

  it('delivers a message once however many times it arrives', () => {
    const c = new Chat('me', {}, rng);
    c.handle({ type: 'start', nick: 'me' }, 0, []);
    const m = msg({ ts: makeHlc(5, 0) });
    const first = deliver(c, m);
    const again = deliver(c, m);
    const viaHistory: ChatOut[] = [];
    const proven = { ...m, proof: { id: `${m.from}:t:${m.ts}` } };
    c.handle({ type: 'message', from: 'p', msg: { type: 'chat.history', messages: [proven, proven] } }, 0, viaHistory);
    expect(first.filter((e) => e.type === 'delivered')).toHaveLength(1);
    expect(again).toEqual([]);
    expect(viaHistory).toEqual([]);
    expect(c.history('lobby')).toHaveLength(1);
    expect(c.stats().duplicate).toBe(3);
  });

  it('keeps only the newest historyPerRoom messages and does not take evicted ones back', () => {
    const c = new Chat('me', { historyPerRoom: 3 }, rng);
    c.handle({ type: 'start', nick: 'me' }, 0, []);
    for (let t = 1; t <= 5; t++) deliver(c, msg({ ts: makeHlc(t, 0) }));
    expect(c.history('lobby').map((m) => m.ts)).toEqual([3, 4, 5].map((t) => makeHlc(t, 0)));
    expect(deliver(c, msg({ ts: makeHlc(1, 0) }))).toEqual([]);
    const out = deliver(c, msg({ ts: makeHlc(6, 0) }));
    expect(c.history('lobby').map((m) => m.ts)).toEqual([4, 5, 6].map((t) => makeHlc(t, 0)));
    // Storage follows: the new message is stored, the one pushed out is deleted.
    expect(out.find((e) => e.type === 'persist')).toEqual({
      type: 'persist',
      put: [{ ...msg({ ts: makeHlc(6, 0) }), proof: { id: `x:t:${makeHlc(6, 0)}` } }],
      remove: [storageKey(msg({ ts: makeHlc(3, 0) }))],
    });
  });

  it('merges received timestamps into the clock so the next send sorts after them', () => {
    const clock = new HlcClock();
    const c = new Chat('me', {}, rng, clock);
    c.handle({ type: 'start', nick: 'me' }, 0, []);
    const remote = makeHlc(1_000_000 + 30_000, 5); // 30 s ahead: within the drift bound
    deliver(c, msg({ ts: remote }), 1_000_000);
    const out: ChatOut[] = [];
    c.handle({ type: 'send', req: 1, room: 'lobby', text: 'after' }, 1_000_000, out);
    const history = c.history('lobby');
    expect(history.map((m) => m.text)).toEqual([`hello at ${remote}`, 'after']);
  });

  it('refuses a message dated more than 60 s ahead: 300 far-future broadcasts leave room for real messages', () => {
    const clock = new HlcClock();
    // one author's 300 messages at once are past its rate: this test is about the clock bound
    const c = new Chat('me', { historyPerRoom: 200, originRate: { burst: 1_000, perSec: 25 } }, rng, clock);
    c.handle({ type: 'start', nick: 'me' }, 0, []);
    for (let i = 0; i < 300; i++) deliver(c, msg({ ts: makeHlc(1_000_000 + MAX_CLOCK_DRIFT_MS + 1 + i, 0) }), 1_000_000);
    expect(c.history('lobby')).toHaveLength(0);
    expect(c.stats().futureRefused).toBe(300);
    expect(clock.peek()).toBeLessThan(makeHlc(1_000_001, 0));
    const out: ChatOut[] = [];
    c.handle({ type: 'send', req: 1, room: 'lobby', text: 'real' }, 1_000_000, out);
    expect(replies(flat(out))).toEqual([{ type: 'reply', req: 1, ok: true }]);
    expect(c.history('lobby').map((m) => m.text)).toEqual(['real']);
  });


  it('drops invalid broadcasts and counts them', () => {
    const c = new Chat('me', { maxTextLength: 5 }, rng);
    c.handle({ type: 'start', nick: 'me' }, 0, []);
    const bad: unknown[] = [
      null,
      { type: 'chat.message' },
      { type: 'chat.message', message: { ...msg({ ts: 1 }), text: 42 } },
      { type: 'chat.message', message: { ...msg({ ts: 1 }), room: 'Bad Room' } },
      { type: 'chat.message', message: { ...msg({ ts: 1 }), text: 'x'.repeat(6) } }, // over our own limit
    ];
    for (const data of bad) {
      const out: ChatOut[] = [];
      c.handle({ type: 'deliver', from: 'x', data }, 0, out);
      expect(out).toEqual([]);
    }
    expect(c.history('lobby')).toEqual([]);
    expect(c.stats().invalid).toBe(bad.length);
  });

  it('keeps history for at most maxKnownRooms rooms, dropping the stalest room not joined', () => {
    const c = new Chat('me', { maxRooms: 1, maxKnownRooms: 2 }, rng);
    c.handle({ type: 'start', nick: 'me' }, 0, []);
    deliver(c, msg({ ts: makeHlc(1, 0), room: 'old' }));
    const out = deliver(c, msg({ ts: makeHlc(2, 0), room: 'new' }));
    expect(out.find((e) => e.type === 'persist')).toEqual({
      type: 'persist',
      put: [{ ...msg({ ts: makeHlc(2, 0), room: 'new' }), proof: { id: `x:t:${makeHlc(2, 0)}` } }],
      remove: [storageKey(msg({ ts: makeHlc(1, 0), room: 'old' }))],
    });
    expect(c.history('old')).toEqual([]);
    expect(c.history('new')).toHaveLength(1);
    expect(c.history('lobby')).toEqual([]);
  });
});

describe('Chat: history for late joiners and reloads', () => {
  it('a late joiner gets the recent history of every room from a neighbour', () => {
    const net = new Net();
    net.add('a', 'alice');
    net.add('b', 'bob');
    net.input('a', { type: 'join', room: 'dev' });
    for (let i = 0; i < 5; i++) {
      net.now += 10;
      net.input(i % 2 ? 'a' : 'b', { type: 'send', req: i, room: 'lobby', text: `lobby ${i}` });
    }
    net.input('a', { type: 'send', req: 9, room: 'dev', text: 'dev talk' });

    const c = net.add('c', 'carol');
    expect(c.history('lobby')).toEqual([]);
    const out = net.input('c', { type: 'neighborUp', peer: 'a' });
    expect(out).toEqual([{ type: 'send', to: 'a', msg: { type: 'chat.historyReq', session: expect.any(Number) } }]);

    expect(c.history('lobby').map((m) => m.text)).toEqual([0, 1, 2, 3, 4].map((i) => `lobby ${i}`));
    expect(c.history('dev').map((m) => m.text)).toEqual(['dev talk']);
    // Shown only for joined rooms; the rest waits in history until c joins.
    expect(net.delivered('c').map((m) => m.text)).toEqual([0, 1, 2, 3, 4].map((i) => `lobby ${i}`));
    const persisted = net.effects.get('c')!.flatMap((e) => (e.type === 'persist' ? e.put : []));
    expect(persisted.map((m) => m.text).sort()).toEqual(['dev talk', ...[0, 1, 2, 3, 4].map((i) => `lobby ${i}`)]);
    expect(c.history('lobby')).toEqual(net.nodes.get('a')!.history('lobby'));
  });

  it('holds each author to originRate: a flood from one author cannot push others out of the history', () => {
    const c = new Chat('me', { historyPerRoom: 200 }, rng);
    c.handle({ type: 'start', nick: 'me' }, 1_000_000, []);
    deliver(c, msg({ from: 'y', id: 'y:1', ts: makeHlc(999_000, 0), text: 'honest' }));
    // 1,000 messages from x within one second
    for (let i = 0; i < 1_000; i++) deliver(c, msg({ ts: makeHlc(999_100, i) }), 1_000_000 + i);
    expect(c.stats().rateLimited).toBe(1_000 - 100 - 24);
    expect(c.history('lobby').map((m) => m.text)).toContain('honest');
    expect(c.history('lobby').filter((m) => m.from === 'x')).toHaveLength(124);
    // other authors are not affected
    deliver(c, msg({ from: 'z', id: 'z:1', ts: makeHlc(999_200, 0), text: 'still heard' }), 1_001_000);
    expect(c.history('lobby').map((m) => m.text)).toContain('still heard');
  });

  it('refuses our own sends past originRate with an error, and accepts them again once the rate allows', () => {
    const c = new Chat('me', { originRate: { burst: 3, perSec: 1 } }, rng);
    c.handle({ type: 'start', nick: 'me' }, 1_000_000, []);
    const send = (req: number, now: number) => {
      const out: ChatOut[] = [];
      c.handle({ type: 'send', req, room: 'lobby', text: `m${req}` }, now, out);
      return replies(flat(out))[0];
    };
    expect([1, 2, 3].map((r) => send(r, 1_000_000)!.ok)).toEqual([true, true, true]);
    expect(send(4, 1_000_000)).toMatchObject({ ok: false, error: expect.stringContaining('sending too fast') });
    expect(send(5, 1_001_000)).toMatchObject({ ok: true });
    expect(c.history('lobby').map((m) => m.text)).toEqual(['m1', 'm2', 'm3', 'm5']);
  });

  it('splits a large history answer into bounded batches', () => {
    const a = new Chat('a', { historyPerRoom: 500 }, rng);
    a.handle({ type: 'start', nick: 'alice' }, 0, []);
    // 250 messages of one author, 50 ms apart: within its rate (25 a second after 100 at once)
    for (let t = 1; t <= 250; t++) deliver(a, msg({ ts: makeHlc(t, 0), text: 'y'.repeat(2000) }), 1_000_000 + t * 50);
    const out: ChatOut[] = [];
    a.handle({ type: 'message', from: 'b', msg: { type: 'chat.historyReq', rooms: ['lobby'] } }, 0, out);
    const batches = out.flatMap((e) => (e.type === 'send' && e.msg.type === 'chat.history' ? [e.msg.messages] : []));
    expect(batches.length).toBeGreaterThan(1);
    expect(batches.flat()).toHaveLength(250);
    for (const b of batches) {
      expect(b.length).toBeLessThanOrEqual(CHAT_LIMITS.maxHistoryBatch);
      expect(JSON.stringify(b).length).toBeLessThan(128 * 1024);
      expect(validateChatMessage({ type: 'chat.history', messages: b })).toBeNull();
    }
  });

  it('answers one history request per neighbour per interval', () => {
    const a = new Chat('a', {}, rng);
    a.handle({ type: 'start', nick: 'alice' }, 0, []);
    deliver(a, msg({ ts: 1 }));
    const ask = (now: number) => {
      const out: ChatOut[] = [];
      a.handle({ type: 'message', from: 'b', msg: { type: 'chat.historyReq' } }, now, out);
      return out.length;
    };
    expect(ask(1000)).toBe(1);
    expect(ask(1001)).toBe(0);
    expect(ask(1000 + HISTORY_REQUEST_INTERVAL_MS)).toBe(1);
    expect(a.stats().historyRateLimited).toBe(1);
  });

  it('a neighbour that goes down and comes back within the interval is still rate limited, later it is answered', () => {
    const a = new Chat('a', {}, rng);
    a.handle({ type: 'start', nick: 'alice' }, 0, []);
    deliver(a, msg({ ts: 1 }));
    const ask = (now: number) => {
      const out: ChatOut[] = [];
      a.handle({ type: 'message', from: 'b', msg: { type: 'chat.historyReq', session: 7 } }, now, out);
      return out.length;
    };
    const down = (now: number) => {
      const out: ChatOut[] = [];
      a.handle({ type: 'neighborDown', peer: 'b' }, now, out);
      return out;
    };
    expect(ask(1000)).toBe(1);
    expect(down(1001)).toEqual([]);
    expect(ask(1002)).toBe(0);
    expect(down(1000 + HISTORY_REQUEST_INTERVAL_MS)).toEqual([]);
    expect(ask(1000 + HISTORY_REQUEST_INTERVAL_MS + 1)).toBe(1);
    expect(a.stats().historyRateLimited).toBe(1);
  });

  it('names stored messages by room, timestamp and id, the keys stores written by earlier versions use', () => {
    const m = msg({ ts: makeHlc(5, 3), room: 'dev' });
    expect(storageKey(m)).toBe(`dev\u0000${makeHlc(5, 3)}\u0000${m.id}`);
    // keys sort by room, then (for timestamps of equal length) by time
    const keys = [msg({ ts: makeHlc(2_000_000, 0) }), msg({ ts: makeHlc(1_000_000, 0), room: 'dev' }), msg({ ts: makeHlc(1_000_000, 0) })].map(storageKey);
    expect([...keys].sort()).toEqual([keys[1], keys[2], keys[0]]);
  });

  it('answers a reloaded tab (same id, new session) right away', () => {
    const a = new Chat('a', {}, rng);
    a.handle({ type: 'start', nick: 'alice' }, 0, []);
    deliver(a, msg({ ts: 1 }));
    const ask = (now: number, session: number) => {
      const out: ChatOut[] = [];
      a.handle({ type: 'message', from: 'b', msg: { type: 'chat.historyReq', session } }, now, out);
      return out.length;
    };
    expect(ask(1000, 500)).toBe(1);
    expect(ask(1001, 500)).toBe(0);
    expect(ask(1002, 900)).toBe(1);
  });

  it('a reloaded tab restores its history from storage and keeps its message ids unique', () => {
    const net = new Net();
    net.add('a', 'alice');
    net.input('a', { type: 'send', req: 1, room: 'lobby', text: 'before reload' });
    // what storage holds: the last record put under each key (the message, then again with its proof)
    const puts = net.effects.get('a')!.flatMap((e) => (e.type === 'persist' ? e.put : []));
    const stored = [...new Map(puts.map((m) => [storageKey(m), m])).values()];
    expect(stored).toHaveLength(1);
    expect(stored[0]!.proof).toEqual({ id: 'a:t:1' });

    // Same node id, a fresh clock, and the same wall-clock millisecond: without merging the
    // restored timestamps the HLC would hand out the same timestamp, hence the same id.
    const reloaded = new Chat('a', {}, rng);
    const out: ChatOut[] = [];
    reloaded.handle({ type: 'load', records: stored }, net.now, out);
    reloaded.handle({ type: 'start', nick: 'alice' }, net.now, out);
    expect(flat(out).filter((e) => e.type === 'delivered')).toEqual([]);
    expect(reloaded.history('lobby').map((m) => m.text)).toEqual(['before reload']);
    reloaded.handle({ type: 'send', req: 2, room: 'lobby', text: 'after reload' }, net.now, out);
    const h = reloaded.history('lobby');
    expect(h.map((m) => m.text)).toEqual(['before reload', 'after reload']);
    expect(new Set(h.map((m) => m.id)).size).toBe(2);
  });

  it('trims a stored history larger than the bounds and asks storage to delete the rest', () => {
    const c = new Chat('me', { historyPerRoom: 2 }, rng);
    const stored = [4, 1, 3, 2].map((t) => msg({ ts: makeHlc(t, 0) }));
    const out: ChatOut[] = [];
    c.handle({ type: 'load', records: stored }, 0, out);
    expect(c.history('lobby').map((m) => m.ts)).toEqual([3, 4].map((t) => makeHlc(t, 0)));
    expect(out).toHaveLength(1);
    const p = out[0]!;
    expect(p.type === 'persist' && p.put).toEqual([]);
    expect(p.type === 'persist' && p.remove.map(tsOfKey).sort((x, y) => x - y)).toEqual([1, 2].map((t) => makeHlc(t, 0)));
  });

  it('does not restore garbage or other members\' /tell messages from storage', () => {
    const c = new Chat('me', {}, rng);
    c.handle({ type: 'load', records: [
      { bogus: true } as unknown as ChatMessage,
      msg({ ts: 3, room: DIRECT_ROOM, to: 'someone-else' }),
      msg({ ts: 4 }),
    ] }, 0, []);
    expect(c.history('lobby')).toHaveLength(1);
    expect(c.history(DIRECT_ROOM)).toEqual([]);
  });
});

describe('Chat: nicknames and /tell', () => {
  it('refuses a room message whose author is not the broadcast origin, and one with an oversized nick', () => {
    const c = new Chat('me', {}, rng);
    c.handle({ type: 'start', nick: 'me' }, 1_000_000, []);
    const out: ChatOut[] = [];
    // the origin (who signed the broadcast, in the runtime) is 'evil'; the message claims 'x'
    c.handle({ type: 'deliver', from: 'evil', data: { type: 'chat.message', message: msg({ ts: makeHlc(1, 0) }) }, proof: { id: 'evil:t:1' } }, 1_000_000, out);
    c.handle({ type: 'deliver', from: 'x', data: { type: 'chat.message', message: msg({ ts: makeHlc(2, 0), nick: 'n'.repeat(CHAT_LIMITS.maxNickLength + 1) }) }, proof: { id: 'x:t:2' } }, 1_000_000, out);
    expect(flat(out).filter((e) => e.type === 'delivered')).toEqual([]);
    expect(c.history('lobby')).toEqual([]);
    expect(c.stats().forged).toBe(1);
    expect(c.stats().invalid).toBe(1);
    // a history entry without its author's broadcast is refused too
    c.handle({ type: 'message', from: 'evil', msg: { type: 'chat.history', messages: [msg({ ts: makeHlc(3, 0) })] } }, 1_000_000, out);
    expect(c.history('lobby')).toEqual([]);
    expect(c.stats().forged).toBe(2);
  });

  it('changing the nick updates the meta and the nick on later messages', () => {
    const net = new Net();
    const a = net.add('a', 'alice');
    const b = net.add('b', 'bob');
    net.input('a', { type: 'send', req: 1, room: 'lobby', text: 'one' });
    const out = net.input('a', { type: 'setNick', nick: 'alicia', req: 2 });
    expect(out).toEqual([
      { type: 'meta', rooms: ['lobby'], nick: 'alicia' },
      { type: 'reply', req: 2, ok: true },
    ]);
    expect(a.nick()).toBe('alicia');
    net.input('a', { type: 'send', req: 3, room: 'lobby', text: 'two' });
    expect(b.history('lobby').map((m) => `${m.nick}: ${m.text}`)).toEqual(['alice: one', 'alicia: two']);

    net.syncMembers();
    const tell = replies(net.input('b', { type: 'tell', req: 4, nick: 'alicia', text: 'hey' }));
    expect(tell).toEqual([{ type: 'reply', req: 4, ok: true }]);
  });

  it('refuses an invalid nick and falls back to a default one at start', () => {
    const net = new Net();
    const a = net.add('node-1', 'bad nick');
    expect(a.nick()).toBe('anon-node1');
    const r = replies(net.input('node-1', { type: 'setNick', nick: 'has space', req: 1 }));
    expect(r[0]).toMatchObject({ ok: false, error: expect.stringContaining('no spaces') });
    expect(a.nick()).toBe('anon-node1');
  });

  it('a /tell reaches only the recipient and is shown to both ends', () => {
    const net = new Net();
    const a = net.add('a', 'alice');
    const b = net.add('b', 'bob');
    const c = net.add('c', 'carol');
    net.syncMembers();
    const out = net.input('a', { type: 'tell', req: 1, nick: 'Bob', text: 'psst' });
    expect(out.find((e) => e.type === 'send')).toMatchObject({ to: 'b', msg: { type: 'chat.tell' } });
    expect(out.some((e) => e.type === 'broadcast')).toBe(false);
    expect(net.delivered('a').map((m) => [m.text, m.to])).toEqual([['psst', 'b']]);
    expect(net.delivered('b').map((m) => [m.text, m.from])).toEqual([['psst', 'a']]);
    expect(net.delivered('c')).toEqual([]);
    expect(b.history(DIRECT_ROOM)).toHaveLength(1);
    expect(a.history(DIRECT_ROOM)).toHaveLength(1);
    expect(c.history(DIRECT_ROOM)).toEqual([]);

    // Never served to neighbours.
    const served = net.input('b', { type: 'message', from: 'c', msg: { type: 'chat.historyReq' } });
    expect(served).toEqual([]);
  });

  it('a /tell to an unknown, ambiguous or own nick is an error', () => {
    const net = new Net();
    net.add('a', 'alice');
    net.add('b', 'bob');
    net.add('b2', 'bob');
    net.syncMembers();
    const tell = (nick: string) => replies(net.input('a', { type: 'tell', req: 1, nick, text: 'hi' }))[0];
    expect(tell('dave')).toEqual({ type: 'reply', req: 1, ok: false, error: 'no member is named "dave"' });
    expect(tell('bob')).toEqual({ type: 'reply', req: 1, ok: false, error: 'nickname "bob" is ambiguous: 2 members use it' });
    expect(tell('alice')).toMatchObject({ ok: false, error: expect.stringContaining('is you') });
    expect(net.effects.get('a')!.some((e) => e.type === 'send')).toBe(false);
  });

  it('rejects a /tell that is not addressed to us or not sent by its author', () => {
    const c = new Chat('me', {}, rng);
    const tell = (from: string, m: ChatMessage) => {
      const out: ChatOut[] = [];
      c.handle({ type: 'message', from, msg: { type: 'chat.tell', message: m } }, 0, out);
      return flat(out);
    };
    expect(tell('x', msg({ ts: 1, room: DIRECT_ROOM, to: 'other' }))).toEqual([]);
    expect(tell('mallory', msg({ ts: 2, room: DIRECT_ROOM, to: 'me' }))).toEqual([]);
    expect(tell('x', msg({ ts: 3, room: DIRECT_ROOM, to: 'me' })).map((e) => e.type)).toEqual(['delivered', 'persist']);
    expect(c.stats().tellsRejected).toBe(2);
  });
});
