/**
 * Subscribe to node events and poll cheap getters; returns one dispose function.
 *
 * Polls run only while the page is visible (`document.visibilityState`): a tab in the
 * background renders nothing, so re-reading the node for it every second is CPU spent for
 * no one (an idle tab's main thread is mostly this UI's polling: docs/benchmarks.md, "What
 * an idle tab's main thread does"). When the page becomes visible again the poll runs at once, so
 * the views are current the moment they are seen. Events are always delivered.
 */
import type { NodeEvent, P2PApi } from '../../runtime/api';

export const POLL_MS = 1000;

/** Is the page on screen? (true where there is no document: tests, workers) */
export function pageVisible(): boolean {
  return typeof document === 'undefined' || document.visibilityState !== 'hidden';
}

export function subscribe(
  node: P2PApi,
  onEvent: ((e: NodeEvent) => void) | null,
  onPoll: (() => void) | null,
  pollMs = POLL_MS,
): () => void {
  const off = onEvent ? node.on(onEvent) : () => {};
  if (!onPoll) return off;
  // every tick, and the moment the page is shown again
  const shown = () => {
    if (pageVisible()) onPoll();
  };
  const timer = setInterval(shown, pollMs);
  if (typeof document !== 'undefined') document.addEventListener('visibilitychange', shown);
  return () => {
    off();
    clearInterval(timer);
    if (typeof document !== 'undefined') document.removeEventListener('visibilitychange', shown);
  };
}

/** Cheap structural equality for the small arrays/objects the node hands out. */
export function same(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}
