/**
 * Firefox and Chromium tabs in one cluster: 2 Chromium tabs (Playwright) and 2 Firefox
 * tabs (firefox-esr over WebDriver BiDi, e2e/firefox.ts) join, then chat, the KVS and a
 * data segment each cross from one browser to the other.
 */
import { test, expect, type Browser as PwBrowser } from '@playwright/test';
import type { Browser as FfBrowser } from 'puppeteer-core';
import { closeTab, launchBrowser, openTab, startOurServer, uniqueCluster, waitFor, type Server, type Tab } from './harness';
import { launchFirefox, openFirefoxTab, type FirefoxTab } from './firefox';

let chromium: PwBrowser;
let firefox: FfBrowser;
let server: Server;

test.beforeAll(async () => {
  [chromium, firefox, server] = await Promise.all([launchBrowser(), launchFirefox(), startOurServer()]);
});
test.afterAll(async () => {
  await chromium?.close();
  await firefox?.close();
  await server?.close();
});

/** One way to evaluate in either browser's page. */
interface AnyTab {
  id: string;
  browser: 'chromium' | 'firefox';
  run<T>(fn: () => T | Promise<T>): Promise<T>;
  runWith<A, T>(fn: (a: A) => T | Promise<T>, arg: A): Promise<T>;
}

const fromChromium = (t: Tab): AnyTab => ({
  id: t.id,
  browser: 'chromium',
  run: (fn) => t.page.evaluate(fn) as never,
  runWith: (fn, arg) => t.page.evaluate(fn as never, arg) as never,
});
const fromFirefox = (t: FirefoxTab): AnyTab => ({
  id: t.id,
  browser: 'firefox',
  run: (fn) => t.page.evaluate(fn) as never,
  runWith: (fn, arg) => t.page.evaluate(fn as never, arg) as never,
});

test('Firefox and Chromium tabs form one cluster: chat, KV and segments cross between them', async () => {
  const cluster = uniqueCluster('mixed');
  const cTabs: Tab[] = [];
  const fTabs: FirefoxTab[] = [];
  try {
    cTabs.push(await openTab(chromium, server.url, { cluster, nick: 'chrome1' }));
    fTabs.push(await openFirefoxTab(firefox, server.url, { cluster, nick: 'fox1' }));
    cTabs.push(await openTab(chromium, server.url, { cluster, nick: 'chrome2' }));
    fTabs.push(await openFirefoxTab(firefox, server.url, { cluster, nick: 'fox2' }));
    const tabs = [...cTabs.map(fromChromium), ...fTabs.map(fromFirefox)];
    const ids = tabs.map((t) => t.id).sort();
    for (const t of tabs) {
      await waitFor(() => t.run(() => window.p2p.members().slice().sort()), (m) => JSON.stringify(m) === JSON.stringify(ids), 60_000, `${t.browser} ${t.id} sees all 4 members`);
    }
    const agents = await Promise.all(tabs.map((t) => t.run(() => navigator.userAgent)));
    expect(agents.map((a) => (a.includes('Firefox/') ? 'firefox' : a.includes('Chrome/') ? 'chromium' : a))).toEqual(['chromium', 'chromium', 'firefox', 'firefox']);
    // at least one WebRTC link joins the two browsers, and it reports its path
    const ffIds = new Set(fTabs.map((t) => t.id));
    const cross = await waitFor(
      async () => (await Promise.all(cTabs.map((t) => t.page.evaluate(() => window.p2p.links())))).flat().filter((l) => ffIds.has(l.peer) && l.state === 'open' && l.path !== null),
      (l) => l.length > 0,
      20_000,
      'a Chromium–Firefox link with its path',
    );
    expect(cross[0]!.path!.type).toBe('host');
    const ffLinks = await fTabs[0]!.page.evaluate(() => window.p2p.links());
    expect(ffLinks.filter((l) => l.state === 'open').length).toBeGreaterThan(0);

    // chat both ways
    await tabs[2]!.run(() => window.p2p.chat.send('from firefox'));
    await tabs[0]!.run(() => window.p2p.chat.send('from chromium'));
    for (const t of tabs) {
      await waitFor(() => t.run(() => window.p2p.chat.history().map((m) => m.text)), (h) => h.includes('from firefox') && h.includes('from chromium'), 20_000, `chat at ${t.browser} ${t.id}`);
    }
    // KV written in one browser, read in the other
    await tabs[3]!.run(() => Promise.all(Array.from({ length: 10 }, (_, i) => window.p2p.kv.put(`mixed/${i}`, { i, by: 'firefox' }))));
    await tabs[1]!.run(() => window.p2p.kv.put('mixed/chromium', 'hello firefox'));
    expect(await tabs[1]!.run(() => window.p2p.kv.get('mixed/4'))).toEqual({ i: 4, by: 'firefox' });
    expect(await tabs[2]!.run(() => window.p2p.kv.get('mixed/chromium'))).toBe('hello firefox');
    expect((await tabs[0]!.run(() => window.p2p.kv.keys('mixed/'))).length).toBe(11);
    // a segment: put in Chromium, taken in Firefox, and the other way
    const put = await tabs[0]!.run(() => window.p2p.segments.put('jobs', { job: 'resize' }));
    const taken = await tabs[3]!.run(() => window.p2p.segments.take('jobs', 0, { timeoutMs: 10_000 }));
    expect(taken).toEqual({ id: put, value: { job: 'resize' } });
    const put2 = await tabs[2]!.run(() => window.p2p.segments.put('jobs', { job: 'encode' }));
    expect(await tabs[1]!.run(() => window.p2p.segments.take('jobs', 0, { timeoutMs: 10_000 }))).toEqual({ id: put2, value: { job: 'encode' } });
    expect(fTabs.flatMap((t) => t.errors)).toEqual([]);
  } finally {
    for (const t of cTabs) await closeTab(t);
    for (const t of fTabs) await t.context.close();
  }
});
