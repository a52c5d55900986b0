/**
 * Consistent hashing with virtual nodes (Dynamo §4.2): every live member owns `vnodes`
 * tokens on a 32-bit ring; a key's preference list is the first N distinct members
 * clockwise of hash(key). Rebuilt only when the member set changes.
 */
import type { NodeId } from '../types';

/**
 * FNV-1a over UTF-16 code units, finished with murmur3's fmix32 so that similar strings
 * ("node#1", "node#2") land far apart on the ring. Pure and fast; not cryptographic.
 */
export function hash32(s: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Member indexes packed below the token (see the constructor): at most 2^20 members. */
const MEMBER_SPAN = 2 ** 20;
/** Rings kept by `Ring.of`, least recently used evicted: a few membership changes' worth. */
export const RING_CACHE = 8;
const cache = new Map<string, Ring>();

export class Ring {
  /** Sorted, distinct. */
  readonly members: readonly NodeId[];
  private readonly tokens: Uint32Array;
  /** owners[i] indexes `members` for tokens[i]. */
  private readonly owners: Uint32Array;
  private segmentCache: NodeId[][] | null = null;
  /** Preference list per start token, built on first use: shared by every key of the range. */
  private prefByStart: (readonly NodeId[] | undefined)[] = [];

  constructor(members: Iterable<NodeId>, readonly vnodes: number, readonly n: number) {
    this.members = [...new Set(members)].sort();
    const count = this.members.length * vnodes;
    // token × 2^20 + member index in one float (exact below 2^53): a numeric typed-array
    // sort orders by token, ties (vanishingly rare) by member index, so every node builds
    // the same ring, without an array of pairs and a comparator (5–10× slower at 1,000 members)
    const packed = new Float64Array(count);
    let k = 0;
    this.members.forEach((m, mi) => {
      for (let v = 0; v < vnodes; v++) packed[k++] = hash32(`${m}#${v}`) * MEMBER_SPAN + mi;
    });
    packed.sort();
    this.tokens = new Uint32Array(count);
    this.owners = new Uint32Array(count);
    for (let i = 0; i < count; i++) {
      const p = packed[i]!;
      const mi = p % MEMBER_SPAN;
      this.owners[i] = mi;
      this.tokens[i] = (p - mi) / MEMBER_SPAN;
    }
  }

  /**
   * The ring over `members`, shared with every earlier call for the same set, vnodes and N
   * (a bounded cache of the last RING_CACHE rings). A ring is immutable apart from its
   * lazily filled lookup caches, which depend only on the ring, so sharing one changes no
   * answer: the KVS and segments of one node build the same ring on every membership
   * change, and the simulator's thousands of nodes mostly see the same sequence of sets.
   * Deterministic memoisation, no IO or clock: core stays pure.
   */
  static of(members: Iterable<NodeId>, vnodes: number, n: number): Ring {
    const sorted = [...new Set(members)].sort();
    const key = `${vnodes}|${n}|${sorted.join('\u0000')}`;
    const hit = cache.get(key);
    if (hit) {
      cache.delete(key);
      cache.set(key, hit);
      return hit;
    }
    const ring = new Ring(sorted, vnodes, n);
    cache.set(key, ring);
    if (cache.size > RING_CACHE) cache.delete(cache.keys().next().value!);
    return ring;
  }

  /** Index of the first token at or clockwise after `h`. */
  private start(h: number): number {
    let lo = 0;
    let hi = this.tokens.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.tokens[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === this.tokens.length ? 0 : lo;
  }

  private walkFrom(index: number, limit: number): NodeId[] {
    const out: NodeId[] = [];
    const want = Math.min(limit, this.members.length);
    const seen = new Set<number>();
    for (let k = 0; k < this.tokens.length && out.length < want; k++) {
      const o = this.owners[(index + k) % this.tokens.length]!;
      if (!seen.has(o)) {
        seen.add(o);
        out.push(this.members[o]!);
      }
    }
    return out;
  }

  /** Distinct members clockwise from the key's position, up to `limit` (all by default). */
  walk(key: string, limit = Infinity): NodeId[] {
    if (this.tokens.length === 0) return [];
    return this.walkFrom(this.start(hash32(key)), limit);
  }

  /**
   * First N distinct live members clockwise of hash(key); all of them when fewer than N.
   * The array is shared by every key of the same range (do not modify it): caching it per
   * range instead of per key keeps the cost of a lookup at one hash and one binary search
   * without memory that grows with the number of keys.
   */
  preferenceList(key: string): readonly NodeId[] {
    if (this.tokens.length === 0) return [];
    const i = this.start(hash32(key));
    return (this.prefByStart[i] ??= this.walkFrom(i, this.n));
  }

  /**
   * The distinct preference lists of the ring's ranges (one per token, deduplicated):
   * the replica groups a cluster-wide listing must cover and anti-entropy runs within.
   */
  segments(): NodeId[][] {
    if (this.segmentCache) return this.segmentCache;
    const seen = new Map<string, NodeId[]>();
    for (let i = 0; i < this.tokens.length; i++) {
      const pref = this.walkFrom(i, this.n);
      const id = pref.join('\u0000');
      if (!seen.has(id)) seen.set(id, pref);
    }
    this.segmentCache = [...seen.values()];
    return this.segmentCache;
  }
}
