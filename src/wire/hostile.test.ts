/**
 * Frames an attacker can build by hand (issue #15, items 4 and 5): msgpack extensions
 * (structured clone, Date, RegExp, Set, Error, BigInt, records), nesting, and frames
 * whose decoded form would be far larger than their bytes. Each must be refused by
 * `decodeAll` before msgpackr builds it, without throwing.
 */
import { describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { decodeAll, encode, encodedSize, MAX_FRAME_BYTES, MAX_MESSAGES_PER_FRAME, MAX_WIRE_DEPTH, scanFrame } from './codec';
import { validateWire } from '../core/messages';
import { fromWire } from '../core/wire';
import { measureValue, MAX_VALUE_DEPTH } from '../core/data-protocol';

const anything = (): null => null;

/** An attacker's encoder: every msgpackr extension on. */
const evil = new Packr({ structuredClone: true, moreTypes: true, useRecords: true });
const evilNoRecords = new Packr({ structuredClone: true, moreTypes: true, useRecords: false });

const kvPut = (value: unknown) => ({ type: 'kv.put', op: 1, entry: { key: 'k', value, version: { ts: 1, node: 'n1' }, deleted: false } });

function decodesTo(bytes: Uint8Array): { msgs: unknown[]; codes: string[] } {
  const r = decodeAll<unknown>(bytes, anything);
  return { msgs: r.msgs, codes: r.errors.map((e) => e.code) };
}

describe('hostile frames', () => {
  it('a cyclic value (structured clone) is refused', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const bytes = evilNoRecords.pack(kvPut(cyclic));
    const r = decodeAll(bytes, validateWire, fromWire);
    expect(r.msgs).toEqual([]);
    expect(r.errors.map((e) => e.code)).toEqual(['not-msgpack']);
  });

  it.each([
    ['Date', new Date(0)],
    ['RegExp', /x+/g],
    ['Set', new Set([1, 2])],
    ['Error', new Error('boom')],
    ['BigInt', 2n ** 70n],
    ['Float64Array', new Float64Array([1.5])],
  ])('a %s value is refused', (_name, value) => {
    const { msgs, codes } = decodesTo(evilNoRecords.pack(kvPut(value)));
    expect(msgs).toEqual([]);
    expect(codes).toEqual(['not-msgpack']);
  });

  it('a Map travels as a plain msgpack map and arrives as a plain object', () => {
    const { msgs, codes } = decodesTo(evilNoRecords.pack(kvPut(new Map([['a', 1]]))));
    expect(codes).toEqual([]);
    const value = (msgs[0] as { entry: { value: unknown } }).entry.value;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(value).toEqual({ a: 1 });
  });

  it('records (msgpackr structures) are refused', () => {
    const { msgs, codes } = decodesTo(evil.pack([{ a: 1, b: 2 }, { a: 3, b: 4 }]));
    expect(msgs).toEqual([]);
    expect(codes).toEqual(['not-msgpack']);
  });

  it('undefined (ext 0, what msgpackr writes for an absent optional field) still decodes', () => {
    const r = decodeAll(encode({ type: 'kv.getReply', op: 3, entry: undefined }), validateWire, fromWire);
    expect(r.errors).toEqual([]);
    expect(r.msgs).toEqual([{ type: 'kv.getReply', op: 3, entry: undefined }]);
  });

  it('nesting deeper than MAX_WIRE_DEPTH is refused before decoding (no stack overflow)', () => {
    const deep = new Uint8Array(4000).fill(0x91);
    deep[deep.length - 1] = 0xc0;
    expect(decodesTo(deep).codes).toEqual(['too-large']);
    // exactly at the limit: fine
    const ok = new Uint8Array(MAX_WIRE_DEPTH + 1).fill(0x91);
    ok[MAX_WIRE_DEPTH] = 0xc0;
    expect(decodesTo(ok).codes).toEqual([]);
  });

  it('a frame of empty containers is refused: decoding allocates at most a small multiple of the frame', () => {
    const n = MAX_FRAME_BYTES - 5;
    const maps = new Uint8Array(MAX_FRAME_BYTES);
    maps.set([0xdd, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
    maps.fill(0x80, 5);
    expect(decodesTo(maps).codes).toEqual(['too-large']);
    expect(scanFrame(maps)).toMatchObject({ ok: false });
    const arrays = maps.slice().fill(0x90, 5);
    expect(decodesTo(arrays).codes).toEqual(['too-large']);
    const bins = new Uint8Array(MAX_FRAME_BYTES);
    const m = (MAX_FRAME_BYTES - 5) / 2 - 1;
    bins.set([0xdd, m >>> 24, (m >>> 16) & 255, (m >>> 8) & 255, m & 255]);
    for (let i = 5; i + 1 < bins.length; i += 2) bins.set([0xc4, 0], i);
    expect(decodesTo(bins).codes).toEqual(['too-large']);
  });

  it('an array claiming more elements than the frame has bytes is refused', () => {
    expect(decodesTo(new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01])).codes).toEqual(['not-msgpack']);
  });

  it('dense but ordinary data (pairs of small integers) still decodes', () => {
    const pairs = Array.from({ length: 20_000 }, (_, i) => [i % 100, (i * 7) % 100]);
    const bytes = encode(pairs);
    expect(bytes.byteLength).toBeLessThan(MAX_FRAME_BYTES);
    const r = decodesTo(bytes);
    expect(r.codes).toEqual([]);
    expect(r.msgs).toEqual([pairs]);
  });

  it('a flood of tiny messages is cut at MAX_MESSAGES_PER_FRAME before the rest is built', () => {
    const bytes = new Uint8Array(100_000).fill(0x01);
    const r = decodesTo(bytes);
    expect(r.msgs.length).toBe(MAX_MESSAGES_PER_FRAME);
    expect(r.codes).toEqual(['invalid']);
  });

  it('binary values are copies: a stored value does not keep the whole frame alive', () => {
    const bytes = encode({ type: 'x', big: 'y'.repeat(100_000), bin: new Uint8Array([1, 2, 3]) });
    const r = decodesTo(bytes);
    const bin = (r.msgs[0] as { bin: Uint8Array }).bin;
    expect([...bin]).toEqual([1, 2, 3]);
    expect(bin.buffer.byteLength).toBe(3);
  });
});

describe('the value check agrees with the codec', () => {
  it('measures exactly what msgpack encodes', () => {
    const values: unknown[] = [
      0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, -1, -32, -33, -128, -129, -32_768, -32_769, -(2 ** 31), -(2 ** 31) - 1,
      1.5, -0.25, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1e300, null, true, false,
      '', 'a', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(255), 'x'.repeat(256), 'x'.repeat(70_000), 'é', '€'.repeat(20), '😀'.repeat(40), '\ud800',
      new Uint8Array(0), new Uint8Array(255), new Uint8Array(256), new Uint8Array(70_000),
      [], [1, 2, 3], Array.from({ length: 16 }, (_, i) => i), Array.from({ length: 70_000 }, () => 0),
      {}, { a: 1 }, Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i])), Object.assign(Object.create(null), { x: 1 }),
      { nested: { deeper: [{ x: 'y', bin: new Uint8Array([1, 2]) }] }, t: 'text' },
    ];
    for (const v of values) {
      const r = measureValue(v, 1 << 30);
      expect(r, JSON.stringify(v)?.slice(0, 40)).toEqual({ ok: true, bytes: encodedSize(v) });
    }
  });

  it('refuses what is not JSON-compatible data plus binary, saying what and where', () => {
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    const cases: [unknown, RegExp][] = [
      [{ a: [1, { when: new Date(0) }] }, /^a Date cannot be stored at \.a\[1\]\.when$/],
      [{ n: Number.NaN }, /^NaN cannot be stored at \.n$/],
      [[Infinity], /^Infinity cannot be stored at \[0\]$/],
      [{ u: undefined }, /^undefined cannot be stored at \.u$/],
      // eslint-disable-next-line no-sparse-arrays
      [[1, , 3], /^undefined cannot be stored at \[1\]$/],
      [new Map(), /^a Map cannot be stored$/],
      [new Set(), /^a Set cannot be stored$/],
      [new Float32Array(2), /^a Float32Array cannot be stored$/],
      [10n, /^a bigint cannot be stored$/],
      [() => 1, /^a function cannot be stored$/],
      [Symbol('s'), /^a symbol cannot be stored$/],
      [cyclic, /^value contains a cycle at \[0\]$/],
      [(() => { let d: unknown = 0; for (let i = 0; i < 40; i++) d = { d }; return d; })(), /^value nested deeper than 32 levels at …(\.d){8}$/],
      [[[], [], []], /too dense/],
      [Object.fromEntries(Array.from({ length: 70_000 }, (_, i) => [`k${i}`, 0])), /an object of 70000 keys/],
    ];
    for (const [v, reason] of cases) {
      const r = measureValue(v, 1 << 30);
      expect(r.ok, String(reason)).toBe(false);
      if (!r.ok && r.problem === 'unstorable') expect(r.reason).toMatch(reason);
      else expect.fail(`${String(reason)}: ${JSON.stringify(r)}`);
    }
    expect(measureValue(undefined, 10)).toEqual({ ok: false, problem: 'undefined' });
    expect(measureValue('x'.repeat(100), 10)).toEqual({ ok: false, problem: 'tooLarge', bytes: 102 });
  });

  it('a value sharing sub-values (no cycle, exponential once expanded) is refused after maxBytes steps', () => {
    let v: unknown = { a: 1 };
    for (let i = 0; i < 31; i++) v = { l: v, r: v };
    const t0 = performance.now();
    const r = measureValue(v, 64 * 1024);
    expect(r).toMatchObject({ ok: false, problem: 'tooLarge', atLeast: true });
    expect(performance.now() - t0).toBeLessThan(2_000);
  });

  it('the deepest value the check accepts fits in a frame without tripping the codec depth bound', () => {
    let v: unknown = 1;
    for (let i = 0; i < MAX_VALUE_DEPTH; i++) v = { a: v };
    expect(measureValue(v, 1 << 20).ok).toBe(true);
    // inside a kv.puts batch inside a route envelope: still within MAX_WIRE_DEPTH
    const routed = { type: 'rt.route', src: 'a', dst: 'b', ttl: 3, msg: { type: 'kv.puts', items: [[1, 'k', v, 1, 'a', 0, null]] } };
    const r = decodeAll(encode(routed), validateWire, fromWire);
    expect(r.errors).toEqual([]);
  });
});
