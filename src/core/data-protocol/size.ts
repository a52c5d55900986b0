/**
 * Default `sizeOf` when the runtime passes none: an upper bound on the msgpack size
 * without importing msgpack into core. Throws for what msgpack cannot carry faithfully
 * (functions, symbols, cycles) so the API rejects such values with a clear error.
 */
export function approxEncodedSize(value: unknown): number {
  const seen = new Set<object>();
  const size = (v: unknown, depth: number): number => {
    if (depth > 64) throw new Error('value nested deeper than 64 levels');
    switch (typeof v) {
      case 'string':
        return 5 + v.length * 3; // UTF-8 worst case per UTF-16 unit
      case 'number':
        return 9;
      case 'boolean':
        return 1;
      case 'bigint':
        return 9;
      case 'undefined':
        return 1;
      case 'object': {
        if (v === null) return 1;
        if (ArrayBuffer.isView(v)) return 5 + v.byteLength;
        if (v instanceof ArrayBuffer) return 5 + v.byteLength;
        if (v instanceof Date) return 15;
        if (seen.has(v)) throw new Error('value contains a cycle');
        seen.add(v);
        let total = 5;
        if (Array.isArray(v)) for (const x of v) total += size(x, depth + 1);
        else if (v instanceof Map) for (const [k, x] of v) total += size(k, depth + 1) + size(x, depth + 1);
        else for (const k of Object.keys(v)) total += size(k, depth + 1) + size((v as Record<string, unknown>)[k], depth + 1);
        seen.delete(v);
        return total;
      }
      default:
        throw new Error(`a ${typeof v} cannot be stored`);
    }
  };
  return size(value, 0);
}
