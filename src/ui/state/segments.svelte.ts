/**
 * Data segments (per-key queues). The API has no "list" call, so the items of the open queue are
 * enumerated with a chain of short peeks (`peek(key, lastId, {timeoutMs})`) until one times out.
 */
import type { P2PApi } from '../../runtime/api';
import { errorMessage } from '../lib/format';
import { subscribe } from './poll';

/** How long a listing peek waits before deciding the queue has no more items. */
export const LIST_PEEK_MS = 400;
export const LIST_LIMIT = 50;

export interface SegmentItem {
  id: number;
  value: unknown;
}

export type PendingOp = 'peek' | 'take';

/** One finished operation, for the panel's short log. */
export interface OpRecord {
  seq: number;
  text: string;
  /** The item a peek/take returned. */
  item?: SegmentItem;
}
const LOG_LENGTH = 4;

export class SegmentsState {
  /** Queue keys typed by the user or seen in `segments` events, in first-seen order. */
  queues = $state.raw<string[]>([]);
  selected = $state<string | null>(null);
  items = $state.raw<SegmentItem[]>([]);
  /** True when the listing stopped at LIST_LIMIT. */
  more = $state(false);
  listing = $state(false);
  /** Latest item count per queue (from the last listing of it). */
  counts = $state<Record<string, number>>({});
  /** A waiting peek/take on the open queue (cancellable). */
  pending = $state<{ op: PendingOp; key: string } | null>(null);
  /** The last few put/update/peek/take results, newest first. */
  log = $state.raw<OpRecord[]>([]);
  error = $state<string | null>(null);
  /** The open queue's owner, then its replicas, in this tab's view (`segments.replicas`). */
  placement = $state.raw<string[]>([]);

  private readonly node: P2PApi;
  private listSeq = 0;
  private relistTimer: ReturnType<typeof setTimeout> | undefined;
  private controller: AbortController | null = null;
  private opSeq = 0;

  constructor(node: P2PApi) {
    this.node = node;
  }

  connect(): () => void {
    const off = subscribe(
      this.node,
      (e) => {
        if (e.type === 'members') return this.refreshPlacement();
        if (e.type !== 'segments') return;
        this.remember(e.key);
        if (e.key === this.selected) this.scheduleList();
      },
      null,
    );
    return () => {
      off();
      this.cancel();
      clearTimeout(this.relistTimer);
      this.listSeq++;
    };
  }

  open(key: string): boolean {
    const k = key.trim();
    if (!k) {
      this.error = 'Type a queue key.';
      return false;
    }
    this.remember(k);
    if (this.selected !== k) {
      this.cancel();
      this.selected = k;
      this.items = [];
    }
    this.error = null;
    this.refreshPlacement();
    void this.list();
    return true;
  }

  private refreshPlacement(): void {
    const key = this.selected;
    let next: string[] = [];
    if (key !== null) {
      try {
        next = this.node.segments.replicas(key);
      } catch {
        next = [];
      }
    }
    if (next.join() !== this.placement.join()) this.placement = next;
  }

  async put(value: unknown, op: 'put' | 'update' = 'put'): Promise<boolean> {
    const key = this.selected;
    if (key === null) return false;
    try {
      const id = await (op === 'put' ? this.node.segments.put(key, value) : this.node.segments.update(key, value));
      this.record(op === 'put' ? `Put #${id} into "${key}".` : `Updated "${key}": removed the head, appended #${id}.`);
      this.error = null;
      this.scheduleList();
      return true;
    } catch (e) {
      this.error = `Could not ${op} "${key}": ${errorMessage(e)}`;
      return false;
    }
  }

  /** Waits (until cancelled) for the oldest item of the open queue; `take` removes it. */
  async wait(op: PendingOp): Promise<void> {
    const key = this.selected;
    if (key === null || this.pending) return;
    const controller = new AbortController();
    this.controller = controller;
    this.pending = { op, key };
    this.error = null;
    try {
      const item = await (op === 'take'
        ? this.node.segments.take(key, 0, { signal: controller.signal })
        : this.node.segments.peek(key, 0, { signal: controller.signal }));
      this.record(`${op === 'take' ? 'Took' : 'Peeked at'} #${item.id} from "${key}":`, item);
      this.scheduleList();
    } catch (e) {
      if (controller.signal.aborted) this.record(`Stopped waiting on "${key}".`);
      else this.error = `Could not ${op} from "${key}": ${errorMessage(e)}`;
    } finally {
      if (this.controller === controller) {
        this.controller = null;
        this.pending = null;
      }
    }
  }

  cancel(): void {
    this.controller?.abort();
  }

  private record(text: string, item?: SegmentItem): void {
    const rec: OpRecord = { seq: ++this.opSeq, text };
    if (item) rec.item = item;
    this.log = [rec, ...this.log].slice(0, LOG_LENGTH);
  }

  private remember(key: string): void {
    if (!this.queues.includes(key)) this.queues = [...this.queues, key];
  }

  private scheduleList(): void {
    clearTimeout(this.relistTimer);
    this.relistTimer = setTimeout(() => void this.list(), 120);
  }

  async list(): Promise<void> {
    const key = this.selected;
    if (key === null) return;
    const seq = ++this.listSeq;
    this.listing = true;
    const found: SegmentItem[] = [];
    let after = 0;
    try {
      while (found.length < LIST_LIMIT) {
        let item: SegmentItem;
        try {
          item = await this.node.segments.peek(key, after, { timeoutMs: LIST_PEEK_MS });
        } catch (e) {
          if (isTimeout(e)) break;
          throw e;
        }
        if (seq !== this.listSeq) return;
        found.push(item);
        after = item.id;
      }
      if (seq !== this.listSeq) return;
      this.items = found;
      this.more = found.length >= LIST_LIMIT;
      this.counts[key] = found.length;
    } catch (e) {
      if (seq === this.listSeq) this.error = `Could not list "${key}": ${errorMessage(e)}`;
    } finally {
      if (seq === this.listSeq) this.listing = false;
    }
  }
}

function isTimeout(e: unknown): boolean {
  if (e instanceof Error || e instanceof DOMException) {
    return e.name === 'TimeoutError' || /time(d)?\s?out/i.test(e.message);
  }
  return false;
}
