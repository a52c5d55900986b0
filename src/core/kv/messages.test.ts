import { describe, expect, it } from 'vitest';
import { SeededRng } from '../rng';
import { validateKvMessage } from './messages';

const entry = { key: 'a', value: { any: ['thing'] }, version: { ts: 123, node: 'n1' }, deleted: false };

const valid: unknown[] = [
  { type: 'kv.put', op: 1, entry },
  { type: 'kv.put', op: 1, entry, hint: 'n2' },
  { type: 'kv.putAck', op: 0 },
  { type: 'kv.puts', items: [[1, 'a', { v: 1 }, 123, 'n1', 0, null], [2, 'b', null, 124, 'n1', 1, 'n3']] },
  // with the writer's seal (opaque to the core)
  { type: 'kv.put', op: 1, entry: { ...entry, seal: { s: new Uint8Array(64), k: new Uint8Array(32) } } },
  { type: 'kv.puts', items: [[1, 'a', 1, 123, 'n1', 0, null, { s: new Uint8Array(64) }]] },
  { type: 'kv.putAcks', ops: [1, 2] },
  { type: 'kv.get', op: 2, key: 'a' },
  { type: 'kv.getReply', op: 2, entry: null },
  { type: 'kv.getReply', op: 2, entry },
  { type: 'kv.gets', items: [[2, 'a'], [3, 'b']] },
  { type: 'kv.getReplies', items: [[2, entry], [3, null]] },
  { type: 'kv.list', op: 3, prefix: '', after: null },
  { type: 'kv.list', op: 3, prefix: 'a/', after: 'a/1' },
  { type: 'kv.listReply', op: 3, items: [['a', 1, 'n1', 0]], more: false },
  { type: 'kv.offer', op: 4, items: [['a', 1, 'n1']] },
  { type: 'kv.want', op: 4, want: ['a'], transient: [] },
  { type: 'kv.push', op: 5, entries: [entry] },
  { type: 'kv.pushAck', op: 5, transient: [] },
  { type: 'kv.digest', op: 6, counts: [0, 1], sums: [0, 4294967295] },
  { type: 'kv.diff', op: 6, buckets: [1], items: [['a', 1, 'n1']] },
  { type: 'kv.pull', op: 7, keys: ['a'] },
  { type: 'kv.pullReply', op: 7, entries: [] },
  { type: 'kv.gcCheck', op: 8, items: [] },
  { type: 'kv.gcHave', op: 8, keys: [] },
  { type: 'kv.gcDrop', items: [['a', 1, 'n1']] },
];

const invalid: [string, unknown][] = [
  ['not an object', 'kv.put'],
  ['null', null],
  ['array', [1, 2]],
  ['missing type', { op: 1 }],
  ['unknown type', { type: 'kv.explode', op: 1 }],
  ['negative op', { type: 'kv.putAck', op: -1 }],
  ['fractional op', { type: 'kv.putAck', op: 1.5 }],
  ['string op', { type: 'kv.putAck', op: '1' }],
  ['missing entry', { type: 'kv.put', op: 1 }],
  ['empty key', { type: 'kv.put', op: 1, entry: { ...entry, key: '' } }],
  ['huge key', { type: 'kv.get', op: 1, key: 'k'.repeat(2000) }],
  ['NaN timestamp', { type: 'kv.put', op: 1, entry: { ...entry, version: { ts: NaN, node: 'n1' } } }],
  ['negative timestamp', { type: 'kv.put', op: 1, entry: { ...entry, version: { ts: -5, node: 'n1' } } }],
  ['empty writer', { type: 'kv.put', op: 1, entry: { ...entry, version: { ts: 1, node: '' } } }],
  ['deleted not boolean', { type: 'kv.put', op: 1, entry: { ...entry, deleted: 0 } }],
  ['bad hint', { type: 'kv.put', op: 1, entry, hint: 42 }],
  ['batch item too short', { type: 'kv.puts', items: [[1, 'a', 1, 123, 'n1', 0]] }],
  ['batch item too long', { type: 'kv.puts', items: [[1, 'a', 1, 123, 'n1', 0, null, {}, 'x']] }],
  ['batch item seal not an object', { type: 'kv.puts', items: [[1, 'a', 1, 123, 'n1', 0, null, 'sig']] }],
  ['entry seal not an object', { type: 'kv.put', op: 1, entry: { ...entry, seal: 42 } }],
  ['batch item empty key', { type: 'kv.puts', items: [[1, '', 1, 123, 'n1', 0, null]] }],
  ['batch item deleted flag', { type: 'kv.puts', items: [[1, 'a', 1, 123, 'n1', true, null]] }],
  ['batch item bad writer', { type: 'kv.puts', items: [[1, 'a', 1, 123, 7, 0, null]] }],
  ['batch too long', { type: 'kv.puts', items: Array.from({ length: 5001 }, (_, i) => [i, 'a', 1, 1, 'n', 0, null]) }],
  ['batch acks not numbers', { type: 'kv.putAcks', ops: ['1'] }],
  ['list item deleted flag', { type: 'kv.listReply', op: 3, items: [['a', 1, 'n1', 2]], more: false }],
  ['list more missing', { type: 'kv.listReply', op: 3, items: [] }],
  ['offer tuple too short', { type: 'kv.offer', op: 4, items: [['a', 1]] }],
  ['too many items', { type: 'kv.offer', op: 4, items: Array.from({ length: 5001 }, () => ['a', 1, 'n']) }],
  ['want not array', { type: 'kv.want', op: 4, want: 'a', transient: [] }],
  ['digest lengths differ', { type: 'kv.digest', op: 6, counts: [0, 1], sums: [0] }],
  ['digest sum out of range', { type: 'kv.digest', op: 6, counts: [0], sums: [2 ** 33] }],
  ['too many buckets', { type: 'kv.digest', op: 6, counts: new Array(5000).fill(0), sums: new Array(5000).fill(0) }],
  ['diff bucket out of range', { type: 'kv.diff', op: 6, buckets: [99999], items: [] }],
  ['push entries not array', { type: 'kv.push', op: 5, entries: entry }],
  ['gc drop item', { type: 'kv.gcDrop', items: [[1, 1, 'n']] }],
  ['put of a cyclic value', { type: 'kv.put', op: 1, entry: { ...entry, value: (() => { const c: unknown[] = []; c.push(c); return c; })() } }],
  ['put of a Date', { type: 'kv.put', op: 1, entry: { ...entry, value: { when: new Date(0) } } }],
  ['puts item nested 40 deep', { type: 'kv.puts', items: [[1, 'a', JSON.parse('['.repeat(40) + ']'.repeat(40)), 123, 'n1', 0, null]] }],
  ['push of a BigInt', { type: 'kv.push', op: 5, entries: [{ ...entry, value: 10n }] }],
];

describe('validateKvMessage', () => {
  it.each(valid.map((m) => [(m as { type: string }).type, m]))('accepts a well-formed %s', (_t, m) => {
    expect(validateKvMessage(m)).toBeNull();
  });

  it.each(invalid)('rejects %s', (_name, m) => {
    const reason = validateKvMessage(m);
    expect(typeof reason).toBe('string');
    expect(reason!.length).toBeGreaterThan(0);
  });

  it('never throws, whatever it is given', () => {
    const throwing = new Proxy(
      {},
      {
        get() {
          throw new Error('boom');
        },
      },
    );
    expect(typeof validateKvMessage(throwing)).toBe('string');
    const rng = new SeededRng(42);
    const atoms = [null, undefined, 0, -1, 1.5, NaN, '', 'a', 'kv.put', true, [], {}, new Uint8Array(2)];
    const randomValue = (depth: number): unknown => {
      const r = rng.next();
      if (depth > 3 || r < 0.4) return atoms[Math.floor(rng.next() * atoms.length)];
      if (r < 0.6) return Array.from({ length: Math.floor(rng.next() * 4) }, () => randomValue(depth + 1));
      const o: Record<string, unknown> = {};
      for (const k of ['type', 'op', 'entry', 'key', 'items', 'keys', 'entries', 'counts', 'sums', 'want']) if (rng.next() < 0.5) o[k] = randomValue(depth + 1);
      if (rng.next() < 0.7) o.type = valid[Math.floor(rng.next() * valid.length)] && (valid[Math.floor(rng.next() * valid.length)] as { type: string }).type;
      return o;
    };
    for (let i = 0; i < 5000; i++) {
      const v = randomValue(0);
      expect(() => validateKvMessage(v)).not.toThrow();
    }
  });
});
