/**
 * Signaling scaled out over Redis: two `npm run serve` processes (REDIS_URL) sharing one
 * redis-server. Tabs connected to different servers form one cluster; restarting Redis
 * mid-run breaks no established link, the servers say so in /healthz meanwhile, and new
 * tabs join again once it is back (including two tabs of a new cluster that can only
 * find each other through Redis: one on each server).
 */
import { test, expect, type Browser } from '@playwright/test';
import { closeTab, launchBrowser, openTab, uniqueCluster, waitFor, waitMembers, type Tab } from './harness';
import { startRedis, type RedisService } from '../signaling/services';
import { startOurServerProcess, type ChildServer } from '../signaling/testing';

let browser: Browser;
let redis: RedisService;
let servers: ChildServer[] = [];

test.beforeAll(async () => {
  browser = await launchBrowser();
  redis = await startRedis();
  const env = { REDIS_URL: redis.url, ICE_SERVERS: '[]' };
  servers = await Promise.all([startOurServerProcess(env), startOurServerProcess(env)]);
});
test.afterAll(async () => {
  await browser?.close();
  for (const s of servers) await s.stop();
  await redis?.stop();
});

async function redisState(s: ChildServer): Promise<string | undefined> {
  const h = (await (await fetch(`${s.url}healthz`)).json()) as { redis?: { state: string } };
  return h.redis?.state;
}

async function chatReaches(from: Tab, to: Tab[], text: string): Promise<void> {
  await from.page.evaluate((t) => window.p2p.chat.send(t), text);
  for (const t of to) {
    await waitFor(() => t.page.evaluate(() => window.p2p.chat.history().map((m) => m.text)), (h) => h.includes(text), 20_000, `"${text}" at ${t.id}`);
  }
}

test('tabs on two servers form one cluster; a Redis restart breaks no link and new tabs join after it', async () => {
  const [a, b] = servers as [ChildServer, ChildServer];
  await waitFor(() => Promise.all([redisState(a), redisState(b)]), (s) => s.every((x) => x === 'up'), 15_000, 'both servers connected to redis');
  const cluster = uniqueCluster('redis');
  const tabs: Tab[] = [];
  try {
    // alternate servers, so that every tab after the first has company only on the other one at some point
    tabs.push(await openTab(browser, a.url, { cluster, nick: 'a1' }));
    tabs.push(await openTab(browser, b.url, { cluster, nick: 'b1' }));
    tabs.push(await openTab(browser, a.url, { cluster, nick: 'a2' }));
    tabs.push(await openTab(browser, b.url, { cluster, nick: 'b2' }));
    await waitMembers(tabs, 45_000);
    // b1 found a1 only through Redis: it was alone on its server
    expect(await tabs[1]!.page.evaluate(() => window.p2p.info().signaling[0]!.url)).toContain(`:${b.port}/`);
    await chatReaches(tabs[0]!, tabs.slice(1), 'hello across servers');

    const linksBefore = await Promise.all(tabs.map((t) => t.page.evaluate(() => window.p2p.peers().slice().sort())));
    await redis.stop();
    await waitFor(() => Promise.all([redisState(a), redisState(b)]), (s) => s.every((x) => x === 'down'), 15_000, 'both servers report redis down');
    // established links carry on: same neighbours, chat and KV still work across servers
    await chatReaches(tabs[1]!, [tabs[0]!, tabs[2]!, tabs[3]!], 'during the outage');
    await tabs[2]!.page.evaluate(() => window.p2p.kv.put('outage', 'still writable'));
    expect(await tabs[3]!.page.evaluate(() => window.p2p.kv.get('outage'))).toBe('still writable');
    // no link broke (the overlay may still add one: a tab's active view fills up over time)
    const linksDuring = await Promise.all(tabs.map((t) => t.page.evaluate(() => window.p2p.peers().slice().sort())));
    linksBefore.forEach((before, i) => expect(linksDuring[i], `links of tab ${i}`).toEqual(expect.arrayContaining(before)));

    await redis.start();
    await waitFor(() => Promise.all([redisState(a), redisState(b)]), (s) => s.every((x) => x === 'up'), 20_000, 'both servers reconnected to redis');
    tabs.push(await openTab(browser, b.url, { cluster, nick: 'b3' }));
    tabs.push(await openTab(browser, a.url, { cluster, nick: 'a3' }));
    await waitMembers(tabs, 45_000);
    await chatReaches(tabs[5]!, tabs.slice(0, 5), 'after the restart');

    // a new cluster with one tab per server: they can only meet through Redis
    const fresh = uniqueCluster('redis-fresh');
    const x = await openTab(browser, a.url, { cluster: fresh, nick: 'x' });
    const y = await openTab(browser, b.url, { cluster: fresh, nick: 'y' });
    tabs.push(x, y);
    await waitMembers([x, y], 30_000);
  } finally {
    for (const t of tabs) await closeTab(t);
  }
});
