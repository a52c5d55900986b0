import { afterEach, describe, expect, it, vi } from 'vitest';
import type { KvWatchEvent } from '../runtime/api';
import { createMockNode, type MockNode } from './mock-node';

let node: MockNode | undefined;
afterEach(() => node?.dispose());

describe('createMockNode', () => {
  it('has a connected fake cluster', () => {
    node = createMockNode({ chatter: false, churn: false });
    expect(node.members().length).toBe(6);
    expect(node.peers().length).toBeGreaterThan(0);
    expect(node.info().eager.every((p) => node!.peers().includes(p))).toBe(true);
  });
  it('is alone with no peers', () => {
    node = createMockNode({ peers: 0 });
    expect(node.peers()).toEqual([]);
    expect(node.members()).toEqual([node.id]);
  });
  it('stores keys and rejects like the real node', async () => {
    node = createMockNode({ chatter: false, churn: false, keys: 0, latencyMs: [0, 1] });
    await node.kv.put('a/1', { x: 1 });
    expect(await node.kv.get('a/1')).toEqual({ x: 1 });
    expect(await node.kv.keys('a/')).toEqual(['a/1']);
    expect((await node.kv.inspect('a/1'))?.replicas.length).toBe(4);
    // the real node's errors (the mock runs CoreNodes): an invalid key, and a put whose replicas never answer
    await expect(node.kv.put('', 1)).rejects.toThrow(/key must be a non-empty string/);
    await expect(node.kv.put('unreachable/k', 1)).rejects.toThrow(/required replicas acknowledged/);
    await node.kv.delete('a/1');
    expect(await node.kv.get('a/1')).toBeUndefined();
  });
  it('kv.getMany reads many keys in a few batched messages, one result per key in the order asked', async () => {
    node = createMockNode({ chatter: false, churn: false, keys: 0, latencyMs: [0, 1] });
    const n = node;
    const keys = Array.from({ length: 300 }, (_, i) => `m/${i}`);
    await Promise.all(keys.map((k, i) => n.kv.put(k, { i })));
    const sent = () => Object.entries(n.stats()).filter(([k]) => k.startsWith('out.')).reduce((a, [, v]) => a + v, 0);
    const before = sent();
    const asked = ['m/7', 'absent', '', ...keys, 'm/7'];
    const got = await n.kv.getMany(asked);
    expect(got.map((r) => r.key)).toEqual(asked);
    expect(got[0]).toEqual({ key: 'm/7', value: { i: 7 } });
    expect(got[1]).toEqual({ key: 'absent', value: undefined });
    expect(got[2]!.error).toMatch(/key must be a non-empty string/);
    expect(got.slice(3, -1).map((r) => r.value)).toEqual(keys.map((_, i) => ({ i })));
    expect(got.at(-1)).toEqual(got[0]);
    // 300 keys, each from 3+ replicas: one kv.get each would be ~900 messages
    const messages = sent() - before;
    expect(messages).toBeGreaterThan(0);
    expect(messages).toBeLessThanOrEqual(40);
    await expect(n.kv.getMany('m/1' as unknown as string[])).rejects.toThrow(/array of strings/);
    await expect(n.kv.getMany(Array.from({ length: 10_001 }, (_, i) => `k${i}`))).rejects.toThrow(/at most 10000 distinct keys/);
  });
  it('checks keys and values with the core limits', async () => {
    node = createMockNode({ chatter: false, churn: false, keys: 0, latencyMs: [0, 1] });
    await expect(node.kv.put('k'.repeat(257), 1)).rejects.toThrow(/at most 256 characters/);
    await node.kv.put('k'.repeat(256), 1);
    await expect(node.kv.put('big', 'x'.repeat(70_000))).rejects.toThrow(/65536/);
  });
  it('lets a waiting take receive a later put, once', async () => {
    node = createMockNode({ chatter: false, churn: false, latencyMs: [0, 1] });
    const taken = node.segments.take('q');
    const id = await node.segments.put('q', 'v');
    await expect(taken).resolves.toEqual({ id, value: 'v' });
    await expect(node.segments.peek('q', 0, { timeoutMs: 20 })).rejects.toThrow(/timeout/);
  });
  it('kv.watch follows writes made by other members, in order, until unsubscribed', async () => {
    node = createMockNode({ chatter: false, churn: false, keys: 0, latencyMs: [0, 1] });
    const n = node;
    const seen: KvWatchEvent[] = [];
    const stop = n.kv.watch('w/', (e) => seen.push(e));
    await stop.ready;
    const who = n.writeElsewhere('w/a', 1);
    expect(who).not.toBe(n.id);
    n.writeElsewhere('other/x', 2);
    await vi.waitFor(() => expect(seen.map((e) => e.type)).toEqual(['put']), { timeout: 5000 });
    expect(seen[0]).toMatchObject({ type: 'put', key: 'w/a', value: 1, version: { node: who } });
    await n.kv.delete('w/a');
    await vi.waitFor(() => expect(seen.map((e) => e.type)).toEqual(['put', 'delete']), { timeout: 5000 });
    stop();
    await n.kv.put('w/b', 3);
    expect(seen.length).toBe(2);
    expect(() => n.kv.watch('p', () => {}) && Array.from({ length: 16 }, (_, i) => n.kv.watch(`q${i}`, () => {}))).toThrow(/at most 16/);
  });
  it('rejects /tell to an unknown nickname', async () => {
    node = createMockNode({ chatter: false, churn: false, latencyMs: [0, 1] });
    await expect(node.chat.tell('nobody', 'hi')).rejects.toThrow(/no member/);
  });
});
