/**
 * Tiny validators for messages received from peers. A validator returns null when the
 * value is acceptable and a short reason otherwise; it never throws. Protocols export
 * `validate<Proto>Message(v: unknown): string | null` built from these, and wire/ calls
 * them before anything reaches a state machine.
 */
import { measureValue } from './data-protocol/value';

export const MAX_ID_LENGTH = 128;

/**
 * Largest stored value (KV, segments) any message may carry: a frame's size (wire/codec.ts,
 * 256 KiB). Each node's own `maxValueBytes` is checked by the protocol on top.
 */
export const MAX_WIRE_VALUE_BYTES = 256 * 1024;

export type Check = (v: unknown) => string | null;

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

export const str = (max = 1 << 20): Check => (v) =>
  typeof v !== 'string' ? 'not a string' : v.length > max ? `string longer than ${max}` : null;

export const nodeId: Check = (v) =>
  typeof v !== 'string' || v.length === 0 || v.length > MAX_ID_LENGTH ? 'not a node id' : null;

export const int = (min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): Check => (v) =>
  typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max ? `not an integer in [${min}, ${max}]` : null;

export const num: Check = (v) => (typeof v !== 'number' || !Number.isFinite(v) ? 'not a finite number' : null);

export const bool: Check = (v) => (typeof v !== 'boolean' ? 'not a boolean' : null);

export const any: Check = () => null;

/**
 * A stored value (KV, segments): JSON-compatible data plus binary, at most
 * MAX_VALUE_DEPTH deep and not too dense (core/data-protocol/value.ts), at most
 * MAX_WIRE_VALUE_BYTES. `null` passes (a tombstone's value, a take's empty result).
 */
export const plainValue: Check = (v) => {
  const c = measureValue(v, MAX_WIRE_VALUE_BYTES);
  if (c.ok) return null;
  if (c.problem === 'undefined') return 'value missing';
  if (c.problem === 'unstorable') return c.reason;
  return `value larger than ${MAX_WIRE_VALUE_BYTES} bytes`;
};

export const oneOf = (...values: readonly unknown[]): Check => (v) =>
  values.includes(v) ? null : `not one of ${values.join('|')}`;

export const optional = (c: Check): Check => (v) => (v === undefined || v === null ? null : c(v));

export const arrayOf = (c: Check, maxLen = 10_000): Check => (v) => {
  if (!Array.isArray(v)) return 'not an array';
  if (v.length > maxLen) return `array longer than ${maxLen}`;
  for (let i = 0; i < v.length; i++) {
    const e = c(v[i]);
    if (e) return `[${i}]: ${e}`;
  }
  return null;
};

export const tuple = (...cs: Check[]): Check => (v) => {
  if (!Array.isArray(v) || v.length !== cs.length) return `not a ${cs.length}-tuple`;
  for (let i = 0; i < cs.length; i++) {
    const e = cs[i]!(v[i]);
    if (e) return `[${i}]: ${e}`;
  }
  return null;
};

/** An object with (at least) these fields. Extra fields are ignored by the protocols. */
export const shape = (fields: Record<string, Check>): Check => (v) => {
  if (!isObject(v)) return 'not an object';
  for (const k in fields) {
    const e = fields[k]!(v[k]);
    if (e) return `${k}: ${e}`;
  }
  return null;
};

/**
 * Validator for a discriminated union keyed by `type`: unknown types are rejected.
 */
export const union = (variants: Record<string, Record<string, Check>>): Check => {
  const checks: Record<string, Check> = {};
  for (const t in variants) checks[t] = shape(variants[t]!);
  return (v) => {
    if (!isObject(v) || typeof v.type !== 'string') return 'missing type';
    const c = checks[v.type];
    if (!c) return `unknown type ${JSON.stringify(v.type).slice(0, 40)}`;
    const e = c(v);
    return e ? `${v.type}: ${e}` : null;
  };
};
