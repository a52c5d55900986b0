import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TimerQueue } from './timers';

describe('TimerQueue', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('fires each timer once, at its time, in time order across delays', () => {
    const q = new TimerQueue(() => Date.now());
    const fired: string[] = [];
    q.set(() => fired.push('a300'), 300);
    q.set(() => fired.push('b100'), 100);
    vi.advanceTimersByTime(50);
    q.set(() => fired.push('c100'), 100); // due at 150
    q.set(() => fired.push('d0'), 0);
    vi.advanceTimersByTime(0);
    expect(fired).toEqual(['d0']);
    vi.advanceTimersByTime(60); // t = 110
    expect(fired).toEqual(['d0', 'b100']);
    vi.advanceTimersByTime(1000);
    expect(fired).toEqual(['d0', 'b100', 'c100', 'a300']);
    expect(q.size).toBe(0);
  });

  it('a cancelled timer never fires; the others still do', () => {
    const q = new TimerQueue(() => Date.now());
    const fired: number[] = [];
    const handles = Array.from({ length: 10 }, (_, i) => q.set(() => fired.push(i), 100));
    for (let i = 0; i < 10; i += 2) handles[i]!.cancel();
    vi.advanceTimersByTime(100);
    expect(fired).toEqual([1, 3, 5, 7, 9]);
  });

  it('uses one browser timer for thousands of timers', () => {
    const q = new TimerQueue(() => Date.now());
    const spy = vi.spyOn(globalThis, 'setTimeout');
    let n = 0;
    for (let i = 0; i < 5000; i++) q.set(() => n++, 15_000);
    expect(spy.mock.calls.length).toBeLessThanOrEqual(1);
    vi.advanceTimersByTime(15_000);
    expect(n).toBe(5000);
    spy.mockRestore();
  });

  it('a timer set from a firing callback is kept', () => {
    const q = new TimerQueue(() => Date.now());
    const fired: string[] = [];
    q.set(() => {
      fired.push('first');
      q.set(() => fired.push('second'), 10);
    }, 10);
    vi.advanceTimersByTime(100);
    expect(fired).toEqual(['first', 'second']);
  });

  it('stop() cancels everything and ignores later timers', () => {
    const q = new TimerQueue(() => Date.now());
    let n = 0;
    q.set(() => n++, 10);
    q.stop();
    q.set(() => n++, 10);
    vi.advanceTimersByTime(100);
    expect(n).toBe(0);
  });

  it('forgets cancelled timers long before they come due', () => {
    const q = new TimerQueue(() => Date.now());
    let n = 0;
    const keep = q.set(() => n++, 15_000);
    for (let i = 0; i < 10_000; i++) q.set(() => n++, 15_000).cancel();
    expect(q.size).toBeLessThan(1100);
    vi.advanceTimersByTime(15_000);
    expect(n).toBe(1);
    void keep;
  });
});

