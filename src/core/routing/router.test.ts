import { describe, expect, it } from 'vitest';
import { Router } from './router';

describe('Router', () => {
  it('sends to a neighbour directly and to others along a shortest path', () => {
    // a - b - c - d, and a - e - d is shorter for d
    const r = new Router('a');
    r.setTopology(['b', 'e'], [
      { id: 'b', active: ['a', 'c'] },
      { id: 'c', active: ['b', 'd'] },
      { id: 'd', active: ['c', 'e'] },
      { id: 'e', active: ['a', 'd'] },
    ]);
    expect(r.nextHop('b')).toBe('b');
    expect(r.nextHop('c')).toBe('b');
    expect(r.nextHop('d')).toBe('e');
  });

  it('uses edges reported by either side and returns null when no path is known', () => {
    const r = new Router('a');
    r.setTopology(['b'], [{ id: 'c', active: ['b'] }, { id: 'z', active: [] }]);
    expect(r.nextHop('c')).toBe('b');
    expect(r.nextHop('z')).toBeNull();
    expect(r.nextHop('unknown')).toBeNull();
  });

  it('avoids suspect members as hops while another path exists, and goes through them when none does', () => {
    // a - b - d is shorter than a - c - e - d, but b is suspect (probably crashed); z hangs off b only
    const r = new Router('a');
    r.setTopology(['b', 'c'], [
      { id: 'b', active: ['a', 'd', 'z'], status: 'suspect' },
      { id: 'c', active: ['a', 'e'], status: 'alive' },
      { id: 'e', active: ['c', 'd'], status: 'alive' },
      { id: 'd', active: ['b', 'e'], status: 'alive' },
      { id: 'z', active: ['b'], status: 'alive' },
    ]);
    expect(r.nextHop('d')).toBe('c');
    expect(r.nextHop('b')).toBe('b');
    expect(r.nextHop('z')).toBe('b');
  });

  it('never routes through itself even when others list it', () => {
    const r = new Router('a');
    r.setTopology([], [{ id: 'b', active: ['a'] }]);
    expect(r.nextHop('b')).toBeNull();
  });
});
