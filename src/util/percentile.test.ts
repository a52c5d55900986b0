import { describe, expect, it } from 'vitest';
import { percentile, percentileSorted } from './percentile';

describe('percentile (nearest rank)', () => {
  it('picks the value of rank ceil(p/100 * n), one of the values', () => {
    const v = [15, 20, 35, 40, 50];
    expect(percentile(v, 5)).toBe(15);
    expect(percentile(v, 30)).toBe(20);
    expect(percentile(v, 40)).toBe(20);
    expect(percentile(v, 50)).toBe(35);
    expect(percentile(v, 100)).toBe(50);
  });

  it('clamps p = 0 to the smallest value and sorts a copy of unsorted input', () => {
    const v = [9, 1, 5, 3];
    expect(percentile(v, 0)).toBe(1);
    expect(percentile(v, 99)).toBe(9);
    expect(v).toEqual([9, 1, 5, 3]);
  });

  it('gives null for no values', () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentileSorted([], 99)).toBeNull();
  });

  it('agrees with the sorted variant', () => {
    const v = Array.from({ length: 101 }, (_, i) => (i * 37) % 101);
    const s = [...v].sort((a, b) => a - b);
    for (const p of [0, 1, 25, 50, 75, 99, 100]) expect(percentile(v, p)).toBe(percentileSorted(s, p));
  });
});
