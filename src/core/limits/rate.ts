/**
 * Rate limits with decay, pure: time comes in as `now` (ms), as everywhere in core/.
 *
 * A `TokenBuckets` keeps one token bucket per key (a link's peer, a broadcast's origin, a
 * routed envelope's source): each bucket holds at most `burst` tokens and regains
 * `perSec` tokens a second; an event costs a token, and one that finds its bucket empty
 * is refused. Honest traffic stays far below the sustained rate and its bursts below
 * `burst`, so it never notices; a flood from one key is held to `perSec`.
 *
 * A `DecayingCount` counts events per key (e.g. a link's malformed frames, "strikes") and
 * forgets them at `perSec` a second: a peer is punished for a burst of garbage, never for
 * the sum of rare mistakes over a long life.
 *
 * Both keep at most `maxKeys` keys: past that, keys whose state has fully decayed are
 * dropped, then the oldest. A flood of fresh keys (Sybil ids in an open cluster) therefore
 * cannot grow memory; it can only give each fresh key a fresh bucket, which is the most an
 * unauthenticated newcomer can get anyway.
 */

export interface RateConfig {
  /** Events a key may spend at once (bucket capacity). */
  burst: number;
  /** Sustained events a second per key (refill rate). */
  perSec: number;
}

/** Keys a limiter tracks at most. */
export const MAX_RATE_KEYS = 4096;

interface Bucket {
  level: number;
  at: number;
}

/** Shared bookkeeping: a bounded map of levels that move linearly with time. */
abstract class Levels {
  protected readonly levels = new Map<string, Bucket>();

  constructor(protected readonly maxKeys: number) {}

  /** The key's level at `now`, after decay or refill. */
  protected abstract settle(b: Bucket, now: number): number;
  /** A level that carries no information (a full bucket, a zero count). */
  protected abstract idle(level: number): boolean;
  protected abstract fresh(): number;

  protected get(key: string, now: number): Bucket {
    let b = this.levels.get(key);
    if (b === undefined) {
      if (this.levels.size >= this.maxKeys) this.prune(now);
      b = { level: this.fresh(), at: now };
      this.levels.set(key, b);
      return b;
    }
    b.level = this.settle(b, now);
    if (now > b.at) b.at = now;
    return b;
  }

  private prune(now: number): void {
    for (const [k, b] of this.levels) if (this.idle(this.settle(b, now))) this.levels.delete(k);
    // still full: forget the oldest keys (Map keeps insertion order)
    for (const k of this.levels.keys()) {
      if (this.levels.size < this.maxKeys) break;
      this.levels.delete(k);
    }
  }

  /** Keys tracked (for tests and stats). */
  get size(): number {
    return this.levels.size;
  }
}

export class TokenBuckets extends Levels {
  constructor(
    private readonly config: RateConfig,
    maxKeys = MAX_RATE_KEYS,
  ) {
    super(maxKeys);
  }

  /** Spends `cost` tokens of `key`'s bucket: false (nothing spent) when it has fewer. */
  take(key: string, now: number, cost = 1): boolean {
    const b = this.get(key, now);
    if (b.level < cost) return false;
    b.level -= cost;
    return true;
  }

  /** Tokens left in `key`'s bucket at `now`. */
  tokens(key: string, now: number): number {
    const b = this.levels.get(key);
    return b === undefined ? this.config.burst : this.settle(b, now);
  }

  protected settle(b: Bucket, now: number): number {
    const dt = Math.max(0, now - b.at);
    return Math.min(this.config.burst, b.level + (dt * this.config.perSec) / 1000);
  }

  protected idle(level: number): boolean {
    return level >= this.config.burst;
  }

  protected fresh(): number {
    return this.config.burst;
  }
}

export class DecayingCount extends Levels {
  /** `perSec`: how much of the count is forgotten per second. */
  constructor(
    private readonly perSec: number,
    maxKeys = MAX_RATE_KEYS,
  ) {
    super(maxKeys);
  }

  /** Adds one event for `key` at `now`; returns the decayed count including it. */
  add(key: string, now: number): number {
    const b = this.get(key, now);
    b.level += 1;
    return b.level;
  }

  /** Forgets `key` (its link closed). */
  reset(key: string): void {
    this.levels.delete(key);
  }

  protected settle(b: Bucket, now: number): number {
    const dt = Math.max(0, now - b.at);
    return Math.max(0, b.level - (dt * this.perSec) / 1000);
  }

  protected idle(level: number): boolean {
    return level <= 0;
  }

  protected fresh(): number {
    return 0;
  }
}
