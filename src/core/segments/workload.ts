/**
 * Test support for the segment cluster tests (cluster.test.ts): a producer/consumer
 * workload driven by replies on a SegNet (src/sim/segments.ts), the checks every run must pass (each item taken
 * at most once, ids unique and in real-time order), and the replication and disk checks
 * after quiescence.
 */
import { expect } from 'vitest';
import type { NodeId } from '../types';
import type { SegNet } from '../../sim/segments';
import type { SegReply } from './types';
import type { SegItem } from './types';
import { headOf, pageOf, pagesOf, type Rep } from './copy';
import { storageKey, type SegRecord } from './messages';

export function ok(seed: number, r: SegReply | undefined, what: string): Extract<SegReply, { ok: true }> {
  if (!r) throw new Error(`seed ${seed}: ${what}: no reply`);
  if (!r.ok) throw new Error(`seed ${seed}: ${what} failed: ${r.error}`);
  return r;
}

/** Every request of a workload, with when it was issued and answered (virtual ms). */
export interface Op {
  node: NodeId;
  req: number;
  kind: 'put' | 'take';
  key: string;
  value?: string;
  issued: number;
  answered?: number;
  reply?: SegReply;
}

/**
 * Producers put unique values, consumers take in a loop (one outstanding take per consumer
 * and key). Everything is driven by replies through net.onReply.
 */
export class Workload {
  readonly ops = new Map<string, Op>();
  readonly taken = new Map<string, Op>();
  readonly duplicates: string[] = [];
  readonly producing = new Map<string, number>();
  consuming = true;
  private readonly pendingTakes = new Map<string, number>();

  constructor(
    readonly net: SegNet,
    readonly seed: number,
  ) {
    net.onReply = (node, req, reply) => this.onReply(node, req, reply);
  }

  private issue(node: NodeId, kind: 'put' | 'take', key: string, value?: string): void {
    if (!this.net.isAlive(node)) return;
    const req = kind === 'put' ? this.net.request(node, { type: 'put', key, value }) : this.net.request(node, { type: 'take', key, afterId: 0 });
    this.ops.set(`${node}/${req}`, { node, req, kind, key, value, issued: this.net.now });
    if (kind === 'take') this.pendingTakes.set(`${node}/${key}`, req);
    // a reply can come synchronously (local owner): onReply runs from the event queue, so it is fine
  }

  /** `count` sequential puts from `node` on `key`, with a random pause between them. */
  produce(node: NodeId, key: string, count: number, pause: [number, number] = [0, 30]): void {
    const tag = `${node}/${key}`;
    this.producing.set(tag, count);
    const next = (i: number) => {
      if (i >= count) {
        this.producing.delete(tag);
        return;
      }
      this.issue(node, 'put', key, `${node}:${key}:${i}`);
      this.nextPut.set(`${node}/${key}`, () => this.net.later(pause[0] + this.net.rng.next() * (pause[1] - pause[0]), () => next(i + 1)));
    };
    next(0);
  }
  private readonly nextPut = new Map<string, () => void>();

  /** `values.length` puts issued at once from `node` (pipelined). */
  putAll(node: NodeId, key: string, values: string[]): void {
    for (const v of values) this.issue(node, 'put', key, v);
  }

  /** A take loop on `key` at `node`. */
  consume(node: NodeId, key: string): void {
    this.issue(node, 'take', key);
  }

  private onReply(node: NodeId, req: number, reply: SegReply): void {
    const op = this.ops.get(`${node}/${req}`);
    if (!op) return;
    op.answered = this.net.now;
    op.reply = reply;
    if (op.kind === 'put') {
      const cont = this.nextPut.get(`${node}/${op.key}`);
      this.nextPut.delete(`${node}/${op.key}`);
      cont?.();
      return;
    }
    this.pendingTakes.delete(`${node}/${op.key}`);
    if (reply.ok) {
      const v = (reply.value as SegItem).value as string;
      if (this.taken.has(v)) this.duplicates.push(`${v} to ${node} (req ${req}) and to ${this.taken.get(v)!.node} (req ${this.taken.get(v)!.req})`);
      else this.taken.set(v, op);
    }
    if (this.consuming) this.issue(node, 'take', op.key);
  }

  /** Stop the take loops: cancel outstanding takes (their results, if any, are put back). */
  stopConsuming(): void {
    this.consuming = false;
    for (const [tag, req] of this.pendingTakes) this.net.cancel(tag.split('/')[0]!, req);
  }

  puts(): Op[] {
    return [...this.ops.values()].filter((o) => o.kind === 'put');
  }

  ackedPuts(): Op[] {
    return this.puts().filter((o) => o.reply?.ok);
  }

  /** Every acknowledged put value was taken (so far). */
  allAckedTaken(): boolean {
    return this.producing.size === 0 && this.puts().every((o) => o.reply !== undefined) && this.ackedPuts().every((o) => this.taken.has(o.value!));
  }

  /** Assertions that hold for any run: exactly once, and ids in real-time order per key. */
  check(): void {
    const s = this.seed;
    expect(this.duplicates, `seed ${s}: items handed out twice`).toEqual([]);
    const produced = new Set(this.puts().map((o) => o.value!));
    for (const v of this.taken.keys()) expect(produced.has(v), `seed ${s}: taken value ${v} was never put`).toBe(true);
    const byKey = new Map<string, { puts: Op[]; takes: Op[] }>();
    for (const o of this.ops.values()) {
      if (!o.reply?.ok) continue;
      const e = byKey.get(o.key) ?? { puts: [], takes: [] };
      byKey.set(o.key, e);
      (o.kind === 'put' ? e.puts : e.takes).push(o);
    }
    for (const [key, { puts, takes }] of byKey) {
      const ids = puts.map((o) => idOf(o));
      expect(new Set(ids).size, `seed ${s}: duplicate ids on ${key}`).toBe(ids.length);
      // a taken item carries the id its put was acknowledged with
      const idByValue = new Map(puts.map((o) => [o.value!, idOf(o)]));
      for (const t of takes) {
        const r = (t.reply as { value: SegItem }).value as { id: number; value: string };
        if (idByValue.has(r.value)) expect(r.id, `seed ${s}: ${r.value} taken with another id`).toBe(idByValue.get(r.value));
      }
      realTimeOrder(s, key, 'put', puts);
      realTimeOrder(s, key, 'take', takes);
    }
  }
}

/** The id a put was acknowledged with, or of the item a take got. */
export function idOf(o: Op): number {
  const value = (o.reply as { value?: unknown }).value;
  return o.kind === 'put' ? (value as number) : (value as SegItem).id;
}

/** If A was answered before B was issued, A's id is lower (ids strictly increase across the cluster). */
function realTimeOrder(seed: number, key: string, what: string, ops: Op[]): void {
  const byAnswer = [...ops].sort((a, b) => a.answered! - b.answered!);
  const byIssue = [...ops].sort((a, b) => a.issued - b.issued);
  let i = 0;
  let maxId = -1;
  let maxOp: Op | undefined;
  for (const b of byIssue) {
    while (i < byAnswer.length && byAnswer[i]!.answered! < b.issued) {
      const id = idOf(byAnswer[i]!);
      if (id > maxId) {
        maxId = id;
        maxOp = byAnswer[i];
      }
      i++;
    }
    const id = idOf(b);
    if (!(id > maxId)) {
      throw new Error(
        `seed ${seed}: ${what} on ${key} issued at ${b.issued} got id ${id}, but id ${maxId} was answered at ${maxOp?.answered} before it (real-time order broken)`,
      );
    }
  }
}

/** After quiescence: the key's state sits on its preference list, all copies identical. */
export function expectReplicated(net: SegNet, seed: number, key: string): void {
  const owner = net.ownerOf(key);
  const pref = net.seg(owner).replicas(key);
  const ownerView = net.seg(owner).queues().find((q) => q.key === key);
  expect(ownerView, `seed ${seed}: owner ${owner} holds ${key}`).toBeDefined();
  for (const id of pref) {
    const v = net.seg(id).queues().find((q) => q.key === key);
    expect(v?.items, `seed ${seed}: replica ${id} of ${key}`).toEqual(ownerView!.items);
    expect(v?.epoch, `seed ${seed}: replica ${id} of ${key} epoch`).toBe(ownerView!.epoch);
  }
}

/** A node's copies, by key (the core's internals, for the tests' checks). */
export function copiesOf(net: SegNet, id: NodeId): Map<string, Rep> {
  return (net.seg(id) as unknown as { s: { reps: Map<string, Rep> } }).s.reps;
}

/**
 * After quiescence: each live node's disk holds exactly its copies, each as its head and its
 * non-empty pages, as a restart would load them: no page left behind by a take, an
 * install or a dropped copy, none missing.
 */
export function expectDisksHoldCopies(net: SegNet, seed: number): void {
  for (const id of net.liveIds()) {
    const reps = copiesOf(net, id);
    const want = new Map<string, SegRecord>();
    for (const rep of reps.values()) {
      want.set(rep.key, headOf(rep));
      const pages = pagesOf(rep);
      for (const [kind, ns] of [['i', pages.items], ['d', pages.done]] as const) {
        for (const n of ns) {
          const p = pageOf(rep, kind, n)!;
          want.set(storageKey(p), p);
        }
      }
    }
    expect(new Map(net.disk(id)), `seed ${seed}: the disk of ${id}`).toEqual(want);
  }
}
