/**
 * Signals (ICE candidates, answers) that arrived before the offer of their connection,
 * kept briefly so that the offer finds them (several signaling servers deliver out of
 * order). Anyone who can publish to our signaling topic can send them under any id, so
 * the store is bounded: per claimed sender in count and bytes, in total in count and
 * bytes, and in age. Past a bound the oldest signal (of that sender, or of anyone for the
 * totals) is dropped and counted; a signal larger than a sender's byte bound is refused.
 * A signal's size is the length of its JSON text (signals arrive as parsed JSON).
 */

export interface EarlyLimits {
  /** Signals kept per sender (all its connections together). */
  perPeer: number;
  /** Bytes kept per sender. */
  perPeerBytes: number;
  /** Signals kept in total. */
  total: number;
  /** Bytes kept in total. */
  totalBytes: number;
  /** A signal is dropped this long after it arrived. */
  keepMs: number;
}

/** A browser's trickle is one offer or answer and a few to a few dozen candidates of ~200 bytes each. */
export const EARLY_LIMITS: EarlyLimits = { perPeer: 64, perPeerBytes: 32 * 1024, total: 512, totalBytes: 256 * 1024, keepMs: 10_000 };

interface Item {
  from: string;
  conn: string;
  signal: unknown;
  bytes: number;
  at: number;
}

export class EarlySignals {
  /** In arrival order (oldest first). */
  private items: Item[] = [];
  private bytes = 0;
  private readonly perPeer = new Map<string, { count: number; bytes: number }>();
  /** Signals dropped or refused by a bound (expiry by age is not counted). */
  dropped = 0;

  constructor(private readonly limits: EarlyLimits = EARLY_LIMITS) {}

  get size(): number {
    return this.items.length;
  }

  get totalBytes(): number {
    return this.bytes;
  }

  /** Keep `signal` for the offer of (from, conn); false when it was refused (too large). */
  add(from: string, conn: string, signal: unknown, now: number): boolean {
    this.expire(now);
    const bytes = sizeOf(signal);
    if (bytes > this.limits.perPeerBytes || bytes > this.limits.totalBytes) {
      this.dropped++;
      return false;
    }
    const mine = this.perPeer.get(from) ?? { count: 0, bytes: 0 };
    while (mine.count > 0 && (mine.count + 1 > this.limits.perPeer || mine.bytes + bytes > this.limits.perPeerBytes)) {
      this.removeAt(this.items.findIndex((i) => i.from === from));
      this.dropped++;
    }
    while (this.items.length > 0 && (this.items.length + 1 > this.limits.total || this.bytes + bytes > this.limits.totalBytes)) {
      this.removeAt(0);
      this.dropped++;
    }
    this.items.push({ from, conn, signal, bytes, at: now });
    this.bytes += bytes;
    const p = this.perPeer.get(from) ?? { count: 0, bytes: 0 };
    p.count++;
    p.bytes += bytes;
    this.perPeer.set(from, p);
    return true;
  }

  /** The signals kept for (from, conn), oldest first, removed from the store. */
  take(from: string, conn: string, now: number): unknown[] {
    this.expire(now);
    const out: unknown[] = [];
    const rest: Item[] = [];
    for (const i of this.items) {
      if (i.from === from && i.conn === conn) {
        out.push(i.signal);
        this.forget(i);
      } else rest.push(i);
    }
    this.items = rest;
    return out;
  }

  /** Drop signals older than keepMs. */
  expire(now: number): void {
    let n = 0;
    while (n < this.items.length && now - this.items[n]!.at > this.limits.keepMs) this.forget(this.items[n++]!);
    if (n > 0) this.items = this.items.slice(n);
  }

  private removeAt(index: number): void {
    const [i] = this.items.splice(index, 1);
    if (i) this.forget(i);
  }

  private forget(i: Item): void {
    this.bytes -= i.bytes;
    const p = this.perPeer.get(i.from);
    if (!p) return;
    p.count--;
    p.bytes -= i.bytes;
    if (p.count <= 0) this.perPeer.delete(i.from);
  }
}

/** Length of the signal's JSON text; a value JSON cannot write (not from the signaling JSON) counts as too large. */
function sizeOf(signal: unknown): number {
  try {
    return JSON.stringify(signal)?.length ?? 0;
  } catch (e) {
    if (e instanceof TypeError || e instanceof RangeError) return Number.POSITIVE_INFINITY;
    throw e;
  }
}
