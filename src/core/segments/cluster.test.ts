/**
 * Data segments on a seeded in-process network (src/sim/segments.ts): concurrent producers and
 * consumers (workload.ts), owner crashes (members told after a detection delay), joins,
 * loss and duplication. Every test runs several seeds; the seed is in the test name and
 * in every failure message. No wall-clock timing: all time is virtual.
 *
 * SEG_SEEDS=50 for a longer run.
 */
import { describe, expect, it } from 'vitest';
import { Ring } from '../placement';
import type { NodeId } from '../types';
import type { SegReply } from './types';
import { SegNet, type SegNetOptions } from '../../sim/segments';
import type { SegItem } from './types';
import { expectDisksHoldCopies, expectReplicated, idOf, ok, Workload } from './workload';

const SEEDS = Array.from({ length: Number(process.env.SEG_SEEDS ?? 5) }, (_, i) => i + 1);

function makeNet(seed: number, nodes: number | NodeId[], extra: Partial<SegNetOptions> = {}): SegNet {
  return new SegNet({ seed, nodes, latency: [1, 25], ...extra });
}

describe('one API whatever the owner', () => {
  it.each(SEEDS)('seed %i: the same calls give the same results from the owner and from other nodes', (seed) => {
    const net = makeNet(seed, 5);
    const key = 'same';
    const owner = net.ownerOf(key);
    const other = net.liveIds().find((id) => !net.seg(owner).replicas(key).includes(id))!;
    const script = (node: NodeId, k: string) => [
      net.put(node, k, 'a'),
      net.put(node, k, 'b'),
      net.update(node, k, 'c'),
      net.peek(node, k),
      net.take(node, k, 2),
      net.take(node, k),
      net.peek(node, k, 0, 300),
    ];
    const strip = (rs: SegReply[], k: string) =>
      rs.map(({ req: _req, ...r }) => ('error' in r ? { ...r, error: r.error.replace(`'${k}'`, "'KEY'") } : r));
    const fromOwner = strip(script(owner, key), key);
    // a key with the same owner, driven from a node that is not even a replica
    let k2 = 'x0';
    for (let i = 1; net.ownerOf(k2) !== owner; i++) k2 = `x${i}`;
    const fromOther = strip(script(other, k2), k2);
    expect(fromOther).toEqual(fromOwner);
    expect(fromOwner.slice(0, 6)).toEqual([
      { type: 'reply', ok: true, value: 1 },
      { type: 'reply', ok: true, value: 2 },
      { type: 'reply', ok: true, value: 3 },
      { type: 'reply', ok: true, value: { id: 2, value: 'b' } },
      { type: 'reply', ok: true, value: { id: 3, value: 'c' } },
      { type: 'reply', ok: true, value: { id: 2, value: 'b' } },
    ]);
    expect(fromOwner[6]).toMatchObject({ ok: false, error: expect.stringMatching(/^timeout: peek on segment 'KEY'/) });
  });

  it.each(SEEDS)('seed %i: a waiting peek resolves when an item is put from another node', (seed) => {
    const net = makeNet(seed, 5);
    const key = 'wake';
    const owner = net.ownerOf(key);
    const [waiter, producer] = net.liveIds().filter((id) => id !== owner);
    const peek = net.request(waiter!, { type: 'peek', key, afterId: 0 });
    const take = net.request(producer!, { type: 'take', key, afterId: 0 });
    net.runFor(8000); // longer than the keepalive: the registrations are refreshed, nothing resolves
    expect(net.reply(waiter!, peek)).toBeUndefined();
    expect(net.reply(producer!, take)).toBeUndefined();
    const put = ok(seed, net.put(producer!, key, { hello: 'world' }), 'put');
    net.runFor(500);
    expect(ok(seed, net.reply(waiter!, peek), 'peek').value).toMatchObject({ id: put.value, value: { hello: 'world' } });
    expect(ok(seed, net.reply(producer!, take), 'take').value).toMatchObject({ id: put.value, value: { hello: 'world' } });
  });

  it.each(SEEDS)('seed %i: cancel and timeout of remote waiting calls give clear errors and lose no item', (seed) => {
    const net = makeNet(seed, 5);
    const key = 'cx';
    const owner = net.ownerOf(key);
    const [a, b, c] = net.liveIds().filter((id) => id !== owner);
    expect(net.take(a!, key, 0, 400)).toMatchObject({ ok: false, error: `timeout: take on segment '${key}' found no item after id 0 within 400 ms` });
    const t = net.request(b!, { type: 'take', key, afterId: 0 });
    net.runFor(300);
    // the item is put and the waiting take cancelled at the same moment: whoever wins, the item is delivered once
    const p = net.request(c!, { type: 'put', key, value: 'race' });
    net.runFor(seed * 7); // vary the race
    net.cancel(b!, t);
    const tr = net.reply(b!, t)!;
    expect(tr).toBeDefined();
    net.runFor(3000);
    ok(seed, net.reply(c!, p), 'put');
    if (tr.ok) {
      expect(tr).toMatchObject({ value: { value: 'race' } });
      expect(net.peek(a!, key, 0, 1000)).toMatchObject({ ok: false, error: expect.stringMatching(/^timeout/) });
    } else {
      expect(tr.error).toBe(`cancelled: take on segment '${key}' was aborted`);
      expect(ok(seed, net.take(a!, key, 0, 2000), 'take after the cancel').value).toMatchObject({ value: 'race' });
    }
    expect(net.peek(a!, key, 0, 500)).toMatchObject({ ok: false });
  });
});

describe('3 consumers on one queue of 1,000 items', () => {
  const run = (seed: number, crashOwner: boolean) => {
    const net = makeNet(seed, 5, { duplicate: crashOwner ? 0.01 : 0 });
    const key = 'jobs';
    const owner = net.ownerOf(key);
    const others = net.liveIds().filter((id) => id !== owner);
    const producer = others[3]!;
    const consumers = others.slice(0, 3);
    const w = new Workload(net, seed);
    // 1,000 puts in flight at once from one node
    w.putAll(producer, key, Array.from({ length: 1000 }, (_, i) => `job${i}`));
    expect(net.runUntilTrue(() => net.replies(producer).size === 1000, 60_000), `seed ${seed}: puts answered`).toBe(true);
    const ids = [...net.replies(producer).values()].map((r) => ok(seed, r, 'put').value as number);
    expect(new Set(ids).size, `seed ${seed}: distinct ids`).toBe(1000);
    for (const c of consumers) w.consume(c, key);
    if (crashOwner) {
      net.runUntilTrue(() => w.taken.size >= 300 + seed * 20, 120_000);
      net.crash(owner);
    }
    const done = net.runUntilTrue(() => w.taken.size === 1000, 300_000);
    w.stopConsuming();
    net.runFor(5000);
    expect(w.duplicates, `seed ${seed}: duplicates`).toEqual([]);
    expect(done, `seed ${seed}: all 1000 taken (got ${w.taken.size})`).toBe(true);
    const sets = consumers.map((c) => [...w.taken.values()].filter((o) => o.node === c).map((o) => ((o.reply as { value?: unknown }).value as SegItem).value as string));
    const union = new Set(sets.flat());
    expect(union.size, `seed ${seed}: union`).toBe(1000);
    expect(sets.reduce((n, s) => n + s.length, 0), `seed ${seed}: disjoint`).toBe(1000);
    for (const s of sets) expect(s.length, `seed ${seed}: every consumer got some`).toBeGreaterThan(0);
    // each consumer saw its items in increasing id order
    for (const c of consumers) {
      const got = [...w.ops.values()].filter((o) => o.node === c && o.reply?.ok).sort((a, b) => a.answered! - b.answered!);
      const gotIds = got.map((o) => idOf(o));
      expect(gotIds, `seed ${seed}: ${c} ids increasing`).toEqual([...gotIds].sort((x, y) => x - y));
    }
    w.check();
    expect(net.liveIds().every((id) => (net.seg(id).queues().find((q) => q.key === key)?.items.length ?? 0) === 0)).toBe(true);
    return net;
  };

  it.each(SEEDS)('seed %i: disjoint sets whose union is all 1,000', (seed) => {
    run(seed, false);
  });

  it.each(SEEDS)('seed %i: the owner crashes in the middle: nothing lost, nothing twice', (seed) => {
    const net = run(seed, true);
    expect(net.liveIds()).toHaveLength(4);
  });
});

describe('producers and consumers on several keys with failures', () => {
  it.each(SEEDS)('seed %i: owners crash one after the other, a node joins, 2 percent loss and duplication', (seed) => {
    const net = makeNet(seed, 6, { loss: 0.02, duplicate: 0.02, detection: [200, 1500] });
    const keys = ['k0', 'k1', 'k2', 'k3'];
    // victims: the owner of k0, then the owner k1 will have once the first one is gone
    const v1 = net.ownerOf('k0');
    const remaining = net.liveIds().filter((id) => id !== v1);
    const v2 = (() => {
      const pref = net.seg(v1).replicas('k1').filter((id) => id !== v1);
      return pref[0] ?? remaining[0]!;
    })();
    const clients = net.liveIds().filter((id) => id !== v1 && id !== v2);
    const w = new Workload(net, seed);
    for (const key of keys) {
      for (const c of clients.slice(0, 2)) w.produce(c, key, 40);
      for (const c of clients.slice(1)) w.consume(c, key);
    }
    net.runFor(1500 + seed * 97);
    net.crash(v1);
    net.runFor(2500);
    net.join('n6');
    net.runFor(1500 + seed * 53);
    net.crash(v2);
    const settled = net.runUntilTrue(() => w.allAckedTaken(), 300_000);
    net.runFor(3000);
    w.stopConsuming();
    net.runFor(20_000);
    w.check();
    const unanswered = w.puts().filter((o) => !o.reply);
    expect(unanswered, `seed ${seed}: puts without an answer`).toEqual([]);
    const missing = w.ackedPuts().filter((o) => !w.taken.has(o.value!)).map((o) => o.value);
    expect(missing, `seed ${seed}: acknowledged items never taken`).toEqual([]);
    expect(settled, `seed ${seed}: settled`).toBe(true);
    const failed = w.puts().filter((o) => o.reply && !o.reply.ok);
    expect(failed.map((o) => (o.reply as { error: string }).error), `seed ${seed}: failed puts`).toEqual([]);
    // re-replication: every key sits on its current preference list, copies identical and empty
    expect(net.converged()).toBe(true);
    for (const key of keys) {
      expectReplicated(net, seed, key);
      expect(net.seg(net.ownerOf(key)).queues().find((q) => q.key === key)?.items, `seed ${seed}: ${key} drained`).toEqual([]);
    }
    expectDisksHoldCopies(net, seed);
    // stale copies were released: only preference-list nodes hold a key
    for (const key of keys) {
      const pref = new Set(net.seg(net.ownerOf(key)).replicas(key));
      const holders = net.liveIds().filter((id) => net.seg(id).queues().some((q) => q.key === key));
      expect(holders.filter((h) => !pref.has(h)), `seed ${seed}: stale holders of ${key}`).toEqual([]);
    }
  });

  it.each(SEEDS)('seed %i: an acknowledged put is on w=2 copies when acknowledged; survives its owner at once', (seed) => {
    const net = makeNet(seed, 5);
    const key = 'durable';
    const owner = net.ownerOf(key);
    const client = net.liveIds().find((id) => id !== owner)!;
    const req = net.request(client, { type: 'put', key, value: 'keep me' });
    net.runUntilTrue(() => net.reply(client, req) !== undefined, 10_000);
    ok(seed, net.reply(client, req), 'put');
    const holders = net.liveIds().filter((id) => net.seg(id).queues().some((q) => q.items.some((i) => i.value === 'keep me')));
    expect(holders.length, `seed ${seed}: copies at acknowledgement`).toBeGreaterThanOrEqual(2);
    expect(holders).toContain(owner);
    net.crash(owner); // immediately: the third copy may not have it yet
    const r = net.take(client, key, 0, 20_000);
    expect(ok(seed, r, 'take after the owner crashed').value).toMatchObject({ id: 1, value: 'keep me' });
  });

  it.each(SEEDS)('seed %i: a joining node that becomes the owner takes the queue over', (seed) => {
    const net = makeNet(seed, 4);
    const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
    for (const k of keys) for (let i = 0; i < 5; i++) ok(seed, net.put(`n${i % 4}`, k, `${k}${i}`), 'put');
    net.join('n4');
    net.runUntilTrue(() => net.converged(), 10_000);
    net.runFor(3000);
    const moved = keys.filter((k) => net.ownerOf(k) === 'n4');
    for (const k of keys) {
      const got: string[] = [];
      for (let i = 0; i < 5; i++) got.push((ok(seed, net.take('n4', k), `take ${k}`).value as SegItem).value as string);
      expect(got, `seed ${seed}: ${k} (owner ${net.ownerOf(k)}, moved: ${moved.join()})`).toEqual([0, 1, 2, 3, 4].map((i) => `${k}${i}`));
      expect(ok(seed, net.put('n1', k, 'next'), 'put').value).toBe(6);
    }
    expect(moved.length, `seed ${seed}: the newcomer owns some keys`).toBeGreaterThan(0);
  });

  it.each(SEEDS)('seed %i: a queue survives every node restarting from its persisted copy', (seed) => {
    const net = makeNet(seed, 4);
    for (let i = 0; i < 10; i++) ok(seed, net.put(`n${i % 4}`, 'disk', i), 'put');
    ok(seed, net.take('n2', 'disk'), 'take');
    net.runFor(2000);
    const ids = net.liveIds();
    net.crash(ids);
    net.runFor(100);
    for (const id of ids) net.restart(id);
    net.runUntilTrue(() => net.converged(), 10_000);
    const got: number[] = [];
    for (let i = 0; i < 9; i++) got.push((ok(seed, net.take('n3', 'disk'), 'take').value as SegItem).value as number);
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(ok(seed, net.put('n0', 'disk', 'x'), 'put').value, `seed ${seed}: ids continue`).toBe(11);
  });
});

describe('random churn', () => {
  it.each(SEEDS)('seed %i: crashes, restarts from disk and joins under 5 percent loss and duplication: every acknowledged item taken exactly once', (seed) => {
    const net = makeNet(seed, 7, { loss: 0.05, duplicate: 0.05, detection: [200, 1200] });
    const clients = ['n0', 'n1', 'n2'];
    const servers = net.liveIds().filter((id) => !clients.includes(id));
    const keys = ['r0', 'r1', 'r2'];
    const w = new Workload(net, seed);
    for (const key of keys) {
      for (const c of clients.slice(0, 2)) w.produce(c, key, 50, [0, 60]);
      for (const c of clients) w.consume(c, key);
    }
    const log: string[] = [];
    let joined = 0;
    for (let step = 0; step < 10; step++) {
      net.runFor(800 + net.rng.next() * 2500);
      const up = servers.filter((id) => net.isAlive(id));
      const down = servers.filter((id) => !net.isAlive(id));
      const r = net.rng.next();
      if (up.length > 1 && (r < 0.5 || down.length === 0)) {
        const victim = up[Math.floor(net.rng.next() * up.length)]!;
        net.crash(victim);
        log.push(`crash ${victim}`);
      } else if (down.length > 0 && r < 0.85) {
        const back = down[Math.floor(net.rng.next() * down.length)]!;
        net.restart(back);
        log.push(`restart ${back}`);
      } else {
        const id = `j${joined++}`;
        servers.push(id);
        net.join(id);
        log.push(`join ${id}`);
      }
    }
    const what = `seed ${seed} (${log.join(', ')})`;
    const settled = net.runUntilTrue(() => w.allAckedTaken(), 300_000);
    w.stopConsuming();
    net.runFor(10_000);
    w.check();
    const missing = w.ackedPuts().filter((o) => !w.taken.has(o.value!)).map((o) => o.value);
    expect(missing, `${what}: acknowledged items never taken`).toEqual([]);
    expect(settled, `${what}: settled`).toBe(true);
    expect(w.puts().filter((o) => !o.reply), `${what}: unanswered puts`).toEqual([]);
    expect(net.converged(), `${what}: converged`).toBe(true);
    for (const key of keys) expectReplicated(net, seed, key);
    expectDisksHoldCopies(net, seed);
  });

  it.each(SEEDS)('seed %i: once a queue is fully replicated, its owner and another replica may crash at the same time', (seed) => {
    const net = makeNet(seed, 6);
    const key = 'two-down';
    for (let i = 0; i < 30; i++) ok(seed, net.put(`n${i % 6}`, key, i), 'put');
    net.runFor(2000); // every replica has everything
    const pref = net.seg(net.ownerOf(key)).replicas(key);
    net.crash([pref[0]!, pref[1]!]);
    const client = net.liveIds()[0]!;
    const got: number[] = [];
    for (let i = 0; i < 30; i++) got.push((ok(seed, net.take(client, key, 0, 30_000), `take ${i}`).value as SegItem).value as number);
    expect(got, `seed ${seed}`).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(ok(seed, net.put(client, key, 'next'), 'put').value).toBe(31);
  });
});

describe('owner changes under waiting calls', () => {
  it.each(SEEDS)('seed %i: waiting peek/take re-register with the new owner after a crash and still resolve', (seed) => {
    const net = makeNet(seed, 5);
    const key = 'orphaned';
    const owner = net.ownerOf(key);
    const [a, b, c] = net.liveIds().filter((id) => id !== owner);
    const peek = net.request(a!, { type: 'peek', key, afterId: 0 });
    const take = net.request(b!, { type: 'take', key, afterId: 0 });
    net.runFor(1000);
    net.crash(owner);
    net.runFor(6000);
    expect(net.reply(a!, peek)).toBeUndefined();
    expect(net.reply(b!, take)).toBeUndefined();
    const newOwner = net.ownerOf(key);
    expect(newOwner).not.toBe(owner);
    expect(net.seg(newOwner).queues().find((q) => q.key === key)?.waiting, `seed ${seed}: registered at ${newOwner}`).toBe(2);
    const id = ok(seed, net.put(c!, key, 'late'), 'put').value;
    net.runFor(1000);
    expect(ok(seed, net.reply(a!, peek), 'peek').value).toMatchObject({ id, value: 'late' });
    expect(ok(seed, net.reply(b!, take), 'take').value).toMatchObject({ id, value: 'late' });
  });

  it.each(SEEDS)('seed %i: waiting calls follow the queue to a joining node that becomes its owner', (seed) => {
    const net = makeNet(seed, 4);
    const after = new Ring([...net.liveIds(), 'n9'], net.seg('n0').config.vnodes, 3);
    let key = 'j0';
    for (let i = 1; after.preferenceList(key)[0] !== 'n9'; i++) key = `j${i}`;
    ok(seed, net.put('n1', key, 'before'), 'put');
    const old = net.ownerOf(key);
    const waitTake = net.request('n2', { type: 'take', key, afterId: 1 });
    const waitPeek = net.request('n3', { type: 'peek', key, afterId: 1 });
    net.runFor(500);
    net.join('n9');
    net.runUntilTrue(() => net.converged(), 10_000);
    net.runFor(3000);
    expect(net.ownerOf(key)).toBe('n9');
    expect(net.seg('n9').ownedKeys()).toContain(key);
    expect(net.seg(old).ownedKeys()).not.toContain(key);
    expect(net.reply('n2', waitTake)).toBeUndefined();
    const id = ok(seed, net.put('n0', key, 'after'), 'put').value;
    expect(id, `seed ${seed}: ids continue on the new owner`).toBe(2);
    net.runFor(1000);
    expect(ok(seed, net.reply('n2', waitTake), 'take').value).toMatchObject({ id: 2, value: 'after' });
    expect(ok(seed, net.reply('n3', waitPeek), 'peek').value).toMatchObject({ id: 2, value: 'after' });
    expect(ok(seed, net.take('n1', key), 'take').value).toMatchObject({ id: 1, value: 'before' });
  });

  it.each(SEEDS)('seed %i: a put whose owner is unreachable fails with a clear error after requestTimeoutMs', (seed) => {
    // the crash is noticed only after 20 s: until then requests go to the dead owner
    const net = makeNet(seed, 4, { detection: [20_000, 20_000], config: { requestTimeoutMs: 3000 } });
    const key = 'nobody';
    const owner = net.ownerOf(key);
    const client = net.liveIds().find((id) => id !== owner)!;
    net.crash(owner);
    const r = net.put(client, key, 1);
    expect(r).toMatchObject({
      ok: false,
      error: `put on segment '${key}': no acknowledgement from the owner (${owner}) within 3000 ms; it may still be applied`,
    });
    // once the failure is known, the new owner serves the key
    net.runFor(20_000);
    expect(ok(seed, net.put(client, key, 2), 'put after detection').value).toBeGreaterThanOrEqual(1);
  });
});

describe('state transfer in pieces', () => {
  it.each(SEEDS)('seed %i: multi-part snapshots, small op batches and a short log survive loss, failover and a join', (seed) => {
    const config = { chunkBytes: 1500, opsBatch: 4, maxLog: 20 };
    const net = makeNet(seed, 5, { config, loss: 0.05, duplicate: 0.05 });
    const key = 'big';
    const owner = net.ownerOf(key);
    const others = net.liveIds().filter((id) => id !== owner);
    const w = new Workload(net, seed);
    w.putAll(others[0]!, key, Array.from({ length: 300 }, (_, i) => `${i}:${'x'.repeat(100)}`));
    expect(net.runUntilTrue(() => w.puts().every((o) => o.reply), 120_000), `seed ${seed}: puts answered`).toBe(true);
    net.crash(owner);
    net.runFor(3000);
    net.join('n7');
    net.runFor(3000);
    for (const c of others.slice(1, 4)) w.consume(c, key);
    expect(net.runUntilTrue(() => w.allAckedTaken(), 300_000), `seed ${seed}: all taken`).toBe(true);
    w.stopConsuming();
    net.runFor(5000);
    w.check();
    expect(w.ackedPuts()).toHaveLength(300);
    let snapshots = 0;
    for (const id of net.allIds()) snapshots += net.seg(id).stats().snapshotsInstalled ?? 0;
    expect(snapshots, `seed ${seed}: snapshots were installed`).toBeGreaterThan(0);
    expectReplicated(net, seed, key);
    expectDisksHoldCopies(net, seed);
  });
});
