/** Counters for `window.p2p.stats()` and a short ring of recent problems with reasons. */
export class Stats {
  private readonly counters = new Map<string, number>();
  private readonly problems: string[] = [];
  private readonly strikes = new Map<string, number>();

  count(name: string, by = 1, problem?: string): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
    if (problem !== undefined) {
      this.problems.push(`${new Date().toISOString().slice(11, 23)} ${name}: ${problem.slice(0, 200)}`);
      if (this.problems.length > 100) this.problems.shift();
    }
  }

  /** An error caught at `where` (a bug somewhere must not take the tab down): counted, logged. */
  error(where: string, e: unknown): void {
    this.count('errors', 1, `${where}: ${(e as Error)?.message ?? String(e)}`);
    console.error(`p2p: ${where}`, e);
  }

  set(name: string, value: number): void {
    this.counters.set(name, value);
  }

  /** Malformed frames from one peer; the caller disconnects a peer that keeps at it. */
  strike(peer: string): number {
    const n = (this.strikes.get(peer) ?? 0) + 1;
    this.strikes.set(peer, n);
    if (this.strikes.size > 1000) this.strikes.clear();
    return n;
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.counters);
  }

  recent(): string[] {
    return [...this.problems];
  }
}
