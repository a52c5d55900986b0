/**
 * Anti-entropy digests (Dynamo §4.7 uses Merkle trees per key range; a flat array of
 * bucket digests is enough for the key counts of a browser cluster and costs one round
 * trip less). Both sides digest the keys they both replicate in their own ring view:
 * bucket = hash(key) mod B, digest = (count, sum of hash(key, version) mod 2^32).
 * Equal digests mean equal versions with high probability; a 32-bit sum collision would
 * hide a difference for one round only if the versions also collide next round.
 */
import { hash32 } from '../placement';
import type { Entry } from './types';

const BUCKET_SEED = 0x9e3779b9;
const ITEM_SEED = 0x85ebca6b;

export const bucketOf = (key: string, buckets: number): number => hash32(key, BUCKET_SEED) % buckets;

export const itemHash = (e: Entry): number => hash32(`${e.key}\u0000${e.version.ts}\u0000${e.version.node}`, ITEM_SEED);

export interface Digest {
  counts: number[];
  sums: number[];
}

export function digestOf(entries: Iterable<Entry>, buckets: number): Digest {
  const counts = new Array<number>(buckets).fill(0);
  const sums = new Array<number>(buckets).fill(0);
  for (const e of entries) {
    const b = bucketOf(e.key, buckets);
    counts[b]!++;
    sums[b] = (sums[b]! + itemHash(e)) >>> 0;
  }
  return { counts, sums };
}

/** Indices where the two digests (same length) differ. */
export function differingBuckets(a: Digest, b: Digest): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.counts.length; i++) {
    if (a.counts[i] !== b.counts[i] || a.sums[i] !== b.sums[i]) out.push(i);
  }
  return out;
}
