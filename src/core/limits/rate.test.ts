import { describe, expect, it } from 'vitest';
import { DecayingCount, TokenBuckets } from './rate';

describe('TokenBuckets', () => {
  it('lets a key spend its burst, then refills at perSec, per key', () => {
    const b = new TokenBuckets({ burst: 3, perSec: 2 });
    expect([1, 2, 3, 4].map(() => b.take('a', 0))).toEqual([true, true, true, false]);
    // another key has its own bucket
    expect(b.take('b', 0)).toBe(true);
    // 500 ms later one token is back (2 a second), not two
    expect(b.take('a', 500)).toBe(true);
    expect(b.take('a', 500)).toBe(false);
    // refill is capped at the burst
    expect(b.tokens('a', 1_000_000)).toBe(3);
  });

  it('a clock going backwards neither refills nor breaks a bucket', () => {
    const b = new TokenBuckets({ burst: 1, perSec: 1 });
    expect(b.take('a', 10_000)).toBe(true);
    expect(b.take('a', 0)).toBe(false);
    expect(b.take('a', 11_000)).toBe(true);
  });

  it('tracks at most maxKeys keys: a flood of fresh keys cannot grow memory', () => {
    const b = new TokenBuckets({ burst: 1, perSec: 1 }, 100);
    for (let i = 0; i < 10_000; i++) b.take(`k${i}`, 0);
    expect(b.size).toBeLessThanOrEqual(100);
  });
});

describe('DecayingCount', () => {
  it('counts events per key and forgets them at perSec', () => {
    const c = new DecayingCount(1);
    for (let i = 0; i < 10; i++) c.add('p', 0);
    expect(c.add('p', 0)).toBe(11);
    // 5 s later 5 are forgotten
    expect(c.add('p', 5_000)).toBe(7);
    // long after, a new event counts as the first
    expect(c.add('p', 100_000)).toBe(1);
    c.reset('p');
    expect(c.add('p', 100_000)).toBe(1);
  });

  it('a rare mistake over a long life never adds up to a burst', () => {
    const c = new DecayingCount(1);
    let max = 0;
    for (let i = 0; i < 1_000; i++) max = Math.max(max, c.add('p', i * 2_000));
    expect(max).toBe(1);
  });
});
