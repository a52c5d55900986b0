/**
 * What a node answers to its peers' client-request traffic: replica writes (`kv.put`,
 * `kv.puts`, acknowledged after the persist effect that stores them), reads (`kv.get`)
 * and pages of a listing (`kv.list`).
 */
import type { NodeId } from '../types';
import { MAX_WIRE_ITEMS, type ListItem, type PutItem } from './messages';
import { LIST_BYTES, tupleBytes } from './ops';
import type { KvState } from './state';
import type { Entry } from './types';

export class Replica {
  constructor(private readonly s: KvState) {}

  /** A replica write (`hint`: the owner this node stands in for). */
  onPut(from: NodeId, op: number, entry: Entry, hint: NodeId | null): void {
    // a refused version, a value over this node's limit or a new key past maxKeys is not acknowledged
    if (!this.s.acceptable(entry.version.ts) || !this.s.fits(entry) || !this.s.hasRoom(entry.key)) return;
    if (hint) this.s.counters.add('hintsStored');
    this.s.applyEntries([entry], true);
    this.s.outbox.ack(from, op);
  }

  onPuts(from: NodeId, items: PutItem[]): void {
    const entries: Entry[] = [];
    const fresh = new Set<string>();
    for (const [op, key, value, ts, node, deleted, hint, seal] of items) {
      // a refused version, a value over this node's limit or a new key past maxKeys is not
      // acknowledged: the writer's quorum must not count it
      if (!this.s.acceptable(ts) || !this.s.fits({ value, deleted: deleted === 1 })) continue;
      if (!fresh.has(key) && !this.s.hasRoom(key, fresh.size)) continue;
      if (!this.s.data.has(key)) fresh.add(key);
      if (hint) this.s.counters.add('hintsStored');
      const e: Entry = { key, value: deleted === 1 ? null : value, version: { ts, node }, deleted: deleted === 1 };
      if (seal) e.seal = seal;
      entries.push(e);
      this.s.outbox.ack(from, op);
    }
    this.s.applyEntries(entries, true);
  }

  onGet(from: NodeId, op: number, key: string): void {
    const e = this.s.data.get(key) ?? null;
    this.s.outbox.getReply(from, op, e, e ? this.s.valueSize(e) : tupleBytes(key));
  }

  /** A head read: the version of `key` held here, without the value. */
  onHead(from: NodeId, op: number, key: string): void {
    const e = this.s.data.get(key);
    this.s.outbox.headReply(from, [op, e ? [e.version.ts, e.version.node, e.deleted ? 1 : 0] : null]);
  }

  /** One page of the local keys with `prefix`, after `after` in key order. */
  onList(from: NodeId, op: number, prefix: string, after: string | null): void {
    const s = this.s;
    const keys: string[] = [];
    for (const k of s.data.keys()) if (k.startsWith(prefix) && (after === null || k > after)) keys.push(k);
    keys.sort();
    const items: ListItem[] = [];
    let bytes = 0;
    for (const k of keys) {
      if (items.length >= MAX_WIRE_ITEMS || bytes >= LIST_BYTES) break;
      const e = s.data.get(k)!;
      items.push([k, e.version.ts, e.version.node, e.deleted ? 1 : 0]);
      bytes += tupleBytes(k);
    }
    s.send(from, { type: 'kv.listReply', op, items, more: items.length < keys.length });
  }
}
