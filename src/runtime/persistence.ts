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
import { isNewer, OrphanWatcher, REGISTRY_TOUCH_MS, retireMerged, type NodeData, type Restart } from './orphans';
import type { Stats } from './stats';
import type { DurableStore } from './durable-acks';

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
  /** A restarted browser's identity takeover (orphans.ts): its merged-in data is stored after start. */
  restart?: Restart;
}

/** What adoption needs of the core. */
export interface AdoptTarget {
  /** Hands adopted KV entries and chat messages to the core. */
  adopt(entries: Entry[], chat: ChatMessage[]): void;
  /** The core's history holds `m`. */
  hasMessage(m: ChatMessage): boolean;
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

  /** The KV store, for waiting until writes are on disk (null when persistence is off). */
  get kvStore(): DurableStore | null {
    return this.storage?.kv ?? null;
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
      case 'kv': {
        let ours = false;
        for (const x of e.put) {
          s.kv.put(STORAGE_KEY.kv(x), x);
          if (x.version.node === this.opts.id) ours = true;
        }
        for (const k of e.remove) s.kv.remove(k);
        // A write this tab coordinates: its reply waits until this copy is on disk
        // (durable-acks.ts), so the commit starts now, beside the replicas' writes,
        // rather than once their acknowledgements are in. (Replicas ask for theirs
        // when they acknowledge.)
        if (ours) void s.kv.durable();
        return;
      }
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

  private watcher: OrphanWatcher | null = null;

  /**
   * After start: keeps this node's registry entry fresh (`schedule` repeats while the node
   * runs), stores what a restart takeover merged in, and watches the other nodes' stores
   * to adopt each one whose tab is gone (ids do not outlive a tab), giving its data back
   * to the cluster.
   */
  async afterStart(schedule: (fn: () => void, delay: number, every: number) => void, core: AdoptTarget): Promise<void> {
    if (!this.storage) return;
    const registry = new StoreRegistry();
    try {
      await registry.touch(this.opts.id, Date.now());
      const restart = this.opts.restart;
      if (restart) {
        // in the core since start; into this node's own store before the orphans go
        this.store(restart.added.kv, restart.added.chat);
        await this.storage.flush();
        await retireMerged(restart.merged, registry);
      }
      const watcher = new OrphanWatcher(
        this.opts.id,
        registry,
        (data) => this.adopt(data, core),
        (e) => this.stats.error('orphan adoption', e),
        (ms) => new Promise((r) => setTimeout(r, ms)),
      );
      this.watcher = watcher;
      const tick = (): void => {
        registry.touch(this.opts.id, Date.now()).catch((e: unknown) => this.stats.error('registry', e));
        watcher.scan().catch((e: unknown) => this.stats.error('orphan adoption', e));
      };
      schedule(tick, REGISTRY_TOUCH_MS, REGISTRY_TOUCH_MS);
      await watcher.scan();
    } catch (e) {
      this.stats.error('orphan adoption', e);
    }
  }

  /** The node stops: no more adoptions. */
  stopWatching(): void {
    this.watcher?.stop();
  }

  /**
   * Takes an orphaned store's data: the KV entries newer than ours and the chat messages
   * we lack go to the core, then to our store; resolves once they are on disk.
   */
  private async adopt(data: NodeData, core: AdoptTarget): Promise<void> {
    const newer = data.kv.filter((e) => {
      const mine = this.kv.localEntry(e.key);
      return !mine || isNewer(e, mine);
    });
    const fresh = data.chat.filter((m) => !core.hasMessage(m));
    if (!this.storage) return;
    // the KVS first: a compaction of the KV log writes the KVS's entries, so entries put
    // in storage before the KVS holds them could be left out of it
    core.adopt(newer, fresh);
    // chat keeps a bounded history: store only the messages it took
    const taken = fresh.filter((m) => core.hasMessage(m));
    this.store(newer, taken);
    await this.storage.flush();
    this.stats.count('kv.adopted', newer.length);
    this.stats.count('chat.adopted', taken.length);
  }

  /** Adopted or merged records into this node's stores (they are in the core already). */
  private store(kv: Entry[], chat: ChatMessage[]): void {
    const s = this.storage;
    if (!s) return;
    for (const e of kv) s.kv.put(STORAGE_KEY.kv(e), e);
    for (const m of chat) s.chat.put(STORAGE_KEY.chat(m), m);
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
      'storage.retries': this.storage?.kv.stats.retries ?? 0,
      // 1 while the KV store's last write failed: acknowledgements are withheld, puts fail
      'storage.failing': this.storage?.kv.stats.failing ?? 0,
      'storage.chatErrors': this.storage?.chat.stats.errors ?? 0,
      'storage.segErrors': this.storage?.segments.stats.errors ?? 0,
      'storage.compactions': this.storage?.kv.compactions ?? 0,
    };
  }
}
