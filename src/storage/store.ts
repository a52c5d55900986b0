/**
 * IndexedDB persistence through idb-keyval, one database per node id (tabs of one origin
 * share IndexedDB, so each node keeps its own). Writes are batched: callers enqueue puts
 * and removals, a flush runs at most every `flushMs` and as one transaction per store.
 * The KV replicas, by far the busiest store, are kept as a log of batches (log-store.ts).
 */
import { createStore, del, entries, set, get, type UseStore } from 'idb-keyval';
import { BatchedStore } from './batched-store';
import { LogStore } from './log-store';

const DB_PREFIX = 'p2p-node-';
/** The database of a node's KV replicas (its other stores add a suffix). */
export const kvDbName = (nodeId: string): string => `${DB_PREFIX}${nodeId}`;
const REGISTRY_DB = 'p2p-registry';

/** The stores of one node: its KV replicas, its chat history, and small metadata. */
export class NodeStorage {
  readonly kv: LogStore<unknown>;
  readonly chat: BatchedStore<unknown>;
  readonly segments: BatchedStore<unknown>;
  readonly meta: UseStore;

  /** `kvSnapshot`: every KV entry the node holds now, for compacting the KV log (see LogStore). */
  constructor(readonly nodeId: string, onError: (e: unknown) => void, kvSnapshot?: () => [string, unknown][]) {
    // idb-keyval's createStore opens one object store per database: one database per store
    this.kv = new LogStore(createStore(kvDbName(nodeId), 'kv'), 50, onError, kvSnapshot);
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

/** The databases of a node's stores (what deleteNodeStores removes). */
export const nodeDbNames = (nodeId: string): string[] => ['', '-chat', '-meta', '-seg'].map((x) => `${kvDbName(nodeId)}${x}`);

/**
 * Every row of object store `storeName` of database `dbName`, read in one transaction,
 * the connection closed afterwards (an open connection would hold up deleting the
 * database). A database or store that does not exist reads as empty, and is not created.
 */
export function readDatabase(dbName: string, storeName: string): Promise<[IDBValidKey, unknown][]> {
  return new Promise((resolve, reject) => {
    let created = false;
    const open = indexedDB.open(dbName);
    open.onupgradeneeded = () => {
      // it did not exist: nothing to read; abort so that no empty database is left behind
      created = true;
      open.transaction?.abort();
    };
    open.onerror = () => (created ? resolve([]) : reject(open.error));
    open.onsuccess = () => {
      const db = open.result;
      if (!db.objectStoreNames.contains(storeName)) {
        db.close();
        resolve([]);
        return;
      }
      const tx = db.transaction(storeName, 'readonly');
      const store = tx.objectStore(storeName);
      const keys = store.getAllKeys();
      const values = store.getAll();
      tx.oncomplete = () => {
        db.close();
        const k = keys.result;
        resolve(k.map((key, i): [IDBValidKey, unknown] => [key, values.result[i]]));
      };
      tx.onerror = () => {
        db.close();
        reject(tx.error);
      };
    };
  });
}

function deleteDatabase(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const r = indexedDB.deleteDatabase(name);
    r.onsuccess = () => resolve();
    r.onerror = () => reject(r.error);
    // a connection still open elsewhere: the deletion completes once it closes
    r.onblocked = () => resolve();
  });
}

/** Deletes every database of a node's stores. */
export async function deleteNodeStores(nodeId: string): Promise<void> {
  await Promise.all(nodeDbNames(nodeId).map(deleteDatabase));
}

/** Which node ids have had stores in this browser profile, and when each was last alive. */
export class StoreRegistry {
  private readonly store = createStore(REGISTRY_DB, 'nodes');

  async touch(nodeId: string, now: number): Promise<void> {
    await set(nodeId, now, this.store);
  }

  /** When `nodeId` was last alive, or undefined when it is not (or no longer) listed. */
  async lastAlive(nodeId: string): Promise<number | undefined> {
    return get<number>(nodeId, this.store);
  }

  async forget(nodeId: string): Promise<void> {
    await del(nodeId, this.store);
  }

  async all(): Promise<[string, number][]> {
    return (await entries<string, number>(this.store)) as [string, number][];
  }
}
