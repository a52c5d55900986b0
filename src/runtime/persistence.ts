/**
 * What a node keeps in IndexedDB (storage/store.ts), seen from the runtime: the state
 * loaded at start, the core's `persist` effects written to the store they name (records
 * under their protocol's `storageKey`), the chat metadata (joined rooms, nick), and the
 * store registry: a live node notes every REGISTRY_TOUCH_MS that it is alive, and once
 * joined adopts the stores of nodes that are gone (orphans.ts).
 * With persistence off (no IndexedDB), every operation is a no-op and nothing is loaded.
 */
import { STORAGE_KEY, type ChatMessage, type Entry, type PersistOut, type SegRecord } from '../core/node';
import type { KvQueries } from '../core/queries';
import { validateSegRecord } from '../core/segments';
import { loadPersisted, NodeStorage, StoreRegistry, type PersistedState } from '../storage/store';
import { adoptOrphans, REGISTRY_TOUCH_MS } from './orphans';
import type { Stats } from './stats';

/** The state a node starts from. */
export interface Restored {
  kvEntries: Entry[];
  chatHistory: ChatMessage[];
  segRecords: SegRecord[];
  rooms: string[] | undefined;
  nick: string | undefined;
}

export interface PersistenceOptions {
  id: string;
  /** Persist to IndexedDB (off in environments without it). */
  enabled: boolean;
  /** The persisted state, already being read; loaded here when absent or null. */
  preloaded?: Promise<PersistedState | null>;
}

export class Persistence {
  private readonly storage: NodeStorage | null;

  /** `kv`: the core's KV replicas (what a compaction of the KV log writes, what adoption compares with). */
  constructor(
    private readonly opts: PersistenceOptions,
    private readonly stats: Stats,
    private readonly kv: KvQueries,
  ) {
    this.storage = opts.enabled
      ? new NodeStorage(
          opts.id,
          (e) => stats.error('storage', e),
          () => Array.from(kv.entries(), (e): [string, unknown] => [e.key, e]),
        )
      : null;
  }

  get enabled(): boolean {
    return this.storage !== null;
  }

  /** The persisted state; empty when persistence is off or the stores cannot be read. */
  async load(): Promise<Restored> {
    const empty: Restored = { kvEntries: [], chatHistory: [], segRecords: [], rooms: undefined, nick: undefined };
    if (!this.storage) return empty;
    try {
      const state = (await this.opts.preloaded) ?? (await loadPersisted(this.storage));
      return {
        segRecords: (state.segments as SegRecord[]).filter((r) => validateSegRecord(r) === null),
        kvEntries: state.kv as Entry[],
        chatHistory: state.chat as ChatMessage[],
        rooms: state.rooms,
        nick: state.nick,
      };
    } catch (e) {
      this.stats.error('storage load', e);
      return empty;
    }
  }

  /** A core `persist` effect: its records go to the store it names. */
  apply(e: PersistOut): void {
    const s = this.storage;
    if (!s) return;
    switch (e.store) {
      case 'kv':
        for (const x of e.put) s.kv.put(STORAGE_KEY.kv(x), x);
        for (const k of e.remove) s.kv.remove(k);
        return;
      case 'chat':
        for (const m of e.put) s.chat.put(STORAGE_KEY.chat(m), m);
        for (const k of e.remove) s.chat.remove(k);
        return;
      case 'seg':
        for (const r of e.put) s.segments.put(STORAGE_KEY.seg(r), r);
        for (const k of e.remove) s.segments.remove(k);
        return;
    }
  }

  /** Joined rooms and nick, restored at the next start. */
  async saveChatMeta(rooms: string[], nick: string): Promise<void> {
    if (!this.storage) return;
    try {
      await this.storage.setMeta('rooms', rooms);
      await this.storage.setMeta('nick', nick);
    } catch (e) {
      this.stats.error('storage meta', e);
    }
  }

  /**
   * After start: keeps this node's registry entry fresh (`schedule` repeats while the node
   * runs) and, once `joined`, adopts the stores of nodes that are gone (their tab closed;
   * ids do not outlive a tab), giving their data back to the cluster. `handToCore` gives
   * adopted entries to the KVS.
   */
  async afterStart(
    schedule: (fn: () => void, delay: number, every: number) => void,
    joined: Promise<void>,
    handToCore: (entries: Entry[]) => void,
  ): Promise<void> {
    if (!this.storage) return;
    const registry = new StoreRegistry();
    try {
      await registry.touch(this.opts.id, Date.now());
      const touch = (): void => void registry.touch(this.opts.id, Date.now()).catch((e: unknown) => this.stats.error('registry', e));
      schedule(touch, REGISTRY_TOUCH_MS, REGISTRY_TOUCH_MS);
      await joined;
      const adopted = await adoptOrphans(this.opts.id, registry, (entries) => this.adopt(entries, handToCore));
      this.stats.set('kv.adopted', adopted);
    } catch (e) {
      this.stats.error('orphan adoption', e);
    }
  }

  /** Takes entries from an orphaned store: keep what is newer than ours, hand to the KVS, persist. */
  private async adopt(entries: Entry[], handToCore: (entries: Entry[]) => void): Promise<void> {
    const newer = entries.filter((e) => {
      const mine = this.kv.localEntry(e.key);
      return !mine || mine.version.ts < e.version.ts || (mine.version.ts === e.version.ts && mine.version.node < e.version.node);
    });
    if (newer.length === 0 || !this.storage) return;
    // the KVS first: a compaction of the KV log writes the KVS's entries, so entries put
    // in storage before the KVS holds them could be left out of it
    handToCore(newer);
    for (const e of newer) this.storage.kv.put(STORAGE_KEY.kv(e), e);
    await this.storage.kv.flush();
  }

  /** Writes what is queued. */
  async flush(): Promise<void> {
    await this.storage?.flush();
  }

  /** Storage counters, as `p2p.stats()` names them. */
  counters(): Record<string, number> {
    return {
      'storage.pending': this.storage?.kv.stats.pending ?? 0,
      'storage.errors': this.storage?.kv.stats.errors ?? 0,
      'storage.compactions': this.storage?.kv.compactions ?? 0,
    };
  }
}
