/**
 * A virtual clock over the event queue, for the small seeded test networks of core/
 * (kv/testnet.ts, segments/testnet.ts): `later` schedules a callback, `run`/`runUntil`
 * advance virtual time firing callbacks in (time, scheduling order). Pure: no timers,
 * no Date.now, no randomness; the same calls give the same run.
 */
import { EventQueue, type Timed } from './queue';

interface ClockEvent extends Timed {
  fire: () => void;
}

export class VirtualClock {
  private readonly queue = new EventQueue<ClockEvent>();
  private seq = 0;

  constructor(public now: number) {}

  /** Events scheduled and not yet fired. */
  get pending(): number {
    return this.queue.size;
  }

  /** Run `fire` after `delay` ms of virtual time (a negative delay counts as 0). */
  later(delay: number, fire: () => void): void {
    this.queue.push({ time: this.now + Math.max(0, delay), seq: this.seq++, fire });
  }

  /** Process events up to `now + ms`. */
  run(ms: number): void {
    const end = this.now + ms;
    for (let e = this.queue.peek(); e && e.time <= end; e = this.queue.peek()) {
      this.queue.pop();
      this.now = e.time;
      e.fire();
    }
    this.now = end;
  }

  /**
   * Process events until `done()` holds; false if `maxMs` of virtual time passed first.
   * With `every`, `done` is checked every that many virtual ms instead of after every event
   * (for expensive checks).
   */
  runUntil(done: () => boolean, maxMs: number, every = 0): boolean {
    const end = this.now + maxMs;
    if (every > 0) {
      while (!done()) {
        if (this.now >= end) return false;
        this.run(Math.min(every, end - this.now));
      }
      return true;
    }
    while (!done()) {
      const e = this.queue.peek();
      if (!e || e.time > end) {
        this.now = Math.max(this.now, end);
        return done();
      }
      this.queue.pop();
      this.now = e.time;
      e.fire();
    }
    return true;
  }
}
