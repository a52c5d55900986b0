import { describe, expect, it } from 'vitest';
import { SeededRng } from '../rng';
import { MAX_WIRE_OPS, validateSegMessage, validateSegRecord } from './messages';

const b = [3, 'n1'];
const snap = { key: 'q', b, seq: 4, part: 0, parts: 2, lastId: 9, items: [[9, { any: 'thing' }]], done: [['n2|17', 1, 8, 1000, 'v', 0]] };

const valid: unknown[] = [
  { type: 'seg.req', op: 1, key: 'q', kind: 'put', value: 'x' },
  { type: 'seg.req', op: 1, key: 'q', kind: 'update', value: null },
  { type: 'seg.req', op: 1, key: 'q', kind: 'peek', afterId: 0 },
  { type: 'seg.req', op: 1, key: 'q', kind: 'take', afterId: 12 },
  { type: 'seg.req', op: 1, key: 'q', kind: 'restore', id: 3, of: 7 },
  { type: 'seg.reply', op: 1, ok: true, id: 3 },
  { type: 'seg.reply', op: 1, ok: true, id: 3, value: [1, 2] },
  { type: 'seg.reply', op: 1, ok: false, error: 'cancelled' },
  { type: 'seg.wait', op: 2 },
  { type: 'seg.redirect', op: 2, owner: 'n3' },
  { type: 'seg.redirect', op: 2, owner: null },
  { type: 'seg.cancel', op: 2, key: 'q' },
  { type: 'seg.claim', key: 'q', b },
  { type: 'seg.promise', key: 'q', b, ok: true, acc: [0, ''], seq: 0, lastId: 0, hold: false },
  { type: 'seg.promise', key: 'q', b, ok: false, refused: true },
  { type: 'seg.promise', key: 'q', b, ok: false, promised: [4, 'n2'] },
  { type: 'seg.fetch', key: 'q', b },
  { type: 'seg.fetch', key: 'q', b, missing: [0, 3] },
  { type: 'seg.state', ...snap },
  { type: 'seg.install', ...snap, part: 1 },
  {
    type: 'seg.ops',
    key: 'q',
    b,
    seq: 5,
    ops: [
      { k: 'put', id: 10, value: 'v', rm: null, from: 'n2', op: 8, t: 5 },
      { k: 'put', id: 11, value: 'w', rm: 9, from: 'n2', op: 9, t: 5 },
      { k: 'take', id: 10, from: 'n0', op: 4, t: 6 },
      { k: 'restore', id: 10, value: 'v', of: 4, from: 'n0', op: 5, t: 7 },
    ],
  },
  { type: 'seg.ack', key: 'q', b, seq: -1, ok: true },
  { type: 'seg.ack', key: 'q', b, seq: -1, ok: true, snap: 12, missing: [1, 2] },
  { type: 'seg.ack', key: 'q', b, seq: 7, ok: false, promised: [5, 'n0'] },
  { type: 'seg.nudge', key: 'q', acc: [2, 'n4'] },
  { type: 'seg.release', key: 'q', b },
];

const invalid: [string, unknown][] = [
  ['not an object', 'seg.req'],
  ['null', null],
  ['array', [1, 2]],
  ['missing type', { op: 1 }],
  ['unknown type', { type: 'seg.explode', op: 1 }],
  ['kv type', { type: 'kv.putAck', op: 1 }],
  ['negative op', { type: 'seg.wait', op: -1 }],
  ['fractional op', { type: 'seg.wait', op: 1.5 }],
  ['unsafe op', { type: 'seg.wait', op: 2 ** 60 }],
  ['string op', { type: 'seg.wait', op: '1' }],
  ['empty key', { type: 'seg.req', op: 1, key: '', kind: 'peek', afterId: 0 }],
  ['huge key', { type: 'seg.claim', key: 'k'.repeat(2000), b }],
  ['unknown kind', { type: 'seg.req', op: 1, key: 'q', kind: 'steal' }],
  ['put without value', { type: 'seg.req', op: 1, key: 'q', kind: 'put' }],
  ['restore without id', { type: 'seg.req', op: 1, key: 'q', kind: 'restore', of: 3 }],
  ['negative afterId', { type: 'seg.req', op: 1, key: 'q', kind: 'take', afterId: -1 }],
  ['reply ok not boolean', { type: 'seg.reply', op: 1, ok: 1 }],
  ['huge error', { type: 'seg.reply', op: 1, ok: false, error: 'e'.repeat(5000) }],
  ['ballot not a tuple', { type: 'seg.claim', key: 'q', b: { e: 1, o: 'n1' } }],
  ['ballot too long', { type: 'seg.claim', key: 'q', b: [1, 'n1', 3] }],
  ['empty ballot exercised', { type: 'seg.claim', key: 'q', b: [0, ''] }],
  ['ballot epoch negative', { type: 'seg.release', key: 'q', b: [-1, 'n1'] }],
  ['ballot owner too long', { type: 'seg.fetch', key: 'q', b: [1, 'x'.repeat(500)] }],
  ['promise seq below -1', { type: 'seg.promise', key: 'q', b, ok: true, seq: -2 }],
  ['snapshot part out of range', { type: 'seg.install', ...snap, part: 2 }],
  ['snapshot zero parts', { type: 'seg.state', ...snap, parts: 0 }],
  ['snapshot item not a tuple', { type: 'seg.install', ...snap, items: [{ id: 1, value: 2 }] }],
  ['snapshot item id negative', { type: 'seg.install', ...snap, items: [[-4, 'x']] }],
  ['snapshot done kind', { type: 'seg.install', ...snap, done: [['n2|1', 7, 1, 1, null, 0]] }],
  ['snapshot too many items', { type: 'seg.install', ...snap, items: Array.from({ length: 5000 }, (_, i) => [i, 0]) }],
  ['ops not array', { type: 'seg.ops', key: 'q', b, seq: 1, ops: {} }],
  ['op without k', { type: 'seg.ops', key: 'q', b, seq: 1, ops: [{ id: 1 }] }],
  ['op unknown k', { type: 'seg.ops', key: 'q', b, seq: 1, ops: [{ k: 'burn', id: 1, from: 'n', op: 1, t: 1 }] }],
  ['op take without from', { type: 'seg.ops', key: 'q', b, seq: 1, ops: [{ k: 'take', id: 1, op: 1, t: 1 }] }],
  ['op put bad rm', { type: 'seg.ops', key: 'q', b, seq: 1, ops: [{ k: 'put', id: 1, value: 1, rm: 'x', from: 'n', op: 1, t: 1 }] }],
  ['too many ops', { type: 'seg.ops', key: 'q', b, seq: 1, ops: Array.from({ length: MAX_WIRE_OPS + 1 }, () => ({ k: 'take', id: 1, from: 'n', op: 1, t: 1 })) }],
  ['ack seq below -1', { type: 'seg.ack', key: 'q', b, seq: -3, ok: true }],
  ['nudge without acc', { type: 'seg.nudge', key: 'q' }],
  ['ack missing not numbers', { type: 'seg.ack', key: 'q', b, seq: -1, ok: true, snap: 1, missing: ['a'] }],
  ['fetch missing negative', { type: 'seg.fetch', key: 'q', b, missing: [-1] }],
  ['put of a cyclic value', { type: 'seg.req', op: 1, key: 'q', kind: 'put', value: (() => { const c: Record<string, unknown> = {}; c.c = c; return c; })() }],
  ['op of a Map', { type: 'seg.ops', key: 'q', b, seq: 1, ops: [{ k: 'put', id: 1, value: new Map(), from: 'n', op: 1, t: 1 }] }],
  ['snapshot item nested 40 deep', { type: 'seg.install', ...snap, items: [[1, JSON.parse('['.repeat(40) + ']'.repeat(40))]] }],
];

describe('validateSegMessage', () => {
  it('accepts every well-formed message type', () => {
    for (const m of valid) expect(validateSegMessage(m), JSON.stringify(m)).toBeNull();
  });

  it('covers every message type', () => {
    const types = new Set(valid.map((m) => (m as { type: string }).type));
    expect([...types].sort()).toEqual(
      ['seg.ack', 'seg.cancel', 'seg.claim', 'seg.fetch', 'seg.install', 'seg.nudge', 'seg.ops', 'seg.promise', 'seg.redirect', 'seg.release', 'seg.reply', 'seg.req', 'seg.state', 'seg.wait'].sort(),
    );
  });

  it.each(invalid)('rejects %s with a reason', (_name, m) => {
    const r = validateSegMessage(m);
    expect(typeof r).toBe('string');
    expect(r!.length).toBeGreaterThan(0);
  });

  it('never throws on random or hostile input', () => {
    const rng = new SeededRng(7);
    const atoms = [null, undefined, 0, -1, 1.5, NaN, Infinity, '', 'x', 'seg.req', true, [], {}, new Uint8Array(3)];
    const randomValue = (depth: number): unknown => {
      const r = rng.next();
      if (depth > 3 || r < 0.4) return atoms[Math.floor(rng.next() * atoms.length)];
      if (r < 0.7) return Array.from({ length: Math.floor(rng.next() * 4) }, () => randomValue(depth + 1));
      const o: Record<string, unknown> = {};
      for (const k of ['type', 'op', 'key', 'kind', 'b', 'ops', 'items', 'done', 'seq', 'part', 'parts', 'value', 'acc', 'k']) {
        if (rng.next() < 0.5) o[k] = randomValue(depth + 1);
      }
      if (rng.next() < 0.7) o.type = valid[Math.floor(rng.next() * valid.length)] && (valid[Math.floor(rng.next() * valid.length)] as { type: string }).type;
      return o;
    };
    for (let i = 0; i < 5000; i++) expect(() => validateSegMessage(randomValue(0))).not.toThrow();
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('boom');
        },
        ownKeys() {
          throw new Error('boom');
        },
      },
    );
    expect(validateSegMessage(hostile)).toMatch(/unreadable|missing|not/);
  });
});

describe('validateSegRecord', () => {
  it('accepts a persisted record and rejects a malformed one', () => {
    const rec = { key: 'q', promised: [3, 'n1'], acc: [3, 'n1'], seq: 4, lastId: 9, items: [[9, 'v']], done: [['n2|1', 0, 9, 100, null, 0]] };
    expect(validateSegRecord(rec)).toBeNull();
    expect(validateSegRecord({ ...rec, items: 'nope' })).toMatch(/items/);
    expect(validateSegRecord({ ...rec, key: '' })).toMatch(/key/);
    expect(validateSegRecord(null)).toBeTypeOf('string');
  });
});
