import { describe, expect, it } from 'vitest';
import type { ApiCall, CoreQueries } from '../core/node';
import { coreApi } from './core-api';

/** coreApi over a fake core: `kv.get` answers after `answer` decides (value, or a thrown error), and in-flight reads are counted. */
function api(answer: (key: string) => unknown) {
  let inFlight = 0;
  let most = 0;
  const call = async <T>(c: ApiCall): Promise<T> => {
    if (c.type !== 'kv.get') throw new Error(`unexpected ${c.type}`);
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise((r) => setTimeout(r, 1));
    inFlight--;
    return answer(c.key) as T;
  };
  const a = coreApi({ query: {} as CoreQueries, call, roomsChanged: async () => {}, nickChanged: async () => {}, error: () => {}, on: () => () => {} });
  return { kv: a.kv, most: () => most };
}

describe('kv.getMany', () => {
  it('answers every key in the order asked (duplicates too), with per-key errors', async () => {
    const { kv } = api((k) => {
      if (k === 'bad') throw new Error('get bad: only 1 of 2 required replicas answered');
      return k === 'absent' ? undefined : `v:${k}`;
    });
    const keys = [...Array.from({ length: 1000 }, (_, i) => `k${i}`), 'absent', 'bad', 'k3'];
    const out = await kv.getMany(keys);
    expect(out.map((r) => r.key)).toEqual(keys);
    expect(out[7]).toEqual({ key: 'k7', value: 'v:k7' });
    expect(out[1000]).toEqual({ key: 'absent', value: undefined });
    expect(out[1001]).toEqual({ key: 'bad', error: 'get bad: only 1 of 2 required replicas answered' });
    expect(out[1002]).toEqual({ key: 'k3', value: 'v:k3' });
  });

  it('keeps at most two windows of 200 keys in flight, so replicas never hold thousands of one call at once', async () => {
    const t = api((k) => k);
    await t.kv.getMany(Array.from({ length: 5000 }, (_, i) => `k${i}`));
    expect(t.most()).toBe(400);
  });

  it('refuses a call that is not an array of strings, or too long, before reading anything', async () => {
    const t = api((k) => k);
    await expect(t.kv.getMany(['a', 3 as unknown as string])).rejects.toThrow(/array of strings/);
    await expect(t.kv.getMany(Array.from({ length: 10_001 }, (_, i) => `k${i}`))).rejects.toThrow(/at most 10000 distinct keys/);
    expect(t.most()).toBe(0);
  });
});
