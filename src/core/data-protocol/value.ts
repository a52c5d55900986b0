/**
 * What a stored value may be, for KV and segments alike, checked wherever a value enters
 * a node: at the API and on receipt from a peer (replica writes, handoff, anti-entropy,
 * read answers, segment requests, operations and snapshots).
 *
 * A value is JSON-compatible data plus binary: null, booleans, finite numbers, strings,
 * Uint8Array, arrays and plain objects (prototype Object.prototype or null) of values,
 * nested at most MAX_VALUE_DEPTH levels. Nothing else: no undefined (inside a value; a
 * top-level undefined is its own problem), NaN or Infinity, Date, RegExp, Map, Set, BigInt,
 * class instances, other typed arrays, functions or symbols. A cycle is nesting without
 * end, so the depth bound refuses it; a value that shares sub-values (a DAG) is walked
 * once per path, and the walk stops after `maxBytes` nodes (each node costs at least one
 * encoded byte), so the check is O(maxBytes) whatever the value.
 *
 * The size is the value's exact msgpack size as wire/codec.ts encodes it (smallest
 * header for every string, binary and array length, a 16-bit header for every object,
 * integers in the fewest bytes, other numbers as float64):
 * what a value costs on the wire and in storage, computed without encoding it.
 *
 * Density: decoding allocates an object per array, object and binary, whatever its size
 * on the wire (an empty array is one byte, but tens of bytes of heap), so a value may
 * hold at most 1 + bytes / 2 of them (a binary counts twice, its buffer is a second
 * allocation): `[[1, 2], [3, 4]]` or `{a: [], b: {}}` are fine, `[[], [], []]` is not.
 * wire/codec.ts refuses frames denser than that (with some slack for envelopes), so a
 * value this check accepts always travels, alone or in any batch.
 */

/** Deepest nesting of arrays and objects in a value (the value itself is level 0). */
export const MAX_VALUE_DEPTH = 32;

/** Allocations (arrays, objects; binaries count 2) a value of `bytes` encoded bytes may hold. */
export const maxAllocations = (bytes: number): number => 1 + Math.floor(bytes / 2);

export type ValueCheck =
  | { ok: true; bytes: number }
  /** `undefined` is not a value (a KVS delete, a segment's `null`, say so instead). */
  | { ok: false; problem: 'undefined' }
  /** Not JSON-compatible data plus binary (`reason` says what and where), nested too deep, or too dense. */
  | { ok: false; problem: 'unstorable'; reason: string }
  /** Encoded size above the limit; `atLeast`: the walk stopped early, the value is larger still. */
  | { ok: false; problem: 'tooLarge'; bytes: number; atLeast?: boolean };

/** UTF-8 length of a string as the encoder writes it (a lone surrogate takes 3 bytes). */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if ((c & 0xfc00) === 0xd800 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // a pair: 2 units, 4 bytes
      i++;
    } else n += 2;
  }
  return n;
}

const strHeader = (len: number): number => (len < 0x20 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : 5);
const binHeader = (len: number): number => (len < 0x100 ? 2 : len < 0x10000 ? 3 : 5);
const containerHeader = (len: number): number => (len < 0x10 ? 1 : len < 0x10000 ? 3 : 5);

function numberBytes(v: number): number {
  if (v >>> 0 === v) return v < 0x80 ? 1 : v < 0x100 ? 2 : v < 0x10000 ? 3 : 5;
  if (v >> 0 === v) return v >= -0x20 ? 1 : v >= -0x80 ? 2 : v >= -0x8000 ? 3 : 5;
  return 9;
}

/** How an error names a value that cannot be stored: `a function`, `a Date`, `NaN`, `undefined`. */
function kindOf(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'number') return String(v);
  if (typeof v !== 'object' || v === null) return `a ${typeof v}`;
  const name = (Object.getPrototypeOf(v) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  return typeof name === 'string' && name !== '' ? `a ${name}` : 'an object';
}

class Stop {
  constructor(readonly result: ValueCheck) {}
}

/**
 * Checks that `value` is JSON-compatible data plus binary, at most MAX_VALUE_DEPTH deep,
 * and measures its encoded size; `tooLarge` past `maxBytes`. Never throws (a getter or a
 * proxy that throws makes the value unstorable).
 */
export function measureValue(value: unknown, maxBytes: number): ValueCheck {
  const c = walkValue(value, maxBytes);
  if (c.ok && c.bytes > maxBytes) return { ok: false, problem: 'tooLarge', bytes: c.bytes };
  return c;
}

/**
 * measureValue without the size limit: the shape check and the exact size, giving up
 * (`tooLarge`, `atLeast`) only after `maxNodes` nodes, since every node costs at least one
 * encoded byte.
 */
export function walkValue(value: unknown, maxNodes: number): ValueCheck {
  const maxBytes = maxNodes;
  if (value === undefined) return { ok: false, problem: 'undefined' };
  let nodes = 0;
  let bytes = 0;
  let allocations = 0;
  const path: (string | number)[] = [];
  const ancestors: object[] = [];
  const where = () => {
    if (path.length === 0) return '';
    const shown = path.length > 8 ? ['…', ...path.slice(-8)] : path;
    return ` at ${shown.map((p) => (typeof p === 'number' ? `[${p}]` : p === '…' ? p : `.${p.length > 40 ? `${p.slice(0, 40)}…` : p}`)).join('')}`;
  };
  const refuse = (v: unknown) => new Stop({ ok: false, problem: 'unstorable', reason: `${kindOf(v)} cannot be stored${where()}` });
  const walk = (v: unknown, depth: number): void => {
    if (++nodes > maxBytes) throw new Stop({ ok: false, problem: 'tooLarge', bytes: Math.max(bytes, maxBytes + 1), atLeast: true });
    switch (typeof v) {
      case 'string': {
        const len = utf8Length(v);
        bytes += strHeader(len) + len;
        return;
      }
      case 'number':
        if (!Number.isFinite(v)) throw refuse(v);
        bytes += numberBytes(v);
        return;
      case 'boolean':
        bytes += 1;
        return;
      case 'object': {
        if (v === null) {
          bytes += 1;
          return;
        }
        if (v instanceof Uint8Array) {
          bytes += binHeader(v.byteLength) + v.byteLength;
          allocations += 2;
          return;
        }
        if (ancestors.includes(v)) throw new Stop({ ok: false, problem: 'unstorable', reason: `value contains a cycle${where()}` });
        if (depth >= MAX_VALUE_DEPTH) throw new Stop({ ok: false, problem: 'unstorable', reason: `value nested deeper than ${MAX_VALUE_DEPTH} levels${where()}` });
        if (Array.isArray(v)) {
          if (Object.getPrototypeOf(v) !== Array.prototype) throw refuse(v);
          bytes += containerHeader(v.length);
          allocations++;
          ancestors.push(v);
          for (let i = 0; i < v.length; i++) {
            const x: unknown = v[i];
            path.push(i);
            if (x === undefined) throw refuse(x);
            walk(x, depth + 1);
            path.pop();
          }
          ancestors.pop();
          return;
        }
        const proto: unknown = Object.getPrototypeOf(v);
        if (proto !== Object.prototype && proto !== null) throw refuse(v);
        const keys = Object.keys(v);
        // the encoder writes every object with a 16-bit map header
        if (keys.length > 0xffff) throw new Stop({ ok: false, problem: 'unstorable', reason: `an object of ${keys.length} keys (at most 65535)${where()}` });
        bytes += 3;
        allocations++;
        ancestors.push(v);
        for (const k of keys) {
          const x = (v as Record<string, unknown>)[k];
          path.push(k);
          if (x === undefined) throw refuse(x);
          const len = utf8Length(k);
          bytes += strHeader(len) + len;
          walk(x, depth + 1);
          path.pop();
        }
        ancestors.pop();
        return;
      }
      default:
        throw refuse(v);
    }
  };
  try {
    walk(value, 0);
  } catch (e) {
    if (e instanceof Stop) return e.result;
    // a getter or a proxy trap threw: not data
    return { ok: false, problem: 'unstorable', reason: `unreadable${where()}: ${e instanceof Error ? e.message : String(e)}`.slice(0, 200) };
  }
  if (allocations > maxAllocations(bytes)) {
    return { ok: false, problem: 'unstorable', reason: `too dense: ${allocations} arrays, objects and binaries (binaries count 2) in ${bytes} bytes, at most 1 + bytes / 2` };
  }
  return { ok: true, bytes };
}

/** The reason a value is refused, in words (for errors and validators). */
export function valueError(c: Exclude<ValueCheck, { ok: true }>, maxBytes: number): string {
  switch (c.problem) {
    case 'undefined':
      return 'value is undefined';
    case 'unstorable':
      return `value cannot be stored: ${c.reason}`;
    case 'tooLarge':
      return `value is ${c.atLeast ? 'more than ' : ''}${c.atLeast ? maxBytes : c.bytes} bytes; the limit is ${maxBytes} bytes`;
  }
}
