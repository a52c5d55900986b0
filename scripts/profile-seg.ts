/**
 * Developer tool: where a data-segment queue's puts and takes go.
 *
 *   npx tsx scripts/profile-seg.ts [--tabs 8] [--items 1000] [--window 32] [--takers 3] [--no-profile]
 *
 * Opens N tabs (one browser context each) on a fresh signaling server, waits until they all
 * see each other, then does what `npm run bench`'s segments step does: tab 0 fills one queue
 * with `--items` puts, `--window` in flight, and then `--takers` tabs (from tab 0) take from it
 * at once, one take at a time each, until a take waits 1.5 s for nothing. For each phase it
 * prints operations per second, the segment counters and signatures summed over all tabs
 * per operation, and the CPU of all renderers per operation; with profiling on (the
 * default), the functions with the most self time on tab 0 and on the queue's owner.
 * Needs `npm run build` (`npx vite build --minify false` keeps function names readable).
 */
import type { CDPSession } from '@playwright/test';
import { NAME_SHIM } from './bench/page';
import { launchBrowser, openTab, type Tab, startOurServer, uniqueCluster, waitFor } from '../e2e/harness';
import { numberArg } from './args';
import { chromiumCpu, type Profile, summarise, summedStats } from './cpu-profile';

const TABS = numberArg('tabs', 8);
const ITEMS = numberArg('items', 1000);
const WIN = numberArg('window', 32);
const TAKERS = numberArg('takers', 3);
const TOP = numberArg('top', 25);
const PROFILE = !process.argv.includes('--no-profile');
const KEY = 'prof/q';

type Query = { segments?: { ownerOf(k: string): string } };

/** The tabs' counters that concern segments, signatures and traffic, summed. */
const counters = (tabs: Tab[]): Promise<Map<string, number>> => summedStats(tabs, /^(in\.seg|out\.seg|sig\.|storage\.seg|bytes\.out|messages\.out|frames\.out)/);

async function phase(name: string, tabs: Tab[], sessions: CDPSession[], run: () => Promise<{ ops: number; ms: number; extra: string }>): Promise<void> {
  if (PROFILE) for (const s of sessions) { await s.send('Profiler.enable'); await s.send('Profiler.setSamplingInterval', { interval: 200 }); await s.send('Profiler.start'); }
  const c0 = await counters(tabs);
  const cpu0 = chromiumCpu();
  const r = await run();
  const cpu1 = chromiumCpu();
  const c1 = await counters(tabs);
  const ops = Math.max(1, r.ops);
  console.log(`\n# ${name}: ${r.ops} operations in ${r.ms.toFixed(0)} ms = ${((r.ops / r.ms) * 1000).toFixed(0)}/s; ${r.extra}`);
  console.log(`CPU per operation (µs): renderers ${(((cpu1.renderers - cpu0.renderers) / ops) * 1e6).toFixed(0)} (main threads ${(((cpu1.rendererMain - cpu0.rendererMain) / ops) * 1e6).toFixed(0)}), browser + GPU + network ${(((cpu1.rest - cpu0.rest) / ops) * 1e6).toFixed(0)}`);
  const per = [...c1].map(([k, v]) => [k, (v - (c0.get(k) ?? 0)) / ops] as const).filter(([, v]) => v >= 0.01);
  console.log(`summed over tabs, per operation: ${per.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`);
  if (PROFILE) {
    const profiles = await Promise.all(sessions.map((s) => s.send('Profiler.stop')));
    summarise(`${name}: tab 0`, profiles[0]!.profile as unknown as Profile, TOP);
    if (profiles[1]) summarise(`${name}: the queue's owner`, profiles[1].profile as unknown as Profile, TOP);
  }
}

async function main(): Promise<void> {
  const server = await startOurServer();
  const browser = await launchBrowser();
  try {
    const cluster = uniqueCluster('profseg');
    const tabs: Tab[] = [];
    for (let i = 0; i < TABS; i++) tabs.push(await openTab(browser, server.url, { cluster }));
    for (const t of tabs) await t.page.evaluate(NAME_SHIM);
    await waitFor(() => Promise.all(tabs.map((t) => t.page.evaluate(() => window.p2p.members().length))), (m) => m.every((x) => x === TABS), 60_000, 'formation');
    // let the join settle (graph layout, first floods, rebalancing)
    await new Promise((r) => setTimeout(r, numberArg('settle', 8000)));
    const ownerId = await tabs[0]!.page.evaluate((k) => (window.p2p as unknown as { query?: Query }).query?.segments?.ownerOf(k) ?? null, KEY);
    const ids = await Promise.all(tabs.map((t) => t.page.evaluate(() => window.p2p.id)));
    const ownerTab = ids.indexOf(ownerId ?? '');
    console.log(`${TABS} tabs; the queue's owner is tab ${ownerTab}`);
    const sessions: CDPSession[] = [await tabs[0]!.context.newCDPSession(tabs[0]!.page)];
    if (ownerTab > 0) sessions.push(await tabs[ownerTab]!.context.newCDPSession(tabs[ownerTab]!.page));

    await phase('fill', tabs, sessions, async () => {
      const r = await tabs[0]!.page.evaluate(
        async ({ key, n, win }) => {
          let next = 0;
          let ok = 0;
          let errors = 0;
          const t0 = performance.now();
          const worker = async (): Promise<void> => {
            while (next < n) {
              const i = next++;
              try {
                await window.p2p.segments.put(key, `q${i}`);
                ok++;
              } catch {
                errors++;
              }
            }
          };
          await Promise.all(Array.from({ length: win }, worker));
          return { ok, errors, ms: performance.now() - t0 };
        },
        { key: KEY, n: ITEMS, win: WIN },
      );
      return { ops: r.ok, ms: r.ms, extra: `${r.errors} errors` };
    });

    await phase('takes', tabs, sessions, async () => {
      const startAt = Date.now() + 300;
      const runs = await Promise.all(
        tabs.slice(0, TAKERS).map((t) =>
          t.page.evaluate(
            async ({ key, startAt }) => {
              await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));
              const got: string[] = [];
              let last = Date.now();
              let errors = 0;
              for (;;) {
                try {
                  got.push(String((await window.p2p.segments.take(key, 0, { timeoutMs: 1500 })).value));
                  last = Date.now();
                } catch (e) {
                  if (/timeout/i.test((e as Error).message) || ++errors > 20) break;
                }
              }
              return { got, last, errors };
            },
            { key: KEY, startAt },
          ),
        ),
      );
      const all = runs.flatMap((r) => r.got);
      const dups = all.length - new Set(all).size;
      const end = Math.max(...runs.map((r) => r.last));
      return { ops: all.length, ms: end - startAt, extra: `per taker ${runs.map((r) => r.got.length).join(' / ')}, ${dups} taken twice, ${runs.reduce((a, r) => a + r.errors, 0)} errors` };
    });
  } finally {
    await browser.close();
    await server.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
