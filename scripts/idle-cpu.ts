/**
 * Developer tool: the main-thread cost of an idle cluster, per tab, visible and hidden.
 *
 *   npx tsx scripts/idle-cpu.ts [--tabs 8] [--settle 40000] [--window 10000]
 *
 * Opens N tabs of the built app (one browser context each; `npm run build` first) on a
 * fresh signaling server, waits `--settle` ms (the overlay graph's layout animation runs
 * for the first ~20 s), then reports CDP `Performance.getMetrics` deltas averaged over the
 * tabs for two windows with the tabs visible, and two with `document.visibilityState`
 * emulated as hidden (the app's own reaction to a background tab; Chromium's throttling of
 * real background tabs is not included). Prints the load average with each line.
 */
import { loadavg } from 'node:os';
import type { CDPSession } from '@playwright/test';
import { launchBrowser, openTab, type Tab, startOurServer, uniqueCluster } from '../e2e/harness';

const arg = (name: string, d: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : d;
};
const TABS = arg('tabs', 8);
const SETTLE = arg('settle', 40_000);
const WINDOW = arg('window', 10_000);
const METRICS = ['TaskDuration', 'ScriptDuration', 'LayoutDuration', 'RecalcStyleDuration'] as const;
const HIDE = `Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
document.dispatchEvent(new Event('visibilitychange'));`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const server = await startOurServer();
  const browser = await launchBrowser();
  try {
    const cluster = uniqueCluster('idle');
    const tabs: Tab[] = [];
    for (let i = 0; i < TABS; i++) tabs.push(await openTab(browser, server.url, { cluster }));
    const sessions: CDPSession[] = await Promise.all(
      tabs.map(async (t) => {
        const s = await t.context.newCDPSession(t.page);
        await s.send('Performance.enable');
        return s;
      }),
    );
    const read = () =>
      Promise.all(
        sessions.map(async (s) => {
          const m = (await s.send('Performance.getMetrics')).metrics;
          return METRICS.map((name) => m.find((x) => x.name === name)?.value ?? 0);
        }),
      );
    const measure = async (label: string) => {
      const a = await read();
      const t0 = Date.now();
      await sleep(WINDOW);
      const b = await read();
      const dt = (Date.now() - t0) / 1000;
      const pct = (k: number) => ((b.reduce((x, v, i) => x + v[k]! - a[i]![k]!, 0) / b.length / dt) * 100).toFixed(2);
      console.log(`${label}: per tab task ${pct(0)} %, script ${pct(1)} %, layout ${pct(2)} %, style ${pct(3)} %  (load average ${loadavg()[0]!.toFixed(1)})`);
    };
    await sleep(SETTLE);
    await measure('idle, tabs visible');
    await measure('idle, tabs visible (again)');
    for (const t of tabs) await t.page.evaluate(HIDE);
    await measure('idle, tabs hidden (emulated)');
    await measure('idle, tabs hidden (emulated, again)');
  } finally {
    await browser.close();
    await server.close();
  }
}

void main();
