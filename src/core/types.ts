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

/**
 * The runtime's proof that a broadcast or routed message comes from its origin (a
 * signature with what it covers, see src/trust/). Opaque to the core: carried along with
 * the message it belongs to, never inspected. Absent in the simulator and the core's
 * tests, which run without cryptography; the runtime hands the core only seals it
 * verified, so the core may take a message's origin at its word.
 */
export type Seal = object;
