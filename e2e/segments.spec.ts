import { test, expect } from './fixtures';
import { closeTab, crashTab, type Tab } from './harness';

/** Takes up to n items, stopping when the queue stays empty for `timeoutMs`; returns the values taken. */
const takeLoop = (t: Tab, n: number, timeoutMs = 5_000) =>
  t.page.evaluate(async ({ n, timeoutMs }) => {
    const got: number[] = [];
    for (let i = 0; i < n; i++) {
      try {
        const item = await window.p2p.segments.take('jobs', 0, { timeoutMs });
        got.push((item.value as { i: number }).i);
      } catch (e) {
        if (!/timed? ?out/i.test((e as Error).message)) throw e;
        break; // queue drained
      }
    }
    return got;
  }, { n, timeoutMs });

test('3 tabs taking concurrently from one queue of 1,000 items receive every item exactly once', async ({ cluster }) => {
  const { tabs } = await cluster(4, 'seg');
  const ids = await tabs[0]!.page.evaluate(async () => {
    const ids: number[] = [];
    for (let i = 0; i < 1000; i += 100) {
      ids.push(...(await Promise.all(Array.from({ length: 100 }, (_, j) => window.p2p.segments.put('jobs', { i: i + j })))));
    }
    return ids;
  });
  expect(new Set(ids).size).toBe(1000);
  const got = await Promise.all(tabs.slice(1).map((t) => takeLoop(t, 1000)));
  const all = got.flat();
  expect(all.length).toBe(1000);
  expect(new Set(all).size).toBe(1000);
  for (const t of tabs) await closeTab(t);
});

test('a waiting peek resolves when another tab puts; cancel and timeout give clear errors', async ({ cluster }) => {
  const [a, b] = (await cluster(2, 'seg')).tabs as [Tab, Tab];
  const waiting = a.page.evaluate(() => window.p2p.segments.peek('inbox').then((x) => x.value));
  await new Promise((r) => setTimeout(r, 500));
  await b.page.evaluate(() => window.p2p.segments.put('inbox', 'hello'));
  expect(await waiting).toBe('hello');
  const errors = await a.page.evaluate(async () => {
    const ctrl = new AbortController();
    const p = window.p2p.segments.take('empty', 0, { signal: ctrl.signal }).then(() => 'taken', (e: Error) => e.message);
    setTimeout(() => ctrl.abort(), 200);
    const t = await window.p2p.segments.peek('empty', 0, { timeoutMs: 300 }).then(() => 'got', (e: Error) => e.message);
    return [await p, t];
  });
  expect(errors[0]).toMatch(/cancel/i);
  expect(errors[1]).toMatch(/time/i);
  await closeTab(a);
  await closeTab(b);
});

test('the owner tab crashing mid-way loses no acknowledged item and hands none out twice', async ({ cluster }) => {
  const { tabs } = await cluster(5, 'seg');
  const owner = await tabs[0]!.page.evaluate(() => window.p2p.kv.replicas('jobs')[0]);
  const ownerTab = tabs.find((t) => t.id === owner)!;
  const others = tabs.filter((t) => t !== ownerTab);
  await others[0]!.page.evaluate(async () => {
    await Promise.all(Array.from({ length: 200 }, (_, i) => window.p2p.segments.put('jobs', { i })));
  });
  const first = await Promise.all(others.slice(1).map((t) => takeLoop(t, 30)));
  await crashTab(ownerTab);
  // the first takes after the crash wait for failover (the owner must be declared dead)
  const rest = await Promise.all(others.slice(1).map((t) => takeLoop(t, 400, 25_000)));
  const all = [...first.flat(), ...rest.flat()];
  // exactly once: no duplicates, and every acknowledged put was taken
  expect(new Set(all).size).toBe(all.length);
  expect(all.length).toBe(200);
  for (const t of others) await closeTab(t);
});
