import type { Entry } from '../core/node';

/** A persisted KV entry read back from IndexedDB (possibly written by an older build). */
export function validateEntry(e: unknown): e is Entry {
  if (typeof e !== 'object' || e === null) return false;
  const x = e as Partial<Entry>;
  return (
    typeof x.key === 'string' &&
    x.key.length > 0 &&
    typeof x.deleted === 'boolean' &&
    typeof x.version === 'object' &&
    x.version !== null &&
    typeof x.version.ts === 'number' &&
    typeof x.version.node === 'string'
  );
}
