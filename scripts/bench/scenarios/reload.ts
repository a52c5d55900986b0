/**
 * reload (ours): tabs 1, 2, … in turn, each holding its share of the keys, are reloaded
 * (issue #5: ready within 1 s); time from navigation until `window.p2p.ready` (state
 * restored from IndexedDB, then rejoined), with the page's performance marks and long
 * tasks as a timeline. The median reload is the figure; the slowest is kept too.
 */
import { round, sleep } from '../stats';
import type { BenchOptions, BenchTab } from './shared';

export interface ReloadResult {
  /** keys this tab held before the reload */
  keysBefore: number;
  /** the reloaded tab kept its node id (and so its IndexedDB store) */
  sameId: boolean;
  /** the page's script started running (mark p2p:boot), ms from navigation */
  bootAt: number | null;
  /** ms from navigation: node id acquired (Web Lock), persisted state loaded (performance marks p2p:id, p2p:started) */
  idAt: number | null;
  startedAt: number | null;
  /** time spent loading the persisted state before joining (stats start.loadMs) */
  loadMs: number | null;
  /** entries restored from IndexedDB at start (stats kv.restored) */
  restored: number | null;
  /** navigation start of the reloaded page → `window.p2p.ready` resolved (restored and rejoined) */
  readyMs: number | null;
  /** keys held once ready */
  keysAtReady: number | null;
  /** every p2p:* mark and the navigation's phases, ms from navigation, in order */
  timeline?: [string, number][];
}

export interface ReloadSeries {
  /** the median reload (an unfinished reload counts as the slowest) */
  reload?: ReloadResult;
  /** ready (ms from navigation) of every reload, in order */
  reloadsMs: (number | null)[];
  /** the slowest reload (not the median), for its timeline */
  reloadWorst?: ReloadResult;
}

/** `o.reloads` reloads, tabs 1, 2, … in turn, 3 s apart. */
export async function reloads(tabs: BenchTab[], o: BenchOptions): Promise<ReloadSeries> {
  const runs: ReloadResult[] = [];
  for (let k = 0; k < o.reloads; k++) {
    if (k > 0) await sleep(3000); // the previous reload's repair settles
    runs.push(await reloadReady(tabs[1 + (k % (tabs.length - 1))]!));
  }
  const done = runs.filter((x) => x.readyMs !== null).sort((a, b) => a.readyMs! - b.readyMs!);
  return {
    // the median (an unfinished reload counts as the slowest), its timeline shown
    reload: runs.length > done.length && done.length <= runs.length / 2 ? runs.find((x) => x.readyMs === null) : done[Math.floor((runs.length - 1) / 2)],
    reloadsMs: runs.map((x) => x.readyMs),
    reloadWorst: runs.find((x) => x.readyMs === null) ?? done[done.length - 1],
  };
}

/** Reload one tab that holds keys: how long until it has restored them and rejoined. */
async function reloadReady(tab: BenchTab): Promise<ReloadResult> {
  const [keysBefore, idBefore] = await tab.page.evaluate(() => [window.p2p.kv.localKeys().length, window.p2p.id] as const);
  await tab.page.reload();
  await tab.page.waitForFunction(() => window.p2p !== undefined, undefined, { timeout: 30_000, polling: 10 });
  const r = await tab.page.evaluate(async () => {
    const ok = await Promise.race([window.p2p.ready.then(() => true), new Promise<boolean>((res) => setTimeout(() => res(false), 20_000))]);
    const at = performance.now();
    const mark = (name: string): number | null => {
      const m = performance.getEntriesByName(name, 'mark')[0];
      return m ? Math.round(m.startTime) : null;
    };
    const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming | undefined;
    const timeline: [string, number][] = [];
    if (nav) for (const k of ['unloadEventEnd', 'fetchStart', 'responseEnd', 'domInteractive'] as const) if (nav[k] > 0) timeline.push([k, Math.round(nav[k])]);
    for (const m of performance.getEntriesByType('mark')) if (m.name.startsWith('p2p:')) timeline.push([m.name.slice(4), Math.round(m.startTime)]);
    // long tasks up to now (buffered long animation frames), with their longest script
    const loafs = await new Promise<PerformanceEntry[]>((res) => {
      try {
        const po = new PerformanceObserver((l) => (po.disconnect(), res(l.getEntries())));
        po.observe({ type: 'long-animation-frame', buffered: true });
        setTimeout(() => (po.disconnect(), res([])), 200);
      } catch {
        // a browser without the long-animation-frame entry type: the timeline has no long tasks
        res([]);
      }
    });
    for (const f of loafs as (PerformanceEntry & { scripts?: { duration: number; invoker: string; sourceFunctionName: string }[] })[]) {
      const top = [...(f.scripts ?? [])].sort((a, b) => b.duration - a.duration)[0];
      timeline.push([`long ${Math.round(f.duration)}ms${top ? ` (${top.invoker}${top.sourceFunctionName ? ' ' + top.sourceFunctionName : ''} ${Math.round(top.duration)}ms)` : ''}`, Math.round(f.startTime)]);
    }
    timeline.sort((a, b) => a[1] - b[1]);
    return { timeline, ok, at, bootAt: mark('p2p:boot'), idAt: mark('p2p:id'), startedAt: mark('p2p:started'), loadMs: window.p2p.stats()['start.loadMs'] ?? null, restored: window.p2p.stats()['kv.restored'] ?? null, keys: window.p2p.kv.localKeys().length, id: window.p2p.id };
  });
  return { keysBefore, sameId: r.id === idBefore, bootAt: r.bootAt, idAt: r.idAt, startedAt: r.startedAt, loadMs: r.loadMs, restored: r.restored, readyMs: r.ok ? round(r.at, 1) : null, keysAtReady: r.ok ? r.keys : null, timeline: r.timeline };
}
