/**
 * Runs the pure CoreNode on real time: each input is one `step` at `Date.now()`, its
 * effects go to the runtime (`run`), except timers, which the driver keeps on the tab's
 * one TimerQueue and feeds back as inputs when due.
 *
 * - Inputs that arrive before `start` (peers dial a reloaded tab at once, signaling
 *   announces come in) are held until the persisted state is loaded and `start` ran, then
 *   replayed in order: a reloaded tab must not join, report ready or serve reads with an
 *   empty store while IndexedDB is still loading.
 * - The KVS holds back the replica writes of a turn (`kv.deferFlush`): once an input
 *   leaves something held, a `flush` input is queued for the end of the turn (a microtask),
 *   so a pipelining client's next puts and the rest of a frame's acks go out together.
 * - After `stop()` only `leave` is still handled, and scheduled work no longer runs.
 * - An input the core throws on, or an effect the runtime throws on, is counted as an
 *   error (`errors` in p2p.stats(), with the reason in problems()); the other effects of
 *   that turn still run.
 */
import { CoreNode, type CoreConfig, type CoreQueries, type NodeIn, type NodeOut, type StartInput } from '../core/node';
import { SeededRng } from '../core/rng';
import { encodedSize } from '../wire/codec';
import { TimerQueue, type TimerHandle } from './timers';
import type { Stats } from './stats';

/** The effects the runtime runs: all but `timer`, which the driver handles. */
export type DriverEffect = Exclude<NodeOut, { type: 'timer' }>;

/** The core configuration a browser node runs: KV values measured by their encoded size, replica writes flushed once per turn. */
export function browserCoreConfig(config?: CoreConfig): CoreConfig {
  return { ...config, kv: { sizeOf: encodedSize, deferFlush: true, ...config?.kv } };
}

/** Inputs held before start, at most (a flood before start must not grow without bound). */
const MAX_EARLY = 10_000;

export class CoreDriver {
  readonly query: CoreQueries;
  private readonly core: CoreNode;
  private readonly timers = new TimerQueue();
  /** Inputs held until start; null once started. */
  private early: NodeIn[] | null = [];
  /** A `flush` input is queued for the end of this turn (see CoreNode.needsFlush). */
  private flushQueued = false;
  private stopped_ = false;

  constructor(
    id: string,
    config: CoreConfig | undefined,
    private readonly stats: Stats,
    private readonly run: (e: DriverEffect) => void,
  ) {
    const seed = crypto.getRandomValues(new Uint32Array(1))[0]!;
    this.core = new CoreNode(id, browserCoreConfig(config), new SeededRng(seed));
    this.query = this.core.query;
  }

  /** `start` ran (inputs are handled as they come). */
  get started(): boolean {
    return this.early === null;
  }

  /** The node left: nothing but `leave` is handled, scheduled work no longer runs. */
  get stopped(): boolean {
    return this.stopped_;
  }

  /** Starts the core, runs `beforeReplay`, then replays the inputs held until now, in order. */
  start(input: StartInput, beforeReplay: () => void): void {
    const early = this.early ?? [];
    this.early = null;
    this.step(input);
    beforeReplay();
    for (const e of early) this.step(e);
  }

  step(input: NodeIn): void {
    if (this.stopped_ && input.type !== 'leave') return;
    if (this.early !== null && input.type !== 'start') {
      if (input.type === 'leave') this.early = [];
      else if (this.early.length < MAX_EARLY) this.early.push(input);
      else this.stats.count('drop.early', 1, 'input before start');
      return;
    }
    const out: NodeOut[] = [];
    try {
      this.core.handle(input, Date.now(), out);
    } catch (e) {
      // a bug in the core must not take the tab down; count it and carry on
      this.stats.error(`core (${input.type})`, e);
    }
    for (const e of out) {
      if (e.type === 'timer') {
        this.schedule(() => this.step({ type: 'timer', timer: e.timer }), e.delayMs);
        continue;
      }
      // each effect on its own: one that throws (a peer's value the encoder refuses, a
      // failing store) must not drop the rest of the turn's sends, replies and persists
      try {
        this.run(e);
      } catch (err) {
        this.stats.error(`effect (${e.type})`, err);
      }
    }
    if (!this.flushQueued && input.type !== 'flush' && this.core.needsFlush()) {
      this.flushQueued = true;
      queueMicrotask(() => {
        this.flushQueued = false;
        this.step({ type: 'flush' });
      });
    }
  }

  /** Runs `fn` after `delay` ms (then every `every` ms), unless the node has stopped by then. */
  schedule(fn: () => void, delay: number, every?: number): void {
    this.timers.set(() => {
      if (this.stopped_) return;
      fn();
      if (every) this.schedule(fn, every, every);
    }, delay);
  }

  /** A cancellable timer that runs whether or not the node stopped (until `shutdown`). */
  timer(fn: () => void, delay: number): TimerHandle {
    return this.timers.set(fn, delay);
  }

  stop(): void {
    this.stopped_ = true;
  }

  /** Drops every pending timer. */
  shutdown(): void {
    this.timers.stop();
  }
}
