/**
 * The driver runs every effect of a turn even when running one of them throws (an encoder
 * refusing a peer's value, a failing store): the other sends and timers of that turn
 * still happen, and the failure is counted as an error with its reason.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CoreDriver, type DriverEffect } from './core-driver';
import { Stats } from './stats';

describe('CoreDriver', () => {
  let d: CoreDriver | undefined;
  afterEach(() => {
    d?.shutdown();
    vi.restoreAllMocks();
  });

  it('an effect that throws does not drop the rest of the turn', () => {
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const stats = new Stats();
    const ran: DriverEffect[] = [];
    let failed = 0;
    d = new CoreDriver('me', undefined, stats, (e) => {
      // the first send of the turn fails as a send of an unencodable value would
      if (e.type === 'send' && failed === 0) {
        failed++;
        throw new RangeError('value too deep to encode');
      }
      ran.push(e);
    });
    d.start({ type: 'start', nick: 'me' }, () => undefined);
    ran.length = 0;
    // a neighbour joins: the core answers with several sends in one turn
    d.step({ type: 'frame', from: 'p1', msg: { type: 'hpv.join' } as never });
    expect(failed).toBe(1);
    const sends = ran.filter((e) => e.type === 'send').map((e) => (e as Extract<DriverEffect, { type: 'send' }>).msg.type);
    expect(sends).toContain('hpv.neighborReply');
    expect(sends.length).toBeGreaterThanOrEqual(2);
    expect(stats.snapshot().errors).toBe(1);
    expect(stats.recent().at(-1)).toMatch(/effect \(send\): value too deep to encode/);
    // the node keeps working: the next turn's effects run as usual
    d.step({ type: 'frame', from: 'p2', msg: { type: 'hpv.join' } as never });
    expect(ran.filter((e) => e.type === 'send' && (e as { to: string }).to === 'p2').length).toBeGreaterThan(0);
  });
});
