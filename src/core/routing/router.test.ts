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

  it('never routes through itself even when others list it', () => {
    const r = new Router('a');
    r.setTopology([], [{ id: 'b', active: ['a'] }]);
    expect(r.nextHop('b')).toBeNull();
  });
});
