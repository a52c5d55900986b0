import { describe, expect, it } from 'vitest';
import { validateHpvMessage, MAX_SHUFFLE_NODES, MAX_TTL, type HpvMessage } from './messages';

const valid: HpvMessage[] = [
  { type: 'hpv.join' },
  { type: 'hpv.forwardJoin', node: 'n1', ttl: 6 },
  { type: 'hpv.forwardJoin', node: 'n1', ttl: 0 },
  { type: 'hpv.neighbor', priority: 'high' },
  { type: 'hpv.neighbor', priority: 'low' },
  { type: 'hpv.neighborReply', accept: true },
  { type: 'hpv.neighborReply', accept: false },
  { type: 'hpv.disconnect', alive: true },
  { type: 'hpv.shuffle', origin: 'o', ttl: 6, nodes: ['o', 'a', 'b'] },
  { type: 'hpv.shuffle', origin: 'o', ttl: 1, nodes: [] },
  { type: 'hpv.shuffleReply', nodes: ['a'] },
  { type: 'hpv.welcome', isolated: false, bridge: true, clients: 12 },
];

const malformed: [string, unknown][] = [
  ['null', null],
  ['undefined', undefined],
  ['number', 42],
  ['string', 'hpv.join'],
  ['array', [{ type: 'hpv.join' }]],
  ['bytes', new Uint8Array([1, 2, 3])],
  ['no type', {}],
  ['numeric type', { type: 3 }],
  ['unknown type', { type: 'hpv.hello' }],
  ['other protocol', { type: 'pt.gossip' }],
  ['forwardJoin without node', { type: 'hpv.forwardJoin', ttl: 3 }],
  ['forwardJoin empty node', { type: 'hpv.forwardJoin', node: '', ttl: 3 }],
  ['forwardJoin huge node id', { type: 'hpv.forwardJoin', node: 'x'.repeat(129), ttl: 3 }],
  ['forwardJoin negative ttl', { type: 'hpv.forwardJoin', node: 'a', ttl: -1 }],
  ['forwardJoin fractional ttl', { type: 'hpv.forwardJoin', node: 'a', ttl: 1.5 }],
  ['forwardJoin ttl too large', { type: 'hpv.forwardJoin', node: 'a', ttl: MAX_TTL + 1 }],
  ['forwardJoin ttl as string', { type: 'hpv.forwardJoin', node: 'a', ttl: '3' }],
  ['forwardJoin NaN ttl', { type: 'hpv.forwardJoin', node: 'a', ttl: NaN }],
  ['neighbor bad priority', { type: 'hpv.neighbor', priority: 'urgent' }],
  ['neighbor no priority', { type: 'hpv.neighbor' }],
  ['neighborReply non-boolean', { type: 'hpv.neighborReply', accept: 1 }],
  ['disconnect without alive', { type: 'hpv.disconnect' }],
  ['shuffle nodes not an array', { type: 'hpv.shuffle', origin: 'o', ttl: 3, nodes: 'a,b' }],
  ['shuffle too many nodes', { type: 'hpv.shuffle', origin: 'o', ttl: 3, nodes: Array.from({ length: MAX_SHUFFLE_NODES + 1 }, (_, i) => `n${i}`) }],
  ['shuffle bad node in list', { type: 'hpv.shuffle', origin: 'o', ttl: 3, nodes: ['a', 7] }],
  ['shuffle without origin', { type: 'hpv.shuffle', ttl: 3, nodes: [] }],
  ['shuffleReply huge', { type: 'hpv.shuffleReply', nodes: new Array(100_000).fill('a') }],
  ['welcome negative clients', { type: 'hpv.welcome', isolated: false, bridge: false, clients: -1 }],
  ['welcome missing flags', { type: 'hpv.welcome', clients: 3 }],
];

describe('validateHpvMessage', () => {
  it.each(valid.map((m) => [m.type, m] as const))('accepts %s', (_t, m) => {
    expect(validateHpvMessage(m)).toBeNull();
  });

  it.each(malformed)('rejects %s', (_name, v) => {
    const r = validateHpvMessage(v);
    expect(typeof r).toBe('string');
  });

  it('ignores extra fields', () => {
    expect(validateHpvMessage({ type: 'hpv.join', extra: { deep: [1, 2] } })).toBeNull();
  });

  it('never throws, whatever it is given', () => {
    const weird: unknown[] = [
      Object.create(null),
      { type: 'hpv.shuffle', origin: 'o', ttl: 3, nodes: [undefined] },
      { type: 'hpv.forwardJoin', node: { toString: () => 'x' }, ttl: 3 },
      { type: Symbol('x') },
      () => 1,
      new Proxy({}, { get: () => 'hpv.join' }),
    ];
    for (const w of weird) expect(() => validateHpvMessage(w)).not.toThrow();
  });
});
