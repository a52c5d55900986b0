/** Subscribe to node events and poll cheap getters; returns one dispose function. */
import type { NodeEvent, P2PApi } from '../../runtime/api';

export const POLL_MS = 1000;

export function subscribe(
  node: P2PApi,
  onEvent: ((e: NodeEvent) => void) | null,
  onPoll: (() => void) | null,
  pollMs = POLL_MS,
): () => void {
  const off = onEvent ? node.on(onEvent) : () => {};
  const timer = onPoll ? setInterval(onPoll, pollMs) : undefined;
  return () => {
    off();
    if (timer !== undefined) clearInterval(timer);
  };
}

/** Cheap structural equality for the small arrays/objects the node hands out. */
export function same(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}
