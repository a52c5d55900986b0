import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ChatMessage, NodeEvent, P2PApi } from '../../runtime/api';
import { ChatState, REFRESH_MS } from './chat.svelte';

function fakeNode(): { node: P2PApi; emit: (e: NodeEvent) => void; history: ChatMessage[]; calls: { history: number } } {
  const listeners = new Set<(e: NodeEvent) => void>();
  const history: ChatMessage[] = [];
  const calls = { history: 0 };
  const node = {
    id: 'me',
    on: (l: (e: NodeEvent) => void) => (listeners.add(l), () => listeners.delete(l)),
    chat: {
      history: () => (calls.history++, history.slice()),
      joined: () => ['lobby'],
      rooms: () => ['lobby'],
      members: () => ['me', 'other'],
    },
  } as unknown as P2PApi;
  return { node, emit: (e) => listeners.forEach((l) => l(e)), history, calls };
}

const msg = (i: number): ChatMessage => ({ id: `other:${i}`, room: 'lobby', from: 'other', nick: 'o', text: `m${i}`, ts: (1_700_000_000_000 + i) * 1024 });

describe('ChatState under a burst of messages', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('shows every message, reading the history once per burst rather than once per message', async () => {
    const { node, emit, history, calls } = fakeNode();
    const chat = new ChatState(node);
    const off = chat.connect();
    const before = calls.history;
    for (let i = 0; i < 300; i++) {
      history.push(msg(i));
      emit({ type: 'chat', message: history[i]! });
    }
    await vi.advanceTimersByTimeAsync(REFRESH_MS);
    expect(chat.lines.map((l) => (l.kind === 'message' ? l.message.text : ''))).toEqual(history.map((m) => m.text));
    expect(calls.history - before).toBeLessThanOrEqual(2);
    off();
  });

  it('keeps the same line objects for messages already shown (rows are not re-rendered)', async () => {
    const { node, emit, history } = fakeNode();
    const chat = new ChatState(node);
    const off = chat.connect();
    history.push(msg(1));
    emit({ type: 'chat', message: history[0]! });
    await vi.advanceTimersByTimeAsync(REFRESH_MS);
    const first = chat.lines[0];
    history.push(msg(2));
    emit({ type: 'chat', message: history[1]! });
    await vi.advanceTimersByTimeAsync(REFRESH_MS);
    expect(chat.lines).toHaveLength(2);
    expect(chat.lines[0]).toBe(first);
    off();
  });

  it('re-renders a busy room at most once per REFRESH_MS, the first message after a quiet spell at once', async () => {
    const { node, emit, history, calls } = fakeNode();
    const chat = new ChatState(node);
    const off = chat.connect();
    await vi.advanceTimersByTimeAsync(2 * REFRESH_MS);
    const before = calls.history;
    // 20 messages a second for 2 s
    for (let i = 0; i < 40; i++) {
      history.push(msg(i));
      emit({ type: 'chat', message: history[i]! });
      await vi.advanceTimersByTimeAsync(i === 0 ? 0 : 50);
      if (i === 0) expect(chat.lines, 'the first message is shown at once').toHaveLength(1);
    }
    await vi.advanceTimersByTimeAsync(REFRESH_MS);
    expect(chat.lines).toHaveLength(40);
    // reads for renders (2 s / REFRESH_MS + the first) plus the 1 s poll's
    expect(calls.history - before).toBeLessThanOrEqual(Math.ceil(2000 / REFRESH_MS) + 1 + 3);
    off();
  });

  it('renders nothing while the page is hidden, and catches up when it is shown', async () => {
    const { node, emit, history } = fakeNode();
    let state: 'visible' | 'hidden' = 'hidden';
    const listeners = new Set<() => void>();
    vi.stubGlobal('document', {
      get visibilityState() {
        return state;
      },
      addEventListener: (_: string, l: () => void) => listeners.add(l),
      removeEventListener: (_: string, l: () => void) => listeners.delete(l),
    });
    try {
      const chat = new ChatState(node);
      const off = chat.connect();
      history.push(msg(1));
      emit({ type: 'chat', message: history[0]! });
      await vi.advanceTimersByTimeAsync(5 * REFRESH_MS);
      expect(chat.lines).toHaveLength(0);
      state = 'visible';
      listeners.forEach((l) => l());
      expect(chat.lines).toHaveLength(1);
      off();
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
