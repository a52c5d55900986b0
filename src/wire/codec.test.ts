import { describe, expect, it } from 'vitest';
import { concatFrames, decode, decodeAll, encode, fromBase64, MAX_FRAME_BYTES, MAX_MESSAGES_PER_FRAME, toBase64, HEARTBEAT_FRAME } from './codec';
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

  it('encodes to a plain Uint8Array, so encoded bytes embedded in another message travel as binary', () => {
    const inner = encode({ type: 'alive', id: 'nabc', incarnation: 3 });
    // a Buffer (Node, or a page's polyfill) would be packed through its toJSON when embedded
    expect(inner.constructor).toBe(Uint8Array);
    const outer = decode<{ b: Uint8Array }>(encode({ b: inner }), () => null);
    expect(outer.ok && new Uint8Array(outer.msg.b)).toEqual(inner);
  });

  it('decodes binaries as plain Uint8Arrays whatever class of bytes the frame came in', () => {
    class FrameBytes extends Uint8Array {
      toJSON() {
        return { type: 'Buffer', data: Array.from(this) };
      }
    }
    const frame = encode({ b: new Uint8Array([1, 2, 3]) });
    const r = decode<{ b: Uint8Array }>(new FrameBytes(frame), () => null);
    expect(r.ok && r.msg.b.constructor).toBe(Uint8Array);
    // forwarded, it is binary again, not the toJSON object
    const again = decode<{ b: unknown }>(encode(r.ok ? r.msg : null), () => null);
    expect(again.ok && again.msg.b).toEqual(new Uint8Array([1, 2, 3]));
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

  describe('frames of several messages', () => {
    const m = (i: number) => ({ type: 'hpv.forwardJoin', node: `n-${i}`, ttl: i % 16 });

    it('one message alone is a frame of one', () => {
      expect(decodeAll(encode(m(1)), validate)).toEqual({ msgs: [m(1)], errors: [] });
    });

    it('coalesced messages come out in order', () => {
      const frames = concatFrames(Array.from({ length: 100 }, (_, i) => encode(m(i))), 64 * 1024);
      expect(frames).toHaveLength(1);
      expect(decodeAll(frames[0]!, validate)).toEqual({ msgs: Array.from({ length: 100 }, (_, i) => m(i)), errors: [] });
    });

    it('splits at the size limit, and sends an oversized message alone', () => {
      const big = encode({ type: 'hpv.join', pad: 'x'.repeat(5000) });
      const small = Array.from({ length: 30 }, (_, i) => encode(m(i)));
      const frames = concatFrames([...small.slice(0, 10), big, ...small.slice(10)], 200);
      for (const f of frames) expect(f.byteLength <= 200 || f === big).toBe(true);
      const all = frames.flatMap((f) => decodeAll<{ type: string }>(f, validate).msgs);
      expect(all.map((x) => x.type)).toEqual([...Array(10).fill('hpv.forwardJoin'), 'hpv.join', ...Array(20).fill('hpv.forwardJoin')]);
    });

    it('an invalid message is dropped with its reason and the others are kept', () => {
      const frame = concatFrames([encode(m(1)), encode({ type: 'evil' }), encode(m(2))], 1024)[0]!;
      const r = decodeAll(frame, validate);
      expect(r.msgs).toEqual([m(1), m(2)]);
      expect(r.errors.map((e) => e.code)).toEqual(['invalid']);
    });

    it('garbage after valid messages fails the frame as a whole, without throwing', () => {
      const frame = concatFrames([encode(m(1)), new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01])], 1024)[0]!;
      const r = decodeAll(frame, validate);
      expect(r.msgs).toEqual([]);
      expect(r.errors.map((e) => e.code)).toEqual(['not-msgpack']);
    });

    it.each([
      ['empty frame', new Uint8Array(0), 'empty'],
      ['oversized', new Uint8Array(MAX_FRAME_BYTES + 1), 'too-large'],
      ['heartbeat byte', HEARTBEAT_FRAME, 'invalid'],
    ])('rejects %s', (_n, bytes, code) => {
      const r = decodeAll(bytes, validate);
      expect(r.msgs).toEqual([]);
      expect(r.errors[0]?.code).toBe(code);
    });

    it('caps the number of messages taken from one frame', () => {
      const tiny = encode(null);
      const frame = concatFrames(Array(MAX_MESSAGES_PER_FRAME + 10).fill(tiny), MAX_FRAME_BYTES)[0]!;
      const r = decodeAll(frame, validate);
      expect(r.msgs).toEqual([]);
      // one error for the cap, then one per invalid (null) message kept
      expect(r.errors).toHaveLength(MAX_MESSAGES_PER_FRAME + 1);
    });
  });
});
