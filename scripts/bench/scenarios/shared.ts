/**
 * What every scenario shares: the bench options, the tab handle and the target a run
 * drives, and the helpers that open, crash and measure tabs (main-thread busy time,
 * heap, WebRTC bytes, members, replica counts). Scenarios are written once against
 * `window.__ba` (scripts/bench/types.ts: PageAdapter), so the same code runs for both
 * systems.
 */
import type { Browser, BrowserContext, CDPSession, Page } from '@playwright/test';
import { NAME_SHIM, pageInit, type PageInitArg } from '../page';
import { mean, round, sleep } from '../stats';
import type { RtcBytes, SystemKind } from '../types';

export type Scenario = 'join' | 'chat' | 'segments' | 'kv' | 'watch' | 'failure';
export const SCENARIOS: Scenario[] = ['join', 'chat', 'segments', 'kv', 'watch', 'failure'];

export interface BenchOptions {
  tabs: number;
  keys: number;
  chat: number;
  only: Set<Scenario>;
  /** ms between two chat sends from the sending tab */
  chatIntervalMs: number;
  /** puts in flight during the bulk load */
  window: number;
  /** time cap of the bulk load (ms), asked when it starts: keeps the whole run under its time budget */
  bulkMaxMs(): number;
  /** time limit of the wait for full replication after the bulk load (ms) */
  replicationMaxMs(): number;
  /** time limit of each measurement of the failure scenario (ms), asked when it starts */
  failureMaxMs(): number;
  /** sequential ops for the unloaded put / get latency */
  latencyOps: number;
  /** keys whose time-until-readable-elsewhere is measured */
  visibilitySamples: number;
  /** ours: reloads measured (tabs 1, 2, … in turn), reported as median and worst */
  reloads: number;
  /** tabs crashed in the failure scenario */
  crash: number;
  /** segments scenario (ours only, scenarios/segments.ts): samples per waiting-call measurement, items of the concurrent take, time cap of each part (ms) */
  segSamples: number;
  segItems: number;
  segCapMs: number;
  /**
   * false (default): tabs open with prefers-reduced-motion: reduce. Our UI then lays its
   * overlay graph out in one go instead of animating it with requestAnimationFrame, which
   * otherwise keeps every visible tab's main thread ~80 % busy (8 visible tabs on 2 cores;
   * in a real browser 7 of 8 tabs would be hidden and run no animation frames).
   * true (--motion): the browser default, the graph animates.
   */
  motion: boolean;
  log: (line: string) => void;
}

export interface BenchTab {
  i: number;
  context: BrowserContext;
  page: Page;
  cdp: CDPSession;
  alive: boolean;
  consoleErrors: number;
}

export interface SystemTarget {
  kind: SystemKind;
  label: string;
  /** URL of tab i. */
  url(i: number): string;
  /** Open the tabs with prefers-reduced-motion: reduce (see BenchOptions.motion). */
  reducedMotion: boolean;
  /** Counters summed over the given tabs (ours: stats()); the scenarios report their change. */
  counters?(tabs: BenchTab[]): Promise<Record<string, number>>;
  /** Called at the end: system-specific diagnostics (ours: stats() counters, problems()). */
  diagnostics?(tabs: BenchTab[]): Promise<Record<string, unknown>>;
}

const MB = 1024 * 1024;

/** Key i of the bulk load and of the reads that check it. */
export const keyOf = (prefix: string, i: number): string => `${prefix}${i}`;

export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Tab i in a fresh browser context (its own storage, as another browser), with the page adapter installed. */
export async function openBenchTab(browser: Browser, target: SystemTarget, i: number): Promise<BenchTab> {
  const context = await browser.newContext(target.reducedMotion ? { reducedMotion: 'reduce' } : {});
  await context.addInitScript({ content: NAME_SHIM });
  await context.addInitScript(pageInit, { kind: target.kind, expect: i + 1 } satisfies PageInitArg);
  const page = await context.newPage();
  const tab: BenchTab = { i, context, page, cdp: await context.newCDPSession(page), alive: true, consoleErrors: 0 };
  await tab.cdp.send('Performance.enable');
  page.on('pageerror', (e) => console.error(`[${target.kind} tab ${i} pageerror] ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') tab.consoleErrors++;
  });
  // a tab that dies without the bench crashing it (renderer killed from outside, OOM…)
  page.on('crash', () => {
    if (tab.alive) console.error(`[${target.kind} tab ${i}] renderer crashed unexpectedly`);
  });
  page.on('close', () => {
    if (tab.alive) console.error(`[${target.kind} tab ${i}] page closed unexpectedly`);
  });
  await page.goto(target.url(i));
  return tab;
}

/** Kills the renderer like e2e/harness.ts crashTab (no pagehide, no goodbye), without its console output. */
export async function crash(tab: BenchTab): Promise<void> {
  tab.alive = false;
  const crashed = new Promise<void>((resolve) => tab.page.once('crash', () => resolve()));
  // the call never answers: its target dies while handling it
  void tab.cdp.send('Page.crash').catch(() => undefined);
  await Promise.race([crashed, sleep(5_000)]);
  await tab.context.close().catch(() => undefined);
}

/** Main-thread busy time (CDP Performance TaskDuration, seconds) of each tab, for busy-% over a window. */
export async function taskSeconds(tabs: BenchTab[]): Promise<number[]> {
  return Promise.all(
    tabs.map(async (t) => {
      const { metrics } = await t.cdp.send('Performance.getMetrics');
      return metrics.find((m) => m.name === 'TaskDuration')?.value ?? 0;
    }),
  );
}

/** Runs `fn` and returns its result with the mean main-thread busy % per tab meanwhile. */
export async function busy<T>(tabs: BenchTab[], fn: () => Promise<T>): Promise<[T, number | null]> {
  const a = await taskSeconds(tabs);
  const t0 = Date.now();
  const v = await fn();
  const b = await taskSeconds(tabs);
  const wall = (Date.now() - t0) / 1000;
  return [v, round(mean(b.map((x, i) => (100 * (x - a[i]!)) / wall)), 1)];
}

/** JS heap used by the tab after a forced GC (MB). */
export async function heapMB(tab: BenchTab): Promise<number> {
  await tab.cdp.send('HeapProfiler.collectGarbage');
  const { usedSize } = await tab.cdp.send('Runtime.getHeapUsage');
  return usedSize / MB;
}

/** WebRTC bytes sent and connections, summed over the tabs. */
export async function rtcBytes(tabs: BenchTab[]): Promise<RtcBytes> {
  const all = await Promise.all(tabs.map((t) => t.page.evaluate(() => window.__ba!.rtcBytes())));
  return all.reduce((a, b) => ({
    transport: a.transport + b.transport,
    dataChannel: a.dataChannel + b.dataChannel,
    created: a.created + b.created,
    connected: a.connected + b.connected,
  }));
}

/** Members as the tab sees them, itself included. */
export const members = (t: BenchTab): Promise<number> => t.page.evaluate(() => window.__ba!.members());

/** Tabs holding each key with the prefix, summed: how many keys have fewer than `want` holders. */
export async function underReplicated(tabs: BenchTab[], prefix: string, indices: readonly number[], want: number): Promise<number> {
  const held = await Promise.all(tabs.map((t) => t.page.evaluate((p) => window.__ba!.localKeys(p), prefix)));
  const counts = new Map<string, number>();
  for (const h of held) for (const k of h) counts.set(k, (counts.get(k) ?? 0) + 1);
  let missing = 0;
  for (const i of indices) if ((counts.get(keyOf(prefix, i)) ?? 0) < want) missing++;
  return missing;
}
