/**
 * join: tabs open one after another, each joining the tabs opened before it; how long
 * until each tab sees the cluster, and until every tab sees all of it.
 */
import type { Browser } from '@playwright/test';
import { percentile } from '../../../src/util/percentile';
import { pollUntil, round } from '../stats';
import { members, openBenchTab, type BenchOptions, type BenchTab, type SystemTarget } from './shared';

export interface JoinResult {
  /** ms from navigation start until joined, for tabs 2..n (each joins the tabs opened before it) */
  msPerTab: number[];
  msP50: number | null;
  msMax: number | null;
  /** the first tab: until it knows it is alone (ours: p2p.ready) / signaling connected (Yjs) */
  firstTabMs: number | null;
  /** from opening the first tab until every tab sees all n members */
  clusterCompleteMs: number | null;
  /** where clusterCompleteMs goes: per tab, ms of the bench's own work before navigation (context, page, CDP), navigation to the load event, navigation to joined (as msPerTab); then ms from the last tab joined until every tab saw all n */
  phases: { beforeNavMs: number[]; toLoadMs: number[]; toJoinedMs: number[]; completeAfterLastMs: number };
}

export async function join(browser: Browser, target: SystemTarget, o: BenchOptions, tabs: BenchTab[]): Promise<JoinResult> {
  const t0 = Date.now();
  const joinMs: number[] = [];
  const beforeNavMs: number[] = [];
  const toLoadMs: number[] = [];
  for (let i = 0; i < o.tabs; i++) {
    const opened = Date.now();
    const tab = await openBenchTab(browser, target, i);
    tabs.push(tab);
    await tab.page.waitForFunction(() => window.__ba?.joinedAt != null, undefined, { timeout: 60_000, polling: 50 });
    const [joined, origin, load] = await tab.page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming | undefined;
      return [window.__ba!.joinedAt! - performance.timeOrigin, performance.timeOrigin, nav?.loadEventEnd ?? 0];
    });
    joinMs.push(joined);
    beforeNavMs.push(origin - opened);
    toLoadMs.push(load);
  }
  const lastJoined = Date.now();
  const complete = await pollUntil(() => Promise.all(tabs.map(members)), (m) => m.every((x) => x === o.tabs), 60_000, 50);
  if (!complete.ok) throw new Error(`cluster did not complete: members seen per tab ${JSON.stringify(complete.value)}`);
  const rest = joinMs.slice(1);
  return {
    msPerTab: rest.map((x) => round(x, 1)!),
    msP50: round(percentile(rest, 50), 1),
    msMax: rest.length ? round(Math.max(...rest), 1) : null,
    firstTabMs: round(joinMs[0], 1),
    clusterCompleteMs: Date.now() - t0,
    phases: { beforeNavMs: beforeNavMs.map((x) => Math.round(x)), toLoadMs: toLoadMs.map((x) => Math.round(x)), toJoinedMs: joinMs.map((x) => Math.round(x)), completeAfterLastMs: Date.now() - lastJoined },
  };
}
