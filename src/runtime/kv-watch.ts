/**
 * `p2p.kv.watch(prefix, listener, opts?)`: many listeners in a tab share the tab's watched
 * prefixes in the core (core/kv/watch.ts, at most MAX_WATCH_PREFIXES distinct ones). The
 * core delivers `kvWatch` events (each version of a key at most once, in version order)
 * and `kvWatchResync` (notifications may have been lost: re-list); this module hands them
 * to the listeners whose prefix matches.
 */
import type { ApiCall } from '../core/node';
import { MAX_WATCH_PREFIXES } from '../core/kv/watch';
import type { KvWatchEvent, KvWatchHandle, KvWatchOptions, NodeEvent } from './api';

export interface KvWatchDeps {
  call<T>(call: ApiCall): Promise<T>;
  on(listener: (e: NodeEvent) => void): () => void;
  error(where: string, e: unknown): void;
}

interface Watch {
  prefix: string;
  listener: (e: KvWatchEvent) => void;
}

export class KvWatches {
  private readonly watches = new Set<Watch>();
  private unlisten: (() => void) | null = null;
  /** The prefix set last sent to the core (sorted), and the call in flight. */
  private sent: string[] = [];
  private sync: Promise<void> = Promise.resolve();

  constructor(private readonly d: KvWatchDeps) {}

  /**
   * Calls `listener` with every acknowledged put and delete of a key under `prefix`
   * anywhere in the cluster, and `{type: 'resync'}` when some may have been missed.
   * Throws for a bad prefix or when the tab already watches MAX_WATCH_PREFIXES distinct
   * prefixes. The handle unsubscribes when called; `ready` settles once the cluster's
   * members confirmed the registration (writes coordinated from then on are notified).
   */
  watch(prefix: string, listener: (e: KvWatchEvent) => void, opts: KvWatchOptions = {}): KvWatchHandle {
    if (typeof prefix !== 'string') throw new TypeError('kv.watch: prefix must be a string');
    if (typeof listener !== 'function') throw new TypeError('kv.watch: listener must be a function');
    const prefixes = new Set([...this.watches].map((w) => w.prefix));
    if (!prefixes.has(prefix) && prefixes.size >= MAX_WATCH_PREFIXES) {
      throw new RangeError(`kv.watch: at most ${MAX_WATCH_PREFIXES} distinct prefixes per tab`);
    }
    const w: Watch = { prefix, listener };
    this.watches.add(w);
    if (!this.unlisten) this.unlisten = this.d.on((e) => this.onEvent(e));
    const ready = this.update();
    let done = false;
    const stop = (): void => {
      if (done) return;
      done = true;
      this.watches.delete(w);
      if (this.watches.size === 0 && this.unlisten) {
        this.unlisten();
        this.unlisten = null;
      }
      void this.update().catch((e: unknown) => this.d.error('kv.watch', e));
    };
    opts.signal?.addEventListener('abort', stop, { once: true });
    if (opts.signal?.aborted) stop();
    return Object.assign(stop, { ready });
  }

  /** Sends the current prefix set to the core once the previous call settled (calls stay ordered). */
  private update(): Promise<void> {
    const next = (): Promise<void> => {
      const prefixes = [...new Set([...this.watches].map((w) => w.prefix))].sort();
      if (prefixes.length === this.sent.length && prefixes.every((p, i) => p === this.sent[i])) return Promise.resolve();
      this.sent = prefixes;
      return this.d.call<void>({ type: 'kv.watch', prefixes }).catch((e: unknown) => {
        this.sent = []; // unknown state in the core: the next update sends the set again
        throw e;
      });
    };
    const p = this.sync.then(next, next);
    this.sync = p.catch(() => undefined);
    return p;
  }

  private onEvent(e: NodeEvent): void {
    if (e.type === 'kvWatch') {
      const ev: KvWatchEvent = e.entry.deleted
        ? { type: 'delete', key: e.key, version: e.entry.version }
        : { type: 'put', key: e.key, value: e.entry.value, version: e.entry.version };
      for (const w of [...this.watches]) if (e.key.startsWith(w.prefix)) this.deliver(w, ev);
    } else if (e.type === 'kvWatchResync') {
      for (const w of [...this.watches]) this.deliver(w, { type: 'resync', reason: e.reason });
    }
  }

  private deliver(w: Watch, ev: KvWatchEvent): void {
    try {
      w.listener(ev);
    } catch (err) {
      this.d.error('kv.watch listener', err);
    }
  }
}
