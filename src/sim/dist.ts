import type { Rng } from '../core/types';

/**
 * A delay distribution in ms: a constant, uniform in [min, max), or any function of the
 * simulator's seeded Rng (e.g. a long-tailed latency model).
 */
export type Dist = number | { min: number; max: number } | ((rng: Rng) => number);

export function draw(d: Dist, rng: Rng): number {
  if (typeof d === 'number') return d;
  if (typeof d === 'function') return Math.max(0, d(rng));
  return d.min + rng.next() * (d.max - d.min);
}

/** Log-normal with the given median and shape: most links fast, a few slow. */
export function logNormal(median: number, sigma: number): (rng: Rng) => number {
  return (rng) => {
    // Box-Muller; 1 - u keeps log away from 0.
    const u = 1 - rng.next();
    const v = rng.next();
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    return median * Math.exp(sigma * z);
  };
}
