/** The runtime's persistence on an in-memory IndexedDB (fake-indexeddb). */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import type { Entry } from '../core/node';
import type { KvQueries } from '../core/queries';
import { Persistence } from './persistence';
import { Stats } from './stats';

const entry = (key: string, writer: string): Entry =>
  ({ key, value: 'v', version: { ts: 1, node: writer }, deleted: false }) as unknown as Entry;

describe('Persistence', () => {
  it('a KV write this tab coordinates starts its commit at once; a replica copy waits for the batching delay', async () => {
    const p = new Persistence({ id: 'n1', enabled: true }, new Stats(), { entries: () => [] } as unknown as KvQueries);
    const store = p.kvStore!;
    // another writer's entry, as a replica stores it: batched (its acknowledgement asks for the disk)
    p.apply({ type: 'persist', store: 'kv', put: [entry('a', 'n2')], remove: [] });
    await new Promise((r) => setTimeout(r, 20));
    expect(store.uncommitted).toBe(true);
    // our own write: its put's reply will wait for the disk, so the write starts now
    p.apply({ type: 'persist', store: 'kv', put: [entry('b', 'n1')], remove: [] });
    await new Promise((r) => setTimeout(r, 20));
    expect(store.uncommitted).toBe(false);
  });
});
