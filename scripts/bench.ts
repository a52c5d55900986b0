/**
 * Cluster benchmark: this project against y-webrtc + Yjs, same scenarios, same run.
 *
 *   npx tsx scripts/bench.ts [--json] [--tabs 8] [--keys 10000] [--chat 500] [--reloads 5]
 *                            [--only join,chat,segments,kv,failure] [--systems ours,yjs] [--no-sim] [--no-relay] [--secret S]
 *
 * Playwright drives Debian's Chromium (/usr/bin/chromium, or CHROMIUM_PATH), one browser
 * context per tab. Ours: the built app (dist/, run `npx vite build` first) served by our
 * signaling server, which also signals. Yjs: a page bundling yjs + y-webrtc (built here
 * with Vite from scripts/bench/yjs-page/) signalling through the stock
 * y-webrtc-signaling server; chat is a Y.Array, the KVS a Y.Map.
 * Scenarios (scripts/bench/scenarios/, one file each; run.ts runs them in order): join,
 * idle, chat, segments (ours only), kv (with heap and reloads), crash one and failure; then
 * scripts/sim.ts at 1,000 and 10,000 nodes; then ours again with every link relayed
 * through a local coturn (join and chat; scripts/bench/scenarios/relay.ts) unless --no-relay.
 * Progress goes to stderr; the
 * table to stdout, or with --json one JSON object to stdout and the table to stderr.
 * --secret S opens our tabs with `#secret=S` (a protected cluster: sealed signaling, secret-bound
 * link hellos), to measure what the secret costs against a run without it.
 * See docs/benchmarks.md, "Cluster benchmark".
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { launchBrowser, ONE_ADDRESS_FOR_MANY, startOurServer, startStockServer } from '../e2e/harness';
import { runSystem, type SystemResult } from './bench/scenarios/run';
import { SCENARIOS, type BenchOptions, type BenchTab, type Scenario, type SystemTarget } from './bench/scenarios/shared';
import { buildAndServeYjsPage } from './bench/yjs';
import { simArgs, runSim } from './bench/sim';
import { simTable, table, targets, targetTable, type SimRun } from './bench/report';
import { relayTable, runRelayBench, type RelayResult } from './bench/scenarios/relay';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
process.chdir(ROOT); // the harness starts the stock server by a relative path

const args = process.argv.slice(2);
const has = (flag: string): boolean => args.includes(flag);
const value = (flag: string): string | undefined => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const int = (flag: string, fallback: number, min: number): number => {
  const v = value(flag);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag} needs an integer ≥ ${min}`);
  return n;
};
const KNOWN = new Set(['--json', '--no-sim', '--no-relay', '--motion', '--tabs', '--keys', '--chat', '--reloads', '--only', '--systems', '--secret', '--help']);
for (let i = 0; i < args.length; i++) {
  if (!KNOWN.has(args[i]!)) throw new Error(`unknown option ${args[i]} (see the header of scripts/bench.ts)`);
  if (['--tabs', '--keys', '--chat', '--reloads', '--only', '--systems', '--secret'].includes(args[i]!)) i++;
}
if (has('--help')) {
  console.log('npx tsx scripts/bench.ts [--json] [--tabs 8] [--keys 10000] [--chat 500] [--reloads 5] [--only join,chat,segments,kv,failure] [--systems ours,yjs] [--no-sim] [--no-relay] [--secret S]');
  process.exit(0);
}

const asJson = has('--json');
const secret = value('--secret');
if (secret !== undefined && secret.length === 0) throw new Error('--secret needs a value');
const tabsN = int('--tabs', 8, 2);
const only = new Set((value('--only') ?? SCENARIOS.join(',')).split(',').map((s) => s.trim()).filter(Boolean) as Scenario[]);
for (const s of only) if (!SCENARIOS.includes(s)) throw new Error(`--only: unknown scenario ${s} (${SCENARIOS.join(', ')})`);
only.add('join'); // every scenario starts from a formed cluster
const systems = new Set((value('--systems') ?? 'ours,yjs').split(',').map((s) => s.trim()));
for (const s of systems) if (s !== 'ours' && s !== 'yjs') throw new Error(`--systems: unknown system ${s}`);

const log = (line: string): void => void process.stderr.write(`${((Date.now() - T0) / 1000).toFixed(1).padStart(6)} s  ${line}\n`);
const T0 = Date.now();

/**
 * Time budget: the whole run (both systems and the simulator) should end within 9 min.
 * The bulk load and the failure scenario are the parts whose length depends on the
 * system's speed; they get what is left after a reserve for the parts still to come.
 */
const BUDGET_MS = 540_000;
let current: 'ours' | 'yjs' = 'ours';
const clamp = (x: number, lo: number, hi: number): number => Math.max(lo, Math.min(hi, x));
const timeLeft = (): number =>
  T0 + BUDGET_MS - Date.now() - (current === 'ours' && systems.has('yjs') ? 110_000 : 0) - (has('--no-sim') ? 0 : 90_000);

const opts: BenchOptions = {
  tabs: tabsN,
  keys: int('--keys', 10_000, 1),
  chat: int('--chat', 500, 1),
  only,
  chatIntervalMs: 50,
  window: 200,
  // after the bulk load: replication wait, latency (≤ 2 × 20 s), visibility (≤ 25 s), heap
  bulkMaxMs: () => clamp(timeLeft() - 90_000 - (only.has('failure') ? 60_000 : 0), 20_000, 300_000),
  replicationMaxMs: () => clamp(timeLeft() - 70_000 - (only.has('failure') ? 60_000 : 0), 15_000, 120_000),
  failureMaxMs: () => clamp(timeLeft() - 10_000, 30_000, 150_000),
  latencyOps: 500,
  visibilitySamples: 200,
  reloads: int('--reloads', 5, 1),
  // 3 of 8; the same share for other sizes, at least one survivor besides the writer
  motion: has('--motion'),
  crash: Math.min(tabsN - 2, Math.max(1, Math.round((tabsN * 3) / 8))),
  segSamples: 200,
  segItems: 1000,
  segCapMs: 20_000,
  log,
};

async function main(): Promise<void> {
  if (systems.has('ours') && !existsSync(`${ROOT}dist/index.html`)) throw new Error('dist/ is missing: run `npx vite build` first');
  const loadStart = os.loadavg();
  const browser = await launchBrowser();
  const browserVersion = browser.version();
  const results: Partial<Record<'ours' | 'yjs', SystemResult>> = {};
  let relay: RelayResult | undefined;
  const runId = `${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
  try {
    if (systems.has('ours')) {
      const server = await startOurServer(0, ONE_ADDRESS_FOR_MANY); // --tabs may be more than one address's share
      const cluster = `bench-${runId}`;
      const target: SystemTarget = {
        kind: 'ours',
        label: secret ? 'this project (secret)' : 'this project',
        reducedMotion: !opts.motion,
        url: (i) => `${server.url}?${new URLSearchParams({ cluster, signaling: server.ws, nick: `t${i}` })}${secret ? `#${new URLSearchParams({ secret })}` : ''}`,
        counters: async (tabs: BenchTab[]) => {
          const sum: Record<string, number> = {};
          for (const st of await Promise.all(tabs.map((t) => t.page.evaluate(() => window.p2p.stats())))) {
            for (const [k, v] of Object.entries(st)) sum[k] = (sum[k] ?? 0) + v;
          }
          return sum;
        },
        diagnostics: async (tabs: BenchTab[]) => ourDiagnostics(tabs, server.server.stats()),
      };
      try {
        results.ours = await runSystem(browser, target, opts);
      } finally {
        await server.close();
      }
    }
    if (systems.has('yjs')) {
      log('[yjs] building the y-webrtc + Yjs page');
      const page = await buildAndServeYjsPage();
      const stock = await startStockServer();
      const room = `bench-${runId}`;
      const target: SystemTarget = {
        kind: 'yjs',
        label: 'y-webrtc + Yjs',
        reducedMotion: !opts.motion,
        url: () => `${page.url}?${new URLSearchParams({ room, signaling: stock.ws })}`,
      };
      // the same number of keys as ours managed, when its bulk load hit the time cap
      const capped = results.ours?.kv?.keysCapped ? results.ours.kv.keys : undefined;
      if (capped !== undefined) log(`[yjs] ${capped} keys, as many as ours wrote before its time cap`);
      current = 'yjs';
      try {
        results.yjs = await runSystem(browser, target, { ...opts, keys: capped ?? opts.keys });
      } finally {
        await stock.close();
        await page.close();
      }
    }
    if (systems.has('ours') && !has('--no-relay')) {
      log('[relay] ours with every link through coturn: join and chat');
      relay = await runRelayBench(browser, opts, runId);
    }
  } finally {
    await browser.close();
  }
  const sims: SimRun[] = [];
  if (!has('--no-sim')) {
    log('simulator: 1,000 and 10,000 nodes (two child processes in parallel)');
    sims.push(...(await Promise.all([runSim(simArgs(1000)), runSim(simArgs(10_000))])));
    for (const s of sims) log(`simulator ${s.args.join(' ')}: ${s.ok ? 'ok' : s.error} in ${(s.wallMs / 1000).toFixed(1)} s`);
  }
  const ts = targets(results.ours, results.yjs);
  const out = {
    meta: {
      date: new Date().toISOString(),
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? '',
      node: process.version,
      browser: `Chromium ${browserVersion}`,
      loadAvgStart: loadStart.map((x) => Math.round(x * 100) / 100),
      loadAvgEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
      durationMs: Date.now() - T0,
      options: { tabs: opts.tabs, keys: opts.keys, chat: opts.chat, only: [...opts.only], chatIntervalMs: opts.chatIntervalMs, window: opts.window, latencyOps: opts.latencyOps, visibilitySamples: opts.visibilitySamples, reloads: opts.reloads, crash: opts.crash, motion: opts.motion, segSamples: opts.segSamples, segItems: opts.segItems, segCapMs: opts.segCapMs },
    },
    ours: results.ours,
    yjs: results.yjs,
    relay,
    targets: ts,
    sim: sims,
  };
  const text = [
    `Cluster benchmark: ${opts.tabs} tabs, ${opts.keys} keys, ${opts.chat} chat messages, tabs with ${opts.motion ? 'animations (--motion)' : 'prefers-reduced-motion'}; ` +
      `Chromium ${browserVersion}, ${os.cpus().length} cores, load average ${loadStart[0]!.toFixed(1)} at start` +
      `${results.ours ? `, ${results.ours.loadAvg.start.toFixed(1)}–${results.ours.loadAvg.end.toFixed(1)} during ours` : ''}` +
      `${results.yjs ? `, ${results.yjs.loadAvg.start.toFixed(1)}–${results.yjs.loadAvg.end.toFixed(1)} during Yjs` : ''}; ${((Date.now() - T0) / 1000).toFixed(0)} s in all`,
    '',
    table(results.ours, results.yjs),
    '',
    targetTable(ts),
    ...(relay ? ['', relayTable(results.ours, relay)] : []),
    ...(sims.length ? ['', `Simulator (scripts/sim.ts ${sims[0]!.args.filter((a) => a !== '--json').slice(2).join(' ')}):`, '', simTable(sims)] : []),
    ...[results.ours, results.yjs].filter((r) => r && r.errors.length).map((r) => `\n${r!.label}: ${r!.errors.join('; ')}`),
  ].join('\n');
  if (asJson) {
    process.stderr.write(`${text}\n`);
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } else {
    process.stdout.write(`${text}\n`);
  }
}

/** stats() counters summed over the live tabs, a few per-tab figures, recent problems(), server stats. */
async function ourDiagnostics(tabs: BenchTab[], serverStats: unknown): Promise<Record<string, unknown>> {
  const per = await Promise.all(
    tabs.map((t) =>
      t.page.evaluate(() => ({
        stats: window.p2p.stats(),
        problems: window.p2p.problems().slice(-5),
        peers: window.p2p.peers().length,
        members: window.p2p.members().length,
      })),
    ),
  );
  const sum: Record<string, number> = {};
  for (const p of per) for (const [k, v] of Object.entries(p.stats)) sum[k] = (sum[k] ?? 0) + v;
  return {
    statsSummed: sum,
    perTab: per.map((p, j) => ({
      tab: tabs[j]!.i,
      peers: p.peers,
      members: p.members,
      localKeys: p.stats['kv.localKeys'],
      consoleErrors: tabs[j]!.consoleErrors,
      problems: p.problems,
    })),
    server: serverStats,
  };
}

main().catch((e: unknown) => {
  console.error(`bench: ${(e as Error).stack ?? String(e)}`);
  process.exit(1);
});
