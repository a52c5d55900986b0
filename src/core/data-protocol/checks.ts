/**
 * The client-side checks of keys and values the data protocols share (KV and segments
 * accept the same keys and values). Each protocol words its own error messages from
 * the problem found here.
 */
import { walkValue, type ValueCheck } from './value';

/**
 * What is wrong with `key` as a key (a non-empty string of at most `maxLength`
 * characters), or null when it is fine. `got` describes what was given instead
 * ("a number", "an empty string", "a string of 300 characters").
 */
export function keyProblem(key: unknown, maxLength: number): { got: string; tooLong: boolean } | null {
  if (typeof key === 'string' && key.length > 0 && key.length <= maxLength) return null;
  if (typeof key !== 'string') return { got: `a ${key === null ? 'null' : typeof key}`, tooLong: false };
  if (key.length === 0) return { got: 'an empty string', tooLong: false };
  return { got: `a string of ${key.length} characters`, tooLong: true };
}

/**
 * A value given to the API: plain data (value.ts: JSON-compatible plus binary, at most
 * MAX_VALUE_DEPTH deep), measured with `sizeOf` (the encoded size) against `maxBytes`.
 * Never throws.
 */
export function checkValue(value: unknown, sizeOf: (value: unknown) => number, maxBytes: number): ValueCheck {
  const shape = walkValue(value, maxBytes);
  if (!shape.ok) return shape;
  let bytes: number;
  try {
    bytes = sizeOf(value);
  } catch (e) {
    return { ok: false, problem: 'unstorable', reason: errorText(e) };
  }
  // NaN (a broken sizeOf) is rejected too
  if (!(bytes <= maxBytes)) return { ok: false, problem: 'tooLarge', bytes };
  return { ok: true, bytes };
}

/** The message of a caught error, whatever was thrown. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
