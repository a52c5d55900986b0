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
});
