/** Small pure formatting helpers shared by the panels. */
import type { NodeId } from '../../runtime/api';
import { hlcWall, HLC_LOGICAL } from '../../core/clock/hlc';

export { HLC_LOGICAL };

/** First 6 characters of a node id: enough to tell tabs apart in a small cluster. */
export function shortId(id: NodeId): string {
  return id.slice(0, 6);
}

/** An HLC timestamp (core/clock/hlc: wall ms * 1024 + counter) as the author's wall-clock Date. */
export function hlcToDate(ts: number): Date {
  return new Date(hlcWall(ts));
}

export function formatClock(d: Date): string {
  return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

export function formatDateTime(d: Date): string {
  return d.toLocaleString(undefined, { hour12: false });
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

/** True when the value survives a JSON round trip unchanged, so the JSON editor can edit it. */
export function isJsonEditable(value: unknown): boolean {
  if (value === null) return true;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object':
      if (Array.isArray(value)) return value.every(isJsonEditable);
      if (Object.getPrototypeOf(value) !== Object.prototype) return false;
      return Object.values(value as Record<string, unknown>).every(isJsonEditable);
    default:
      return false;
  }
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
