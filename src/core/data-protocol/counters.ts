/**
 * Event counts for a protocol's `stats()`, typed by name: `add` as things happen, then
 * `snapshot` (every name of a fixed list, 0 when never counted) or `partial` (the names
 * counted so far, for open-ended families such as counts per message type).
 */
export class Counters<K extends string> {
  private readonly counts = new Map<K, number>();

  add(name: K, by = 1): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + by);
  }

  get(name: K): number {
    return this.counts.get(name) ?? 0;
  }

  snapshot(names: readonly K[]): Record<K, number> {
    const out = {} as Record<K, number>;
    for (const n of names) out[n] = this.counts.get(n) ?? 0;
    return out;
  }

  partial(): Partial<Record<K, number>> {
    const out: Partial<Record<K, number>> = {};
    for (const [n, v] of this.counts) out[n] = v;
    return out;
  }
}
