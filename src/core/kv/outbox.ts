/**
 * What `deferFlush` holds until the end of the runtime's turn: replica writes (one
 * `kv.puts` per node and size limit instead of a `kv.put` each), their acknowledgements
 * (one `kv.putAcks`) and request timers (one per kind and delay, covering every
 * operation started in the turn). Without `deferFlush` the store flushes after every input.
 */
import type { NodeId } from '../types';
import type { HeadItem, KvMessage, PutItem } from './messages';
import { chunkRuns } from './ops';
import type { KvEffects } from './state';
import type { Entry, KvConfig, KvTimer } from './types';

type OpTimer = Extract<KvTimer, { ops: number[] }>;

export class Outbox {
  private readonly puts = new Map<NodeId, { items: PutItem[]; bytes: number[] }>();
  private readonly acks = new Map<NodeId, number[]>();
  private readonly gets = new Map<NodeId, [number, string][]>();
  private readonly getReplies = new Map<NodeId, { items: [number, Entry | null][]; bytes: number[] }>();
  private readonly heads = new Map<NodeId, [number, string][]>();
  private readonly headReplies = new Map<NodeId, HeadItem[]>();
  private readonly timers = new Map<string, { delayMs: number; timer: OpTimer }>();

  constructor(
    private readonly config: Readonly<KvConfig>,
    private readonly io: KvEffects,
    private readonly send: (to: NodeId, msg: KvMessage) => void,
    /** A read request is queued for `to` (KvState.asked). */
    private readonly asked: (to: NodeId) => void = () => {},
  ) {}

  /** Something is held for the next flush. */
  holds(): boolean {
    return this.puts.size > 0 || this.acks.size > 0 || this.timers.size > 0 || this.gets.size > 0 || this.getReplies.size > 0 || this.heads.size > 0 || this.headReplies.size > 0;
  }

  /** A replica read, sent at the next flush together with the others for `to`. */
  get(to: NodeId, op: number, key: string): void {
    this.asked(to);
    const g = this.gets.get(to);
    if (g) g.push([op, key]);
    else this.gets.set(to, [[op, key]]);
  }

  /** A replica's answer to a read, sent at the next flush with the others for `to`. */
  getReply(to: NodeId, op: number, entry: Entry | null, bytes: number): void {
    let b = this.getReplies.get(to);
    if (!b) this.getReplies.set(to, (b = { items: [], bytes: [] }));
    b.items.push([op, entry]);
    b.bytes.push(bytes);
  }

  /** A head read (the replica's version of `key` only), sent at the next flush with the others for `to`. */
  head(to: NodeId, op: number, key: string): void {
    this.asked(to);
    const h = this.heads.get(to);
    if (h) h.push([op, key]);
    else this.heads.set(to, [[op, key]]);
  }

  /** A replica's answer to a head read, sent at the next flush with the others for `to`. */
  headReply(to: NodeId, item: HeadItem): void {
    const h = this.headReplies.get(to);
    if (h) h.push(item);
    else this.headReplies.set(to, [item]);
  }

  /** A replica write, sent at the next flush together with the others for `to`. */
  put(to: NodeId, op: number, e: Entry, hint: NodeId | null, bytes: number): void {
    let b = this.puts.get(to);
    if (!b) this.puts.set(to, (b = { items: [], bytes: [] }));
    const item: PutItem = [op, e.key, e.deleted ? null : e.value, e.version.ts, e.version.node, e.deleted ? 1 : 0, hint];
    if (e.seal) item.push(e.seal);
    b.items.push(item);
    b.bytes.push(bytes);
  }

  ack(to: NodeId, op: number): void {
    if (op === 0) return; // a read repair: nobody waits for its ack
    const a = this.acks.get(to);
    if (a) a.push(op);
    else this.acks.set(to, [op]);
  }

  /** Request timers are shared by the operations started in one flush. */
  arm(type: OpTimer['type'], delayMs: number, op: number): void {
    const k = `${type}:${delayMs}`;
    const t = this.timers.get(k);
    if (t) t.timer.ops.push(op);
    else this.timers.set(k, { delayMs, timer: { type, ops: [op] } });
  }

  /** Sends the held writes (one `kv.puts` per node and size limit) and acks, arms the held timers. */
  flush(): void {
    for (const [to, b] of this.puts) {
      this.chunks(b.items, b.bytes, (items) => {
        if (items.length > 1) return this.send(to, { type: 'kv.puts', items });
        const [op, key, value, ts, node, deleted, hint, seal] = items[0]!;
        const entry: Entry = { key, value, version: { ts, node }, deleted: deleted === 1 };
        if (seal) entry.seal = seal;
        this.send(to, { type: 'kv.put', op, entry, ...(hint ? { hint } : {}) });
      });
    }
    this.puts.clear();
    for (const [to, ops] of this.acks) {
      if (ops.length === 1) this.send(to, { type: 'kv.putAck', op: ops[0]! });
      else this.send(to, { type: 'kv.putAcks', ops });
    }
    this.acks.clear();
    for (const [to, items] of this.gets) {
      if (items.length === 1) {
        this.send(to, { type: 'kv.get', op: items[0]![0], key: items[0]![1] });
        continue;
      }
      for (let i = 0; i < items.length; i += this.config.handoffBatch) this.send(to, { type: 'kv.gets', items: items.slice(i, i + this.config.handoffBatch) });
    }
    this.gets.clear();
    for (const [to, b] of this.getReplies) {
      this.chunks(b.items, b.bytes, (items) => {
        if (items.length > 1) this.send(to, { type: 'kv.getReplies', items });
        else this.send(to, { type: 'kv.getReply', op: items[0]![0], entry: items[0]![1] });
      });
    }
    this.getReplies.clear();
    const n = this.config.handoffBatch;
    for (const [to, items] of this.heads) for (let i = 0; i < items.length; i += n) this.send(to, { type: 'kv.heads', items: items.slice(i, i + n) });
    this.heads.clear();
    for (const [to, items] of this.headReplies) for (let i = 0; i < items.length; i += n) this.send(to, { type: 'kv.headReplies', items: items.slice(i, i + n) });
    this.headReplies.clear();
    for (const t of this.timers.values()) this.io.setTimer(t.delayMs, t.timer);
    this.timers.clear();
  }

  /** Runs of at most `handoffBatch` items and `handoffBytes` bytes. */
  private chunks<T>(items: T[], bytes: number[], emit: (run: T[]) => void): void {
    chunkRuns(items, bytes, this.config.handoffBatch, this.config.handoffBytes, emit);
  }
}
