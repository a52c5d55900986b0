/**
 * An in-memory fake cluster implementing P2PApi, so the UI can be developed, tested and
 * screenshot without signaling or WebRTC. Seeded: the same options give the same cluster.
 *
 * Behaviour worth knowing when testing the UI against it:
 * - kv.put rejects invalid keys (empty, longer than 512) and values over 64 KiB; keys starting
 *   with `unreachable/` fail with a quorum error, like a real put whose replicas are down.
 * - chat.send rejects when not in the room or when the text is empty/too long; /tell to an
 *   unknown nickname rejects. Fake members answer now and then.
 * - With `churn`, members go suspect, then dead, then are forgotten, and new ones join.
 */
import { HLC_LOGICAL } from '../core/clock/hlc';
import type {
  ChatMessage,
  KvEntryInfo,
  MemberView,
  NodeEvent,
  NodeId,
  NodeInfo,
  P2PApi,
} from '../runtime/api';

export interface MockNodeOptions {
  /** This tab's nickname (default: "you"). */
  nick?: string;
  cluster?: string;
  /** Fake members besides this tab (default 5; 0 gives the empty "alone" state). */
  peers?: number;
  seed?: number;
  /** Fake members post chat messages and write keys/segments now and then (default true). */
  chatter?: boolean;
  /** Members fail and new ones join over time (default true). */
  churn?: boolean;
  /** Number of seeded KV keys (default 140, enough to page). */
  keys?: number;
  /** Simulated request latency in ms (default 40..120). */
  latencyMs?: [number, number];
}

export interface MockNode extends P2PApi {
  /** Stops every timer (leave() does too). */
  dispose(): void;
}

const NICKS = ['ada', 'grace', 'linus', 'barbara', 'ken', 'radia', 'edsger', 'leslie', 'frances', 'donald', 'margaret', 'tony'];
const LINES = [
  'anyone seen the replication lag graph?',
  'joined from my laptop, hi all',
  'the broadcast tree looks tidy now',
  'closing a tab to test re-replication',
  'brb',
  'keys are back to 3 copies',
  'nice, the plumtree pruned the duplicate edge',
  'what does /tell do again?',
];
/** Counter names follow the real node's: `in.<type>`, `out.<type>`, `bytes.in`, `drop.<code>`. */
const MSG_TYPES = ['pt.gossip', 'pt.ihave', 'pt.graft', 'pt.prune', 'mem.alive', 'mem.ping', 'mem.ack', 'hpv.shuffle', 'kv.put', 'kv.get'];
const ROOM_RE = /^[\w.-]{1,32}$/;
const MAX_KEY = 512;
const MAX_VALUE = 64 * 1024;
const MAX_TEXT = 2000;
const N_REPLICAS = 3;

interface Member extends MemberView {
  diedAt?: number;
  suspectAt?: number;
}
interface KvRecord {
  value: unknown;
  version: { ts: number; node: NodeId };
}
interface Waiter {
  afterId: number;
  take: boolean;
  resolve: (item: { id: number; value: unknown }) => void;
}
interface Queue {
  lastId: number;
  items: { id: number; value: unknown }[];
  waiters: Waiter[];
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Rough msgpack-ish size, enough to reject oversized values like the real node. */
function approxSize(v: unknown): number {
  if (v instanceof Uint8Array) return v.byteLength;
  try {
    return JSON.stringify(v)?.length ?? 0;
  } catch {
    return Infinity;
  }
}

export function createMockNode(opts: MockNodeOptions = {}): MockNode {
  const rand = mulberry32(opts.seed ?? 7);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const hexId = () => Array.from({ length: 16 }, () => Math.floor(rand() * 16).toString(16)).join('');
  const [latMin, latMax] = opts.latencyMs ?? [40, 120];
  const chatter = opts.chatter ?? true;
  const churn = opts.churn ?? true;
  const cluster = opts.cluster ?? 'default';

  const listeners = new Set<(e: NodeEvent) => void>();
  const emit = (e: NodeEvent) => {
    for (const l of [...listeners]) {
      try {
        l(e);
      } catch (err) {
        console.error('mock node listener failed', err);
      }
    }
  };
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const later = (ms: number, f: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      f();
    }, ms);
    timers.add(t);
  };
  const delay = () => new Promise<void>((r) => later(latMin + rand() * (latMax - latMin), r));
  let hlcLast = 0;
  const hlc = () => {
    hlcLast = Math.max(hlcLast + 1, Date.now() * HLC_LOGICAL);
    return hlcLast;
  };

  // ---- members and overlay -------------------------------------------------------------
  const selfId = hexId();
  let nick = opts.nick ?? 'you';
  let state: NodeInfo['state'] = 'joining';
  const members = new Map<NodeId, Member>();
  members.set(selfId, { id: selfId, nick, status: 'alive', incarnation: 1, active: [], rooms: ['lobby'] });
  let nickIdx = 0;
  const nextNick = () => NICKS[nickIdx++ % NICKS.length]! + (nickIdx > NICKS.length ? String(nickIdx) : '');
  const passiveOnly = Array.from({ length: 4 }, hexId);

  const live = (m: Member) => m.status === 'alive' || m.status === 'suspect';
  const liveMembers = () => [...members.values()].filter(live);
  const link = (a: Member, b: Member) => {
    if (a.id === b.id || a.active.includes(b.id)) return;
    a.active = [...a.active, b.id];
    b.active = [...b.active, a.id];
  };
  const unlink = (a: Member, b: Member) => {
    a.active = a.active.filter((x) => x !== b.id);
    b.active = b.active.filter((x) => x !== a.id);
  };
  /** Connect m to up to k random live members that still have room (active view 5). */
  const connect = (m: Member, k: number) => {
    const candidates = liveMembers().filter((o) => o.id !== m.id && o.active.length < 5 && !o.active.includes(m.id));
    for (let i = 0; i < k && candidates.length; i++) {
      const o = candidates.splice(Math.floor(rand() * candidates.length), 1)[0]!;
      link(m, o);
    }
  };
  const roomsFor = () => {
    const r = ['lobby'];
    if (rand() < 0.5) r.push('random');
    if (rand() < 0.3) r.push('ops');
    return r;
  };
  const addMember = (): Member => {
    const m: Member = { id: hexId(), nick: nextNick(), status: 'alive', incarnation: 1, active: [], rooms: roomsFor() };
    members.set(m.id, m);
    connect(m, 2 + Math.floor(rand() * 2));
    return m;
  };
  const self = () => members.get(selfId)!;
  for (let i = 0; i < (opts.peers ?? 5); i++) addMember();
  // Make sure this tab has neighbours when there is anyone to connect to.
  if (members.size > 1 && self().active.length === 0) connect(self(), 2);
  let eager = new Set<NodeId>();
  /** Plumtree-ish: duplicates have pruned all but two neighbours to lazy; a lost eager link is regrafted. */
  const repairTree = () => {
    const act = self().active;
    eager = new Set([...eager].filter((x) => act.includes(x)));
    for (const p of act) if (!eager.has(p) && eager.size < 2) eager.add(p);
  };
  repairTree();

  const memberViews = (): MemberView[] =>
    [...members.values()].map((m) => ({
      id: m.id,
      nick: m.id === selfId ? nick : m.nick,
      status: m.status,
      incarnation: m.incarnation,
      active: [...m.active],
      rooms: m.id === selfId ? [...joined] : [...m.rooms],
    }));

  // ---- chat ----------------------------------------------------------------------------
  const joined = new Set<string>(['lobby']);
  const history = new Map<string, ChatMessage[]>();
  let msgSeq = 0;
  const post = (from: Member, room: string, text: string, to?: NodeId): ChatMessage => {
    const m: ChatMessage = {
      id: `${from.id.slice(0, 6)}-${++msgSeq}`,
      room,
      from: from.id,
      nick: from.id === selfId ? nick : from.nick,
      text,
      ts: hlc(),
    };
    if (to) m.to = to;
    else {
      const list = history.get(room) ?? [];
      list.push(m);
      history.set(room, list);
    }
    if (to ? to === selfId || from.id === selfId : joined.has(room)) emit({ type: 'chat', message: m });
    return m;
  };
  {
    // A little history so a fresh tab shows what late joiners see.
    const others = liveMembers().filter((m) => m.id !== selfId);
    const base = Date.now() - 9 * 60_000;
    const seed = [
      'morning! cluster is up',
      'KV looks healthy, every key has 3 replicas',
      'try /join ops if you are on call',
      'I will close my tab in a bit to test re-replication',
    ];
    seed.forEach((text, i) => {
      const from = others[i % Math.max(1, others.length)];
      if (!from) return;
      const list = history.get('lobby') ?? [];
      list.push({ id: `seed-${i}`, room: 'lobby', from: from.id, nick: from.nick, text, ts: (base + i * 95_000) * HLC_LOGICAL });
      history.set('lobby', list);
    });
  }
  const findRoomMember = (room: string) => liveMembers().filter((m) => m.id !== selfId && m.rooms.includes(room));

  // ---- kv ------------------------------------------------------------------------------
  const kv = new Map<string, KvRecord>();
  const preferenceList = (key: string): NodeId[] => {
    const ids = liveMembers().map((m) => m.id);
    const h = fnv1a(key);
    return ids
      .map((id) => ({ id, d: (fnv1a(id) - h) >>> 0 }))
      .sort((a, b) => a.d - b.d)
      .slice(0, N_REPLICAS)
      .map((x) => x.id);
  };
  const seedWriter = () => pick([...members.keys()]);
  const seedKv = (key: string, value: unknown) =>
    kv.set(key, { value, version: { ts: (Date.now() - Math.floor(rand() * 3_600_000)) * HLC_LOGICAL, node: seedWriter() } });
  seedKv('config/replication', { n: 3, w: 2, r: 2 });
  seedKv('config/hyparview', { active: 5, passive: 30, arwl: 6, prwl: 3, shuffleMs: 10_000 });
  seedKv('greeting', 'hello from the cluster');
  seedKv('counter/visits', 42);
  seedKv('flags/dark-mode', false);
  seedKv('blob/avatar', new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]));
  for (const m of members.values()) if (m.id !== selfId) seedKv(`users/${m.nick}`, { nick: m.nick, rooms: m.rooms, since: '2024-05-01' });
  const nKeys = opts.keys ?? 140;
  for (let i = 1; i <= nKeys; i++) {
    seedKv(`sensor/${String(i).padStart(3, '0')}`, { celsius: Math.round((18 + rand() * 8) * 10) / 10, ok: rand() > 0.1 });
  }
  const checkKey = (key: unknown): string => {
    if (typeof key !== 'string' || key.length === 0) throw new Error('invalid key: must be a non-empty string');
    if (key.length > MAX_KEY) throw new Error(`invalid key: longer than ${MAX_KEY} characters`);
    return key;
  };

  // ---- segments ------------------------------------------------------------------------
  const queues = new Map<string, Queue>();
  const queue = (key: string): Queue => {
    let q = queues.get(key);
    if (!q) queues.set(key, (q = { lastId: 0, items: [], waiters: [] }));
    return q;
  };
  const wake = (q: Queue) => {
    for (const w of [...q.waiters]) {
      const idx = q.items.findIndex((it) => it.id > w.afterId);
      if (idx < 0) continue;
      const item = q.items[idx]!;
      if (w.take) q.items.splice(idx, 1);
      q.waiters.splice(q.waiters.indexOf(w), 1);
      w.resolve({ ...item });
    }
  };
  const segPut = (key: string, value: unknown): number => {
    const q = queue(key);
    const id = ++q.lastId;
    q.items.push({ id, value });
    wake(q);
    emit({ type: 'segments', key });
    return id;
  };
  for (const [i, job] of ['resize image 17', 'send digest email', 'rebuild search index'].entries()) segPut('jobs', { job, attempt: 1, n: i + 1 });
  segPut('events', 'tab opened');
  segPut('events', 'tab closed');
  const waitFor = (key: string, afterId: number, take: boolean, o?: { signal?: AbortSignal; timeoutMs?: number }) =>
    new Promise<{ id: number; value: unknown }>((resolve, reject) => {
      checkKey(key);
      const q = queue(key);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        o?.signal?.removeEventListener('abort', onAbort);
      };
      const w: Waiter = {
        afterId,
        take,
        resolve: (item) => {
          done();
          if (take) emit({ type: 'segments', key });
          resolve(item);
        },
      };
      const drop = (err: Error) => {
        const i = q.waiters.indexOf(w);
        if (i >= 0) q.waiters.splice(i, 1);
        done();
        reject(err);
      };
      const onAbort = () => drop(new DOMException(`${take ? 'take' : 'peek'} on "${key}" aborted`, 'AbortError'));
      if (o?.signal?.aborted) return onAbort();
      o?.signal?.addEventListener('abort', onAbort);
      if (o?.timeoutMs !== undefined) {
        timer = setTimeout(() => drop(Object.assign(new Error(`timeout: no item in "${key}" after id ${afterId}`), { name: 'TimeoutError' })), o.timeoutMs);
      }
      q.waiters.push(w);
      // Answer after a network-ish delay, like a remote owner would.
      later(latMin / 2, () => wake(q));
    });

  // ---- stats ---------------------------------------------------------------------------
  const counters: Record<string, number> = { 'bytes.in': 0, 'bytes.out': 0, 'drop.malformed': 0, 'drop.duplicate': 0, 'frames.in': 0, 'frames.out': 0, 'links.dials': 0 };
  for (const t of MSG_TYPES) counters[`in.${t}`] = counters[`out.${t}`] = 0;
  const traffic = () => {
    const n = self().active.length;
    if (state === 'left' || n === 0) return;
    const burst = 1 + Math.sin(Date.now() / 9000) * 0.6;
    const add = (k: string, v: number) => (counters[k] = (counters[k] ?? 0) + Math.max(0, Math.round(v)));
    for (const t of MSG_TYPES) {
      const base = t === 'mem.ping' || t === 'mem.ack' ? n / 2 : t === 'pt.gossip' ? 6 * burst : t === 'pt.ihave' ? 4 * burst : t === 'mem.alive' ? 1 : rand() * 2;
      const i = base * (0.7 + rand() * 0.6);
      const o = base * (0.6 + rand() * 0.6);
      add(`in.${t}`, i);
      add(`out.${t}`, o);
      add('frames.in', i);
      add('frames.out', o);
    }
    add('bytes.in', 900 * n * burst * (0.8 + rand() * 0.4));
    add('bytes.out', 800 * n * burst * (0.8 + rand() * 0.4));
    if (rand() < 0.25) add('drop.duplicate', 1 + rand() * 3);
    if (rand() < 0.03) add('drop.malformed', 1);
  };

  // ---- the simulated cluster's life ------------------------------------------------------
  const tick = () => {
    if (state === 'left') return;
    traffic();
    emit({ type: 'stats' });
    const now = Date.now();
    let changed = false;
    let peersChanged = false;
    if (churn) {
      for (const m of members.values()) {
        if (m.status === 'suspect' && now - (m.suspectAt ?? now) > 4000) {
          m.status = 'dead';
          m.diedAt = now;
          for (const o of members.values()) {
            if (o.active.includes(m.id)) {
              unlink(o, m);
              if (o.id === selfId) peersChanged = true;
              if (o.status === 'alive') connect(o, 1);
            }
          }
          changed = true;
        } else if ((m.status === 'dead' || m.status === 'left') && now - (m.diedAt ?? now) > 15_000) {
          members.delete(m.id);
          changed = true;
        }
      }
      const others = liveMembers().filter((m) => m.id !== selfId);
      if (rand() < 0.07 && others.length > 3) {
        const victim = pick(others.filter((m) => m.status === 'alive'));
        if (victim && rand() < 0.5) {
          victim.status = 'suspect';
          victim.suspectAt = now;
        } else if (victim) {
          victim.status = 'left';
          victim.diedAt = now;
          for (const o of members.values()) if (o.active.includes(victim.id)) unlink(o, victim);
        }
        changed = true;
      } else if (rand() < 0.05 && others.length < 7 && others.length + members.size < 14) {
        const m = addMember();
        if (self().active.length < 3 && !m.active.includes(selfId)) link(self(), m);
        changed = true;
      }
      if (self().active.length === 0 && liveMembers().length > 1) connect(self(), 2);
    }
    const before = [...eager].join();
    repairTree();
    if (changed || peersChanged || before !== [...eager].join()) {
      if (state === 'joining' || state === 'alone') state = self().active.length ? 'joined' : 'alone';
      emit({ type: 'members' });
      emit({ type: 'peers' });
      emit({ type: 'rooms' });
    }
    if (chatter && rand() < 0.12) {
      const room = pick([...joined]);
      const from = pick(findRoomMember(room).length ? findRoomMember(room) : [undefined]);
      if (from) post(from, room, pick(LINES));
    }
    if (chatter && rand() < 0.08) {
      const key = `sensor/${String(1 + Math.floor(rand() * Math.max(1, nKeys))).padStart(3, '0')}`;
      kv.set(key, { value: { celsius: Math.round((18 + rand() * 8) * 10) / 10, ok: true }, version: { ts: hlc(), node: seedWriter() } });
      emit({ type: 'kv', key });
    }
    if (chatter && rand() < 0.06) segPut('jobs', { job: pick(['thumbnail', 'reindex', 'email', 'backup']), attempt: 1 });
  };
  const interval = setInterval(tick, 1000);
  later(400, () => {
    state = self().active.length ? 'joined' : 'alone';
    emit({ type: 'peers' });
    emit({ type: 'members' });
  });

  const dispose = () => {
    clearInterval(interval);
    for (const t of timers) clearTimeout(t);
    timers.clear();
  };

  const node: MockNode = {
    id: selfId,
    ready: Promise.resolve(),
    peers: () => [...self().active],
    passive: () => [
      ...liveMembers()
        .filter((m) => m.id !== selfId && !self().active.includes(m.id))
        .map((m) => m.id),
      ...passiveOnly,
    ],
    members: () => liveMembers().map((m) => m.id),
    async leave() {
      state = 'left';
      self().status = 'left';
      dispose();
      emit({ type: 'members' });
      emit({ type: 'peers' });
    },
    stats: () => ({ ...counters }),
    // fake paths: mostly direct, every third neighbour relayed, one peer out of reach
    links: () => [
      ...self().active.map((peer, i) => ({
        peer,
        state: 'open' as const,
        path: { type: i % 3 === 2 ? ('relay' as const) : ('host' as const), local: i % 3 === 2 ? ('relay' as const) : ('host' as const), remote: 'host' as const, rttMs: i % 3 === 2 ? 24.5 : 0.8, protocol: 'udp', relayProtocol: i % 3 === 2 ? 'udp' : null },
        since: Date.now() - 60_000,
      })),
      ...passiveOnly.slice(0, 1).map((peer) => ({
        peer,
        state: 'unreachable' as const,
        path: null,
        since: Date.now() - 5_000,
        reason: 'ICE failed: no candidate pair worked (here: 2 host, 1 srflx; peer: 1 host, 1 srflx): a firewall or NAT blocks the path; a TURN server (TURN_URLS) would relay it',
        failures: 2,
        retryInMs: 4_000,
      })),
    ],
    info: () => ({
      id: selfId,
      nick,
      cluster,
      signaling: [{ url: 'ws://mock.invalid/signaling', state: state === 'left' ? 'closed' : 'open' }],
      eager: [...eager],
      lazy: self().active.filter((p) => !eager.has(p)),
      state,
      ice: { policy: 'all' as const, servers: ['stun:stun.example.org:3478'], source: 'server' as const, credentialExpiresInS: null, error: null },
    }),
    memberViews,
    on(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    chat: {
      async send(text, room = 'lobby') {
        await delay();
        if (!joined.has(room)) throw new Error(`not in room "${room}": /join ${room} first`);
        if (text.trim() === '') throw new Error('empty message');
        if (text.length > MAX_TEXT) throw new Error(`message too long (${text.length} > ${MAX_TEXT} characters)`);
        post(self(), room, text);
        const others = findRoomMember(room);
        if (others.length && (text.includes('?') || rand() < 0.4)) {
          const from = pick(others);
          later(900 + rand() * 1500, () => post(from, room, `@${nick} ${text.includes('?') ? 'good question!' : 'got it'} “${text.slice(0, 40)}”`));
        }
      },
      history: (room = 'lobby') => [...(history.get(room) ?? [])].sort((a, b) => a.ts - b.ts),
      async join(room) {
        await delay();
        if (!ROOM_RE.test(room)) throw new Error(`invalid room name "${room}" (letters, digits, . _ -; up to 32)`);
        joined.add(room);
        emit({ type: 'rooms' });
        emit({ type: 'members' });
      },
      async leave(room) {
        await delay();
        if (!joined.has(room)) throw new Error(`not in room "${room}"`);
        joined.delete(room);
        emit({ type: 'rooms' });
        emit({ type: 'members' });
      },
      rooms: () => [...new Set([...joined, ...liveMembers().flatMap((m) => m.rooms)])].sort(),
      members: (room = 'lobby') => [
        ...(joined.has(room) ? [selfId] : []),
        ...liveMembers()
          .filter((m) => m.id !== selfId && m.rooms.includes(room))
          .map((m) => m.id),
      ],
      setNick(n) {
        const v = n.trim();
        if (!v || v.length > 32 || /\s/.test(v)) throw new Error('invalid nickname: 1–32 characters, no spaces');
        nick = v;
        self().nick = v;
        self().incarnation++;
        emit({ type: 'members' });
      },
      joined: () => [...joined],
      async tell(toNick, text) {
        await delay();
        const target = liveMembers().find((m) => m.id !== selfId && m.nick === toNick);
        if (!target) throw new Error(`no member with nickname "${toNick}"`);
        if (text.trim() === '') throw new Error('empty message');
        post(self(), '', text, target.id);
        later(1200 + rand() * 1000, () => post(target, '', `(private) thanks ${nick}, noted`, selfId));
      },
    },
    kv: {
      async put(key, value) {
        await delay();
        checkKey(key);
        if (approxSize(value) > MAX_VALUE) throw new Error(`value too large (over ${MAX_VALUE} bytes)`);
        if (key.startsWith('unreachable/')) throw new Error('quorum not reached: 1 of W=2 acks before the 2 s timeout');
        kv.set(key, { value: structuredClone(value), version: { ts: hlc(), node: selfId } });
        emit({ type: 'kv', key });
      },
      async get(key) {
        await delay();
        checkKey(key);
        return structuredClone(kv.get(key)?.value);
      },
      async delete(key) {
        await delay();
        checkKey(key);
        if (key.startsWith('unreachable/')) throw new Error('quorum not reached: 1 of W=2 acks before the 2 s timeout');
        kv.delete(key);
        emit({ type: 'kv', key });
      },
      async keys(prefix = '') {
        await delay();
        return [...kv.keys()].filter((k) => k.startsWith(prefix)).sort();
      },
      replicas: (key) => preferenceList(key),
      localKeys: () => [...kv.keys()].filter((k) => preferenceList(k).includes(selfId)),
      async inspect(key): Promise<KvEntryInfo | undefined> {
        await delay();
        checkKey(key);
        const r = kv.get(key);
        return r && { key, value: structuredClone(r.value), version: { ...r.version }, replicas: preferenceList(key) };
      },
    },
    segments: {
      async put(key, value) {
        await delay();
        checkKey(key);
        return segPut(key, structuredClone(value));
      },
      async update(key, value) {
        await delay();
        checkKey(key);
        queue(key).items.shift();
        return segPut(key, structuredClone(value));
      },
      peek: (key, afterId = 0, o) => waitFor(key, afterId, false, o),
      take: (key, afterId = 0, o) => waitFor(key, afterId, true, o),
    },
    dispose,
  };
  return node;
}
