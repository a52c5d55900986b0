/**
 * A store whose writes are batched: callers enqueue puts and removals, and one IndexedDB
 * transaction at a time writes what is queued (group commit). Without anyone waiting, a
 * batch is written `flushMs` after its first item; once someone waits for durability
 * (`durable()`), at once, or as soon as the transaction in flight completes, so the items
 * queued meanwhile share the next transaction.
 *
 * A failed write loses nothing that is still wanted: its items go back in the queue (a
 * newer put or removal of the same key queued meanwhile wins) and are retried with
 * backoff (RETRY_MIN_MS doubling to RETRY_MAX_MS); whoever waited for that batch is told
 * it failed. `pending` counts what is queued or being written, so 0 means everything
 * handed over is on disk; `failing` is 1 from a failed write until a write succeeds.
 */
import { delMany, entries, setMany, type UseStore } from 'idb-keyval';

export interface NodeStoreStats {
  flushes: number;
  written: number;
  removed: number;
  /** Failed write attempts. */
  errors: number;
  /** Write attempts that were retries of failed ones. */
  retries: number;
  pending: number;
  /** 1 while the last write attempt failed (and no later one succeeded). */
  failing: number;
}

export const RETRY_MIN_MS = 100;
export const RETRY_MAX_MS = 5_000;

/** One batch's outcome, shared by everyone waiting for it. */
class Outcome {
  readonly done: Promise<boolean>;
  settle!: (ok: boolean) => void;
  constructor() {
    this.done = new Promise<boolean>((r) => (this.settle = r));
  }
}

export class BatchedStore<V> {
  private readonly pendingPut = new Map<string, V>();
  private readonly pendingDel = new Set<string>();
  /** The outcome of the queued batch, created when someone waits for it. */
  private queuedOutcome: Outcome | null = null;
  /** The outcome of the batch being written (null when nothing is in flight). */
  private writing: Outcome | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerUrgent = false;
  /** A write starts at the end of this turn (queueMicrotask). */
  private startingSoon = false;
  /** Consecutive failed writes (drives the retry backoff). */
  private failures = 0;
  /** Entries handed to IndexedDB whose transaction has not completed yet. */
  private inflight = 0;
  readonly stats: NodeStoreStats = { flushes: 0, written: 0, removed: 0, errors: 0, retries: 0, pending: 0, failing: 0 };

  constructor(
    protected readonly store: UseStore,
    private readonly flushMs = 50,
    private readonly onError: (e: unknown) => void = () => undefined,
  ) {}

  put(key: string, value: V): void {
    this.pendingDel.delete(key);
    this.pendingPut.set(key, value);
    this.schedule(false);
  }

  remove(key: string): void {
    this.pendingPut.delete(key);
    this.pendingDel.add(key);
    this.schedule(false);
  }

  async loadAll(): Promise<[string, V][]> {
    return (await entries<string, V>(this.store)) as [string, V][];
  }

  /** Something handed to this store is not on disk yet. */
  get uncommitted(): boolean {
    return this.stats.pending > 0;
  }

  /**
   * Resolves once everything handed to this store so far is on disk (true), or when the
   * write holding some of it failed (false; the items are retried, a later `durable()`
   * covers them again). Asking makes the write start without the batching delay.
   */
  durable(): Promise<boolean> {
    if (this.pendingPut.size + this.pendingDel.size > 0) {
      this.queuedOutcome ??= new Outcome();
      this.schedule(true);
      return this.queuedOutcome.done;
    }
    if (this.writing) return this.writing.done;
    return Promise.resolve(true);
  }

  /** Writes everything queued now; resolves when it is on disk or its write failed. */
  async flush(): Promise<void> {
    await this.durable();
  }

  private schedule(urgent: boolean): void {
    this.updatePending();
    if (this.writing) return; // the write in flight starts the next one when it completes
    if (this.startingSoon) return; // a write starts at the end of this turn
    // after a failure the backoff holds even for those waiting: a failing disk is not hammered
    if (this.timer && (this.timerUrgent || !urgent || this.failures > 0)) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (urgent && this.failures === 0) {
      // someone waits: the write starts once this turn's code is done (what it queues
      // meanwhile goes too), not in a task queued behind the page's others
      this.startingSoon = true;
      queueMicrotask(() => {
        this.startingSoon = false;
        this.writeQueued();
      });
      return;
    }
    this.timerUrgent = urgent;
    const delay = this.failures > 0 ? this.retryDelay() : this.flushMs;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.writeQueued();
    }, delay);
  }

  private retryDelay(): number {
    return Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (this.failures - 1));
  }

  /** Queued plus in flight: 0 means everything handed to this store is on disk. */
  private updatePending(): void {
    this.stats.pending = this.pendingPut.size + this.pendingDel.size + this.inflight;
  }

  /** Starts writing the queued batch as one transaction. */
  private writeQueued(): void {
    if (this.writing) return;
    const puts = [...this.pendingPut];
    const dels = [...this.pendingDel];
    const outcome = this.queuedOutcome ?? new Outcome();
    this.queuedOutcome = null;
    if (puts.length + dels.length === 0) {
      outcome.settle(true);
      return;
    }
    this.pendingPut.clear();
    this.pendingDel.clear();
    const n = puts.length + dels.length;
    this.inflight += n;
    this.writing = outcome;
    this.updatePending();
    if (this.failures > 0) this.stats.retries++;
    this.write(puts, dels).then(
      () => {
        this.stats.flushes++;
        this.stats.written += puts.length;
        this.stats.removed += dels.length;
        this.failures = 0;
        this.stats.failing = 0;
        this.finish(n, outcome, true);
      },
      (e: unknown) => {
        this.stats.errors++;
        this.failures++;
        this.stats.failing = 1;
        // back in the queue, unless a newer put or removal of the key was queued meanwhile
        for (const [k, v] of puts) if (!this.pendingPut.has(k) && !this.pendingDel.has(k)) this.pendingPut.set(k, v);
        for (const k of dels) if (!this.pendingPut.has(k)) this.pendingDel.add(k);
        try {
          this.onError(e);
        } finally {
          this.finish(n, outcome, false);
        }
      },
    );
  }

  private finish(n: number, outcome: Outcome, ok: boolean): void {
    this.inflight -= n;
    this.writing = null;
    this.updatePending();
    outcome.settle(ok);
    if (this.pendingPut.size + this.pendingDel.size === 0) return;
    // someone waits for what was queued meanwhile: write it now (after a failure, once the backoff passed)
    this.schedule(this.queuedOutcome !== null);
  }

  /** One batch to IndexedDB: here a record per key. */
  protected async write(puts: [string, V][], dels: string[]): Promise<void> {
    if (puts.length) await setMany(puts, this.store);
    if (dels.length) await delMany(dels, this.store);
  }
}
