/** Orphaned stores on an in-memory IndexedDB (fake-indexeddb) with a stand-in for Web Locks. */
import 'fake-indexeddb/auto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Entry } from '../core/node';
import { NodeStorage, StoreRegistry, loadPersisted } from '../storage/store';
import { adoptOrphans, ORPHAN_AFTER_MS, REGISTRY_TOUCH_MS } from './orphans';

/** Web Locks as a browser profile has them: `held` are the locks live tabs hold. */
function fakeLocks(held: Set<string>) {
  return {
    query: async () => ({ held: [...held].map((name) => ({ name })), pending: [] }),
    request: (name: string, opts: { ifAvailable?: boolean }, cb: (lock: { name: string } | null) => unknown) => {
      const free = !held.has(name);
      if (free) held.add(name);
      return Promise.resolve(cb(opts.ifAvailable && !free ? null : { name }));
    },
  };
}

const entry = (key: string, ts: number, node: string): Entry => ({ key, value: `v-${key}`, version: { ts, node }, deleted: false });

async function storeOf(id: string, entries: Entry[]): Promise<void> {
  const s = new NodeStorage(id, (e) => {
    throw e;
  });
  for (const e of entries) s.kv.put(e.key, e);
  await s.flush();
}

let held: Set<string>;
beforeEach(() => {
  held = new Set();
  (globalThis as { navigator?: unknown }).navigator = { locks: fakeLocks(held) };
});
afterEach(() => {
  delete (globalThis as { navigator?: unknown }).navigator;
});

describe('adoptOrphans', () => {
  it('adopts a store nobody holds and nobody touched lately, and leaves alone a tab that is only reloading', async () => {
    const now = Date.now();
    const registry = new StoreRegistry();
    await storeOf('nclosedtab01', [entry('a', 1, 'nclosedtab01'), entry('b', 2, 'nclosedtab01')]);
    await storeOf('nreloading01', [entry('c', 3, 'nreloading01')]);
    await storeOf('nlivetab0001', [entry('d', 4, 'nlivetab0001')]);
    await registry.touch('nclosedtab01', now - 60_000);
    // between its old page's pagehide and its new page a reloading tab holds no lock: only
    // its last touch, at most REGISTRY_TOUCH_MS ago, says it is alive
    await registry.touch('nreloading01', now - REGISTRY_TOUCH_MS);
    await registry.touch('nlivetab0001', now - 60_000);
    held.add('p2p-node-nlivetab0001');
    const got: Entry[] = [];
    const n = await adoptOrphans('nme000000001', registry, async (es) => void got.push(...es));
    expect(n).toBe(2);
    expect(got.map((e) => e.key).sort()).toEqual(['a', 'b']);
    expect((await registry.all()).map(([id]) => id).sort()).toEqual(['nlivetab0001', 'nreloading01']);
    // the others' stores are intact (the adopted one's deletion waits for open connections)
    expect((await loadPersisted(new NodeStorage('nreloading01', () => undefined))).kv).toHaveLength(1);
    expect((await loadPersisted(new NodeStorage('nlivetab0001', () => undefined))).kv).toHaveLength(1);
  });

  it('a live tab touches the registry well within the orphan threshold', () => {
    expect(REGISTRY_TOUCH_MS * 2).toBeLessThanOrEqual(ORPHAN_AFTER_MS);
  });
});
