/**
 * Nearest-rank percentiles, shared by the simulator's reports (`src/sim`) and the bench
 * (`scripts/bench`): the p-th percentile (p in 0..100) of n values is the value of rank
 * ⌈p/100 · n⌉ in ascending order (rank 1 for p = 0), so it is always one of the values,
 * never an interpolation. Both return null for no values: a report shows "no samples"
 * rather than a made-up figure.
 */

/** The p-th percentile (0..100, nearest rank) of values already sorted ascending; null when empty. */
export function percentileSorted(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** The p-th percentile (0..100, nearest rank) of values in any order (sorts a copy); null when empty. */
export function percentile(values: readonly number[], p: number): number | null {
  return percentileSorted([...values].sort((a, b) => a - b), p);
}
