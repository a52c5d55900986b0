/**
 * Hybrid logical clock (Kulkarni et al. 2014). A timestamp packs physical milliseconds
 * and a 10-bit logical counter into one safe integer, so timestamps compare with `<`
 * and fit in msgpack as a plain number: ts = wall * 1024 + counter. With Unix-epoch
 * milliseconds that stays below 2^53 until the year 2248 (a 16-bit counter would not:
 * the present wall clock in ms times 65536 is already past 2^53 and neighbouring ticks would collide).
 * More than 1024 events in one millisecond borrow from the next millisecond.
 * The physical time is an input (`now`), keeping this pure.
 */
export type Hlc = number;

export const HLC_LOGICAL = 1024;
const LOGICAL_BITS = HLC_LOGICAL;

/**
 * How far ahead of the receiver's clock a version may be (ms of wall time): KV versions,
 * segment ballots, membership incarnations and chat timestamps further ahead are refused
 * on receive. A peer cannot make its writes win for longer than this, nor drag other
 * clocks forward by more; honest clocks only need to agree within it.
 */
export const MAX_AHEAD_MS = 60_000;

/** True when `ts` (an HLC) is more than MAX_AHEAD_MS ahead of `now` (ms). */
export const hlcTooFarAhead = (ts: Hlc, now: number): boolean => Math.floor(ts / 1024) > now + MAX_AHEAD_MS;

export const hlcWall = (ts: Hlc): number => Math.floor(ts / LOGICAL_BITS);
export const hlcCounter = (ts: Hlc): number => ts % LOGICAL_BITS;
export const makeHlc = (wall: number, counter: number): Hlc => wall * LOGICAL_BITS + counter;

export class HlcClock {
  private last: Hlc = 0;

  /** Timestamp for a local event or send. */
  tick(now: number): Hlc {
    const wall = Math.max(Math.floor(now), hlcWall(this.last));
    const counter = wall === hlcWall(this.last) ? hlcCounter(this.last) + 1 : 0;
    this.last = counter >= LOGICAL_BITS ? makeHlc(wall + 1, 0) : makeHlc(wall, counter);
    return this.last;
  }

  /** Merge a timestamp received from another node; returns the new local timestamp. */
  receive(remote: Hlc, now: number): Hlc {
    if (remote > this.last) this.last = remote;
    return this.tick(now);
  }

  peek(): Hlc {
    return this.last;
  }
}
