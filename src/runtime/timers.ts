/**
 * Many timers on one `setTimeout`.
 *
 * The core asks for a timer per request (quorum timeouts, hint timers) and the API arms
 * a safety timer per call, so a tab writing thousands of keys a second would create and
 * clear thousands of browser timers a second; in profiles that cost as much as the
 * protocol work. Timers here are kept in one FIFO per distinct delay (the core uses a
 * handful of fixed delays, and timers of one delay fire in the order they were set), and
 * a single browser timer is armed for the earliest one.
 */
export interface TimerHandle {
  cancel(): void;
}

interface Entry {
  due: number;
  fn: (() => void) | null;
}

export class TimerQueue {
  /** delay → entries in order of `due` */
  private readonly fifos = new Map<number, { items: Entry[]; head: number }>();
  private armedAt = Infinity;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private size_ = 0;
  private cancelled = 0;
  private stopped = false;

  constructor(private readonly now: () => number = Date.now) {}

  /** Pending timers, cancelled ones included until their time comes. */
  get size(): number {
    return this.size_;
  }

  set(fn: () => void, delay: number): TimerHandle {
    if (this.stopped) return { cancel: () => undefined };
    const d = Math.max(0, Math.round(delay));
    const e: Entry = { due: this.now() + d, fn };
    let q = this.fifos.get(d);
    if (!q) this.fifos.set(d, (q = { items: [], head: 0 }));
    q.items.push(e);
    this.size_++;
    if (!this.stopped && e.due < this.armedAt) this.arm(e.due);
    return {
      cancel: () => {
        if (e.fn === null) return;
        e.fn = null;
        if (++this.cancelled > 1024 && this.cancelled * 2 > this.size_) this.purge();
      },
    };
  }

  /**
   * Drop cancelled timers now rather than when they come due: every API call arms a safety
   * timer of many seconds that is almost always cancelled, and a bulk load would otherwise
   * keep tens of thousands of them.
   */
  private purge(): void {
    for (const [d, q] of this.fifos) {
      q.items = q.items.slice(q.head).filter((e) => e.fn !== null);
      q.head = 0;
      if (q.items.length === 0) this.fifos.delete(d);
    }
    this.size_ = 0;
    for (const q of this.fifos.values()) this.size_ += q.items.length;
    this.cancelled = 0;
  }

  /** Cancel everything; later set() calls are ignored. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.fifos.clear();
    this.size_ = 0;
    this.cancelled = 0;
  }

  private arm(due: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.armedAt = due;
    this.timer = setTimeout(() => this.fire(), Math.max(0, due - this.now()));
  }

  private fire(): void {
    this.timer = undefined;
    this.armedAt = Infinity;
    const now = this.now();
    const due: Entry[] = [];
    let next = Infinity;
    for (const [d, q] of this.fifos) {
      while (q.head < q.items.length && q.items[q.head]!.due <= now) due.push(q.items[q.head++]!);
      if (q.head === q.items.length) this.fifos.delete(d);
      else {
        if (q.head > 1024 && q.head * 2 > q.items.length) {
          q.items = q.items.slice(q.head);
          q.head = 0;
        }
        next = Math.min(next, q.items[q.head]!.due);
      }
    }
    this.size_ -= due.length;
    for (const e of due) if (e.fn === null) this.cancelled--;
    // fire in time order across delays
    due.sort((a, b) => a.due - b.due);
    if (next < Infinity) this.arm(next);
    for (const e of due) {
      if (this.stopped) return;
      const fn = e.fn;
      e.fn = null;
      fn?.();
    }
  }
}
