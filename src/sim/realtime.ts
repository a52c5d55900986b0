/**
 * Runs a simulation in real time, in a page or a process (the UI's mock cluster): virtual
 * time follows the wall clock. Each pump runs every event due by `now()`, then sleeps on
 * one timer until the next queued event (at most `maxSleepMs`, so new work injected from
 * outside is never left waiting long). The simulation itself stays as deterministic as
 * the inputs it is given; only when they arrive depends on the wall clock.
 */
export interface Clocked {
  runUntil(time: number): void;
  nextEventTime(): number | null;
}

export interface RealTimeOptions {
  /** Wall clock, ms (default Date.now). */
  now?: () => number;
  /** Longest sleep between pumps, ms (default 1000). */
  maxSleepMs?: number;
  /** Runs after every pump, outside the simulation (e.g. to hand its events to listeners). */
  after?: () => void;
  /**
   * A node threw (a bug): the event that threw is lost, the rest runs on (default:
   * console.error), so one bad input does not stop the whole simulated cluster.
   */
  onError?: (e: unknown) => void;
}

/** Errors one pump reports before it leaves the rest for the next pump. */
const MAX_ERRORS_PER_PUMP = 100;

export class RealTimeDriver {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private armedFor = Infinity;
  private pumping_ = false;
  private stopped = false;
  private readonly now: () => number;
  private readonly maxSleepMs: number;

  constructor(
    private readonly sim: Clocked,
    private readonly opts: RealTimeOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.maxSleepMs = opts.maxSleepMs ?? 1_000;
  }

  /** True while a pump runs the simulation (work injected now must be queued, not run). */
  get pumping(): boolean {
    return this.pumping_;
  }

  /** Run what is due by the wall clock, then sleep until the next event. */
  pump(): void {
    if (this.stopped || this.pumping_) return;
    this.pumping_ = true;
    const until = this.now();
    try {
      // after an error, go on with the events the throw left queued
      for (let tries = 0; tries < MAX_ERRORS_PER_PUMP; tries++) {
        try {
          this.sim.runUntil(until);
          break;
        } catch (e) {
          (this.opts.onError ?? console.error)(e);
        }
      }
    } finally {
      this.pumping_ = false;
    }
    this.opts.after?.();
    this.arm();
  }

  /** Work was queued from outside: make sure the timer wakes for it. */
  poke(): void {
    if (!this.pumping_) this.arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    if (this.stopped) return;
    const now = this.now();
    const next = this.sim.nextEventTime();
    const due = Math.min(next ?? Infinity, now + this.maxSleepMs);
    if (this.timer !== undefined) {
      if (this.armedFor <= due) return;
      clearTimeout(this.timer);
    }
    this.armedFor = due;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.armedFor = Infinity;
      this.pump();
    }, Math.max(0, due - now));
  }
}
