/**
 * Performance marks for a page's start-up timeline (read by the bench), each the first
 * time only. A no-op where `performance.mark` is missing (tests in Node).
 */
const marked = new Set<string>();

export function markOnce(name: string): void {
  if (marked.has(name) || typeof performance === 'undefined' || typeof performance.mark !== 'function') return;
  marked.add(name);
  performance.mark(name);
}
