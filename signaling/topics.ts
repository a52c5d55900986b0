/** Topic name → subscribers. A topic exists only while it has a subscriber, so
 * the table's size is bounded by live subscriptions, never by history. */
export class TopicTable<C> {
  private readonly subs = new Map<string, Set<C>>();
  private subscriptionCount = 0;

  constructor(private readonly maxTopics: number) {}

  /** Number of topics with at least one subscriber. */
  get size(): number {
    return this.subs.size;
  }

  /** Sum of subscribers over all topics. */
  get subscriptions(): number {
    return this.subscriptionCount;
  }

  subscribers(topic: string): ReadonlySet<C> | undefined {
    return this.subs.get(topic);
  }

  /** Adds `conn` to `topic`; false when the topic is new and the table is full. */
  add(topic: string, conn: C): boolean {
    let set = this.subs.get(topic);
    if (!set) {
      if (this.subs.size >= this.maxTopics) return false;
      set = new Set();
      this.subs.set(topic, set);
    }
    if (!set.has(conn)) {
      set.add(conn);
      this.subscriptionCount += 1;
    }
    return true;
  }

  remove(topic: string, conn: C): void {
    const set = this.subs.get(topic);
    if (!set) return;
    if (set.delete(conn)) this.subscriptionCount -= 1;
    if (set.size === 0) this.subs.delete(topic);
  }
}
