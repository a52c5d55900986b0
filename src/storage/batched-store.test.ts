/** Group commit, durability waits and retries of the batched store, on an in-memory IndexedDB. */
import 'fake-indexeddb/auto';
import { createStore, entries } from 'idb-keyval';
import { describe, expect, it } from 'vitest';
import { BatchedStore } from './batched-store';

let dbSeq = 0;
const freshStore = () => createStore(`batched-test-${++dbSeq}`, 'kv');

/** A store whose next `failNext` writes fail (as a full disk or a broken IndexedDB would). */
class FlakyStore<V> extends BatchedStore<V> {
  failNext = 0;
  batches: number[] = [];
  protected override async write(puts: [string, V][], dels: string[]): Promise<void> {
    this.batches.push(puts.length + dels.length);
    if (this.failNext > 0) {
      this.failNext--;
      throw new DOMException('quota exceeded', 'QuotaExceededError');
    }
    await super.write(puts, dels);
  }
}

const onDisk = async (store: ReturnType<typeof freshStore>) => new Map(await entries<string, unknown>(store));

describe('BatchedStore', () => {
  it('a durable() wait starts the write at the end of the turn, with what the turn queued, before any task runs', async () => {
    const s = new FlakyStore<number>(freshStore(), 10_000);
    s.put('a', 1);
    const done = s.durable();
    s.put('b', 2);
    expect(s.batches).toEqual([]);
    await null;
    expect(s.batches).toEqual([2]);
    expect(await done).toBe(true);
  });

  it('durable() resolves once what was handed over is on disk, without waiting for the batching delay', async () => {
    const idb = freshStore();
    const s = new BatchedStore<number>(idb, 10_000);
    s.put('a', 1);
    s.put('b', 2);
    expect(s.uncommitted).toBe(true);
    expect(await s.durable()).toBe(true);
    expect(s.uncommitted).toBe(false);
    expect(await onDisk(idb)).toEqual(new Map([['a', 1], ['b', 2]]));
    // nothing queued: durable at once
    expect(await s.durable()).toBe(true);
  });

  it('items queued while a write is in flight share the next transaction (group commit)', async () => {
    const idb = freshStore();
    const s = new FlakyStore<number>(idb, 10_000);
    s.put('k0', 0);
    const first = s.durable();
    await Promise.resolve();
    for (let i = 1; i <= 50; i++) {
      s.put(`k${i}`, i);
      void s.durable();
    }
    expect(await first).toBe(true);
    expect(await s.durable()).toBe(true);
    expect(s.batches.reduce((a, b) => a + b, 0)).toBe(51);
    expect(s.batches.length).toBeLessThanOrEqual(3);
    expect((await onDisk(idb)).size).toBe(51);
  });

  it('a failed write is reported to its waiters, counted, and retried until its items are on disk', async () => {
    const idb = freshStore();
    const errors: unknown[] = [];
    const s = new FlakyStore<string>(idb, 10_000, (e) => errors.push(e));
    s.failNext = 2;
    s.put('a', 'old');
    s.put('gone', 'x');
    expect(await s.durable()).toBe(false);
    expect(s.stats.failing).toBe(1);
    expect(s.stats.errors).toBe(1);
    expect(errors).toHaveLength(1);
    expect(s.uncommitted).toBe(true);
    // newer writes queued during the failure win over the retried items
    s.put('a', 'new');
    s.remove('gone');
    // the second attempt fails too; the third (after the backoff) succeeds
    await expect.poll(() => s.stats.flushes, { timeout: 3_000 }).toBe(1);
    expect(await s.durable()).toBe(true);
    expect(s.stats.failing).toBe(0);
    expect(s.stats.errors).toBe(2);
    expect(s.stats.retries).toBeGreaterThanOrEqual(2);
    expect(s.uncommitted).toBe(false);
    expect(await onDisk(idb)).toEqual(new Map([['a', 'new']]));
  });
});
