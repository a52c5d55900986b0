/**
 * The records a protocol changed during one handle() call, written as one `persist`
 * effect when the call ends (protocol.ts: at most one persist per call). The effect is
 * placed where the first change was marked, so it precedes every send of the call that
 * acknowledges what it stores: a peer's acknowledgement means "queued for disk" at least.
 * Records are read at the end of the call: a key changed several times is written once,
 * as it is then, and a key that is gone by then is removed.
 */
import type { PersistEffect } from '../protocol';

/** Where the persist effect goes: the protocol's `Effects`. */
export interface PersistSink<R> {
  position(): number;
  emitAt(index: number, effect: PersistEffect<R>): void;
}

export class PersistBuffer<R> {
  private readonly dirty = new Set<string>();
  private at = 0;

  /**
   * `current(storageKey)`: the record to write for that storage key now, or undefined when
   * the record is gone (its key goes into `remove`).
   */
  constructor(
    private readonly sink: PersistSink<R>,
    private readonly current: (storageKey: string) => R | undefined,
  ) {}

  /**
   * Starts a handle() call. Marks left by a call that did not get to its flush (it threw)
   * are kept: their changes are in memory, so they are written at the start of this call.
   */
  begin(): void {
    if (this.dirty.size > 0) this.at = this.sink.position();
  }

  /** The record stored under `storageKey` changed (or was dropped) in this call. */
  mark(storageKey: string): void {
    if (this.dirty.size === 0) this.at = this.sink.position();
    this.dirty.add(storageKey);
  }

  /** Ends the call: emits the persist effect for what was marked (unless `enabled` is false). */
  flush(enabled = true): void {
    if (this.dirty.size === 0) return;
    const put: R[] = [];
    const remove: string[] = [];
    for (const k of this.dirty) {
      const r = this.current(k);
      if (r === undefined) remove.push(k);
      else put.push(r);
    }
    this.dirty.clear();
    if (enabled) this.sink.emitAt(this.at, { type: 'persist', put, remove });
  }
}
