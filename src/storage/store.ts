/**
 * IndexedDB persistence through idb-keyval, one database per node id (tabs of one origin
 * share IndexedDB, so each node keeps its own). Writes are batched: callers enqueue puts
 * and removals, a flush runs at most every `flushMs` and as one transaction per store.
 */
import { createStore, del, delMany, entries, setMany, set, get, type UseStore } from 'idb-keyval';

const DB_PREFIX = 'p2p-node-';
const REGISTRY_DB = 'p2p-registry';

export interface NodeStoreStats {
  flushes: number;
  written: number;
  removed: number;
  errors: number;
  pending: number;
}

export class BatchedStore<V> {
  private readonly pendingPut = new Map<string, V>();
  private readonly pendingDel = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private flushing: Promise<void> = Promise.resolve();
  /** Entries handed to IndexedDB whose transaction has not completed yet. */
  private inflight = 0;
  readonly stats: NodeStoreStats = { flushes: 0, written: 0, removed: 0, errors: 0, pending: 0 };

  constructor(
    private readonly store: UseStore,
    private readonly flushMs = 50,
    private readonly onError: (e: unknown) => void = () => undefined,
  ) {}

  put(key: string, value: V): void {
    this.pendingDel.delete(key);
    this.pendingPut.set(key, value);
    this.schedule();
  }

  remove(key: string): void {
    this.pendingPut.delete(key);
    this.pendingDel.add(key);
    this.schedule();
  }

  async loadAll(): Promise<[string, V][]> {
    return (await entries<string, V>(this.store)) as [string, V][];
  }

  private schedule(): void {
    this.updatePending();
    if (!this.timer) this.timer = setTimeout(() => void this.flush(), this.flushMs);
  }

  /** Queued plus in flight: 0 means everything handed to this store is on disk (or failed, counted in errors). */
  private updatePending(): void {
    this.stats.pending = this.pendingPut.size + this.pendingDel.size + this.inflight;
  }

  /** Writes everything pending; resolves when it is on disk. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const puts = [...this.pendingPut];
    const dels = [...this.pendingDel];
    this.pendingPut.clear();
    this.pendingDel.clear();
    const n = puts.length + dels.length;
    this.inflight += n;
    this.updatePending();
    if (n === 0) return this.flushing;
    this.flushing = this.flushing.then(async () => {
      try {
        if (puts.length) await setMany(puts, this.store);
        if (dels.length) await delMany(dels, this.store);
        this.stats.flushes++;
        this.stats.written += puts.length;
        this.stats.removed += dels.length;
      } catch (e) {
        this.stats.errors++;
        this.onError(e);
      } finally {
        this.inflight -= n;
        this.updatePending();
      }
    });
    return this.flushing;
  }
}

/** The stores of one node: its KV replicas, its chat history, and small metadata. */
export class NodeStorage {
  readonly kv: BatchedStore<unknown>;
  readonly chat: BatchedStore<unknown>;
  readonly segments: BatchedStore<unknown>;
  readonly meta: UseStore;

  constructor(readonly nodeId: string, onError: (e: unknown) => void) {
    // idb-keyval's createStore opens one object store per database: one database per store
    this.kv = new BatchedStore(createStore(`${DB_PREFIX}${nodeId}`, 'kv'), 50, onError);
    this.chat = new BatchedStore(createStore(`${DB_PREFIX}${nodeId}-chat`, 'chat'), 50, onError);
    this.segments = new BatchedStore(createStore(`${DB_PREFIX}${nodeId}-seg`, 'seg'), 20, onError);
    this.meta = createStore(`${DB_PREFIX}${nodeId}-meta`, 'meta');
  }

  async getMeta<T>(key: string): Promise<T | undefined> {
    return get<T>(key, this.meta);
  }

  async setMeta(key: string, value: unknown): Promise<void> {
    await set(key, value, this.meta);
  }

  async flush(): Promise<void> {
    await Promise.all([this.kv.flush(), this.chat.flush(), this.segments.flush()]);
  }
}

/** Everything a node persisted, as read at start. */
export interface PersistedState {
  kv: unknown[];
  chat: unknown[];
  segments: unknown[];
  rooms: string[] | undefined;
  nick: string | undefined;
}

/** Reads a node's persisted state, its stores in parallel. */
export async function loadPersisted(storage: NodeStorage): Promise<PersistedState> {
  const [segments, kv, chat, rooms, nick] = await Promise.all([
    storage.segments.loadAll(),
    storage.kv.loadAll(),
    storage.chat.loadAll(),
    storage.getMeta<string[]>('rooms'),
    storage.getMeta<string>('nick'),
  ]);
  return { kv: kv.map(([, v]) => v), chat: chat.map(([, v]) => v), segments: segments.map(([, v]) => v), rooms, nick };
}

/**
 * Starts reading the persisted state of `nodeId` before this tab holds its lock: a reload
 * spends hundreds of milliseconds waiting for the previous page to release the lock and
 * loading the page, and the reads can run meanwhile. Use the result only if the lock is
 * then acquired for this id. Never rejects (null on failure).
 */
export function prefetchPersisted(nodeId: string): Promise<PersistedState | null> {
  return loadPersisted(new NodeStorage(nodeId, () => undefined)).catch(() => null);
}

/** Which node ids have had stores in this browser profile, and when each was last alive. */
export class StoreRegistry {
  private readonly store = createStore(REGISTRY_DB, 'nodes');

  async touch(nodeId: string, now: number): Promise<void> {
    await set(nodeId, now, this.store);
  }

  async forget(nodeId: string): Promise<void> {
    await del(nodeId, this.store);
  }

  async all(): Promise<[string, number][]> {
    return (await entries<string, number>(this.store)) as [string, number][];
  }
}
