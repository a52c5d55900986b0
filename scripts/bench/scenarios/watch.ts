/**
 * watch (ours only): a put in the first tab → the `kv.watch` listener of the last tab
 * (watch notification latency), measured beside put → first successful read of the value
 * in that tab (the kv scenario's "visible", polled kv.get) on the same writes.
 */
import { percentile } from '../../../src/util/percentile';
import { round, sleep } from '../stats';
import type { BenchOptions, BenchTab } from './shared';

export interface WatchResult {
  /** put started in tab 0 → the watching tab's listener called with that version */
  notifyMsP50: number | null;
  notifyMsP99: number | null;
  /** the same writes: put started → first read of the value in the watching tab */
  visibleMsP50: number | null;
  visibleMsP99: number | null;
  /** writes whose notification did not arrive within 10 s */
  missing: number;
  samples: number;
  resyncs: number;
}

export async function watch(tabs: BenchTab[], o: BenchOptions): Promise<WatchResult> {
  const writer = tabs[0]!;
  const watcher = tabs[tabs.length - 1]!;
  await watcher.page.evaluate(async () => {
    const w = window as unknown as { __watchAt: Map<string, number>; __watchResyncs: number };
    w.__watchAt = new Map();
    w.__watchResyncs = 0;
    const stop = window.p2p.kv.watch('wv/', (e) => {
      if (e.type === 'put') w.__watchAt.set(`${e.key}=${String(e.value)}`, window.__ba!.now());
      else if (e.type === 'resync') w.__watchResyncs++;
    });
    await stop.ready;
  });
  const notify: number[] = [];
  const visible: number[] = [];
  let missing = 0;
  const until = Date.now() + 25_000;
  for (let s = 0; s < o.visibilitySamples && Date.now() < until; s++) {
    const k = `wv/${s}`;
    const v = `w${s}:`.padEnd(100, '.');
    const seen = watcher.page.evaluate(({ k, v }) => window.__ba!.waitVisible(k, v, 10_000), { k, v });
    await sleep(5);
    const start = await writer.page.evaluate(({ k, v }) => {
      const a = window.__ba!;
      const t = a.now();
      void a.put(k, v).catch(() => undefined);
      return t;
    }, { k, v });
    const readAt = await seen;
    if (readAt !== null) visible.push(readAt - start);
    const at = await watcher.page.evaluate(async ({ id, wait }) => {
      const w = window as unknown as { __watchAt: Map<string, number> };
      const end = Date.now() + wait;
      while (!w.__watchAt.has(id) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      return w.__watchAt.get(id) ?? null;
    }, { id: `${k}=${v}`, wait: 10_000 });
    if (at === null) missing++;
    else notify.push(at - start);
  }
  const resyncs = await watcher.page.evaluate(() => (window as unknown as { __watchResyncs: number }).__watchResyncs);
  return {
    notifyMsP50: round(percentile(notify, 50)),
    notifyMsP99: round(percentile(notify, 99)),
    visibleMsP50: round(percentile(visible, 50)),
    visibleMsP99: round(percentile(visible, 99)),
    missing,
    samples: notify.length + missing,
    resyncs,
  };
}
