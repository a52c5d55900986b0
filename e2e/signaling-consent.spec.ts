/**
 * What the page does with a share link that names another signaling server
 * (`?signaling=`), and the HTTP hardening of the app (issue #15, item 8):
 *  - a foreign server is shown to the user, and no WebSocket to it is opened
 *    until the user accepts; declined, the tab uses its own server and the foreign
 *    one never hears from it;
 *  - the built app runs under the server's Content-Security-Policy without a
 *    single violation, and no other page can frame it.
 * Saves a screenshot of the dialog (test-results/screenshots/signaling-consent.png).
 */
import type { Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { test, expect } from './fixtures';
import { closeTab, startOurServer, uniqueCluster, waitFor, type Tab } from './harness';

type OurServer = Awaited<ReturnType<typeof startOurServer>>;

/** Every WebSocket the page opens, by URL (Playwright sees them as the browser creates them). */
function recordWebSockets(page: Page): string[] {
  const urls: string[] = [];
  page.on('websocket', (ws) => urls.push(ws.url()));
  return urls;
}

/** Content-Security-Policy violations the page reports, from before its first script runs. */
async function recordCspViolations(page: Page): Promise<() => Promise<string[]>> {
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { __csp: string[] }).__csp = seen;
    document.addEventListener('securitypolicyviolation', (e) => seen.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
  });
  return () => page.evaluate(() => (window as unknown as { __csp: string[] }).__csp);
}

let foreign: OurServer;

test.beforeAll(async () => {
  foreign = await startOurServer(); // another port: another origin, "somebody else's server"
});

test.afterAll(async () => {
  await foreign.close();
});

test('a share link naming another signaling server is shown first; no socket to it until the user accepts', async ({ server, browserProfile }) => {
  const cluster = uniqueCluster('consent');
  const link = `${server.url}?${new URLSearchParams({ cluster, signaling: foreign.ws, nick: 'ann' })}`;
  const context = await browserProfile();
  const page = await context.newPage();
  const sockets = recordWebSockets(page);
  await page.goto(link);

  const dialog = page.getByRole('dialog', { name: 'Connect through another signaling server?' });
  await expect(dialog).toBeVisible();
  await expect(dialog).toContainText(foreign.ws);
  // the page has done everything it does before it would connect (script, ICE config)
  await page.waitForLoadState('networkidle');
  await page.waitForTimeout(1_000);
  expect(sockets).toEqual([]);
  expect(foreign.server.stats().connections).toBe(0);
  expect(await page.evaluate(() => 'p2p' in window)).toBe(false);
  mkdirSync('test-results/screenshots', { recursive: true });
  await page.screenshot({ path: 'test-results/screenshots/signaling-consent.png' });

  await dialog.getByRole('button', { name: 'Connect through it' }).click();
  await expect(dialog).toHaveCount(0);
  await page.waitForFunction(() => (window as unknown as { p2p?: unknown }).p2p !== undefined);
  await page.evaluate(() => window.p2p.ready);
  expect(new Set(sockets)).toEqual(new Set([foreign.ws]));
  await waitFor(() => page.evaluate(() => window.p2p.info().signaling), (s) => s.length === 1 && s[0]!.state === 'open', 20_000, 'signaling through the accepted server');
  expect(foreign.server.stats().connections).toBeGreaterThanOrEqual(1);

  // a second tab from the same link, accepted too: the two find each other through it
  const page2 = await (await browserProfile()).newPage();
  await page2.goto(link.replace('nick=ann', 'nick=bob'));
  await page2.getByRole('dialog').getByRole('button', { name: 'Connect through it' }).click();
  await page2.waitForFunction(() => (window as unknown as { p2p?: unknown }).p2p !== undefined);
  const [id1, id2] = [await page.evaluate(() => window.p2p.id), await page2.evaluate(() => window.p2p.id)];
  await waitFor(() => page.evaluate(() => window.p2p.peers()), (p) => p.includes(id2), 30_000, 'tab 1 links to tab 2');
  await waitFor(() => page2.evaluate(() => window.p2p.peers()), (p) => p.includes(id1), 30_000, 'tab 2 links to tab 1');

  // the answer holds for the tab: a reload does not ask again
  await page.reload();
  await page.waitForFunction(() => (window as unknown as { p2p?: unknown }).p2p !== undefined);
  await expect(page.getByRole('dialog')).toHaveCount(0);
  expect(await page.evaluate(() => window.p2p.info().signaling.map((s) => s.url))).toEqual([foreign.ws]);
  await closeTab({ context, page, id: id1 } satisfies Tab);
});

test('declined, the tab signals through its own server and the foreign one never hears from it', async ({ server, browserProfile }) => {
  const cluster = uniqueCluster('decline');
  // the tabs of the test before have gone from it
  await waitFor(async () => foreign.server.stats().connections, (n) => n === 0, 20_000, 'the foreign server idle');
  const context = await browserProfile();
  const page = await context.newPage();
  const sockets = recordWebSockets(page);
  await page.goto(`${server.url}?${new URLSearchParams({ cluster, signaling: foreign.ws })}`);
  await page.getByRole('dialog').getByRole('button', { name: "Use this site's server" }).click();
  await page.waitForFunction(() => (window as unknown as { p2p?: unknown }).p2p !== undefined);
  await page.evaluate(() => window.p2p.ready);
  const own = `${server.ws.replace(/\/$/, '')}/signal`;
  await waitFor(() => page.evaluate(() => window.p2p.info().signaling), (s) => s.length === 1 && s[0]!.state === 'open', 20_000, 'signaling through its own server');
  expect(await page.evaluate(() => window.p2p.info().signaling.map((s) => s.url))).toEqual([own]);
  expect(new Set(sockets)).toEqual(new Set([own]));
  expect(foreign.server.stats().connections).toBe(0);
  await closeTab({ context, page, id: await page.evaluate(() => window.p2p.id) });
});

test('the app runs under its Content-Security-Policy without a violation, and cannot be framed', async ({ server, browserProfile }) => {
  const cluster = uniqueCluster('csp');
  const tabs: Tab[] = [];
  const violations: Array<() => Promise<string[]>> = [];
  for (const nick of ['ann', 'bob']) {
    const context = await browserProfile();
    const page = await context.newPage();
    violations.push(await recordCspViolations(page));
    const response = await page.goto(`${server.url}?${new URLSearchParams({ cluster, nick })}`);
    const headers = response!.headers();
    expect(headers['content-security-policy']).toContain("script-src 'self'");
    expect(headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(headers['x-frame-options']).toBe('DENY');
    await page.waitForFunction(() => (window as unknown as { p2p?: unknown }).p2p !== undefined);
    tabs.push({ context, page, id: await page.evaluate(() => window.p2p.id) });
  }
  const [a, b] = tabs as [Tab, Tab];
  // the whole UI mounts and works: chat from one tab to the other through the UI
  await expect(a.page.getByRole('region', { name: /cluster/i })).toContainText('bob', { timeout: 30_000 });
  await a.page.getByLabel('Message').fill('under a strict CSP');
  await a.page.getByLabel('Message').press('Enter');
  await expect(b.page.getByRole('log')).toContainText('under a strict CSP', { timeout: 15_000 });
  await expect(a.page.locator('#boot-note')).toHaveCount(0);
  for (const v of violations) expect(await v()).toEqual([]);

  // framed by another page (no CSP of its own, so only the app's headers can refuse): the browser does not show it
  const framer = await (await browserProfile()).newPage();
  const framerConsole: string[] = [];
  framer.on('console', (m) => framerConsole.push(m.text()));
  await framer.setContent(`<iframe src="${server.url}?cluster=${cluster}-framed"></iframe>`);
  const child = framer.frames().find((f) => f !== framer.mainFrame());
  expect(child).toBeDefined();
  expect(child!.url()).not.toContain(`cluster=${cluster}-framed`);
  expect(framerConsole.some((l) => l.includes("frame-ancestors 'none'"))).toBe(true);
  for (const t of tabs) await closeTab(t);
});
