import { describe, expect, it } from 'vitest';
import { Effects, type Effect } from '../protocol';
import { SeededRng } from '../rng';
import { checkValue, Counters, keyProblem, OpIds, PersistBuffer } from '.';

describe('OpIds', () => {
  it('are distinct, never 0, and differ between incarnations', () => {
    const a = new OpIds(new SeededRng('a/0'));
    const b = new OpIds(new SeededRng('a/1'));
    const ids = Array.from({ length: 1000 }, () => a.next());
    expect(new Set(ids).size).toBe(1000);
    expect(ids.every((id) => id > 0 && Number.isSafeInteger(id))).toBe(true);
    const other = new Set(Array.from({ length: 1000 }, () => b.next()));
    expect(ids.filter((id) => other.has(id))).toEqual([]);
  });

  it('a base of 0 still never yields 0 (KVS read repairs use op 0)', () => {
    const zero = new OpIds({ next: () => 0 });
    expect(Array.from({ length: 5 }, () => zero.next())).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('key and value checks', () => {
  it('describe what is wrong with a key', () => {
    expect(keyProblem('ok', 4)).toBeNull();
    expect(keyProblem('', 4)).toEqual({ got: 'an empty string', tooLong: false });
    expect(keyProblem('abcde', 4)).toEqual({ got: 'a string of 5 characters', tooLong: true });
    expect(keyProblem(7, 4)).toEqual({ got: 'a number', tooLong: false });
    expect(keyProblem(null, 4)).toEqual({ got: 'a null', tooLong: false });
  });

  it('measure a value, never throwing', () => {
    const size = (v: unknown) => String(v).length;
    expect(checkValue('abc', size, 3)).toEqual({ ok: true, bytes: 3 });
    expect(checkValue('abcd', size, 3)).toEqual({ ok: false, problem: 'tooLarge', bytes: 4 });
    expect(checkValue(undefined, size, 3)).toEqual({ ok: false, problem: 'undefined' });
    const thrower = () => {
      throw new Error('no way');
    };
    expect(checkValue(1, thrower, 3)).toEqual({ ok: false, problem: 'unstorable', reason: 'no way' });
    expect(checkValue(1, () => NaN, 3)).toMatchObject({ ok: false, problem: 'tooLarge' });
  });
});

describe('Counters', () => {
  it('snapshot lists every name (0 when never counted); partial only those counted', () => {
    const c = new Counters<'a' | 'b' | 'c'>();
    c.add('a');
    c.add('a', 2);
    c.add('c');
    expect(c.get('a')).toBe(3);
    expect(c.snapshot(['a', 'b', 'c'])).toEqual({ a: 3, b: 0, c: 1 });
    expect(c.partial()).toEqual({ a: 3, c: 1 });
  });
});

describe('PersistBuffer', () => {
  type E = Effect<string, never, never, { key: string; v: number }>;
  const setup = () => {
    const io = new Effects<string, never, never, { key: string; v: number }>();
    const store = new Map<string, { key: string; v: number }>();
    const buf = new PersistBuffer(io, (k) => store.get(k));
    return { io, store, buf };
  };

  it('writes one persist per call, where the first change was marked, with the records as they end up', () => {
    const { io, store, buf } = setup();
    const out: E[] = [];
    io.begin(0, out);
    buf.begin();
    io.send('x', 'before');
    store.set('a', { key: 'a', v: 1 });
    buf.mark('a');
    io.send('x', 'ack a');
    store.set('a', { key: 'a', v: 2 });
    buf.mark('a');
    store.set('b', { key: 'b', v: 1 });
    buf.mark('b');
    store.delete('b');
    buf.mark('b');
    buf.flush();
    expect(out).toEqual([
      { type: 'send', to: 'x', msg: 'before' },
      { type: 'persist', put: [{ key: 'a', v: 2 }], remove: ['b'] },
      { type: 'send', to: 'x', msg: 'ack a' },
    ]);
    const next: E[] = [];
    io.begin(1, next);
    buf.begin();
    buf.flush();
    expect(next).toEqual([]);
  });

  it('flush(false) drops the marks without an effect', () => {
    const { io, store, buf } = setup();
    const out: E[] = [];
    io.begin(0, out);
    store.set('a', { key: 'a', v: 1 });
    buf.mark('a');
    buf.flush(false);
    buf.flush();
    expect(out).toEqual([]);
  });

  it('changes marked by a call that threw before its flush are written at the start of the next call', () => {
    const { io, store, buf } = setup();
    io.begin(0, []);
    buf.begin();
    store.set('a', { key: 'a', v: 1 });
    buf.mark('a');
    // the call throws here: no flush
    const out: E[] = [];
    io.begin(1, out);
    buf.begin();
    io.send('x', 'later');
    buf.flush();
    expect(out).toEqual([
      { type: 'persist', put: [{ key: 'a', v: 1 }], remove: [] },
      { type: 'send', to: 'x', msg: 'later' },
    ]);
  });
});
