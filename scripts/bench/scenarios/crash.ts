/**
 * crash one (ours, part of `failure`): the last tab's renderer is killed (issue #5's
 * target); when every survivor stops counting it alive, when every key is back to
 * min(N, survivors) copies; then a fresh tab takes its place.
 */
import type { Browser } from '@playwright/test';
import { pollUntil } from '../stats';
import { crash, members, openBenchTab, range, underReplicated, type BenchOptions, type BenchTab, type SystemTarget } from './shared';

/** Ours only: one tab of the cluster crashes (issue #5's target), then a fresh tab takes its place. */
export interface CrashOneResult {
  /** every survivor's membership no longer lists the crashed tab as alive (suspect or dead: its keys move) */
  detectedMs: number | null;
  /** every bulk key held by min(N, survivors) survivors */
  replicatedMs: number | null;
  /** replicatedMs - detectedMs */
  replicatedAfterDetectionMs: number | null;
  /** the replacement tab joined and the cluster was full size again before the next step */
  replaced: boolean;
  timedOut: string[];
}

/**
 * The last tab crashes: when does every survivor stop counting it alive (the KVS moves its
 * keys then), and when is every key back to N copies. Then a fresh tab replaces it, so the
 * crash-3-of-N step that follows starts from a full cluster again.
 */
export async function crashOne(browser: Browser, target: SystemTarget, tabs: BenchTab[], o: BenchOptions, n: number): Promise<CrashOneResult> {
  const idx = tabs.length - 1;
  const victim = tabs[idx]!;
  const survivors = tabs.filter((t) => t !== victim);
  const timeout = Math.min(60_000, o.failureMaxMs());
  const timedOut: string[] = [];
  const id = await victim.page.evaluate(() => window.p2p.id);
  const t0 = Date.now();
  await crash(victim);
  const since = (): number => Date.now() - t0;
  const detected = pollUntil(
    () => Promise.all(survivors.map((t) => t.page.evaluate((id) => window.p2p.memberViews().every((m) => m.id !== id || m.status !== 'alive'), id))),
    (all) => all.every(Boolean),
    timeout,
    50,
  ).then((r) => (r.ok ? since() : (timedOut.push('detected'), null)));
  const copies = Math.min(await survivors[0]!.page.evaluate(() => window.p2p.kv.replication().n), survivors.length);
  const replicated = pollUntil(() => underReplicated(survivors, 'b/', range(n), copies), (m) => m === 0, timeout, 100).then((r) =>
    r.ok ? since() : (timedOut.push(`replicated (${r.value} keys below ${copies} copies)`), null),
  );
  const [detectedMs, replicatedMs] = await Promise.all([detected, replicated]);
  // a fresh tab in its place; wait until it is a member everywhere and its share has arrived
  let replaced = false;
  try {
    const fresh = await openBenchTab(browser, target, idx);
    tabs[idx] = fresh;
    await fresh.page.waitForFunction(() => window.__ba?.joinedAt != null, undefined, { timeout: 60_000, polling: 100 });
    const full = await pollUntil(() => Promise.all(tabs.map(members)), (m) => m.every((x) => x === tabs.length), 60_000, 200);
    let last = -1;
    const settled = await pollUntil(
      async () => {
        const c = await fresh.page.evaluate(() => window.__ba!.localCount());
        const stable = c > 0 && c === last;
        last = c;
        return stable;
      },
      (stable) => stable,
      60_000,
      2000,
    );
    replaced = full.ok && settled.ok;
    if (!replaced) timedOut.push('replacement tab');
  } catch (e) {
    timedOut.push(`replacement tab: ${(e as Error).message}`);
  }
  return {
    detectedMs,
    replicatedMs,
    replicatedAfterDetectionMs: detectedMs !== null && replicatedMs !== null ? replicatedMs - detectedMs : null,
    replaced,
    timedOut,
  };
}
