/** Small numeric and polling helpers for the bench (percentiles: src/util/percentile.ts). */

export function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  return values.reduce((a, b) => a + b, 0) / values.length;
}

export function round(x: number | null | undefined, digits = 2): number | null {
  if (x === null || x === undefined || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until `ok`; returns the last value and whether it succeeded. Never throws on timeout. */
export async function pollUntil<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, everyMs = 100): Promise<{ value: T; ok: boolean }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (ok(value)) return { value, ok: true };
    if (Date.now() > until) return { value, ok: false };
    await sleep(everyMs);
  }
}
