/** The KV log store on an in-memory IndexedDB (fake-indexeddb): what is written is what a restart reads. */
import 'fake-indexeddb/auto';
import { createStore, entries, setMany } from 'idb-keyval';
import { describe, expect, it } from 'vitest';
import { COMPACT_RECORDS, foldRecords, LogStore, SNAPSHOT_CHUNK } from './log-store';

let dbSeq = 0;
const freshStore = () => createStore(`log-test-${++dbSeq}`, 'kv');

describe('foldRecords', () => {
  it('applies log records in key order over the per-key rows of the older layout', () => {
    const rows: [IDBValidKey, unknown][] = [
      [2, { put: [['a', 'a2']], remove: ['b'] }],
      [1, { put: [['a', 'a1'], ['b', 'b1'], ['c', 'c1']], remove: [] }],
      ['c', 'c0'],
      ['d', 'd0'],
    ];
    const f = foldRecords<string>(rows);
    expect(new Map(f.entries)).toEqual(new Map([['a', 'a2'], ['c', 'c1'], ['d', 'd0']]));
    expect(f.nextKey).toBe(3);
    expect(f.records).toBe(2);
  });

  it('skips malformed rows instead of failing the restore', () => {
    const rows: [IDBValidKey, unknown][] = [
      [0, 'garbage'],
      [1, { put: [['ok', 1], 'bad item', [7, 'numeric key']], remove: [3] }],
      [2, null],
    ];
    const f = foldRecords<number>(rows);
    expect(f.entries).toEqual([['ok', 1]]);
    expect(f.skipped).toBe(4);
    expect(f.nextKey).toBe(3);
  });
});

describe('LogStore', () => {
  it('one record per flush; a second instance (a reload) reads back the same state and appends after it', async () => {
    const store = freshStore();
    const a = new LogStore<string>(store, 1_000_000, (e) => {
      throw e;
    });
    for (let i = 0; i < 500; i++) a.put(`k${i}`, `v${i}`);
    a.remove('k3');
    await a.flush();
    a.put('k1', 'v1b');
    a.remove('k2');
    await a.flush();
    expect((await entries(store)).length).toBe(2);
    expect(a.stats.pending).toBe(0);

    // a reload: a new instance that never loaded writes after the existing records
    const b = new LogStore<string>(store, 1_000_000, () => undefined);
    b.put('k4', 'v4b');
    await b.flush();
    const state = new Map(await new LogStore<string>(store, 50, () => undefined).loadAll());
    expect(state.size).toBe(498);
    expect(state.get('k1')).toBe('v1b');
    expect(state.get('k4')).toBe('v4b');
    expect(state.has('k2') || state.has('k3')).toBe(false);
  });

  it('compacts the log into a snapshot of the current state, in one transaction', async () => {
    const store = freshStore();
    const current = new Map<string, number>();
    const s = new LogStore<number>(store, 1_000_000, (e) => {
      throw e;
    }, () => [...current]);
    // older layout rows must go too
    await setMany([['legacy', -1]], store);
    current.set('legacy', -1);
    for (let r = 0; r < COMPACT_RECORDS; r++) {
      const key = `k${r % 50}`;
      current.set(key, r);
      s.put(key, r);
      if (r % 7 === 0) {
        current.delete(`k${(r + 1) % 50}`);
        s.remove(`k${(r + 1) % 50}`);
      }
      await s.flush();
    }
    expect(s.compactions).toBe(1);
    const rows = await entries(store);
    expect(rows.length).toBe(Math.ceil(current.size / SNAPSHOT_CHUNK));
    expect(rows.every(([k]) => typeof k === 'number')).toBe(true);
    expect(new Map(foldRecords<number>(rows).entries)).toEqual(current);
    // and the log goes on after the snapshot
    current.set('after', 1);
    s.put('after', 1);
    await s.flush();
    expect(new Map(await new LogStore<number>(store, 50, () => undefined).loadAll())).toEqual(current);
  });

  it('a snapshot larger than a chunk is split', async () => {
    const store = freshStore();
    const current = new Map(Array.from({ length: SNAPSHOT_CHUNK * 2 + 5 }, (_, i) => [`k${i}`, i] as [string, number]));
    const s = new LogStore<number>(store, 1_000_000, () => undefined, () => [...current]);
    for (let r = 0; r < COMPACT_RECORDS; r++) {
      s.put(`k${r}`, r);
      await s.flush();
    }
    expect(s.compactions).toBe(1);
    expect((await entries(store)).length).toBe(3);
    expect(new Map(await new LogStore<number>(store, 50, () => undefined).loadAll())).toEqual(current);
  });
});
