import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { KvWatchEvent, NodeEvent, P2PApi } from '../../runtime/api';
import { CHANGE_BATCH_MAX_MS, KvState, mergeSorted, PAGE_SIZE, storageProblem } from './kv.svelte';

/** The parts of P2PApi the KV panel uses, counting the expensive calls. */
function fakeNode(): {
  node: P2PApi;
  emit: (e: NodeEvent) => void;
  /** A write elsewhere in the cluster, seen only through kv.watch (`value` undefined: a delete). */
  remote: (key: string, value: unknown, ts: number) => void;
  resync: () => void;
  watched: () => string[];
  calls: { localKeys: number; inspect: string[] };
  data: Map<string, unknown>;
} {
  const listeners = new Set<(e: NodeEvent) => void>();
  const watches = new Set<{ prefix: string; l: (e: KvWatchEvent) => void }>();
  const data = new Map<string, unknown>();
  const calls = { localKeys: 0, inspect: [] as string[] };
  const node = {
    id: 'me',
    ready: Promise.resolve(),
    on: (l: (e: NodeEvent) => void) => (listeners.add(l), () => listeners.delete(l)),
    stats: () => ({}),
    kv: {
      keys: async (prefix = '') => [...data.keys()].filter((k) => k.startsWith(prefix)),
      localKeys: () => (calls.localKeys++, [...data.keys()].sort()),
      replicas: () => ['me', 'other'],
      inspect: async (key: string) => {
        calls.inspect.push(key);
        return data.has(key) ? { value: data.get(key), version: { ts: 1, node: 'me' }, replicas: ['me'] } : undefined;
      },
      put: async (key: string, value: unknown) => void data.set(key, value),
      delete: async (key: string) => void data.delete(key),
      watch: (prefix: string, l: (e: KvWatchEvent) => void) => {
        const w = { prefix, l };
        watches.add(w);
        return Object.assign(() => void watches.delete(w), { ready: Promise.resolve() });
      },
    },
  } as unknown as P2PApi;
  const remote = (key: string, value: unknown, ts: number) => {
    if (value === undefined) data.delete(key);
    else data.set(key, value);
    const version = { ts, node: 'elsewhere' };
    for (const w of [...watches]) {
      if (!key.startsWith(w.prefix)) continue;
      w.l(value === undefined ? { type: 'delete', key, version } : { type: 'put', key, value, version });
    }
  };
  const resync = () => [...watches].forEach((w) => w.l({ type: 'resync', reason: 'overflow' }));
  return { node, emit: (e) => listeners.forEach((l) => l(e)), remote, resync, watched: () => [...watches].map((w) => w.prefix), calls, data };
}

describe('mergeSorted', () => {
  it('merges two sorted arrays', () => {
    expect(mergeSorted(['a', 'c', 'e'], ['b', 'd', 'f', 'g'])).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    expect(mergeSorted([], ['x'])).toEqual(['x']);
    expect(mergeSorted(['x'], [])).toEqual(['x']);
  });
});

describe('KvState under a burst of changes', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('shows every new key, sorted, and does the expensive work once per batch, not once per key', async () => {
    const { node, emit, calls, data } = fakeNode();
    const kv = new KvState(node);
    const off = kv.connect();
    await vi.advanceTimersByTimeAsync(10);
    const before = { localKeys: calls.localKeys, inspect: calls.inspect.length };
    // 5,000 keys written by another tab, arriving as change events within one batch window
    for (let i = 0; i < 5000; i++) {
      const key = `k/${String(i).padStart(5, '0')}`;
      data.set(key, i);
      emit({ type: 'kv', key });
    }
    await vi.advanceTimersByTimeAsync(CHANGE_BATCH_MAX_MS);
    expect(kv.keys).toHaveLength(5000);
    expect(kv.keys).toEqual([...kv.keys].sort());
    expect(calls.localKeys - before.localKeys).toBeLessThanOrEqual(2);
    // previews are read for the visible page only
    expect(calls.inspect.length - before.inspect).toBeLessThanOrEqual(PAGE_SIZE);
    expect(kv.pageKeys[0]).toBe('k/00000');
    off();
  });

  it('a changed key that is selected is read again', async () => {
    const { node, emit, calls, data } = fakeNode();
    data.set('a', 1);
    const kv = new KvState(node);
    const off = kv.connect();
    await vi.advanceTimersByTimeAsync(10);
    kv.select('a');
    await vi.advanceTimersByTimeAsync(10);
    expect(kv.selectedEntry).toMatchObject({ status: 'ok', info: { value: 1 } });
    data.set('a', 2);
    emit({ type: 'kv', key: 'a' });
    await vi.advanceTimersByTimeAsync(CHANGE_BATCH_MAX_MS);
    expect(kv.selectedEntry).toMatchObject({ status: 'ok', info: { value: 2 } });
    expect(calls.inspect.filter((k) => k === 'a').length).toBeGreaterThanOrEqual(2);
    off();
  });

  it('follows the cluster through kv.watch: keys this tab does not hold appear, change in the open editor and go, without any re-read', async () => {
    const { node, remote, resync, watched, calls, data } = fakeNode();
    data.set('users/0', 0);
    const kv = new KvState(node);
    const off = kv.connect();
    await vi.advanceTimersByTimeAsync(10);
    expect(watched()).toEqual(['']);
    kv.select('users/0');
    await vi.advanceTimersByTimeAsync(10);
    const reads = calls.inspect.length;
    for (let i = 1; i < 40; i++) remote(`users/${i}`, i, 100 + i);
    remote('users/0', 'edited', 200);
    await vi.advanceTimersByTimeAsync(CHANGE_BATCH_MAX_MS);
    expect(kv.keys).toHaveLength(40);
    expect(kv.isLocal('users/5')).toBe(false);
    expect(kv.selectedEntry).toMatchObject({ status: 'ok', info: { value: 'edited', version: { ts: 200, node: 'elsewhere' } } });
    // an older version arriving late (this tab's replica catching up) does not undo the edit
    remote('users/0', 'old', 150);
    remote('users/7', undefined, 300);
    await vi.advanceTimersByTimeAsync(CHANGE_BATCH_MAX_MS);
    expect(kv.selectedEntry).toMatchObject({ status: 'ok', info: { value: 'edited' } });
    expect(kv.keys).not.toContain('users/7');
    expect(kv.keys).toHaveLength(39);
    expect(calls.inspect.length).toBe(reads);
    // nothing polls: time passing reads nothing
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls.inspect.length).toBe(reads);
    // a new prefix is watched instead of the old one; a resync lists again
    kv.setPrefix('users/1');
    await vi.advanceTimersByTimeAsync(10);
    expect(watched()).toEqual(['users/1']);
    data.set('users/100', 'quiet');
    resync();
    await vi.advanceTimersByTimeAsync(10);
    expect(kv.keys).toContain('users/100');
    off();
    expect(watched()).toEqual([]);
  });

  it('a listing that was under way when a key was deleted elsewhere does not bring the key back', async () => {
    const { node, remote, data } = fakeNode();
    for (let i = 0; i < 5; i++) data.set(`users/${i}`, i);
    const kv = new KvState(node);
    const off = kv.connect();
    await vi.advanceTimersByTimeAsync(10);
    expect(kv.keys).toHaveLength(5);
    // a slow cluster-wide listing: its replies were gathered before the delete, it returns after
    const before = [...data.keys()];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    node.kv.keys = async () => (await gate, before);
    const listing = kv.refresh();
    remote('users/3', undefined, 500);
    remote('users/9', 'new', 501);
    await vi.advanceTimersByTimeAsync(CHANGE_BATCH_MAX_MS);
    expect(kv.keys).not.toContain('users/3');
    release();
    await listing;
    await vi.advanceTimersByTimeAsync(CHANGE_BATCH_MAX_MS);
    expect(kv.keys).not.toContain('users/3');
    expect(kv.keys).toContain('users/9');
    expect(kv.keys).toHaveLength(5);
    // and an older put of the deleted key arriving after the listing does not bring it back either
    remote('users/3', 'stale', 400);
    await vi.advanceTimersByTimeAsync(CHANGE_BATCH_MAX_MS);
    expect(kv.keys).not.toContain('users/3');
    off();
  });

  it('a quorum read answered before an edit that the watch brought meanwhile does not put the old value back in the open editor', async () => {
    const { node, remote, data } = fakeNode();
    data.set('ui/greeting', 'hi');
    const kv = new KvState(node);
    const off = kv.connect();
    await vi.advanceTimersByTimeAsync(10);
    // the read of the selected key is slow: its replicas answered with the old version
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    node.kv.inspect = async (key: string) => (await gate, { key, value: 'hi', version: { ts: 100, node: 'me' }, replicas: ['me'] });
    kv.select('ui/greeting');
    remote('ui/greeting', 'edited', 200);
    await vi.advanceTimersByTimeAsync(CHANGE_BATCH_MAX_MS);
    expect(kv.selectedEntry).toMatchObject({ status: 'ok', info: { value: 'edited' } });
    release();
    await vi.advanceTimersByTimeAsync(10);
    expect(kv.selectedEntry).toMatchObject({ status: 'ok', info: { value: 'edited', version: { ts: 200 } } });
    off();
  });

  it('events that carry the new local copy update the visible rows without any quorum read', async () => {
    const { node, emit, calls, data } = fakeNode();
    const kv = new KvState(node);
    const off = kv.connect();
    await vi.advanceTimersByTimeAsync(10);
    const before = calls.inspect.length;
    const change = (key: string, value: unknown, ts: number, deleted = false) => {
      if (deleted) data.delete(key);
      else data.set(key, value);
      emit({ type: 'kv', key, entry: { value: deleted ? null : value, version: { ts, node: 'w' }, deleted } });
    };
    for (let i = 0; i < 3000; i++) change(`k/${String(i).padStart(5, '0')}`, i, 10 + i);
    await vi.advanceTimersByTimeAsync(CHANGE_BATCH_MAX_MS);
    expect(kv.keys).toHaveLength(3000);
    expect(kv.entries.get('k/00007')).toEqual({ status: 'ok', info: { key: 'k/00007', value: 7, version: { ts: 17, node: 'w' }, replicas: ['me', 'other'] } });
    expect(kv.pageKeys.every((k) => kv.entries.get(k)?.status === 'ok')).toBe(true);
    expect(kv.isLocal('k/02999')).toBe(true);
    // an overwrite and a delete of visible keys
    change('k/00001', 'new', 9000);
    change('k/00002', null, 9001, true);
    await vi.advanceTimersByTimeAsync(CHANGE_BATCH_MAX_MS);
    expect(kv.entries.get('k/00001')).toMatchObject({ status: 'ok', info: { value: 'new', version: { ts: 9000 } } });
    expect(kv.keys).not.toContain('k/00002');
    expect(kv.keys).toHaveLength(2999);
    // only the key that moved onto the page when k/00002 left it is read
    expect(calls.inspect.slice(before)).toEqual([kv.pageKeys[PAGE_SIZE - 1]]);
    off();
  });
});

describe('storageProblem', () => {
  it('says nothing while the disk works, and what it means when it does not', () => {
    expect(storageProblem({ 'storage.failing': 0, 'storage.errors': 3 })).toBeNull();
    expect(storageProblem({})).toBeNull();
    const text = storageProblem({ 'storage.failing': 1, 'storage.errors': 2 });
    expect(text).toMatch(/cannot write to its disk/);
    expect(text).toMatch(/2 failed writes/);
    expect(text).toMatch(/not acknowledged/);
  });
});
