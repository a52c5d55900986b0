/**
 * Stores left behind by closed tabs. A node id lives only as long as its tab (it is kept
 * in sessionStorage), so when every tab of a browser is closed and new ones are opened,
 * the data persisted by the old ones sits in IndexedDB under ids nobody will use again.
 * A node that finds such a store (no live tab holds its Web Lock, last alive more than
 * ORPHAN_AFTER_MS ago) takes its lock, loads its entries into its own KVS with their
 * original versions, and lets re-replication place them: newer versions in the cluster
 * win, so adopting old data never overwrites a newer write. The orphan's databases are
 * deleted once its entries are safely in our own store.
 */
import { createStore, entries } from 'idb-keyval';
import type { Entry } from '../core/node';
import { foldRecords } from '../storage/log-store';
import { kvDbName, type StoreRegistry } from '../storage/store';
import { liveLocalIds, tryLock } from './identity';
import { validateEntry } from './entry-check';

export const ORPHAN_AFTER_MS = 5_000;
/**
 * How often a live node notes in the registry that it is alive. Well below
 * ORPHAN_AFTER_MS: a reloading tab holds no lock between its old page's pagehide and its
 * new page, and only a recent registry entry then keeps other tabs from adopting (and
 * deleting) its store. At 30 s (before) a live tab's entry was older than 5 s most of
 * the time.
 */
export const REGISTRY_TOUCH_MS = 2_000;

function deleteDb(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const r = indexedDB.deleteDatabase(name);
    r.onsuccess = () => resolve();
    r.onerror = () => reject(r.error);
    r.onblocked = () => resolve();
  });
}

export async function adoptOrphans(me: string, registry: StoreRegistry, adopt: (entries: Entry[]) => Promise<void>): Promise<number> {
  const live = await liveLocalIds();
  const now = Date.now();
  let adopted = 0;
  for (const [id, lastAlive] of await registry.all()) {
    if (id === me || live.has(id) || now - lastAlive < ORPHAN_AFTER_MS) continue;
    if (!(await tryLock(id))) continue;
    const kvDb = kvDbName(id);
    const rows = await entries<IDBValidKey, unknown>(createStore(kvDb, 'kv'));
    const valid = foldRecords<unknown>(rows).entries.map(([, e]) => e).filter((e): e is Entry => validateEntry(e));
    for (let i = 0; i < valid.length; i += 500) await adopt(valid.slice(i, i + 500));
    adopted += valid.length;
    // `adopt` resolved once they were written to our own store: forget the orphan
    await Promise.all([deleteDb(kvDb), deleteDb(`${kvDb}-chat`), deleteDb(`${kvDb}-meta`), deleteDb(`${kvDb}-seg`)]);
    await registry.forget(id);
  }
  return adopted;
}
