/**
 * KVS inspector: the cluster-wide key list (filtered, paged), previews, the selected entry,
 * and edits. The list follows the whole cluster live through `kv.watch(prefix)` (writes to
 * keys this tab does not hold included); a watch resync lists again.
 */
import type { KvEntryInfo, KvWatchEvent, NodeEvent, P2PApi } from '../../runtime/api';
import { compareVersions } from '../../core/kv/types';
import { errorMessage } from '../lib/format';
import { subscribe } from './poll';

type KvChange = Extract<NodeEvent, { type: 'kv' }>['entry'];

export const PAGE_SIZE = 50;
/** Quorum reads in flight at once when filling the page's previews. */
const PREVIEW_CONCURRENCY = 4;
/**
 * Change events are applied in batches: CHANGE_BATCH_MS after the first change, and then
 * no more often than every CHANGE_BATCH_MAX_MS while changes keep coming. A bulk load
 * delivers thousands of events a second; applying each one (re-sorting the key list,
 * re-reading the local keys, a quorum read per visible key, a repaint) made the panel the
 * largest CPU cost of the tab.
 */
export const CHANGE_BATCH_MS = 100;
export const CHANGE_BATCH_MAX_MS = 500;
/** Versions remembered per key to ignore late older ones (see `KvState.versions`). */
const MAX_VERSIONS = 200_000;

/** Merge two sorted, disjoint string arrays. */
export function mergeSorted(a: readonly string[], b: readonly string[]): string[] {
  const out: string[] = new Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) out[k++] = a[i]! < b[j]! ? a[i++]! : b[j++]!;
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return out;
}

export type Entry =
  | { status: 'loading' }
  | { status: 'ok'; info: KvEntryInfo }
  | { status: 'absent' }
  | { status: 'error'; error: string };

export type ParsedValue = { ok: true; value: unknown } | { ok: false; error: string };

/** The editor's rule: the Value field must be JSON; the reason is shown when it is not. */
export function parseJsonValue(text: string): ParsedValue {
  if (text.trim() === '') return { ok: false, error: 'Invalid JSON: the value is empty (use "" for an empty string, or null).' };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (e) {
    return { ok: false, error: `Invalid JSON: ${errorMessage(e)}` };
  }
}

export class KvState {
  prefix = $state('');
  keys = $state.raw<string[]>([]);
  page = $state(0);
  loading = $state(false);
  listError = $state<string | null>(null);
  /** Keys this tab holds a replica of. */
  local = $state.raw<Set<string>>(new Set());
  entries = $state.raw<Map<string, Entry>>(new Map());
  selected = $state<string | null>(null);
  /** Shown in an alert near the form: put/delete failures. */
  actionError = $state<string | null>(null);
  /** Polite status line ("Saved …", "Deleted …"). */
  status = $state<string | null>(null);
  /** This tab's disk refuses KV writes (stats 'storage.failing'): what the user should know, or null. */
  storageProblem = $state<string | null>(null);
  /** The cluster's replica count and quorums (one value agreed cluster-wide), polled. */
  replication = $state.raw<{ n: number; w: number; r: number } | null>(null);
  saving = $state(false);

  readonly pageCount = $derived(Math.max(1, Math.ceil(this.keys.length / PAGE_SIZE)));
  readonly pageKeys = $derived(this.keys.slice(this.page * PAGE_SIZE, (this.page + 1) * PAGE_SIZE));
  readonly selectedEntry = $derived(this.selected === null ? undefined : this.entries.get(this.selected));

  private readonly node: P2PApi;
  private listSeq = 0;
  private queue: string[] = [];
  private inFlight = 0;
  /** The members of `keys`, for O(1) lookups. */
  private keySet = new Set<string>();
  /** Keys changed (kv events) since the last flush, with the new local copy when the event had it. */
  private changed = new Map<string, KvChange>();
  /** Keys whose replica arrived in this tab since the last flush. */
  private heldNow = new Set<string>();
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private lastFlush = -Infinity;
  /** Unsubscribes the watch of the current prefix. */
  private unwatch: (() => void) | null = null;
  /**
   * Newest version seen per key (watch and local changes may arrive in either order), so
   * an older version arriving late changes nothing. Kept across listings (a listing does
   * not say which versions it saw), at most MAX_VERSIONS, oldest dropped first.
   */
  private versions = new Map<string, { ts: number; node: string; deleted: boolean }>();
  /** Changes that arrived while the current listing was under way: applied on top of it. */
  private sinceList: Map<string, NonNullable<KvChange>> | null = null;

  constructor(node: P2PApi) {
    this.node = node;
  }

  connect(): () => void {
    this.watchPrefix();
    this.refreshLocal();
    // Before the node has joined, the listing only covers this tab; list again once it has.
    let live = true;
    this.node.ready.then(
      () => live && void this.refresh(),
      (e: unknown) => live && (this.listError = `The node did not start: ${errorMessage(e)}`),
    );
    const off = subscribe(
      this.node,
      (e) => {
        if (e.type === 'kv') this.onChange(e.key, e.entry, true);
        if (e.type === 'members' || e.type === 'peers') this.scheduleFlush();
      },
      () => this.refreshLocal(),
    );
    return () => {
      live = false;
      off();
      this.unwatch?.();
      this.unwatch = null;
      if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    };
  }

  setPrefix(prefix: string): void {
    this.prefix = prefix;
    this.page = 0;
    this.watchPrefix();
  }

  /** Watch the current prefix (instead of the previous one), then list it: nothing written meanwhile is missed. */
  private watchPrefix(): void {
    this.unwatch?.();
    this.unwatch = null;
    const prefix = this.prefix;
    try {
      const handle = this.node.kv.watch(prefix, (e) => this.onWatch(e));
      this.unwatch = handle;
      handle.ready.then(
        () => prefix === this.prefix && void this.refresh(),
        (e: unknown) => {
          if (prefix === this.prefix) this.listError = `Could not follow changes: ${errorMessage(e)}`;
          void this.refresh();
        },
      );
    } catch (e) {
      this.listError = `Could not follow changes: ${errorMessage(e)}`;
    }
    void this.refresh();
  }

  private onWatch(e: KvWatchEvent): void {
    if (e.type === 'resync') return void this.refresh();
    this.onChange(e.key, e.type === 'put' ? { value: e.value, version: e.version, deleted: false } : { value: null, version: e.version, deleted: true }, false);
  }

  goTo(page: number): void {
    this.page = Math.min(Math.max(0, page), this.pageCount - 1);
    this.loadPreviews();
  }

  async refresh(): Promise<void> {
    const seq = ++this.listSeq;
    this.loading = true;
    // The listing's replies may have been gathered before a change that the watch brings
    // while it runs: such changes are applied on top of the listing, not lost under it.
    const since = (this.sinceList = new Map());
    try {
      const prefix = this.prefix;
      const keys = new Set(await this.node.kv.keys(prefix));
      if (seq !== this.listSeq) return;
      for (const [k, c] of since) {
        if (c.deleted) keys.delete(k);
        else if (k.startsWith(prefix)) keys.add(k);
      }
      this.setKeys([...keys].sort());
      this.listError = null;
      if (this.page >= this.pageCount) this.page = this.pageCount - 1;
      this.entries = new Map();
      this.loadPreviews();
      if (this.selected !== null) this.load(this.selected);
    } catch (e) {
      if (seq === this.listSeq) this.listError = `Could not list keys: ${errorMessage(e)}`;
    } finally {
      if (seq === this.listSeq) {
        this.loading = false;
        this.sinceList = null;
      }
    }
  }

  select(key: string | null): void {
    this.selected = key;
    this.actionError = null;
    this.status = null;
    // a click on a key shows its current value: always read it again
    if (key !== null) this.load(key, true);
  }

  async save(key: string, valueText: string): Promise<boolean> {
    this.status = null;
    if (key === '') {
      this.actionError = 'Key is required.';
      return false;
    }
    const parsed = parseJsonValue(valueText);
    if (!parsed.ok) {
      this.actionError = parsed.error;
      return false;
    }
    this.saving = true;
    try {
      await this.node.kv.put(key, parsed.value);
      this.actionError = null;
      this.status = `Saved "${key}".`;
      this.insertKey(key);
      this.selected = key;
      this.load(key, true);
      return true;
    } catch (e) {
      this.actionError = `Could not save "${key}": ${errorMessage(e)}`;
      return false;
    } finally {
      this.saving = false;
    }
  }

  async remove(key: string): Promise<boolean> {
    this.status = null;
    this.saving = true;
    try {
      await this.node.kv.delete(key);
      this.actionError = null;
      this.status = `Deleted "${key}".`;
      this.dropKey(key);
      if (this.selected === key) this.selected = null;
      return true;
    } catch (e) {
      this.actionError = `Could not delete "${key}": ${errorMessage(e)}`;
      return false;
    } finally {
      this.saving = false;
    }
  }

  isLocal(key: string): boolean {
    return this.local.has(key);
  }

  /** `held`: the change is to this tab's replica (the key is held here). */
  private onChange(key: string, entry: KvChange, held: boolean): void {
    if (held && entry && !this.local.has(key)) this.heldNow.add(key);
    if (entry) {
      const seen = this.versions.get(key);
      if (seen && compareVersions(seen, entry.version) >= 0) {
        if (held) this.scheduleFlush();
        return; // older than what the list shows already
      }
      this.versions.delete(key);
      this.versions.set(key, { ts: entry.version.ts, node: entry.version.node, deleted: entry.deleted });
      if (this.versions.size > MAX_VERSIONS) this.versions.delete(this.versions.keys().next().value!);
      this.sinceList?.set(key, entry);
    }
    this.changed.set(key, entry);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushTimer !== undefined) return;
    const wait = Math.max(CHANGE_BATCH_MS, this.lastFlush + CHANGE_BATCH_MAX_MS - performance.now());
    this.flushTimer = setTimeout(() => this.flush(), wait);
  }

  /** Apply the batched changes: new keys merged into the list, changed previews read again. */
  flush(): void {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.lastFlush = performance.now();
    const changes = [...this.changed].filter(([k]) => k.startsWith(this.prefix));
    this.changed.clear();
    // a tombstone (watched, or in this tab's replica): the key is gone from the list (one pass for all)
    const gone = new Set(changes.filter(([k, c]) => c?.deleted && k !== this.selected && this.keySet.has(k)).map(([k]) => k));
    if (gone.size) {
      this.setKeys(this.keys.filter((k) => !gone.has(k)));
      if (this.page >= this.pageCount) this.page = this.pageCount - 1;
    }
    const fresh = changes.filter(([k, c]) => !c?.deleted && !this.keySet.has(k)).map(([k]) => k);
    if (fresh.length) this.setKeys(mergeSorted(this.keys, fresh.sort()));
    // Rows on the page (and the open entry) follow the change. The event carries this
    // tab's new copy, so no quorum read is needed: during a bulk load the reads of every
    // tab's visible rows were the panel's largest cost, in this tab and in the replicas.
    const onPage = new Set(this.pageKeys);
    const next = new Map(this.entries);
    const reread: string[] = [];
    for (const [k, c] of changes) {
      if (k !== this.selected && !onPage.has(k)) {
        next.delete(k);
        continue;
      }
      if (!c) {
        next.delete(k);
        reread.push(k);
      } else if (c.deleted) next.set(k, { status: 'absent' });
      else next.set(k, { status: 'ok', info: { key: k, value: c.value, version: c.version, replicas: this.replicasOf(k) } });
    }
    if (changes.length) this.entries = next;
    for (const k of reread) this.load(k, true);
    this.loadPreviews();
    // a replica change event means this tab holds the key; the 1 s poll re-reads the whole
    // list, as keys also leave this tab when ownership moves
    const added = [...this.heldNow].filter((k) => !this.local.has(k));
    this.heldNow.clear();
    if (added.length) this.local = new Set([...this.local, ...added]);
  }

  private replicasOf(key: string): string[] {
    try {
      return this.node.kv.replicas(key);
    } catch {
      return [];
    }
  }

  private setKeys(keys: string[]): void {
    this.keys = keys;
    this.keySet = new Set(keys);
  }

  private insertKey(key: string): void {
    if (!key.startsWith(this.prefix) || this.keySet.has(key)) return;
    this.setKeys(mergeSorted(this.keys, [key]));
  }

  private dropKey(key: string): void {
    if (!this.keySet.has(key)) return;
    this.setKeys(this.keys.filter((k) => k !== key));
    const next = new Map(this.entries);
    next.delete(key);
    this.entries = next;
    if (this.page >= this.pageCount) this.page = this.pageCount - 1;
  }

  private refreshLocal(): void {
    this.readStorageHealth();
    this.readReplication();
    try {
      const local = this.node.kv.localKeys();
      if (local.length !== this.local.size || local.some((k) => !this.local.has(k))) this.local = new Set(local);
    } catch (e) {
      this.listError = `Could not read local keys: ${errorMessage(e)}`;
    }
  }

  private readReplication(): void {
    try {
      const r = this.node.kv.replication();
      const cur = this.replication;
      if (!cur || cur.n !== r.n || cur.w !== r.w || cur.r !== r.r) this.replication = { n: r.n, w: r.w, r: r.r };
    } catch {
      // an API without it (older mock): nothing shown
    }
  }

  private readStorageHealth(): void {
    let stats: Record<string, number>;
    try {
      stats = this.node.stats();
    } catch {
      return;
    }
    const problem = storageProblem(stats);
    if (problem !== this.storageProblem) this.storageProblem = problem;
  }

  private loadPreviews(): void {
    for (const k of this.pageKeys) if (!this.entries.has(k)) this.load(k);
  }

  /** Queue a quorum read (kv.inspect) of key; `front` jumps the queue (selection, fresh writes). */
  private load(key: string, front = false): void {
    if (this.queue.includes(key)) return;
    if (!this.entries.has(key)) this.setEntry(key, { status: 'loading' });
    if (front) this.queue.unshift(key);
    else this.queue.push(key);
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < PREVIEW_CONCURRENCY && this.queue.length) {
      const key = this.queue.shift()!;
      // Skip keys that scrolled off the page meanwhile.
      if (key !== this.selected && !this.pageKeys.includes(key)) {
        if (this.entries.get(key)?.status === 'loading') this.deleteEntry(key);
        continue;
      }
      this.inFlight++;
      this.node.kv
        .inspect(key)
        .then(
          (info) => {
            // A quorum read answered before a change that the events brought meanwhile is
            // older than what the panel shows: it must not put the old value back.
            const seen = this.versions.get(key);
            if (info) {
              const cur = this.entries.get(key);
              if (seen && compareVersions(seen, info.version) > 0 && cur?.status === 'ok' && compareVersions(info.version, cur.info.version) <= 0) return;
              this.setEntry(key, { status: 'ok', info });
            } else {
              if (seen && !seen.deleted && this.entries.get(key)?.status === 'ok') return;
              this.dropKey(key);
              if (key === this.selected) this.setEntry(key, { status: 'absent' });
            }
          },
          (e: unknown) => this.setEntry(key, { status: 'error', error: errorMessage(e) }),
        )
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }

  private setEntry(key: string, entry: Entry): void {
    const next = new Map(this.entries);
    next.set(key, entry);
    this.entries = next;
  }

  private deleteEntry(key: string): void {
    const next = new Map(this.entries);
    next.delete(key);
    this.entries = next;
  }
}

/**
 * What the KV panel says when this tab's IndexedDB refuses writes: its puts fail and it
 * acknowledges no replica write until a retry succeeds (runtime/durable-acks.ts).
 */
export function storageProblem(stats: Record<string, number>): string | null {
  if (!stats['storage.failing']) return null;
  const errors = stats['storage.errors'] ?? 0;
  return (
    `This tab cannot write to its disk (IndexedDB: ${errors} failed ${errors === 1 ? 'write' : 'writes'}, retrying). ` +
    'Its writes are not acknowledged and it confirms no copies for others until storage works again; other tabs keep the data.'
  );
}
