import { describe, expect, it } from 'vitest';
import { hash32, Ring, RING_CACHE } from './ring';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `node-${i}`);
const keys = Array.from({ length: 5000 }, (_, i) => `key/${i}`);

describe('Ring', () => {
  it('hash32 is a deterministic 32-bit hash that spreads similar strings', () => {
    expect(hash32('abc')).toBe(hash32('abc'));
    expect(hash32('abc')).not.toBe(hash32('abd'));
    for (const k of keys.slice(0, 100)) {
      const h = hash32(k);
      expect(Number.isInteger(h) && h >= 0 && h < 2 ** 32).toBe(true);
    }
  });

  it('preference lists hold N distinct members, all of them when fewer than N', () => {
    const ring = new Ring(ids(8), 64, 3);
    for (const k of keys.slice(0, 500)) {
      const p = ring.preferenceList(k);
      expect(p.length).toBe(3);
      expect(new Set(p).size).toBe(3);
    }
    expect([...new Ring(ids(2), 64, 3).preferenceList('x')].sort()).toEqual(['node-0', 'node-1']);
    expect(new Ring([], 64, 3).preferenceList('x')).toEqual([]);
  });

  it('does not depend on the order members are given in', () => {
    const a = new Ring(ids(6), 32, 3);
    const b = new Ring(ids(6).reverse(), 32, 3);
    for (const k of keys.slice(0, 200)) expect(a.preferenceList(k)).toEqual(b.preferenceList(k));
  });

  it('spreads keys evenly with virtual nodes', () => {
    const ring = new Ring(ids(10), 64, 3);
    const primaries = new Map<string, number>();
    for (const k of keys) {
      const p = ring.preferenceList(k)[0]!;
      primaries.set(p, (primaries.get(p) ?? 0) + 1);
    }
    const mean = keys.length / 10;
    for (const c of primaries.values()) expect(Math.abs(c - mean) / mean).toBeLessThan(0.35);
  });

  it('moves few keys when one member joins or leaves (consistent hashing)', () => {
    const before = new Ring(ids(10), 64, 3);
    const after = new Ring([...ids(10), 'node-new'], 64, 3);
    let moved = 0;
    for (const k of keys) if (before.preferenceList(k)[0] !== after.preferenceList(k)[0]) moved++;
    // ideal: 1/11 of the keys; every moved key went to the newcomer
    expect(moved / keys.length).toBeLessThan(0.16);
    for (const k of keys) {
      const a = before.preferenceList(k)[0];
      const b = after.preferenceList(k)[0];
      if (a !== b) expect(b).toBe('node-new');
    }
    // removing a member keeps the survivors of every preference list in place
    const smaller = new Ring(ids(10).filter((m) => m !== 'node-3'), 64, 3);
    for (const k of keys.slice(0, 500)) {
      const survivors = before.preferenceList(k).filter((m) => m !== 'node-3');
      expect(smaller.preferenceList(k).slice(0, survivors.length)).toEqual(survivors);
    }
  });

  it('walk continues past the preference list for stand-ins; segments cover every replica group', () => {
    const ring = new Ring(ids(5), 16, 3);
    const w = ring.walk('k');
    expect(w.length).toBe(5);
    expect(w.slice(0, 3)).toEqual(ring.preferenceList('k'));
    const segs = ring.segments();
    for (const k of keys.slice(0, 300)) {
      const p = ring.preferenceList(k);
      expect(segs.some((s) => s.join() === p.join())).toBe(true);
    }
  });

  it('shares one preference list per ring range instead of allocating one per key', () => {
    const ring = new Ring(ids(8), 64, 3);
    const lists = new Set<readonly string[]>();
    for (let i = 0; i < 20_000; i++) lists.add(ring.preferenceList(`key-${i}`));
    // at most one per token (8 members x 64 vnodes), not one per key
    expect(lists.size).toBeLessThanOrEqual(8 * 64);
    expect(ring.preferenceList('key-1')).toBe(ring.preferenceList('key-1'));
    expect(ring.preferenceList('key-1')).toEqual(ring.walk('key-1', 3));
  });

  it('places every key where a plain (token, member) sort of the vnodes would', () => {
    // the reference the packed-float build must agree with: every member's tokens, sorted by token then member
    const members = [...ids(300), 'a', 'zz', 'é-node'].sort();
    const points: [number, number][] = [];
    members.forEach((m, mi) => {
      for (let v = 0; v < 16; v++) points.push([hash32(`${m}#${v}`), mi]);
    });
    points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const ring = new Ring(members, 16, 3);
    for (const k of keys) {
      const h = hash32(k);
      let i = points.findIndex((p) => p[0] >= h);
      if (i < 0) i = 0;
      const want: string[] = [];
      for (let j = 0; want.length < 3; j++) {
        const m = members[points[(i + j) % points.length]![1]]!;
        if (!want.includes(m)) want.push(m);
      }
      expect(ring.preferenceList(k)).toEqual(want);
    }
  });

  it('Ring.of shares one ring per member set, whatever the order, and answers like a new ring', () => {
    const a = Ring.of(['n3', 'n1', 'n2', 'n1'], 64, 3);
    expect(Ring.of(['n1', 'n2', 'n3'], 64, 3)).toBe(a);
    expect(Ring.of(['n1', 'n2', 'n3'], 32, 3)).not.toBe(a);
    expect(Ring.of(['n1', 'n2', 'n3'], 64, 2)).not.toBe(a);
    const fresh = new Ring(['n1', 'n2', 'n3'], 64, 3);
    for (const k of keys.slice(0, 200)) expect(a.preferenceList(k)).toEqual(fresh.preferenceList(k));
    // bounded: after RING_CACHE other sets the first is rebuilt (a new instance, same answers)
    for (let i = 0; i < RING_CACHE; i++) Ring.of(ids(4 + i), 64, 3);
    const again = Ring.of(['n1', 'n2', 'n3'], 64, 3);
    expect(again).not.toBe(a);
    expect(again.segments()).toEqual(a.segments());
  });
});
