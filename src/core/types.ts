/**
 * Shared vocabulary of the pure core.
 *
 * The protocol contract (handle(input, now, out), the six effects) is in protocol.ts.
 * Nothing in core/ performs IO, reads a clock, calls Math.random or schedules a timer:
 * the browser runtime and the simulator run the effects, which is what makes a failing
 * seed replayable.
 */
export type NodeId = string;

/** Deterministic source of randomness: next() is uniform in [0, 1). */
export interface Rng {
  next(): number;
}
