import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { NodeEvent, P2PApi } from '../../runtime/api';
import { POLL_MS, subscribe } from './poll';
import { StatsState } from './stats.svelte';

/** A stand-in for the page's `document`: its visibility and the visibilitychange event. */
class FakeDocument extends EventTarget {
  visibilityState: 'visible' | 'hidden' = 'visible';
  set(state: 'visible' | 'hidden'): void {
    this.visibilityState = state;
    this.dispatchEvent(new Event('visibilitychange'));
  }
}

function fakeNode(stats: () => Record<string, number> = () => ({})): { node: P2PApi; emit: (e: NodeEvent) => void } {
  const listeners = new Set<(e: NodeEvent) => void>();
  const node = { on: (l: (e: NodeEvent) => void) => (listeners.add(l), () => listeners.delete(l)), stats } as unknown as P2PApi;
  return { node, emit: (e) => listeners.forEach((l) => l(e)) };
}

describe('UI polling follows the page\'s visibility', () => {
  let doc: FakeDocument;
  beforeEach(() => {
    vi.useFakeTimers();
    doc = new FakeDocument();
    vi.stubGlobal('document', doc);
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.useRealTimers();
  });

  it('a hidden tab does not poll; shown again it polls at once; events arrive either way', () => {
    const { node, emit } = fakeNode();
    const polls: number[] = [];
    const events: string[] = [];
    const off = subscribe(node, (e) => events.push(e.type), () => polls.push(Date.now()));
    vi.advanceTimersByTime(3 * POLL_MS);
    expect(polls).toHaveLength(3);
    doc.set('hidden');
    vi.advanceTimersByTime(10 * POLL_MS);
    emit({ type: 'members' });
    expect(polls).toHaveLength(3);
    expect(events).toEqual(['members']);
    doc.set('visible');
    expect(polls).toHaveLength(4);
    vi.advanceTimersByTime(POLL_MS);
    expect(polls).toHaveLength(5);
    off();
    vi.advanceTimersByTime(5 * POLL_MS);
    doc.set('hidden');
    doc.set('visible');
    expect(polls).toHaveLength(5);
  });

  it('the traffic view is rebuilt only while shown, and shows the latest rates when it comes back', () => {
    let n = 0;
    const { node } = fakeNode(() => ({ 'msg.in.pt.gossip': (n += 10) }));
    const stats = new StatsState(node);
    const off = stats.connect();
    vi.advanceTimersByTime(2 * POLL_MS);
    const shown = stats.view;
    expect(shown.msgsIn.total).toBe(30);
    stats.setShown(false);
    vi.advanceTimersByTime(3 * POLL_MS);
    // samples were taken (the counter was read) but the view was left alone
    expect(n).toBe(60);
    expect(stats.view).toBe(shown);
    stats.setShown(true);
    expect(stats.view.msgsIn.total).toBe(60);
    expect(stats.view.msgsIn.rates).toHaveLength(5);
    off();
  });
});
