/**
 * Signals that overtake their offer are kept for it, within bounds: a flood under one
 * claimed id cannot grow the store past its per-sender bounds nor push out other senders'
 * signals, a flood under many ids cannot grow it past its totals, and every drop is counted.
 */
import { describe, expect, it } from 'vitest';
import { EarlySignals, EARLY_LIMITS } from './early-signals';

const candidate = (n: number, pad = 0) => ({ candidate: { candidate: `candidate:${n} 1 udp 2122260223 10.0.0.2 5000 typ host${' '.repeat(pad)}`, sdpMid: '0' } });

describe('EarlySignals', () => {
  it('hands the signals of one connection to its offer, in arrival order, and forgets them', () => {
    const e = new EarlySignals();
    e.add('b', 'b.1', candidate(1), 0);
    e.add('c', 'c.1', candidate(9), 0);
    e.add('b', 'b.1', candidate(2), 1);
    e.add('b', 'b.2', candidate(3), 2);
    expect(e.take('b', 'b.1', 3)).toEqual([candidate(1), candidate(2)]);
    expect(e.take('b', 'b.1', 3)).toEqual([]);
    expect(e.size).toBe(2);
    expect(e.dropped).toBe(0);
  });

  it('keeps at most perPeer signals of one sender across its connections, dropping its oldest, and not touching others', () => {
    const e = new EarlySignals();
    e.add('honest', 'h.1', candidate(0), 0);
    for (let i = 0; i < 10_000; i++) e.add('flooder', `f.${i}`, candidate(i), 0);
    expect(e.size).toBe(EARLY_LIMITS.perPeer + 1);
    expect(e.dropped).toBe(10_000 - EARLY_LIMITS.perPeer);
    // the newest of the flood are the ones kept
    expect(e.take('flooder', 'f.9999', 0)).toEqual([candidate(9999)]);
    expect(e.take('flooder', 'f.0', 0)).toEqual([]);
    expect(e.take('honest', 'h.1', 0)).toEqual([candidate(0)]);
  });

  it('keeps at most perPeerBytes of one sender and refuses a signal larger than that', () => {
    const e = new EarlySignals();
    const big = candidate(1, 4000); // ~4 KiB
    for (let i = 0; i < 50; i++) e.add('b', 'b.1', big, 0);
    expect(e.size).toBeLessThan(50);
    expect(e.totalBytes).toBeLessThanOrEqual(EARLY_LIMITS.perPeerBytes);
    expect(e.totalBytes).toBeGreaterThan(EARLY_LIMITS.perPeerBytes - 4200);
    const before = e.dropped;
    expect(e.add('b', 'b.1', candidate(2, EARLY_LIMITS.perPeerBytes), 0)).toBe(false);
    expect(e.dropped).toBe(before + 1);
  });

  it('keeps at most total signals and totalBytes over all senders, dropping the oldest', () => {
    const e = new EarlySignals();
    for (let i = 0; i < 5_000; i++) e.add(`id${i}`, `id${i}.1`, candidate(i), 0);
    expect(e.size).toBe(EARLY_LIMITS.total);
    expect(e.take('id0', 'id0.1', 0)).toEqual([]);
    expect(e.take('id4999', 'id4999.1', 0)).toEqual([candidate(4999)]);
    const f = new EarlySignals();
    for (let i = 0; i < 5_000; i++) f.add(`id${i}`, `id${i}.1`, candidate(i, 3000), 0);
    expect(f.totalBytes).toBeLessThanOrEqual(EARLY_LIMITS.totalBytes);
    expect(f.dropped).toBe(5_000 - f.size);
  });

  it('forgets signals after keepMs (not counted as drops)', () => {
    const e = new EarlySignals();
    e.add('b', 'b.1', candidate(1), 0);
    e.add('b', 'b.1', candidate(2), 5_000);
    expect(e.take('b', 'b.1', EARLY_LIMITS.keepMs + 1)).toEqual([candidate(2)]);
    e.add('c', 'c.1', candidate(3), 0);
    e.expire(EARLY_LIMITS.keepMs + 1);
    expect(e.size).toBe(0);
    expect(e.dropped).toBe(0);
  });
});
