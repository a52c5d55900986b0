/**
 * Helpers of the reachability specs (turn, redis, tls, firefox): tabs opened with extra
 * URL parameters, on any origin. Built on e2e/harness.ts.
 */
import type { Browser, BrowserContext } from '@playwright/test';
import type { OpenOptions, Tab } from './harness';

/** harness.openTab with more URL parameters (`relay`, `ice`, …). */
export async function openTabWith(
  browser: Browser,
  appUrl: string,
  o: OpenOptions & { params?: Record<string, string> },
  context?: BrowserContext,
): Promise<Tab> {
  const ctx = context ?? (await browser.newContext());
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.error(`[pageerror] ${e.message}`));
  const q = new URLSearchParams({ cluster: o.cluster, ...o.params });
  if (o.signaling) q.set('signaling', o.signaling);
  if (o.nick) q.set('nick', o.nick);
  await page.goto(`${appUrl}?${q}`);
  await page.waitForFunction(() => (window as unknown as { p2p?: unknown }).p2p !== undefined);
  if (o.ready !== false) await page.evaluate(() => window.p2p.ready);
  const id = await page.evaluate(() => window.p2p.id);
  return { context: ctx, page, id };
}
