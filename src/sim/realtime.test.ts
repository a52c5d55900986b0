import { afterEach, describe, expect, it, vi } from 'vitest';
import { Network, type Adapter, type SimNode } from './network';
import { RealTimeDriver } from './realtime';

type In = { type: 'timer'; timer: unknown } | { type: 'message'; from: string; msg: unknown };
type Out = { type: 'timer'; delayMs: number; timer: unknown };
const adapter: Adapter<In, Out> = { message: (from, msg) => ({ type: 'message', from, msg }), timer: (timer) => ({ type: 'timer', timer }) };
const idle: SimNode<In, Out> = { handle: () => undefined };

afterEach(() => vi.useRealTimers());

describe('RealTimeDriver', () => {
  it('runs each event when the wall clock reaches its virtual time, sleeping in between', () => {
    vi.useFakeTimers({ now: 10_000 });
    const net = new Network<In, Out>(adapter, { seed: 1, start: 10_000 });
    net.add('a', idle);
    const fired: number[] = [];
    net.later(500, () => fired.push(Date.now()));
    net.later(2_500, () => fired.push(Date.now()));
    const driver = new RealTimeDriver(net);
    driver.pump();
    vi.advanceTimersByTime(499);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual([10_500]);
    vi.advanceTimersByTime(2_000);
    expect(fired).toEqual([10_500, 12_500]);
    expect(net.now).toBe(12_500);
    // work queued from outside wakes it
    net.later(100, () => fired.push(Date.now()));
    driver.poke();
    vi.advanceTimersByTime(100);
    expect(fired).toEqual([10_500, 12_500, 12_600]);
    driver.stop();
    net.later(10, () => fired.push(Date.now()));
    driver.poke();
    vi.advanceTimersByTime(5_000);
    expect(fired).toHaveLength(3);
  });

  it('an event that throws is reported and the rest of the simulation runs on', () => {
    vi.useFakeTimers({ now: 0 });
    const net = new Network<In, Out>(adapter, { seed: 1 });
    const errors: string[] = [];
    const fired: string[] = [];
    net.later(10, () => {
      throw new Error('a bug');
    });
    net.later(10, () => fired.push('same instant'));
    net.later(20, () => fired.push('later'));
    const after = vi.fn();
    const driver = new RealTimeDriver(net, { onError: (e) => errors.push((e as Error).message), after });
    driver.pump();
    vi.advanceTimersByTime(30);
    expect(errors).toEqual(['a bug']);
    expect(fired).toEqual(['same instant', 'later']);
    expect(after).toHaveBeenCalled();
    driver.stop();
  });
});
