/**
 * Request ids (`op`) of one node incarnation, for the data protocols' requests and their
 * answers. A random base (one draw from the protocol's rng) keeps a restarted node's ids
 * apart from its previous life's, so late answers to those are not taken for answers to
 * new requests; a counter makes them unique within the incarnation. Never 0: KVS read
 * repairs travel with op 0, which nobody waits for.
 */
import { randInt } from '../rng';
import type { Rng } from '../types';

/** The counter's range: ids of one incarnation stay within base + [1, 2^31). */
const WINDOW = 2 ** 31;

export class OpIds {
  /** A multiple of 2^31 below 2^52: base + counter stays a safe integer. */
  private readonly base: number;
  private counter = 0;

  constructor(rng: Rng) {
    this.base = randInt(rng, 1 << 21) * WINDOW;
  }

  next(): number {
    this.counter = (this.counter % (WINDOW - 1)) + 1;
    return this.base + this.counter;
  }
}
