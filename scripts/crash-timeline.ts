/**
 * Developer tool: what each survivor knows, and when, after one tab crashes.
 *
 *   npx tsx scripts/crash-timeline.ts [--tabs 8] [--runs 1] [--keys 0]
 *
 * Opens N tabs of the built app (one browser context each) on a fresh signaling server,
 * waits until every tab lists every member, kills the last tab's renderer (CDP
 * Page.crash, its context left open so that only the crash closes its sockets), then polls
 * every survivor every 50 ms and prints, per survivor, the ms after the crash at which it
 * got the crashed tab's will (`will.in`), dropped a link by a check (`links.checkTimeouts`)
 * or by the heartbeat deadline, and stopped counting the tab alive (suspect or dead in
 * `memberViews()`. `--keys K`: tab 0 puts K keys first (in windows of 500), as the bench
 * does before its crash step. Needs `npm run build`.
 */
import { launchBrowser, openTab, type Tab, startOurServer, uniqueCluster, waitFor } from '../e2e/harness';
import { numberArg } from './args';

const arg = numberArg;
const TABS = arg('tabs', 8);
const RUNS = arg('runs', 1);
const KEYS = arg('keys', 0);

interface Seen {
  will?: number;
  check?: number;
  heartbeat?: number;
  notAlive?: number;
}

async function run(): Promise<void> {
  const server = await startOurServer();
  const browser = await launchBrowser();
  try {
    const cluster = uniqueCluster('crash');
    const tabs: Tab[] = [];
    for (let i = 0; i < TABS; i++) tabs.push(await openTab(browser, server.url, { cluster }));
    await waitFor(() => Promise.all(tabs.map((t) => t.page.evaluate(() => window.p2p.members().length))), (m) => m.every((x) => x === TABS), 60_000, 'formation');
    for (let i = 0; i < KEYS; i += 500) {
      await tabs[0]!.page.evaluate(
        ({ from, to }) => Promise.allSettled(Array.from({ length: to - from }, (_, j) => window.p2p.kv.put(`k/${from + j}`, { i: from + j, text: 'x'.repeat(80) }))),
        { from: i, to: Math.min(KEYS, i + 500) },
      );
    }
    await new Promise((r) => setTimeout(r, 3000));
    const victim = tabs[TABS - 1]!;
    const survivors = tabs.slice(0, -1);
    const id = await victim.page.evaluate(() => window.p2p.id);
    const neighbours = await Promise.all(survivors.map((t) => t.page.evaluate((id) => window.p2p.peers().includes(id), id)));
    const cdp = await victim.context.newCDPSession(victim.page);
    const before = server.server.stats();
    const t0 = Date.now();
    console.log(`crashing ${id} at ${new Date(t0).toISOString().slice(11, 23)}; wills the server published before: ${before.willsPublished}, connections ${before.connections}, refused ${JSON.stringify(Object.fromEntries(Object.entries(before.rejected).filter(([, n]) => n > 0)))}`);
    void cdp.send('Page.crash').catch(() => undefined);
    const seen: Seen[] = survivors.map(() => ({}));
    while (Date.now() - t0 < 20_000 && seen.some((s) => s.notAlive === undefined)) {
      const now = await Promise.all(
        survivors.map((t) =>
          t.page.evaluate((id) => {
            const s = window.p2p.stats();
            return {
              will: s['will.in'] ?? 0,
              check: s['links.checkTimeouts'] ?? 0,
              heartbeat: s['links.heartbeatTimeouts'] ?? 0,
              notAlive: window.p2p.memberViews().every((m) => m.id !== id || m.status !== 'alive'),
            };
          }, id),
        ),
      );
      const ms = Date.now() - t0;
      now.forEach((n, i) => {
        const s = seen[i]!;
        if (n.will > 0) s.will ??= ms;
        if (n.check > 0) s.check ??= ms;
        if (n.heartbeat > 0) s.heartbeat ??= ms;
        if (n.notAlive) s.notAlive ??= ms;
      });
      await new Promise((r) => setTimeout(r, 50));
    }
    const fmt = (v: number | undefined) => (v === undefined ? '—' : String(v)).padStart(7);
    console.log(`survivor  neighbour     will    check heartbeat  not alive   (ms after the crash)`);
    seen.forEach((s, i) => console.log(`${String(i).padStart(8)}  ${String(neighbours[i]).padStart(9)}  ${fmt(s.will)}  ${fmt(s.check)}  ${fmt(s.heartbeat)}  ${fmt(s.notAlive)}`));
    const all = seen.map((s) => s.notAlive ?? Infinity);
    console.log(`every survivor has detected it: ${Math.max(...all)} ms`);
    const downs = await Promise.all(survivors.map((t) => t.page.evaluate(() => window.p2p.problems().filter((p) => p.includes('link.down')).slice(-3))));
    downs.forEach((d, i) => d.length && console.log(`survivor ${i} links down: ${d.join(' | ')}`));
    const tooLarge = await Promise.all(survivors.map((t) => t.page.evaluate(() => window.p2p.problems().filter((p) => p.includes('relayTooLarge')).slice(-1))));
    tooLarge.forEach((d, i) => d.length && console.log(`survivor ${i} relays too large: ${d.join(' | ')}`));
  } finally {
    await browser.close();
    await server.close();
  }
}

for (let r = 0; r < RUNS; r++) await run();
