/**
 * An insertion-ordered map bounded by age and by count: the message cache and the
 * seen-id set of Plumtree. Entries are stamped with the `now` they were set at; since
 * `now` only moves forward, insertion order is age order and eviction just pops the
 * front of the Map (O(1) amortised, no periodic timer needed).
 * If a runtime clock ever steps back, eviction becomes approximate, never wrong in a
 * way that loses safety: an entry may live a little longer than maxAgeMs.
 */
export class AgedMap<K, V> {
  private readonly entries = new Map<K, { value: V; at: number }>();
  /** Entries removed by the count bound before reaching their age limit. */
  evictedEarly = 0;

  constructor(
    private readonly maxAgeMs: number,
    private readonly maxSize: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  get(key: K): V | undefined {
    return this.entries.get(key)?.value;
  }

  /** Insert or refresh (a refreshed key moves to the back, i.e. becomes youngest). */
  set(key: K, value: V, now: number): void {
    this.entries.delete(key);
    this.entries.set(key, { value, at: now });
    this.expire(now);
  }

  /** Keys, oldest first. */
  keys(): IterableIterator<K> {
    return this.entries.keys();
  }

  /** [key, value] pairs, oldest first. */
  *items(): IterableIterator<[K, V]> {
    for (const [k, e] of this.entries) yield [k, e.value];
  }

  delete(key: K): boolean {
    return this.entries.delete(key);
  }

  /** Drop entries older than maxAgeMs, then the oldest ones beyond maxSize. */
  expire(now: number): void {
    for (const [key, e] of this.entries) {
      const tooOld = now - e.at >= this.maxAgeMs;
      const tooMany = this.entries.size > this.maxSize;
      if (!tooOld && !tooMany) break;
      if (!tooOld) this.evictedEarly++;
      this.entries.delete(key);
    }
  }
}
