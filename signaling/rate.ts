/** Token bucket: `capacity` tokens, refilled continuously at `perSec`. Time is
 * passed in (milliseconds, monotonic) so tests and callers control the clock. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly capacity: number,
    private readonly perSec: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.last = now;
  }

  /** Takes `n` tokens if there are that many; takes nothing otherwise. */
  take(now: number, n = 1): boolean {
    this.refill(now);
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /** Whether the bucket has refilled to capacity by `now`. */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.capacity;
  }

  /** Tokens left after the last refill (fractional). */
  get level(): number {
    return this.tokens;
  }

  private refill(now: number): void {
    const elapsed = now - this.last;
    if (elapsed <= 0) return;
    this.last = now;
    this.tokens = Math.min(this.capacity, this.tokens + (elapsed * this.perSec) / 1000);
  }
}

/**
 * A log sink that lets through a burst of lines and then `perSec` lines per
 * second, counting the rest, so a flood of bad frames cannot fill the disk. The
 * next line that gets through says how many were suppressed before it.
 */
export class RateLimitedLog {
  private readonly bucket: TokenBucket;
  private suppressedSinceLast = 0;
  suppressedTotal = 0;

  constructor(
    private readonly sink: (line: string) => void,
    burst: number,
    perSec: number,
    private readonly now: () => number,
  ) {
    this.bucket = new TokenBucket(burst, perSec, now());
  }

  line(text: string): void {
    if (!this.bucket.take(this.now())) {
      this.suppressedSinceLast += 1;
      this.suppressedTotal += 1;
      return;
    }
    if (this.suppressedSinceLast > 0) {
      text += ` (${this.suppressedSinceLast} similar lines suppressed)`;
      this.suppressedSinceLast = 0;
    }
    this.sink(text);
  }
}
