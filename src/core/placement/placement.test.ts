import { describe, expect, it } from 'vitest';
import { Placement, viewOf } from '.';

describe('Placement', () => {
  it('always places this node; an unchanged set (in any order) rebuilds nothing', () => {
    const p = new Placement('me', 16, 3);
    expect(p.members()).toEqual(['me']);
    expect(p.update(['b', 'a'])).not.toBeNull();
    expect(p.members()).toEqual(['a', 'b', 'me']);
    expect([...p.set()]).toEqual(['b', 'a', 'me']);
    expect(p.update(['me', 'a', 'b'])).toBeNull();
    expect(p.update(['a', 'b', 42 as never, ''])).toBeNull();
  });

  it('returns the previous ring on a change, so callers can compare preference lists', () => {
    const p = new Placement('me', 16, 2);
    p.update(['a', 'b', 'c']);
    const before = p.preferenceList('k');
    const old = p.update(['a', 'b']);
    expect(old?.preferenceList('k')).toEqual(before);
    expect(p.preferenceList('k').every((m) => ['a', 'b', 'me'].includes(m))).toBe(true);
  });

  it('away members keep their ranges but do not count toward quorums (at least 1)', () => {
    const p = new Placement('me', 16, 3);
    p.update(['a', 'b', 'me']);
    const pref = [...p.preferenceList('k')];
    expect(p.update(['a', 'b', 'me'], ['a', 'b', 'me'])).toBeNull();
    expect(p.preferenceList('k')).toEqual(pref);
    expect(p.isAway('a')).toBe(true);
    expect(p.isAway('me')).toBe(false);
    expect(p.quorum(2, ['a', 'b', 'me'])).toBe(1);
    expect(p.quorum(2, ['a', 'b'])).toBe(1);
    p.update(['a', 'b', 'me'], []);
    expect(p.quorum(2, ['a', 'b', 'me'])).toBe(2);
  });

  it('owner and owns follow the preference list', () => {
    const p = new Placement('me', 16, 1);
    p.update(['a', 'b', 'c', 'd']);
    for (const key of ['x', 'y', 'z', 'w']) {
      expect(p.owner(key)).toBe(p.preferenceList(key)[0]);
      expect(p.owns(key)).toBe(p.preferenceList(key)[0] === 'me');
    }
  });
});

describe('viewOf', () => {
  it('builds a ClusterView of a member list, live without the away members', () => {
    expect(viewOf(['b', 'a', 'b'], ['a'])).toEqual({ placement: ['b', 'a'], away: ['a'], live: [{ id: 'b', nick: '', rooms: [] }] });
  });
});
