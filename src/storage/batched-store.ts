/**
 * A store whose writes are batched: callers enqueue puts and removals, and a flush runs at
 * most every `flushMs`, as one IndexedDB transaction. `pending` counts what is queued or
 * being written, so 0 means everything handed over is on disk (or failed, in `errors`).
 */
import { delMany, entries, setMany, type UseStore } from 'idb-keyval';

export interface NodeStoreStats {
  flushes: number;
  written: number;
  removed: number;
  errors: number;
  pending: number;
}

export class BatchedStore<V> {
  private readonly pendingPut = new Map<string, V>();
  private readonly pendingDel = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private flushing: Promise<void> = Promise.resolve();
  /** Entries handed to IndexedDB whose transaction has not completed yet. */
  private inflight = 0;
  readonly stats: NodeStoreStats = { flushes: 0, written: 0, removed: 0, errors: 0, pending: 0 };

  constructor(
    protected readonly store: UseStore,
    private readonly flushMs = 50,
    private readonly onError: (e: unknown) => void = () => undefined,
  ) {}

  put(key: string, value: V): void {
    this.pendingDel.delete(key);
    this.pendingPut.set(key, value);
    this.schedule();
  }

  remove(key: string): void {
    this.pendingPut.delete(key);
    this.pendingDel.add(key);
    this.schedule();
  }

  async loadAll(): Promise<[string, V][]> {
    return (await entries<string, V>(this.store)) as [string, V][];
  }

  private schedule(): void {
    this.updatePending();
    if (!this.timer) this.timer = setTimeout(() => void this.flush(), this.flushMs);
  }

  /** Queued plus in flight: 0 means everything handed to this store is on disk (or failed, counted in errors). */
  private updatePending(): void {
    this.stats.pending = this.pendingPut.size + this.pendingDel.size + this.inflight;
  }

  /** Writes everything pending; resolves when it is on disk. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const puts = [...this.pendingPut];
    const dels = [...this.pendingDel];
    this.pendingPut.clear();
    this.pendingDel.clear();
    const n = puts.length + dels.length;
    this.inflight += n;
    this.updatePending();
    if (n === 0) return this.flushing;
    this.flushing = this.flushing.then(async () => {
      try {
        await this.write(puts, dels);
        this.stats.flushes++;
        this.stats.written += puts.length;
        this.stats.removed += dels.length;
      } catch (e) {
        this.stats.errors++;
        this.onError(e);
      } finally {
        this.inflight -= n;
        this.updatePending();
      }
    });
    return this.flushing;
  }

  /** One batch to IndexedDB: here a record per key. */
  protected async write(puts: [string, V][], dels: string[]): Promise<void> {
    if (puts.length) await setMany(puts, this.store);
    if (dels.length) await delMany(dels, this.store);
  }
}
