/**
 * Shared vocabulary of the pure core.
 *
 * Every protocol in core/ is a class whose only entry point is
 *   handle(input: In, now: number, out: Out[]): void
 * Time (`now`, milliseconds), randomness (an injected Rng) and the node id come in;
 * everything the node wants done (sends, timers, events for the layer above) is pushed
 * onto `out` as a discriminated union with a string `type`. Nothing in core/ performs
 * IO, reads a clock, calls Math.random or schedules a timer: the browser runtime and the
 * simulator run the effects, which is what makes a failing seed replayable.
 */
export type NodeId = string;

/** Deterministic source of randomness: next() is uniform in [0, 1). */
export interface Rng {
  next(): number;
}

/** Effect shared by all protocols: deliver `msg` to `to`. */
export interface SendEffect<M> {
  type: 'send';
  to: NodeId;
  msg: M;
  /**
   * The message does not need (and should not open) a data channel: the runtime uses
   * an open channel if there is one, otherwise relays it through the signaling server.
   * Used for HyParView replies to nodes outside the active view (SHUFFLE_REPLY, ...).
   */
  transient?: boolean;
}

/** Effect shared by all protocols: call handle({type:'timer', timer}) after `delay` ms. */
export interface TimerEffect<T> {
  type: 'timer';
  delay: number;
  timer: T;
}
