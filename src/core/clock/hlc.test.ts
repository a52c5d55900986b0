import { describe, expect, it } from 'vitest';
import { HlcClock, hlcCounter, hlcWall } from './hlc';

describe('HlcClock', () => {
  it('is strictly increasing even when the wall clock stands still or goes back', () => {
    const c = new HlcClock();
    const a = c.tick(1000);
    const b = c.tick(1000);
    const d = c.tick(900);
    expect(b).toBeGreaterThan(a);
    expect(d).toBeGreaterThan(b);
    expect(hlcWall(d)).toBe(1000);
    expect(hlcCounter(d)).toBe(2);
  });

  it('moves past a timestamp received from a node whose clock runs ahead', () => {
    const c = new HlcClock();
    const remote = new HlcClock().tick(5000);
    const t = c.receive(remote, 1000);
    expect(t).toBeGreaterThan(remote);
    expect(c.tick(1001)).toBeGreaterThan(t);
  });

  it('gives distinct, increasing timestamps at present-day wall clocks (no float collisions)', () => {
    const c = new HlcClock();
    const now = 1_795_000_000_000; // late 2026
    const ts = Array.from({ length: 3000 }, () => c.tick(now));
    for (let i = 1; i < ts.length; i++) expect(ts[i]).toBeGreaterThan(ts[i - 1]!);
    expect(Number.isSafeInteger(ts[ts.length - 1])).toBe(true);
    expect(hlcWall(ts[0]!)).toBe(now);
  });
});
