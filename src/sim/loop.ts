import { EventQueue } from './queue';

/** A queued event. Dispatched events are recycled (see EventLoop.schedule), so fields are mutable. */
export class Ev<L> {
  constructor(
    public time: number,
    public seq: number,
    /** What happens (the subclass's kinds; CALL: a callback from later()). */
    public kind: number,
    public node: number,
    public peer: number,
    public payload: unknown,
    public link: L | null,
    /** The work this event descends from (see Network.messagesCausedBy). */
    public cause: number,
    /** When it was scheduled. */
    public born: number,
    /** The incarnation of `node` it is meant for. */
    public inc: number,
  ) {}
}

/** The kind of a later() callback; subclasses number their kinds from 1. */
export const CALL = 0;

/** Recycled events kept at most (beyond it they are left to the GC). */
const EV_POOL_MAX = 1 << 16;

/**
 * Virtual time over the event queue: events run in (time, scheduling order), so the
 * same calls give the same run. The network (network.ts) is one; `later` schedules any
 * callback on the same clock. Background work (periodic timers that never quiesce) can
 * be held aside while the rest drains (`settle`).
 */
export abstract class EventLoop<L> {
  /** Virtual time, ms. */
  now: number;
  private readonly queue = new EventQueue<Ev<L>>();
  private seq = 0;
  private hold = false;
  private holdStart = 0;
  private held: Ev<L>[] = [];
  /**
   * Dispatched events, reused by schedule(): in-flight messages outlive several young-
   * generation GCs, so allocating one object per event made the GC copy and promote
   * millions of them at 10,000 nodes.
   */
  private readonly pool: Ev<L>[] = [];
  /** Set when dispatch() keeps the event (a held background timer): not recycled. */
  private kept = false;

  constructor(start: number) {
    this.now = start;
  }

  /** Runs one event of the subclass's kinds. */
  protected abstract dispatch(ev: Ev<L>): void;

  /** Run `fire` after `delay` ms of virtual time (a negative delay counts as 0). */
  later(delay: number, fire: () => void): void {
    this.schedule(this.now + Math.max(0, delay), CALL, -1, -1, fire, null, 0, 0);
  }

  /** Process one event; false when the queue is empty. */
  step(): boolean {
    const ev = this.queue.pop();
    if (!ev) return false;
    this.now = ev.time;
    if (ev.kind === CALL) (ev.payload as () => void)();
    else this.dispatch(ev);
    if (this.kept) this.kept = false;
    else if (this.pool.length < EV_POOL_MAX) {
      ev.payload = null;
      ev.link = null;
      this.pool.push(ev);
    }
    return true;
  }

  /** Process every event due at or before `time`, then set the clock to `time`. */
  runUntil(time: number): void {
    for (;;) {
      const next = this.queue.peek();
      if (!next || next.time > time) break;
      this.step();
    }
    if (time > this.now) this.now = time;
  }

  runFor(ms: number): void {
    this.runUntil(this.now + ms);
  }

  /**
   * Process events until `done()` holds; false if `maxMs` of virtual time passed first.
   * With `every`, `done` is checked every that many virtual ms instead of after every
   * event (for expensive checks).
   */
  runUntilTrue(done: () => boolean, maxMs: number, every = 0): boolean {
    const end = this.now + maxMs;
    if (every > 0) {
      while (!done()) {
        if (this.now >= end) return false;
        this.runFor(Math.min(every, end - this.now));
      }
      return true;
    }
    while (!done()) {
      const next = this.queue.peek();
      if (!next || next.time > end) {
        if (end > this.now) this.now = end;
        return done();
      }
      this.step();
    }
    return true;
  }

  /** Run until nothing is queued or `maxMs` passed; true if the queue emptied. */
  drain(maxMs = Infinity): boolean {
    const end = this.now + maxMs;
    for (;;) {
      const next = this.queue.peek();
      if (!next) return true;
      if (next.time > end) return false;
      this.step();
    }
  }

  /**
   * Hold background work from now on: dispatch() sets due background timers aside
   * (`holdAside`). resumeBackground() puts them back with the delay they had left when
   * the pause began (or, if armed during the pause, their whole delay).
   */
  pauseBackground(): void {
    if (this.hold) return;
    this.hold = true;
    this.holdStart = this.now;
  }

  resumeBackground(): void {
    if (!this.hold) return;
    this.hold = false;
    for (const ev of this.held) {
      // What was left of its delay when the pause (or its life) began.
      ev.time = this.now + (ev.time - Math.max(this.holdStart, ev.born));
      ev.seq = this.seq++;
      this.queue.push(ev);
    }
    this.held = [];
  }

  /**
   * Let in-flight work finish with background work held, then resume it. Measuring
   * right after settle() sees the system at quiescence. True if it drained.
   */
  settle(maxMs = 60_000): boolean {
    const paused = this.hold;
    this.pauseBackground();
    const drained = this.drain(maxMs);
    if (!paused) this.resumeBackground();
    return drained;
  }

  /** Events queued (held background timers not counted). */
  get pendingEvents(): number {
    return this.queue.size;
  }

  /** Time of the next queued event, or null when nothing is queued. */
  nextEventTime(): number | null {
    return this.queue.peek()?.time ?? null;
  }

  /** True while background work is held (see pauseBackground). */
  protected get holding(): boolean {
    return this.hold;
  }

  /** Called from dispatch(): keep `ev` aside until resumeBackground(). */
  protected holdAside(ev: Ev<L>): void {
    this.held.push(ev);
    this.kept = true;
  }

  protected schedule(time: number, kind: number, node: number, peer: number, payload: unknown, link: L | null, cause: number, inc: number): void {
    const ev = this.pool.pop();
    if (ev === undefined) {
      this.queue.push(new Ev<L>(time, this.seq++, kind, node, peer, payload, link, cause, this.now, inc));
      return;
    }
    ev.time = time;
    ev.seq = this.seq++;
    ev.kind = kind;
    ev.node = node;
    ev.peer = peer;
    ev.payload = payload;
    ev.link = link;
    ev.cause = cause;
    ev.born = this.now;
    ev.inc = inc;
    this.queue.push(ev);
  }
}
