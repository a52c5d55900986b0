import { DecayingCount } from '../core/limits/rate';

/** Strikes a peer sheds per second: it is cut for a burst of garbage, never for rare mistakes over a long life. */
export const STRIKE_DECAY_PER_SEC = 1;

/** Counters for `window.p2p.stats()` and a short ring of recent problems with reasons. */
export class Stats {
  private readonly counters = new Map<string, number>();
  private readonly problems: string[] = [];
  private readonly strikes = new DecayingCount(STRIKE_DECAY_PER_SEC);

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

  /**
   * One more malformed message from `peer` at `now`: its strikes, decayed by
   * STRIKE_DECAY_PER_SEC; the caller disconnects a peer whose strikes pass its budget.
   */
  strike(peer: string, now = Date.now()): number {
    return this.strikes.add(peer, now);
  }

  /** Forgets a peer's strikes (its link was closed for them). */
  forgive(peer: string): void {
    this.strikes.reset(peer);
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.counters);
  }

  recent(): string[] {
    return [...this.problems];
  }
}
