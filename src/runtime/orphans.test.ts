/** Orphaned stores on an in-memory IndexedDB (fake-indexeddb) with a stand-in for Web Locks. */
import 'fake-indexeddb/auto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ChatMessage, Entry } from '../core/node';
import { STORAGE_KEY } from '../core/node';
import { StoreRegistry } from '../storage/store';
import { generateIdentity, type Identity } from '../trust/keys';
import { LOCK_PREFIX } from './identity';
import { linkHello } from './link-hello';
import { nodeIdentity, storedIdentity } from './node-identity';
import { Sealer } from './seals';
import { Chat } from '../core/chat/chat';
import { CHAT_KIND, type ChatOut } from '../core/chat/types';
import { SeededRng } from '../core/rng';
import type { WireMessage } from '../core/node';
import { mergeNodeData, OrphanWatcher, readNodeData, retireMerged, takeOverAfterRestart, type NodeData } from './orphans';

interface Req {
  cb: (lock: { name: string } | null) => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  stolen: boolean;
}

/**
 * Web Locks as the spec has them, for one browser profile: exclusive locks granted in
 * request order, `ifAvailable`, `steal` (the holder's request rejects with AbortError),
 * `signal` (a queued request withdrawn), `query` (held and pending).
 */
class FakeLocks {
  private readonly holders = new Map<string, Req>();
  private readonly queues = new Map<string, Req[]>();

  request(name: string, opts: { ifAvailable?: boolean; steal?: boolean; signal?: AbortSignal }, cb: Req['cb']): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const req: Req = { cb, resolve, reject, stolen: false };
      const queue = this.queues.get(name) ?? [];
      this.queues.set(name, queue);
      if (opts.steal) {
        const old = this.holders.get(name);
        if (old) {
          old.stolen = true;
          old.reject(new DOMException('stolen', 'AbortError'));
        }
        this.grant(name, req);
      } else if (!this.holders.has(name) && queue.length === 0) {
        this.grant(name, req);
      } else if (opts.ifAvailable) {
        Promise.resolve(cb(null)).then(resolve, reject);
      } else {
        queue.push(req);
        opts.signal?.addEventListener('abort', () => {
          const i = queue.indexOf(req);
          if (i >= 0) {
            queue.splice(i, 1);
            reject(new DOMException('aborted', 'AbortError'));
          }
        });
      }
    });
  }

  async query(): Promise<{ held: { name: string }[]; pending: { name: string }[] }> {
    return {
      held: [...this.holders.keys()].map((name) => ({ name })),
      pending: [...this.queues].flatMap(([name, q]) => q.map(() => ({ name }))),
    };
  }

  /** Another page holds `name` until the returned function is called. */
  hold(name: string): () => void {
    let release!: () => void;
    void this.request(name, {}, () => new Promise<void>((r) => (release = r)));
    return () => release();
  }

  /** Another page takes `name` with steal (a reloaded tab taking its id back). */
  steal(name: string): () => void {
    let release!: () => void;
    void this.request(name, { steal: true }, () => new Promise<void>((r) => (release = r)));
    return () => release();
  }

  private grant(name: string, req: Req): void {
    this.holders.set(name, req);
    Promise.resolve()
      .then(() => req.cb({ name }))
      .then(
        (v) => {
          if (!req.stolen) req.resolve(v);
        },
        (e: unknown) => {
          if (!req.stolen) req.reject(e);
        },
      )
      .finally(() => {
        if (this.holders.get(name) !== req) return;
        this.holders.delete(name);
        const next = this.queues.get(name)?.shift();
        if (next) this.grant(name, next);
      });
  }
}

const entry = (key: string, ts: number, node: string, value: unknown = `v-${key}-${ts}`): Entry => ({ key, value, version: { ts, node }, deleted: false });
const message = (from: string, n: number, room = 'lobby'): ChatMessage => ({ id: `${from}:${n.toString(36)}`, room, from, nick: from, text: `m${n}`, ts: n * 1024 });

/** Writes `rows` into a database the way NodeStorage lays it out, then closes it (its tab is gone). */
function writeDb(name: string, store: string, rows: [IDBValidKey, unknown][]): Promise<void> {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(name);
    open.onupgradeneeded = () => void open.result.createObjectStore(store);
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction(store, 'readwrite');
      for (const [k, v] of rows) tx.objectStore(store).put(v, k);
      tx.oncomplete = () => {
        db.close();
        resolve();
      };
      tx.onerror = () => reject(tx.error);
    };
  });
}

/** The stores a closed tab left: its KV log (one record), chat and meta. */
async function storeOf(id: string, data: Partial<NodeData>): Promise<void> {
  const db = `p2p-node-${id}`;
  await writeDb(db, 'kv', [[0, { put: (data.kv ?? []).map((e) => [STORAGE_KEY.kv(e), e]), remove: [] }]]);
  await writeDb(`${db}-chat`, 'chat', (data.chat ?? []).map((m) => [STORAGE_KEY.chat(m), m]));
  const meta: [string, unknown][] = [];
  if (data.rooms) meta.push(['rooms', data.rooms]);
  if (data.nick) meta.push(['nick', data.nick]);
  await writeDb(`${db}-meta`, 'meta', meta);
}

/** The key pair a node keeps in its meta store (node-identity.ts), under `id`. */
const keyOf = (id: string, i: Identity): Promise<void> =>
  writeDb(`p2p-node-${id}-meta`, 'meta', [['identity', { privateKey: i.privateKey, publicKey: i.publicKey }]]);

/** What is left of a node's stores (read without keeping a connection open). */
const stored = (id: string) => readNodeData(id);
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await cond()) return;
    await tick(5);
  }
  throw new Error(`timed out waiting for ${what}`);
}

let locks: FakeLocks;
let sessionData: Map<string, string>;
beforeEach(() => {
  locks = new FakeLocks();
  sessionData = new Map();
  (globalThis as { navigator?: unknown }).navigator = { locks };
  (globalThis as { sessionStorage?: unknown }).sessionStorage = {
    getItem: (k: string) => sessionData.get(k) ?? null,
    setItem: (k: string, v: string) => void sessionData.set(k, v),
    removeItem: (k: string) => void sessionData.delete(k),
  };
  indexedDB = new IDBFactory();
});
afterEach(() => {
  delete (globalThis as { navigator?: unknown }).navigator;
  delete (globalThis as { sessionStorage?: unknown }).sessionStorage;
});

describe('mergeNodeData', () => {
  it('keeps the newest version of each key, every chat message once in order, the rooms of all, the base nick', () => {
    const base: NodeData = {
      kv: [entry('a', 5, 'nb'), entry('b', 1, 'nb')],
      chat: [message('nb', 1), message('nx', 3)],
      rooms: ['lobby', 'dev'],
      nick: 'ann',
    };
    const other: NodeData = {
      kv: [entry('a', 4, 'no'), entry('b', 2, 'no'), entry('c', 1, 'no')],
      chat: [message('nx', 3), message('no', 2), message('no', 4, 'dev')],
      rooms: ['ops', 'lobby'],
      nick: 'bob',
    };
    const { merged, added } = mergeNodeData(base, [other]);
    expect(Object.fromEntries(merged.kv.map((e) => [e.key, e.version.node]))).toEqual({ a: 'nb', b: 'no', c: 'no' });
    expect(merged.chat.map((m) => m.id)).toEqual(['nb:1', 'no:2', 'nx:3', 'no:4']);
    expect(merged.rooms).toEqual(['lobby', 'dev', 'ops']);
    expect(merged.nick).toBe('ann');
    expect(added.kv.map((e) => e.key).sort()).toEqual(['b', 'c']);
    expect(added.chat.map((m) => m.id)).toEqual(['no:2', 'no:4']);
  });

  it('takes the nick of another store when the base has none, and a tie in timestamps goes to the higher node id', () => {
    const { merged } = mergeNodeData({ kv: [entry('k', 7, 'na')], chat: [], rooms: undefined, nick: undefined }, [
      { kv: [entry('k', 7, 'nz')], chat: [], rooms: undefined, nick: 'zed' },
    ]);
    expect(merged.kv[0]!.version.node).toBe('nz');
    expect(merged.nick).toBe('zed');
    expect(merged.rooms).toBeUndefined();
  });
});

describe('readNodeData', () => {
  it('reads a store back, skipping what is not a valid entry or message, and creates no database for an unknown id', async () => {
    await storeOf('nstore000001', { kv: [entry('a', 1, 'n1')], chat: [message('n1', 1)], rooms: ['lobby'], nick: 'ann' });
    await writeDb('p2p-node-nstore000001', 'kv', [[1, { put: [['junk', { key: 3 }]], remove: [] }]]);
    await writeDb('p2p-node-nstore000001-chat', 'chat', [['junk', { id: 1 }]]);
    const d = await readNodeData('nstore000001');
    expect(d.kv.map((e) => e.key)).toEqual(['a']);
    expect(d.chat.map((m) => m.id)).toEqual(['n1:1']);
    expect(d).toMatchObject({ rooms: ['lobby'], nick: 'ann' });
    expect(await readNodeData('nnobody00001')).toEqual({ kv: [], chat: [], rooms: undefined, nick: undefined });
    expect((await indexedDB.databases()).map((x) => x.name)).not.toContain('p2p-node-nnobody00001');
  });
});

describe('takeOverAfterRestart', () => {
  interface Closed {
    registry: StoreRegistry;
    /** The orphans' identities: least recently alive, most recently alive, in between. */
    old: Identity;
    last: Identity;
    mid: Identity;
  }

  /** A closed browser: three tabs' stores, each with the key pair its id is the hash of. */
  async function closedBrowser(): Promise<Closed> {
    const registry = new StoreRegistry();
    const [old, last, mid] = [await generateIdentity(), await generateIdentity(), await generateIdentity()];
    for (const i of [old, last, mid]) await keyOf(i.id, i);
    await storeOf(old.id, { kv: [entry('a', 1, 'x'), entry('b', 1, 'x')], chat: [message('x', 1)], rooms: ['lobby'], nick: 'old' });
    await storeOf(last.id, { kv: [entry('a', 2, 'x'), entry('c', 1, 'x')], chat: [message('x', 2)], rooms: ['lobby', 'dev'], nick: 'last' });
    await storeOf(mid.id, { kv: [entry('d', 1, 'x')], chat: [message('x', 1), message('x', 3)], rooms: ['ops'] });
    await registry.touch(old.id, 1_000);
    await registry.touch(last.id, 3_000);
    await registry.touch(mid.id, 2_000);
    return { registry, old, last, mid };
  }

  it('takes the most recent orphan’s identity with every orphan’s keys, chat, rooms; the others are retired once stored', async () => {
    const { registry, old, last, mid } = await closedBrowser();
    const r = await takeOverAfterRestart(registry);
    expect(r).not.toBeNull();
    expect(r!.identity.id).toBe(last.id);
    expect(sessionData.get('p2p.nodeId')).toBe(last.id);
    expect((await locks.query()).held.map((l) => l.name).sort()).toEqual([last.id, mid.id, old.id].map((x) => LOCK_PREFIX + x).sort());
    expect(Object.fromEntries((r!.state.kv as Entry[]).map((e) => [e.key, e.version.ts]))).toEqual({ a: 2, b: 1, c: 1, d: 1 });
    expect((r!.state.chat as ChatMessage[]).map((m) => m.id)).toEqual(['x:1', 'x:2', 'x:3']);
    expect(r!.state.rooms).toEqual(['lobby', 'dev', 'ops']);
    expect(r!.state.nick).toBe('last');
    expect(r!.added.kv.map((e) => e.key).sort()).toEqual(['b', 'd']);
    await retireMerged(r!.merged, registry);
    expect((await registry.all()).map(([id]) => id)).toEqual([last.id]);
    expect((await stored(old.id)).kv).toEqual([]);
    // the merged orphans' keys go with their stores: nobody signs as them again
    expect(await storedIdentity(old.id)).toBeNull();
    expect((await locks.query()).held.map((l) => l.name)).toEqual([LOCK_PREFIX + last.id]);
  });

  it('takes the orphan’s key with its id: the taken-over node’s hellos and seals verify at a peer as that id', async () => {
    const { registry, last } = await closedBrowser();
    const r = (await takeOverAfterRestart(registry))!;
    const me = nodeIdentity(r.identity);
    expect(me.id).toBe(last.id);
    expect(me.pub).toEqual(last.pub);
    const peer = nodeIdentity(await generateIdentity());
    // a link hello, as PeerLinks exchanges it (each side names its own and the other's fingerprint)
    const fp = { local: 'AA:01', remote: 'BB:02' };
    const hello = await linkHello({ identity: me, cluster: 'c' }).hello(peer.id, fp);
    expect(await linkHello({ identity: peer, cluster: 'c' }).verify(me.id, { local: fp.remote, remote: fp.local }, hello)).toBeNull();
    // a sealed broadcast of the node opens at the peer as coming from it
    const id = `${me.id}:t:1`;
    const data = { type: 'chat.message', message: { text: 'back' } };
    const seal = await new Sealer(me, 'c').sealBroadcast(id, 'chat', data);
    const opened = await new Sealer(peer, 'c').openBroadcast(id, me.id, 'chat', seal);
    expect(opened?.data).toEqual(data);
  });

  it('does not take an id whose store has no key for it (nothing could sign as it): its data is merged into the next one', async () => {
    const { registry, old, last, mid } = await closedBrowser();
    // the most recent store: an id of an older version, without a key
    await storeOf('nkeyless0001', { kv: [entry('e', 1, 'x')], chat: [message('x', 4)], rooms: ['lobby'] });
    await registry.touch('nkeyless0001', 9_000);
    // and one whose stored key is not the key of its id
    await storeOf('nwrongkey001', { kv: [entry('f', 1, 'x')] });
    await keyOf('nwrongkey001', old);
    await registry.touch('nwrongkey001', 8_000);
    const r = (await takeOverAfterRestart(registry))!;
    expect(r.identity.id).toBe(last.id);
    expect(sessionData.get('p2p.nodeId')).toBe(last.id);
    expect((r.state.kv as Entry[]).map((e) => e.key).sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect((r.state.chat as ChatMessage[]).map((m) => m.id)).toEqual(['x:1', 'x:2', 'x:3', 'x:4']);
    expect(r.merged.map((l) => l.id).sort()).toEqual([mid.id, old.id, 'nkeyless0001', 'nwrongkey001'].sort());
  });

  it('takes nothing while any page of the profile holds or waits for a node lock', async () => {
    const { registry, old } = await closedBrowser();
    const release = locks.hold(LOCK_PREFIX + 'nlive0000001');
    expect(await takeOverAfterRestart(registry)).toBeNull();
    release();
    await tick();
    void locks.request(LOCK_PREFIX + old.id, {}, () => new Promise(() => undefined));
    void locks.request(LOCK_PREFIX + old.id, {}, () => undefined);
    expect((await locks.query()).pending).toHaveLength(1);
    expect(await takeOverAfterRestart(registry)).toBeNull();
    expect(sessionData.has('p2p.nodeId')).toBe(false);
  });

  it('leaves a merged orphan whose lock was stolen in place', async () => {
    const { registry, old, last } = await closedBrowser();
    const r = (await takeOverAfterRestart(registry))!;
    locks.steal(LOCK_PREFIX + old.id);
    await tick();
    await retireMerged(r.merged, registry);
    expect((await stored(old.id)).kv).toHaveLength(2);
    expect((await registry.all()).map(([id]) => id).sort()).toEqual([last.id, old.id].sort());
  });
});

describe('OrphanWatcher', () => {
  function watcher(me: string, registry: StoreRegistry, adopted: NodeData[], grace = 0): OrphanWatcher {
    return new OrphanWatcher(
      me,
      registry,
      async (d) => void adopted.push(d),
      (e) => {
        throw e;
      },
      async (ms) => void (await tick(ms)),
      grace,
    );
  }

  it('adopts a store as soon as its tab’s lock frees, never while it is held, and only once', async () => {
    const registry = new StoreRegistry();
    await storeOf('nlive0000001', { kv: [entry('k', 1, 'x')], chat: [message('x', 1)] });
    await registry.touch('nlive0000001', 1);
    await registry.touch('nme000000001', 1);
    await registry.touch('nother000001', 1);
    const releaseLive = locks.hold(LOCK_PREFIX + 'nlive0000001');
    locks.hold(LOCK_PREFIX + 'nme000000001');
    locks.hold(LOCK_PREFIX + 'nother000001');
    const adopted: NodeData[] = [];
    const adoptedToo: NodeData[] = [];
    const w = watcher('nme000000001', registry, adopted);
    const w2 = watcher('nother000001', registry, adoptedToo);
    await w.scan();
    await w2.scan();
    expect(w.watched().sort()).toEqual(['nlive0000001', 'nother000001']);
    await tick(20);
    expect(adopted).toEqual([]);
    releaseLive();
    await until(async () => (await registry.lastAlive('nlive0000001')) === undefined, 'the orphan forgotten');
    await tick(20);
    expect(adopted.length + adoptedToo.length).toBe(1);
    expect([...adopted, ...adoptedToo][0]!.chat.map((m) => m.id)).toEqual(['x:1']);
    expect((await stored('nlive0000001')).kv).toEqual([]);
    expect(w.watched()).toEqual(['nother000001']);
    expect(w2.watched()).toEqual(['nme000000001']);
    w.stop();
    w2.stop();
    expect((await locks.query()).pending).toEqual([]);
  });

  it('a store whose tab takes its lock back during the grace is left untouched and watched again', async () => {
    const registry = new StoreRegistry();
    await storeOf('nreload00001', { kv: [entry('k', 1, 'x')] });
    await registry.touch('nreload00001', 1);
    const adopted: NodeData[] = [];
    const w = watcher('nme000000001', registry, adopted, 50);
    await w.scan();
    await until(async () => (await locks.query()).held.length === 1, 'the free lock granted');
    // the reloaded page's steal (reclaimNodeId)
    const releaseNew = locks.steal(LOCK_PREFIX + 'nreload00001');
    await tick(80);
    expect(adopted).toEqual([]);
    expect((await stored('nreload00001')).kv).toHaveLength(1);
    expect(w.watched()).toEqual([]);
    await w.scan();
    expect(w.watched()).toEqual(['nreload00001']);
    releaseNew();
    await until(() => adopted.length === 1, 'adopted once the tab closes');
    w.stop();
  });
});

describe('adopted chat history and signatures', () => {
  it('keeps its authors’ proofs: the adopter serves them and a peer verifies them, though the author’s key is gone; unproven messages stay local', async () => {
    const author = await generateIdentity();
    const me = nodeIdentity(author);
    // a message the closed tab broadcast and got back sealed, and one whose sealed copy never came back
    const sent: ChatMessage = { id: `${author.id}:${(5 * 1024).toString(36)}`, room: 'lobby', from: author.id, nick: 'ann', text: 'sealed', ts: 5 * 1024 };
    const proofId = `${author.id}:t:1`;
    const seal = await new Sealer(me, 'c').sealBroadcast(proofId, CHAT_KIND, { type: 'chat.message', message: sent });
    const unproven: ChatMessage = { ...sent, id: `${author.id}:${(6 * 1024).toString(36)}`, text: 'unsealed', ts: 6 * 1024 };
    await keyOf(author.id, author);
    await storeOf(author.id, { chat: [{ ...sent, proof: { id: proofId, seal } }, unproven] });
    const registry = new StoreRegistry();
    await registry.touch(author.id, 1);

    // another node adopts the orphan (its store, key included, is deleted after)
    const adopter = await generateIdentity();
    const adopted: NodeData[] = [];
    const w = new OrphanWatcher(adopter.id, registry, async (d) => void adopted.push(d), (e) => { throw e; }, async () => undefined, 0);
    await w.scan();
    await until(async () => (await registry.lastAlive(author.id)) === undefined, 'the orphan adopted');
    expect(await storedIdentity(author.id)).toBeNull();
    const chat = new Chat(adopter.id, {}, new SeededRng(1));
    chat.handle({ type: 'load', records: adopted[0]!.chat }, 0, []);
    expect(chat.history('lobby').map((m) => m.text)).toEqual(['sealed', 'unsealed']);

    // a peer asks for history: only the proven message is served, and its author's seal verifies there
    const out: ChatOut[] = [];
    const peer = await generateIdentity();
    chat.handle({ type: 'message', from: peer.id, msg: { type: 'chat.historyReq' } }, 0, out);
    const answer = out.find((e) => e.type === 'send' && e.msg.type === 'chat.history');
    expect(answer).toBeDefined();
    const peerSealer = new Sealer(nodeIdentity(peer), 'c');
    const got = (await peerSealer.inbound((answer as { msg: WireMessage }).msg)) as unknown as { messages: ChatMessage[] };
    expect(got.messages.map((m) => m.text)).toEqual(['sealed']);
    expect(got.messages[0]!.proof?.seal).toBeDefined();
    expect(peerSealer.counters.proofsStripped).toBe(0);
    expect(peerSealer.counters.refused).toBe(0);
    expect(peerSealer.counters.verified).toBe(1);
    w.stop();
  });
});
