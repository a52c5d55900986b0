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
}

export async function join(browser: Browser, target: SystemTarget, o: BenchOptions, tabs: BenchTab[]): Promise<JoinResult> {
  const t0 = Date.now();
  const joinMs: number[] = [];
  for (let i = 0; i < o.tabs; i++) {
    const tab = await openBenchTab(browser, target, i);
    tabs.push(tab);
    await tab.page.waitForFunction(() => window.__ba?.joinedAt != null, undefined, { timeout: 60_000, polling: 50 });
    joinMs.push(await tab.page.evaluate(() => window.__ba!.joinedAt! - performance.timeOrigin));
  }
  const complete = await pollUntil(() => Promise.all(tabs.map(members)), (m) => m.every((x) => x === o.tabs), 60_000, 50);
  if (!complete.ok) throw new Error(`cluster did not complete: members seen per tab ${JSON.stringify(complete.value)}`);
  const rest = joinMs.slice(1);
  return {
    msPerTab: rest.map((x) => round(x, 1)!),
    msP50: round(percentile(rest, 50), 1),
    msMax: rest.length ? round(Math.max(...rest), 1) : null,
    firstTabMs: round(joinMs[0], 1),
    clusterCompleteMs: Date.now() - t0,
  };
}
