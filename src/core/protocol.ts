/**
 * The one contract every protocol in core/ implements (HyParView, Plumtree, membership,
 * KV, segments, chat). `docs/architecture.md` ("The protocol contract") has the table of
 * each protocol's inputs and effects in these terms.
 *
 * A protocol is a class extending `Protocol`; its only entry point is
 *
 *   handle(input: In, now: number, out: Effect[]): void
 *
 * Time (`now`, ms), randomness (an injected Rng) and the node id come in; everything it
 * wants done goes out as effects, pushed onto `out` through `this.io` (an `Effects`):
 * one emission style, so nobody threads `now, out` through private methods and nobody
 * buffers effects in a field of its own. The composer (`core/node.ts`), the simulator and the
 * tests run the effects.
 *
 * Effect vocabulary (the same six for every protocol):
 * - `send`: deliver `msg` to node `to` (a neighbour, or routed by the composer);
 * - `timer`: call handle({ type: 'timer', timer }) after `delayMs`;
 * - `disconnect`: close the link to `peer` (HyParView only);
 * - `reply`: the answer to client request `req`: `{ ok: true, value }` (the value the
 *   public API returns, already in its final shape) or `{ ok: false, error }`;
 * - `persist`: write `put` records and delete the records whose storage keys are in
 *   `remove`, before any later effect of the same call runs (one per handle() call);
 * - `event`: something for the composer or the layer above (neighbour up, a broadcast to
 *   originate, a delivery, a changed entry): typed per protocol.
 *
 * Inputs use the same names for the same things: `neighborUp`/`neighborDown` (the
 * HyParView active view changed), `linkDown` (a transport link failed; HyParView only),
 * `members` (a `ClusterView`), `load` (records from an earlier `persist`), `message`
 * (a validated wire message from a peer), `timer`, and for client requests a `req` number.
 *
 * Names: wire messages and timers are `<proto>.<camelCase>` (`hpv.forwardJoin`,
 * `kv.putAck`, `seg.claim`, `kv.opTimeout`); configs are `readonly config: XConfig` with
 * units in field names (`requestTimeoutMs`, `maxValueBytes`) and a frozen `DEFAULT_X_CONFIG`;
 * every protocol has typed `stats(): XStats`.
 */
import type { NodeId } from './types';

export interface SendEffect<M> {
  type: 'send';
  to: NodeId;
  msg: M;
  /**
   * The message does not need (and should not open) a data channel: the runtime uses an
   * open channel if there is one, otherwise relays it through the signaling server. Used
   * for replies to nodes outside the active view (SHUFFLE_REPLY, welcome, probes).
   */
  transient?: boolean;
}

export interface TimerEffect<T> {
  type: 'timer';
  delayMs: number;
  timer: T;
}

export interface DisconnectEffect {
  type: 'disconnect';
  peer: NodeId;
}

export type ReplyEffect<V = unknown> =
  | { type: 'reply'; req: number; ok: true; value?: V }
  | { type: 'reply'; req: number; ok: false; error: string };

export interface PersistEffect<R> {
  type: 'persist';
  put: R[];
  /** Storage keys (see each protocol's `storageKey`) of records to delete. */
  remove: string[];
}

export interface EventEffect<E> {
  type: 'event';
  event: E;
}

/**
 * Everything a protocol may emit. `M`: its wire messages, `T`: its timers, `E`: its
 * events, `R`: its persisted records. Unused parts are `never`.
 */
export type Effect<M, T, E = never, R = never> =
  | SendEffect<M>
  | TimerEffect<T>
  | DisconnectEffect
  | ReplyEffect
  | PersistEffect<R>
  | EventEffect<E>;

/**
 * What membership tells the protocols that place data or show members (KV, segments,
 * chat), as one `{ type: 'members', view }` input.
 */
export interface ClusterView {
  /** Nodes data is placed on: alive members plus those that left within the leave grace; me included. Sorted. */
  placement: readonly NodeId[];
  /** Members of `placement` that are gone for now (left within the grace): they keep their ranges, quorums do not wait for them. */
  away: readonly NodeId[];
  /** Live members (alive or suspect), me included, with what they announce. */
  live: readonly MemberSummary[];
  /**
   * The cluster's KV replica count: the largest any live member asks for in its meta
   * (`meta.replicas`, 1..MAX_REPLICAS), so every node with the same view agrees on it.
   * Absent when no member asks (the store keeps its configured count).
   */
  replicas?: number;
}

/** What a live member announces about itself, as far as the protocols above need it. */
export interface MemberSummary {
  id: NodeId;
  nick: string;
  rooms: readonly string[];
}

/**
 * Where a protocol's effects go during one handle() call, with the current time. The
 * `Protocol` base class owns one and points it at the caller's effect list for the
 * duration of each call; a protocol split into parts (coordinator, replica, ...) hands
 * the same `Effects` to each part, so all of them emit into the one list, in order.
 */
export class Effects<M, T, E = never, R = never> {
  /** The `now` of the current (or last) handle() call, ms. */
  now = 0;
  private sink: Effect<M, T, E, R>[] = [];

  /** Starts a handle() call: effects go to `out` until the next `begin`. */
  begin(now: number, out: Effect<M, T, E, R>[]): void {
    this.now = now;
    this.sink = out;
  }

  emit(effect: Effect<M, T, E, R>): void {
    this.sink.push(effect);
  }

  send(to: NodeId, msg: M, transient = false): void {
    this.sink.push(transient ? { type: 'send', to, msg, transient } : { type: 'send', to, msg });
  }

  setTimer(delayMs: number, timer: T): void {
    this.sink.push({ type: 'timer', delayMs, timer });
  }

  disconnect(peer: NodeId): void {
    this.sink.push({ type: 'disconnect', peer });
  }

  reply(req: number, value?: unknown): void {
    this.sink.push(value === undefined ? { type: 'reply', req, ok: true } : { type: 'reply', req, ok: true, value });
  }

  fail(req: number, error: string): void {
    this.sink.push({ type: 'reply', req, ok: false, error });
  }

  event(event: E): void {
    this.sink.push({ type: 'event', event });
  }

  persist(put: R[], remove: string[]): void {
    this.sink.push({ type: 'persist', put, remove });
  }

  /** How many effects this call has emitted so far: a place to insert one later (`emitAt`). */
  position(): number {
    return this.sink.length;
  }

  /**
   * Inserts an effect at a `position()` taken earlier in this call: a `persist` built up
   * during the call goes before the sends that acknowledge what it stores.
   */
  emitAt(index: number, effect: Effect<M, T, E, R>): void {
    this.sink.splice(index, 0, effect);
  }
}

/**
 * Base class of every protocol: `handle` points `io` at the caller's effect list and the
 * current time, then runs `onInput`. Subclasses (and their parts) emit through `io` and
 * read the time as `this.now`.
 */
export abstract class Protocol<In extends { type: string }, M, T, E = never, R = never> {
  protected readonly io = new Effects<M, T, E, R>();

  handle(input: In, now: number, out: Effect<M, T, E, R>[]): void {
    this.io.begin(now, out);
    this.onInput(input);
  }

  /** The `now` of the current (or last) handle() call, ms. */
  protected get now(): number {
    return this.io.now;
  }

  protected abstract onInput(input: In): void;
}
