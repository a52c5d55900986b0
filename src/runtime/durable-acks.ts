/**
 * "Acknowledged means on disk": a replica's acknowledgement of a KV write, and the reply
 * to this tab's own put or delete, leave only once every KV write handed to IndexedDB
 * before them is committed. The core emits its `persist` effect before the sends that
 * acknowledge it (core/kv/README.md); this gate holds those sends while the KV store has
 * uncommitted writes, and releases them, in the order they came, when the store's current
 * batch commits (the store then writes at once instead of after its batching delay).
 *
 * When that write fails, a held acknowledgement is dropped (the coordinator counts the
 * replica as silent: it asks a stand-in, or the put fails for want of W durable copies),
 * and a held put reply becomes an error. The store retries the failed items on its own
 * (storage/batched-store.ts), so later writes can still succeed.
 *
 * Which messages acknowledge possession: `kv.putAck(s)` (a replica write), `kv.pushAck`
 * (a handoff or anti-entropy push: the sender may drop its copy once every owner
 * confirmed), `kv.want` (answers an offer: what it does not list, the owner claims to
 * hold) and `kv.gcHave` (a tombstone held, before collection).
 */

/** What the gate needs of the KV store (storage/batched-store.ts). */
export interface DurableStore {
  readonly uncommitted: boolean;
  durable(): Promise<boolean>;
}

export const ACK_TYPES: ReadonlySet<string> = new Set(['kv.putAck', 'kv.putAcks', 'kv.pushAck', 'kv.want', 'kv.gcHave']);

export interface GateCounters {
  /** Acknowledgements and replies that waited for the disk. */
  held: number;
  /** Acknowledgements dropped because the write they covered failed. */
  dropped: number;
  /** Put/delete replies turned into errors because the write failed. */
  failedReplies: number;
}

interface Held {
  run: () => void;
  failed: () => void;
}

/**
 * Most acknowledgements and replies held at once: a disk that never answers must not make
 * peers' writes pile up in memory; past it, what would be held is treated as failed.
 */
export const MAX_HELD = 50_000;

/** `failed` of an acknowledgement: it is not sent. */
export const DROP = (): void => undefined;

export class DurableAcks {
  readonly counters: GateCounters = { held: 0, dropped: 0, failedReplies: 0 };
  /** The outcome being waited for and what waits on it, in order. */
  private waiting: { outcome: Promise<boolean>; held: Held[]; released: Promise<void> } | null = null;
  /** Held now, over every batch still waiting. */
  private heldNow = 0;

  constructor(private readonly store: DurableStore | null) {}

  /** Whether `type` is a message that acknowledges a KV write. */
  static isAck(type: string): boolean {
    return ACK_TYPES.has(type);
  }

  /**
   * Runs `run` now when every KV write is on disk, else once the writes handed over so far
   * are (`failed` instead, when that write failed).
   */
  after(run: () => void, failed: () => void): void {
    const store = this.store;
    if (!store || (!store.uncommitted && !this.waiting)) return run();
    if (this.heldNow >= MAX_HELD) return this.fail(failed);
    this.counters.held++;
    this.heldNow++;
    const outcome = store.uncommitted ? store.durable() : this.waiting!.outcome;
    const w = this.waiting;
    if (w && w.outcome === outcome) {
      w.held.push({ run, failed });
      return;
    }
    const held: Held[] = [{ run, failed }];
    // released in order: a batch waits for the release of the one before it
    const released = Promise.all([outcome, w ? w.released : undefined]).then(([ok]) => {
      if (this.waiting?.held === held) this.waiting = null;
      this.heldNow -= held.length;
      for (const h of held) {
        try {
          if (ok) h.run();
          else this.fail(h.failed);
        } catch {
          // a send or reply that throws must not stop the others (the runtime counts its errors)
        }
      }
    });
    this.waiting = { outcome, held, released };
  }

  /** What was to be sent or replied cannot be: counted, and `failed` runs. */
  private fail(failed: () => void): void {
    if (failed === DROP) this.counters.dropped++;
    else this.counters.failedReplies++;
    failed();
  }
}
