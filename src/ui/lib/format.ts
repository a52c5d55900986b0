/** Small pure formatting helpers shared by the panels. */
import type { NodeId } from '../../runtime/api';
import { hlcWall, HLC_LOGICAL } from '../../core/clock/hlc';
import { MAX_VALUE_DEPTH } from '../../core/data-protocol';

export { HLC_LOGICAL };

/** First 6 characters of a node id: enough to tell tabs apart in a small cluster. */
export function shortId(id: NodeId): string {
  return id.slice(0, 6);
}

/** An HLC timestamp (core/clock/hlc: wall ms * 1024 + counter) as the author's wall-clock Date. */
export function hlcToDate(ts: number): Date {
  return new Date(hlcWall(ts));
}

// One formatter each, made on first use: Date#toLocale*String with options builds a new
// Intl.DateTimeFormat per call (about 0.3 ms here), once per chat row rendered.
let clockFormat: Intl.DateTimeFormat | undefined;
let dateTimeFormat: Intl.DateTimeFormat | undefined;

export function formatClock(d: Date): string {
  clockFormat ??= new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  return clockFormat.format(d);
}

/** Date and time, numeric, 24 h (what `toLocaleString(undefined, { hour12: false })` shows). */
export function formatDateTime(d: Date): string {
  dateTimeFormat ??= new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', hour12: false });
  return dateTimeFormat.format(d);
}

/** Compact number: 0, 12, 3.4k, 1.2M. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a >= 1e6) return `${(n / 1e6).toFixed(a >= 1e7 ? 0 : 1)}M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(a >= 1e4 ? 0 : 1)}k`;
  if (a > 0 && a < 10 && !Number.isInteger(n)) return n.toFixed(1);
  return String(Math.round(n));
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '–';
  const units = ['B', 'KB', 'MB', 'GB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? Math.round(v) : v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

/** JSON.stringify that also describes what JSON cannot hold (binary, Map, bigint, undefined). */
export function describeValue(value: unknown, indent?: number): string {
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(
      value,
      (_k, v: unknown) => {
        if (v instanceof Uint8Array) return `<binary ${v.byteLength} bytes>`;
        if (v instanceof ArrayBuffer) return `<binary ${v.byteLength} bytes>`;
        if (v instanceof Map) return Object.fromEntries(v);
        if (typeof v === 'bigint') return `${v}n`;
        return v;
      },
      indent,
    );
  } catch (e) {
    return `<unprintable: ${errorMessage(e)}>`;
  }
}

export function previewValue(value: unknown, max = 80): string {
  const s = describeValue(value);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/**
 * Deepest value the JSON editor takes: deeper values cannot be stored anyway (the core
 * refuses values nested deeper than MAX_VALUE_DEPTH).
 */
export const EDITABLE_MAX_DEPTH = MAX_VALUE_DEPTH;
/** Most arrays, objects and scalars the JSON editor walks: a store value is at most 64 KiB by default. */
export const EDITABLE_MAX_NODES = 100_000;

/**
 * Why the JSON editor cannot edit `value` (null: it survives a JSON round trip unchanged
 * and is within EDITABLE_MAX_DEPTH and EDITABLE_MAX_NODES). Iterative, and stops at the
 * first problem or bound, so a value of any depth or size (a store can hold what an older
 * or hostile node wrote) costs at most EDITABLE_MAX_NODES steps and no stack.
 */
export function jsonEditProblem(value: unknown): string | null {
  const stack: [unknown, number][] = [[value, 0]];
  let nodes = 0;
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (++nodes > EDITABLE_MAX_NODES) return `larger than ${EDITABLE_MAX_NODES.toLocaleString('en')} elements`;
    if (v === null) continue;
    switch (typeof v) {
      case 'string':
      case 'boolean':
        continue;
      case 'number':
        if (Number.isFinite(v)) continue;
        return 'not plain JSON';
      case 'object': {
        const isArray = Array.isArray(v);
        if (!isArray && Object.getPrototypeOf(v) !== Object.prototype) return 'not plain JSON';
        // as in core/data-protocol/value.ts: containers at levels 0 to MAX_VALUE_DEPTH - 1
        if (depth >= EDITABLE_MAX_DEPTH) return `nested deeper than ${EDITABLE_MAX_DEPTH} levels`;
        const children = isArray ? (v as unknown[]) : Object.values(v as Record<string, unknown>);
        if (nodes + stack.length + children.length > EDITABLE_MAX_NODES) return `larger than ${EDITABLE_MAX_NODES.toLocaleString('en')} elements`;
        for (const c of children) stack.push([c, depth + 1]);
        continue;
      }
      default:
        return 'not plain JSON';
    }
  }
  return null;
}

/** True when the value survives a JSON round trip unchanged, so the JSON editor can edit it (within its bounds). */
export function isJsonEditable(value: unknown): boolean {
  return jsonEditProblem(value) === null;
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  if (typeof e === 'string') return e;
  try {
    return JSON.stringify(e);
  } catch {
    return String(e);
  }
}
