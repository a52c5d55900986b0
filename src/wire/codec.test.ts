import { describe, expect, it } from 'vitest';
import { decode, encode, fromBase64, MAX_FRAME_BYTES, toBase64, HEARTBEAT_FRAME } from './codec';
import { nodeId, union, int } from '../core/validate';

const validate = union({
  'hpv.join': {},
  'hpv.forwardJoin': { node: nodeId, ttl: int(0, 16) },
});

describe('wire codec', () => {
  it('round-trips a valid message', () => {
    const msg = { type: 'hpv.forwardJoin', node: 'n-abc', ttl: 5 };
    const r = decode(encode(msg), validate);
    expect(r).toEqual({ ok: true, msg });
  });

  it('round-trips binary and nested values', () => {
    const msg = { type: 'hpv.join', extra: { a: [1, 'x', null, true], b: new Uint8Array([1, 2, 3]) } };
    const r = decode(encode(msg), validate);
    expect(r.ok).toBe(true);
    if (r.ok) expect([...(r.msg as typeof msg).extra.b]).toEqual([1, 2, 3]);
  });

  it.each([
    ['empty frame', new Uint8Array(0), 'empty'],
    ['truncated map', encode({ type: 'hpv.forwardJoin', node: 'n-abc', ttl: 5 }).slice(0, 7), 'not-msgpack'],
    ['reserved byte (heartbeat) as a message', HEARTBEAT_FRAME, 'invalid'],
    ['random garbage', new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]), 'not-msgpack'],
    ['not an object', encode(42), 'invalid'],
    ['array', encode([1, 2]), 'invalid'],
    ['unknown type', encode({ type: 'evil' }), 'invalid'],
    ['wrong field type', encode({ type: 'hpv.forwardJoin', node: 7, ttl: 5 }), 'invalid'],
    ['out of range', encode({ type: 'hpv.forwardJoin', node: 'a', ttl: 99 }), 'invalid'],
    ['oversized', new Uint8Array(MAX_FRAME_BYTES + 1), 'too-large'],
  ])('rejects %s without throwing', (_name, bytes, code) => {
    const r = decode(bytes, validate);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe(code);
  });

  it('does not let a __proto__ key change the prototype', () => {
    const bytes = encode({ type: 'hpv.join', ['__proto__']: { polluted: true } });
    const r = decode<Record<string, unknown>>(bytes, validate);
    expect(r.ok).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    if (r.ok) expect(Object.getPrototypeOf(r.msg)).toBe(Object.prototype);
  });

  it('base64 round-trips and rejects garbage', () => {
    const b = encode({ type: 'hpv.join', big: 'x'.repeat(70_000) });
    expect([...fromBase64(toBase64(b))!]).toEqual([...b]);
    expect(fromBase64('%%%not base64')).toBeNull();
  });
});
