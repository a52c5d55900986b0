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
});
