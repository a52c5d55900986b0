/**
 * The KV replicas of a node as a log in one IndexedDB object store: every flush appends
 * ONE record `{ put, remove }` under the next integer key, instead of one record per key.
 * IndexedDB's cost is mostly per record (key encoding, a LevelDB write, the IPC per
 * request), so under a bulk load this cut the CPU a stored write costs the browser by
 * more than half (scripts/profile-kv.ts, 8 tabs). A restore reads a few large records.
 *
 * Compaction: once the log has COMPACT_RECORDS records or COMPACT_ITEMS items, the node's
 * current entries (`snapshot`, the KVS's own state, which always includes everything
 * handed to this store) replace the whole log in one transaction: chunks of
 * SNAPSHOT_CHUNK entries under keys 0, 1, ... Integer keys sort before string keys in
 * IndexedDB, and the stores written before this layout (one record per KV key, string
 * keys) are read as a base below the log and dropped by the first compaction.
 */
import { entries, promisifyRequest, set, type UseStore } from 'idb-keyval';
import { BatchedStore } from './batched-store';

export interface LogRecord<V> {
  put: [string, V][];
  remove: string[];
}

export const COMPACT_RECORDS = 400;
export const COMPACT_ITEMS = 20_000;
export const SNAPSHOT_CHUNK = 2_000;

const isLogRecord = (v: unknown): v is LogRecord<unknown> =>
  typeof v === 'object' && v !== null && Array.isArray((v as LogRecord<unknown>).put) && Array.isArray((v as LogRecord<unknown>).remove);

/**
 * The state a store's rows describe: per-key rows (older layout) first, then the log
 * records in key order, later ones winning. Malformed rows are skipped and counted.
 */
export function foldRecords<V>(rows: [IDBValidKey, unknown][]): { entries: [string, V][]; records: number; nextKey: number; skipped: number } {
  const state = new Map<string, V>();
  let records = 0;
  let nextKey = 0;
  let skipped = 0;
  for (const [k, v] of rows) if (typeof k === 'string') state.set(k, v as V);
  const log = rows.filter(([k]) => typeof k === 'number').sort((a, b) => (a[0] as number) - (b[0] as number));
  for (const [k, v] of log) {
    nextKey = Math.max(nextKey, (k as number) + 1);
    if (!isLogRecord(v)) {
      skipped++;
      continue;
    }
    records++;
    for (const item of v.put) {
      if (Array.isArray(item) && typeof item[0] === 'string') state.set(item[0], item[1] as V);
      else skipped++;
    }
    for (const key of v.remove) if (typeof key === 'string') state.delete(key);
  }
  return { entries: [...state], records, nextKey, skipped };
}

/** The next free log key and how many log records there are, without reading them. */
async function logPosition(store: UseStore): Promise<{ nextKey: number; records: number }> {
  return store('readonly', async (s) => {
    const numbers = IDBKeyRange.bound(-Infinity, Infinity);
    const [last, records] = await Promise.all([
      promisifyRequest(s.openKeyCursor(numbers, 'prev')),
      promisifyRequest(s.count(numbers)),
    ]);
    return { nextKey: last ? (last.key as number) + 1 : 0, records };
  });
}

export class LogStore<V> extends BatchedStore<V> {
  /** Next log key; null until read (another instance may have loaded the store). */
  private nextKey: number | null = null;
  private records = 0;
  private items = 0;
  compactions = 0;

  constructor(
    store: UseStore,
    flushMs: number,
    onError: (e: unknown) => void,
    private readonly snapshot?: () => [string, V][],
  ) {
    super(store, flushMs, onError);
  }

  override async loadAll(): Promise<[string, V][]> {
    const folded = foldRecords<V>(await entries(this.store));
    if (this.nextKey === null) {
      this.nextKey = folded.nextKey;
      this.records = folded.records;
    }
    return folded.entries;
  }

  protected override async write(puts: [string, V][], dels: string[]): Promise<void> {
    if (this.nextKey === null) {
      const pos = await logPosition(this.store);
      this.nextKey = pos.nextKey;
      this.records = pos.records;
    }
    const record: LogRecord<V> = { put: puts, remove: dels };
    await set(this.nextKey, record, this.store);
    this.nextKey++;
    this.records++;
    this.items += puts.length + dels.length;
    if (this.snapshot && (this.records >= COMPACT_RECORDS || this.items >= COMPACT_ITEMS)) await this.compact(this.snapshot());
  }

  /** Replaces the whole store with `all` (the node's current entries), atomically. */
  private async compact(all: [string, V][]): Promise<void> {
    let chunks = 0;
    await this.store('readwrite', (s) => {
      s.clear();
      for (let i = 0; i < all.length; i += SNAPSHOT_CHUNK) {
        const record: LogRecord<V> = { put: all.slice(i, i + SNAPSHOT_CHUNK), remove: [] };
        s.put(record, chunks++);
      }
      return promisifyRequest(s.transaction);
    });
    this.nextKey = chunks;
    this.records = chunks;
    this.items = 0;
    this.compactions++;
  }
}
