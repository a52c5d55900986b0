/**
 * API calls as core requests: each call gets a request number, goes to the core as an
 * `api` input, and its promise settles when the core's `reply` with that number comes
 * back. A safety timer (on top of the protocols' own request timeouts) makes sure no
 * promise hangs; an AbortSignal cancels a waiting segments peek/take in the core.
 */
import type { ApiCall, NodeIn, ReplyOut } from '../core/node';
import type { TimerHandle } from './timers';

/** What the tracker needs of the core driver. */
export interface RequestDriver {
  step(input: NodeIn): void;
  readonly stopped: boolean;
  timer(fn: () => void, delay: number): TimerHandle;
}

interface Pending {
  call: ApiCall;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: TimerHandle | null;
}

export const LEFT_ERROR = 'this node has left the cluster';

export class RequestTracker {
  private seq = 0;
  private readonly pending = new Map<number, Pending>();

  /** `timeoutMs`: the safety timer of a call that sets none. */
  constructor(
    private readonly driver: RequestDriver,
    private readonly timeoutMs: number,
  ) {}

  /**
   * One request to the core. `timeout` null: no safety timer (a waiting peek/take may wait
   * as long as the caller wants); the core's own timeouts still apply.
   */
  call<T>(call: ApiCall, timeout: number | null = this.timeoutMs, signal?: AbortSignal): Promise<T> {
    if (this.driver.stopped) return Promise.reject(new Error(LEFT_ERROR));
    if (signal?.aborted) return Promise.reject(new Error(`${call.type} cancelled`));
    const req = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      const timer =
        timeout === null
          ? null
          : this.driver.timer(() => {
              this.pending.delete(req);
              reject(new Error(`${call.type} timed out after ${timeout} ms`));
            }, timeout);
      const onAbort = () => this.driver.step({ type: 'api', req: ++this.seq, call: { type: 'seg.cancel', target: req } });
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => signal?.removeEventListener('abort', onAbort);
      this.pending.set(req, {
        call,
        resolve: (v) => (done(), resolve(v as T)),
        reject: (e) => (done(), reject(e)),
        timer,
      });
      this.driver.step({ type: 'api', req, call });
    });
  }

  /** What request `req` writes to the KVS ("put 'k'", "delete 'k'"), or null when it is no KV write. */
  kvWrite(req: number): string | null {
    const call = this.pending.get(req)?.call;
    if (call?.type === 'kv.put') return `put '${call.key}'`;
    if (call?.type === 'kv.delete') return `delete '${call.key}'`;
    return null;
  }

  /** The core's answer to a request (ignored when the call already timed out). */
  settle(e: ReplyOut): void {
    const p = this.pending.get(e.req);
    if (!p) return;
    this.pending.delete(e.req);
    p.timer?.cancel();
    if (e.ok) p.resolve(e.value);
    else p.reject(new Error(e.error));
  }

  /** Rejects every call still waiting: the node has left. */
  rejectAll(): void {
    for (const [, p] of this.pending) {
      p.timer?.cancel();
      p.reject(new Error(LEFT_ERROR));
    }
    this.pending.clear();
  }
}
