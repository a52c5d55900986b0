/**
 * Stores left behind by closed tabs. A node id lives as long as its tab (it is kept in
 * sessionStorage), and every live page holds its id's Web Lock (identity.ts) until the
 * browser tears the page down: a reloading tab keeps it until its new page takes it over
 * with `steal`. So a store whose lock nobody holds belongs to no live tab: it is an
 * orphan. No clock is involved.
 *
 * Two ways a store is taken over:
 *  - After a browser restart (no page of this profile holds or waits for any node lock),
 *    a fresh tab takes over the identity of the most recently alive orphan (its id and
 *    its stores, `takeOverAfterRestart`) and merges the other orphans' data into it
 *    before it starts: KV entries (newest version per key), chat history (by message id),
 *    rooms and nick.
 *  - While running, a node keeps a queued lock request on the store of every other node
 *    in the registry (`OrphanWatcher`). The browser grants it when that lock frees (the
 *    tab closed or crashed), or at once if it was free already. The watcher then holds
 *    the orphan's lock while it adopts: it reads the store, hands the KV entries and chat
 *    messages newer than its own to its core (newer versions in the cluster still win,
 *    so adopting old data never overwrites a newer write), writes them to its own store,
 *    and only then deletes the orphan's databases. If the lock is stolen meanwhile (the
 *    tab's next page took its id back), it stops before deleting anything.
 * Segment records are not merged: a segment's copies live on several nodes and its
 * takeover protocol (core/segments/takeover.ts) rebuilds what a closed tab held.
 */
import type { ChatMessage, Entry } from '../core/node';
import { DIRECT_ROOM } from '../core/chat/types';
import { messageError } from '../core/chat/validate';
import { foldRecords } from '../storage/log-store';
import { deleteNodeStores, kvDbName, loadPersisted, NodeStorage, readDatabase, type PersistedState, type StoreRegistry } from '../storage/store';
import { claimIdentity, localLocks, lockOrphan, type OrphanLock } from './identity';
import type { Identity } from '../trust/keys';
import { validateEntry } from './entry-check';

/**
 * How often a live node notes in the registry that it is alive and looks for stores it
 * does not watch yet. The time only orders orphans (the most recent one's identity is
 * taken over after a restart); whether a store is an orphan is its lock's business.
 */
export const REGISTRY_TOUCH_MS = 2_000;
/**
 * How long a watcher holds a lock it was just granted before it reads the store. A page
 * going away keeps its lock until torn down and its next page steals it, so a reload
 * normally never frees it; if the two do not overlap, the new page steals it within
 * this grace and the store is left untouched.
 */
export const ADOPT_GRACE_MS = 500;

/** What a node's stores hold that another node can take in. */
export interface NodeData {
  kv: Entry[];
  chat: ChatMessage[];
  rooms: string[] | undefined;
  nick: string | undefined;
}

/** True when `a` is a newer version than `b` (the KVS's order: timestamp, then node id). */
export function isNewer(a: Entry, b: Entry): boolean {
  return a.version.ts > b.version.ts || (a.version.ts === b.version.ts && a.version.node > b.version.node);
}

const validMessage = (m: unknown): m is ChatMessage =>
  messageError(m, typeof m === 'object' && m !== null && (m as ChatMessage).room === DIRECT_ROOM) === null;

/**
 * `others` merged into `base`: per KV key the newest version, chat messages by id (each
 * once, in timestamp order), rooms in base's order then the others', base's nick unless
 * it has none. `added` is what the others brought that base did not have.
 */
export function mergeNodeData(base: NodeData, others: NodeData[]): { merged: NodeData; added: { kv: Entry[]; chat: ChatMessage[] } } {
  const kv = new Map<string, Entry>();
  for (const e of base.kv) {
    const had = kv.get(e.key);
    if (!had || isNewer(e, had)) kv.set(e.key, e);
  }
  const fromBase = new Set(kv.values());
  const chat = new Map<string, ChatMessage>();
  for (const m of base.chat) chat.set(m.id, m);
  const chatFromBase = new Set(chat.keys());
  const rooms: string[] = [...(base.rooms ?? [])];
  let nick = base.nick;
  let anyRooms = base.rooms !== undefined;
  for (const o of others) {
    for (const e of o.kv) {
      const had = kv.get(e.key);
      if (!had || isNewer(e, had)) kv.set(e.key, e);
    }
    for (const m of o.chat) if (!chat.has(m.id)) chat.set(m.id, m);
    if (o.rooms !== undefined) anyRooms = true;
    for (const r of o.rooms ?? []) if (!rooms.includes(r)) rooms.push(r);
    if (nick === undefined) nick = o.nick;
  }
  const byTime = (a: ChatMessage, b: ChatMessage): number => a.ts - b.ts || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const allChat = [...chat.values()].sort(byTime);
  return {
    merged: { kv: [...kv.values()], chat: allChat, rooms: anyRooms ? rooms : undefined, nick },
    added: { kv: [...kv.values()].filter((e) => !fromBase.has(e)), chat: allChat.filter((m) => !chatFromBase.has(m.id)) },
  };
}

/** Rows of a chat or meta store: string keys only (what NodeStorage writes). */
const stringRows = (rows: [IDBValidKey, unknown][]): [string, unknown][] =>
  rows.filter((r): r is [string, unknown] => typeof r[0] === 'string');

/** What another node's stores hold, validated (they are untrusted), connections closed after. */
export async function readNodeData(id: string): Promise<NodeData> {
  const db = kvDbName(id);
  const [kvRows, chatRows, metaRows] = await Promise.all([
    readDatabase(db, 'kv'),
    readDatabase(`${db}-chat`, 'chat'),
    readDatabase(`${db}-meta`, 'meta'),
  ]);
  const meta = new Map(stringRows(metaRows));
  const rooms = meta.get('rooms');
  const nick = meta.get('nick');
  return {
    kv: foldRecords<unknown>(kvRows).entries.map(([, e]) => e).filter(validateEntry),
    chat: stringRows(chatRows).map(([, m]) => m).filter(validMessage),
    rooms: Array.isArray(rooms) ? rooms.filter((r): r is string => typeof r === 'string') : undefined,
    nick: typeof nick === 'string' ? nick : undefined,
  };
}

/** An identity taken over from an orphan: its key pair and its stores. */
export interface TakenIdentity {
  identity: Identity;
  state: PersistedState;
}

/**
 * Takes over the identity of the orphan `id`: its lock (held for the page's lifetime), its
 * key pair (the id is the hash of its public key, so the node signs as `id` with it), its
 * id (kept in sessionStorage) and its stores, read here. Null when another page got it
 * first, or its store holds no key for `id` (nothing could sign as it). Everything that
 * makes up a node's identity is taken here and only here.
 */
export async function takeOverIdentity(id: string): Promise<TakenIdentity | null> {
  const identity = await claimIdentity(id);
  if (!identity) return null;
  return { identity, state: await loadPersisted(new NodeStorage(id, () => undefined)) };
}

/** A restarted browser's first tab: the identity it took over and what it merged in. */
export interface Restart {
  /** The orphan's key pair and id: the node signs its hellos and seals with it. */
  identity: Identity;
  /** The node's start state: its own stores with the other orphans' data merged in. */
  state: PersistedState;
  /** What the other orphans brought: not in this node's stores yet. */
  added: { kv: Entry[]; chat: ChatMessage[] };
  /** The merged orphans' locks, held until their data is in this node's stores. */
  merged: OrphanLock[];
}

/**
 * After a browser restart (no page of this profile holds or waits for a node lock), takes
 * over the identity of the most recently alive orphan that has its key, and reads every
 * other orphan it can lock into it (keyless ones included: their data is merged, their
 * id is not used). Null when some page of this profile is live (its watchers adopt the
 * orphans), or no orphan's identity could be taken (the new identity's watchers adopt
 * them all).
 */
export async function takeOverAfterRestart(registry: StoreRegistry): Promise<Restart | null> {
  if ((await localLocks()).anyone) return null;
  const ids = (await registry.all()).sort((a, b) => b[1] - a[1]).map(([id]) => id);
  for (const id of ids) {
    const own = await takeOverIdentity(id);
    if (!own) continue;
    const rest = ids.filter((o) => o !== id);
    const locks = (await Promise.all(rest.map((o) => lockOrphan(o, false)))).filter((l): l is OrphanLock => l !== null);
    const others = await Promise.all(locks.map((l) => readNodeData(l.id)));
    const base: NodeData = {
      kv: own.state.kv.filter(validateEntry),
      chat: own.state.chat.filter(validMessage),
      rooms: own.state.rooms,
      nick: own.state.nick,
    };
    const { merged, added } = mergeNodeData(base, others);
    return {
      identity: own.identity,
      state: { ...own.state, kv: merged.kv, chat: merged.chat, rooms: merged.rooms, nick: merged.nick },
      added,
      merged: locks,
    };
  }
  return null;
}

/**
 * Once the merged data is in this node's stores: deletes each merged
 * orphan whose lock is still ours, forgets it in the registry, lets go of its lock.
 */
export async function retireMerged(locks: OrphanLock[], registry: StoreRegistry): Promise<void> {
  for (const lock of locks) {
    try {
      if (!lock.lost) {
        await deleteNodeStores(lock.id);
        await registry.forget(lock.id);
      }
    } finally {
      lock.release();
    }
  }
}

/** What an OrphanWatcher does with an orphan's data: resolves once it is in this node's stores. */
export type AdoptFn = (data: NodeData) => Promise<void>;

/**
 * Keeps a queued lock request on the store of every other node in the registry; each
 * grant is an orphan (see above), adopted while its lock is held. `scan` picks up the
 * ids registered since the last one.
 */
export class OrphanWatcher {
  private readonly watching = new Map<string, AbortController>();
  private stopped = false;
  /** Orphans adopted (stores deleted). */
  adopted = 0;

  constructor(
    private readonly me: string,
    private readonly registry: StoreRegistry,
    private readonly adopt: AdoptFn,
    private readonly onError: (e: unknown) => void,
    private readonly wait: (ms: number) => Promise<void>,
    private readonly graceMs = ADOPT_GRACE_MS,
  ) {}

  /** Watches every registered store not watched yet. */
  async scan(): Promise<void> {
    for (const [id] of await this.registry.all()) {
      if (this.stopped) return;
      if (id !== this.me && !this.watching.has(id)) this.watch(id);
    }
  }

  /** The ids watched now (for tests and diagnostics). */
  watched(): string[] {
    return [...this.watching.keys()];
  }

  /** Stops watching (pending requests are withdrawn; an adoption under way ends before deleting). */
  stop(): void {
    this.stopped = true;
    for (const c of this.watching.values()) c.abort();
    this.watching.clear();
  }

  private watch(id: string): void {
    const ctrl = new AbortController();
    this.watching.set(id, ctrl);
    const done = (): void => {
      if (this.watching.get(id) === ctrl) this.watching.delete(id);
    };
    lockOrphan(id, true, ctrl.signal)
      .then(async (lock) => {
        if (!lock) return done();
        try {
          await this.adoptHeld(lock);
        } finally {
          lock.release();
          // a store left alone (lock lost: its tab is back) is watched again at the next scan
          done();
        }
      })
      .catch((e: unknown) => {
        done();
        this.onError(e);
      });
  }

  private async adoptHeld(lock: OrphanLock): Promise<void> {
    await this.wait(this.graceMs);
    if (lock.lost || this.stopped) return;
    // released by another node that adopted it already
    if ((await this.registry.lastAlive(lock.id)) === undefined) return;
    const data = await readNodeData(lock.id);
    if (lock.lost || this.stopped) return;
    await this.adopt(data);
    if (lock.lost || this.stopped) return;
    await deleteNodeStores(lock.id);
    await this.registry.forget(lock.id);
    this.adopted++;
  }
}
