/**
 * Developer tool: CPU profile of the pipelined KV put path.
 *
 *   npx tsx scripts/profile-kv.ts [--tabs 4] [--keys 3000] [--window 64]
 *
 * Opens N tabs (one browser context each) on a fresh signaling server, waits until they
 * all see each other, then records a V8 CPU profile (CDP Profiler) on the writing tab and
 * on one replica while the writer pipelines `--keys` puts with `--window` in flight. Prints
 * puts/s and the functions with the most self time in each profile. Needs `npm run build`
 * (`npx vite build --minify false` keeps function names readable).
 *
 * Other options: --chat N (N chat messages at 20/s instead of puts; prints delivery
 * latency, inflated by the profiler's own overhead: use `npm run bench` for latency),
 * --trace (main-thread trace events of the writer by duration, paints, invalidations;
 * --trace-tab 1 for a replica), --detach-ui / --detach SEL
 * (remove the app's DOM or some panels, to see what rendering costs), --settle MS,
 * --no-profile (throughput and main-thread metrics only), --reload (after the puts, profile
 * tab 1 while it reloads until `ready`: its main thread's functions and the reload's marks;
 * with --trace, its main-thread trace in 100 ms steps; --peer: profile or trace tab 0 instead),
 * --read-all K (after the puts, K tabs read every key with kv.getMany; profiles cover the reads;
 * --crash C: C tabs crash at once first),
 * --idle (CPU of the tabs for 5 s once the puts are done and --settle-reload ms passed).
 */
import { writeFileSync } from 'node:fs';
import type { CDPSession } from '@playwright/test';
import { NAME_SHIM } from './bench/page';
import { launchBrowser, openTab, type Tab, startOurServer, uniqueCluster, waitFor } from '../e2e/harness';
import { numberArg } from './args';
import { chromiumCpu, type Profile, summarise, summedStats } from './cpu-profile';

const arg = numberArg;
const TABS = arg('tabs', 4);
const KEYS = arg('keys', 3000);
const WIN = arg('window', 64);
const TOP = arg('top', 25);
/** --trace-tab 1: trace a replica instead of the writer (0) */
const TRACE_TAB = arg('trace-tab', 0);
/** --no-profile: only the throughput and the main-thread metrics (the sampling profiler slows tabs down a lot) */
const RELOAD = process.argv.includes('--reload');
const PROFILE = !process.argv.includes('--no-profile') && !RELOAD;
/** --read-all K: after the puts, K tabs each read every key (getMany); the profiles cover the reads only */
const READ_ALL = arg('read-all', 0);

/** Tab `t` reloads under the sampling profiler; prints where its main thread went until ready. */
async function profileReload(t: Tab, reloaded: CDPSession, peer?: { tab: Tab; session: CDPSession }): Promise<void> {
  // --peer: profile or trace another tab (tab 0) while tab 1 reloads, from the reload on
  const s = peer?.session ?? reloaded;
  await new Promise((r) => setTimeout(r, arg('settle-reload', 3000)));
  const tracing = process.argv.includes('--trace');
  type Ev = { name: string; ph: string; ts: number; dur?: number; tid: number; pid: number; args?: { name?: string; data?: { functionName?: string; url?: string; type?: string } } };
  const events: Ev[] = [];
  let traced: Promise<void> | undefined;
  if (tracing) {
    // --reload --trace: main-thread trace events instead of the sampling profile
    s.on('Tracing.dataCollected', (e) => void events.push(...(e.value as unknown as Ev[])));
    traced = new Promise((r) => s.once('Tracing.tracingComplete', () => r()));
    await s.send('Tracing.start', { categories: 'devtools.timeline,toplevel,blink.user_timing,v8', transferMode: 'ReportEvents' });
  } else {
    await s.send('Profiler.enable');
    await s.send('Profiler.setSamplingInterval', { interval: 200 });
    await s.send('Profiler.start');
  }
  const cpu0 = chromiumCpu();
  if (peer) await peer.tab.page.evaluate(() => performance.mark('p2p:boot'));
  await t.page.reload();
  await t.page.waitForFunction(() => window.p2p !== undefined, undefined, { polling: 10 });
  const marks = await t.page.evaluate(async () => {
    await window.p2p.ready;
    const at = Math.round(performance.now());
    const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming | undefined;
    const out: [string, number][] = [['ready (seen)', at]];
    if (nav) for (const k of ['unloadEventEnd', 'responseEnd', 'domInteractive'] as const) out.push([k, Math.round(nav[k])]);
    for (const m of performance.getEntriesByType('mark')) out.push([m.name, Math.round(m.startTime)]);
    return out.sort((a, b) => a[1] - b[1]);
  });
  const cpu1 = chromiumCpu();
  console.log(`reload: CPU of all renderers ${((cpu1.renderers - cpu0.renderers) * 1000).toFixed(0)} ms (main threads ${((cpu1.rendererMain - cpu0.rendererMain) * 1000).toFixed(0)}), browser + GPU + network ${((cpu1.rest - cpu0.rest) * 1000).toFixed(0)} ms`);
  console.log(`reload: ${marks.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  if (tracing) {
    await s.send('Tracing.end');
    await traced;
    // the reloaded document's main thread: top-level tasks in 100 ms buckets (from the first
    // p2p mark back to navigation), each bucket with the events that took most of it
    const mains = events.filter((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain');
    const boot = events.find((e) => e.name === 'p2p:boot');
    const main = mains.find((m) => boot && m.pid === boot.pid) ?? mains[0];
    if (!main || !boot) return console.log('no main thread / boot mark in the trace');
    const t0 = peer ? boot.ts : boot.ts - marks.find(([k]) => k === 'p2p:boot')![1] * 1000;
    const on = events.filter((e) => e.pid === main.pid && e.tid === main.tid && e.ph === 'X' && e.dur && e.ts >= t0);
    const label = (e: Ev): string => {
      const d = e.args?.data;
      if (e.name === 'FunctionCall' || e.name === 'EvaluateScript') return `${e.name} ${d?.functionName ?? ''} ${(d?.url ?? '').split('/').pop()}`.trim();
      if (e.name === 'EventDispatch' || e.name === 'TimerFire') return `${e.name} ${d?.type ?? ''}`.trim();
      return e.name;
    };
    const children = on.filter((e) => e.name !== 'RunTask' && e.name !== 'ThreadControllerImpl::RunTask');
    const bucketMs = 100;
    for (let b = 0; b * bucketMs < marks[marks.length - 1]![1]; b++) {
      const from = t0 + b * bucketMs * 1000;
      const to = from + bucketMs * 1000;
      const tasks = on.filter((e) => e.name === 'RunTask' || e.name === 'ThreadControllerImpl::RunTask');
      const busy = tasks.reduce((a, e) => a + Math.max(0, Math.min(to, e.ts + e.dur!) - Math.max(from, e.ts)), 0) / 1000;
      const sums = new Map<string, number>();
      for (const e of children) {
        const o = Math.max(0, Math.min(to, e.ts + e.dur!) - Math.max(from, e.ts)) / 1000;
        if (o > 0.5) sums.set(label(e), (sums.get(label(e)) ?? 0) + o);
      }
      const top = [...sums.entries()].sort((a, c) => c[1] - a[1]).slice(0, 5).map(([k, v]) => `${k} ${v.toFixed(0)}`).join('; ');
      console.log(`${String(b * bucketMs).padStart(5)} ms  busy ${busy.toFixed(0).padStart(3)} ms  ${top}`);
    }
    // totals up to ready, by event (nested events overlap)
    const end = t0 + marks[marks.length - 1]![1] * 1000;
    const totals = new Map<string, number>();
    for (const e of children) {
      const o = Math.max(0, Math.min(end, e.ts + e.dur!) - e.ts) / 1000;
      if (o > 0) totals.set(label(e), (totals.get(label(e)) ?? 0) + o);
    }
    console.log('until ready, main thread by event (ms; nested events overlap):');
    for (const [k, v] of [...totals.entries()].sort((a, c) => c[1] - a[1]).slice(0, 30)) console.log(`${v.toFixed(0).padStart(7)}  ${k}`);
    return;
  }
  const { profile } = await s.send('Profiler.stop');
  console.log(`reload: ${marks.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`reload: CPU of all renderers ${((cpu1.renderers - cpu0.renderers) * 1000).toFixed(0)} ms (main threads ${((cpu1.rendererMain - cpu0.rendererMain) * 1000).toFixed(0)}), browser + GPU + network ${((cpu1.rest - cpu0.rest) * 1000).toFixed(0)} ms`);
  summarise(peer ? 'tab 0 while tab 1 reloads' : 'reloaded tab, navigation to ready', profile as unknown as Profile, TOP);
  // self time by script file and the top-level phases V8 reports
  const p = profile as unknown as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const byFile = new Map<string, number>();
  p.samples.forEach((id, i) => {
    const f = byId.get(id)!.callFrame;
    const k = f.url ? f.url.split('/').pop()! : f.functionName;
    byFile.set(k, (byFile.get(k) ?? 0) + (p.timeDeltas[i] ?? 0));
  });
  console.log('self time by script (or V8 phase):');
  for (const [k, v] of [...byFile.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`${(v / 1000).toFixed(1).padStart(8)} ms  ${k}`);
}

async function main(): Promise<void> {
  const server = await startOurServer();
  const browser = await launchBrowser();
  try {
    const cluster = uniqueCluster('prof');
    const tabs: Tab[] = [];
    for (let i = 0; i < TABS; i++) tabs.push(await openTab(browser, server.url, { cluster }));
    // let the overlay graph's layout settle (its animation repaints the page for a few seconds)
    await new Promise((r) => setTimeout(r, arg('settle', 8000)));
    // tsx wraps named functions in __name(); give the pages a no-op one
    for (const t of tabs) await t.page.evaluate(NAME_SHIM);
    await waitFor(() => Promise.all(tabs.map((t) => t.page.evaluate(() => window.p2p.members().length))), (m) => m.every((x) => x === TABS), 60_000, 'formation');
    // --detach-ui: take the app's DOM out of the document (no style/layout/paint; Svelte still runs)
    if (process.argv.includes('--detach-ui')) for (const t of tabs) await t.page.evaluate(() => document.getElementById('app')?.remove());
    // --detach <css selector>: remove just those elements (to find what costs rendering time)
    const di = process.argv.indexOf('--detach');
    if (di >= 0) for (const t of tabs) await t.page.evaluate((sel) => document.querySelectorAll(sel).forEach((e) => e.remove()), process.argv[di + 1]!);
    const sessions: CDPSession[] = [];
    for (const t of tabs.slice(0, 2)) {
      const s = await t.context.newCDPSession(t.page);
      await s.send('Performance.enable');
      if (PROFILE) {
        await s.send('Profiler.enable');
        await s.send('Profiler.setSamplingInterval', { interval: 200 });
        await s.send('Profiler.start');
      }
      sessions.push(s);
    }
    const metrics = async (): Promise<Record<string, number>[]> =>
      (await Promise.all(sessions.map((s) => s.send('Performance.getMetrics')))).map((m) => Object.fromEntries(m.metrics.map((x) => [x.name, x.value])));
    const m0 = await metrics();
    // --trace: Chrome trace of the writer (or --trace-tab 1, a replica); main-thread events by name
    const tracing = process.argv.includes('--trace');
    const events: { name: string; ph: string; dur?: number; tid: number; pid: number; args?: { name?: string; data?: { functionName?: string; url?: string; lineNumber?: number; id?: number; clip?: number[]; nodeId?: number } } }[] = [];
    let traced: Promise<void> | undefined;
    if (tracing) {
      const s = sessions[TRACE_TAB]!;
      s.on('Tracing.dataCollected', (e) => void events.push(...(e.value as unknown as typeof events)));
      traced = new Promise((r) => s.once('Tracing.tracingComplete', () => r()));
      await s.send('Tracing.start', { categories: 'devtools.timeline,disabled-by-default-devtools.timeline,toplevel,disabled-by-default-devtools.timeline.invalidationTracking', transferMode: 'ReportEvents' });
    }
    const CHAT = arg('chat', 0);
    if (CHAT > 0) {
      // arrival times at every other tab, for delivery latency (one machine: one wall clock)
      for (const t of tabs.slice(1)) {
        await t.page.evaluate(() => {
          const w = window as unknown as { __arr: Map<string, number> };
          w.__arr = new Map();
          window.p2p.on((e) => {
            if (e.type === 'chat' && !w.__arr.has(e.message.text)) w.__arr.set(e.message.text, performance.timeOrigin + performance.now());
          });
        });
      }
      // --chat N: tab 0 sends N chat messages, one every 50 ms (as the bench does), instead of puts
      const ms = await tabs[0]!.page.evaluate(async (n) => {
        const t0 = performance.now();
        const sends: Promise<void>[] = [];
        for (let i = 0; i < n; i++) {
          const wait = t0 + i * 50 - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          (window as unknown as { __sent: Map<string, number> }).__sent ??= new Map();
          (window as unknown as { __sent: Map<string, number> }).__sent.set(`c:${i}`, performance.timeOrigin + performance.now());
          sends.push(window.p2p.chat.send(`c:${i}`));
        }
        await Promise.all(sends);
        return performance.now() - t0;
      }, CHAT);
      console.log(`${CHAT} chat messages in ${ms.toFixed(0)} ms`);
      await new Promise((r) => setTimeout(r, 2000));
      const sent = new Map(await tabs[0]!.page.evaluate(() => [...(window as unknown as { __sent: Map<string, number> }).__sent]));
      const lat: number[] = [];
      let missing = 0;
      for (const t of tabs.slice(1)) {
        const arr = new Map(await t.page.evaluate(() => [...(window as unknown as { __arr: Map<string, number> }).__arr]));
        for (const [k, at] of sent) {
          const got = arr.get(k);
          if (got === undefined) missing++;
          else lat.push(got - at);
        }
      }
      lat.sort((a, b) => a - b);
      const pct = (p: number): string => (lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] ?? NaN).toFixed(1);
      console.log(`delivery latency p50 ${pct(50)} ms, p90 ${pct(90)} ms, p99 ${pct(99)} ms, max ${pct(100)} ms; missing ${missing}`);
    }
    const traffic = async (): Promise<number[]> => {
      const all = await Promise.all(tabs.map((t) => t.page.evaluate(() => { const s = window.p2p.stats(); return [s['frames.out'] ?? 0, s['messages.out'] ?? 0, s['bytes.out'] ?? 0]; })));
      return [0, 1, 2].map((i) => all.reduce((a, x) => a + x[i]!, 0));
    };
    const tr0 = await traffic();
    const cpu0 = chromiumCpu();
    const putCounts = (): Promise<Map<string, number>> => summedStats(tabs, /^(in\.|out\.|sig\.(sealed|routesSealed|verified|entries))/);
    const p0 = CHAT === 0 ? await putCounts() : null;
    const r = CHAT > 0 ? { ms: 1, errors: 0 } : await tabs[0]!.page.evaluate(
      async ({ n, win }) => {
        const val = (i: number): string => `v${i}:`.padEnd(100, '.');
        let next = 0;
        let errors = 0;
        const t0 = performance.now();
        const worker = async (): Promise<void> => {
          while (next < n) {
            const i = next++;
            try {
              await window.p2p.kv.put(`p/${i}`, val(i));
            } catch {
              errors++;
            }
          }
        };
        await Promise.all(Array.from({ length: win }, worker));
        if (n < 10) await new Promise((r) => setTimeout(r, 3000)); // --keys < 10: an idle window
        return { ms: performance.now() - t0, errors };
      },
      { n: KEYS, win: WIN },
    );
    if (CHAT === 0) console.log(`${KEYS} puts, window ${WIN}, ${TABS} tabs: ${r.ms.toFixed(0)} ms = ${((KEYS / r.ms) * 1000).toFixed(0)} puts/s, ${r.errors} errors`);
    if (p0 !== null) {
      const p1 = await putCounts();
      console.log(`counters summed over tabs, per put: ${[...p1].filter(([k, v]) => v - (p0.get(k) ?? 0) >= KEYS * 0.01).map(([k, v]) => `${k} ${((v - (p0.get(k) ?? 0)) / KEYS).toFixed(2)}`).join(', ')}`);
    }
    if (READ_ALL > 0) {
      // --read-all K: the profiles cover only the reads: K tabs (from tab 0) each read every
      // key with kv.getMany, 1,000 keys a call, as the bench's failure step does (no crash)
      if (PROFILE) for (const s of sessions) { await s.send('Profiler.stop'); await s.send('Profiler.start'); }
      const counts = (): Promise<Map<string, number>> => summedStats(tabs, /^(in\.kv\.|sig\.|kv\.(read|spec|head))/);
      // --crash K: first crash K tabs at once (the last ones; tabs 0 and 1, profiled, survive)
      const CRASH = arg('crash', 0);
      if (CRASH > 0) {
        await Promise.all(
          tabs.slice(-CRASH).map(async (t) => {
            const cdp = await t.context.newCDPSession(t.page);
            const crashed = new Promise<void>((r) => t.page.once('crash', () => r()));
            void cdp.send('Page.crash').catch(() => undefined);
            await Promise.race([crashed, new Promise((r) => setTimeout(r, 5000))]);
            await t.context.close().catch(() => undefined);
          }),
        );
        tabs.splice(-CRASH);
        console.log(`crashed ${CRASH} tabs; the reads start now`);
      }
      const s0 = await counts();
      const c0 = chromiumCpu();
      const t0 = Date.now();
      // meanwhile: when tab 0 first lists only the survivors (the crash detected)
      let reading = true;
      let detectedMs: number | null = null;
      const watch = (async () => {
        while (reading && detectedMs === null) {
          const n = await tabs[0]!.page.evaluate(() => window.p2p.members().length).catch(() => -1);
          if (n === tabs.length) detectedMs = Date.now() - t0;
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const per = await Promise.all(tabs.slice(0, READ_ALL).map((t) => t.page.evaluate(async ({ n, at }) => {
        const t1 = performance.now();
        let bad = 0;
        // when each 1,000-key call ended, in ms since the reads started (wall clock)
        const ends: number[] = [];
        for (let from = 0; from < n; from += 1000) {
          const keys = Array.from({ length: Math.min(1000, n - from) }, (_, j) => `p/${from + j}`);
          for (const r of await window.p2p.kv.getMany(keys)) if (r.value !== `v${r.key.slice(2)}:`.padEnd(100, '.')) bad++;
          ends.push(Date.now() - at);
        }
        return { ms: performance.now() - t1, bad, ends };
      }, { n: KEYS, at: t0 })));
      reading = false;
      await watch;
      if (CRASH > 0) {
        const ends = per.flatMap((x) => x.ends).sort((a, b) => a - b);
        const before = detectedMs === null ? ends.length : ends.filter((e) => e <= detectedMs!).length;
        console.log(`read-all: tab 0 listed only the survivors ${detectedMs === null ? 'not before the reads ended' : `at ${detectedMs} ms`}; 1,000-key calls done by then ${before} of ${ends.length}; call ends (ms): ${ends.join(' ')}`);
      }
      const c1 = chromiumCpu();
      const s1 = await counts();
      console.log(`read-all, counters summed over tabs (per key read): ${[...s1].filter(([k, v]) => v - (s0.get(k) ?? 0) > 0).map(([k, v]) => `${k} ${((v - (s0.get(k) ?? 0)) / (KEYS * READ_ALL)).toFixed(3)}`).join(', ')}`);
      console.log(`read-all: ${READ_ALL} tabs each read ${KEYS} keys (getMany, 1,000 a call): all done in ${Date.now() - t0} ms; per tab ${per.map((x) => x.ms.toFixed(0)).join(', ')} ms; wrong or failed ${per.reduce((a, x) => a + x.bad, 0)}; CPU per key read (µs): renderers ${(((c1.renderers - c0.renderers) / (KEYS * READ_ALL)) * 1e6).toFixed(0)} (main threads ${(((c1.rendererMain - c0.rendererMain) / (KEYS * READ_ALL)) * 1e6).toFixed(0)})`);
    }
    const cpu1 = chromiumCpu();
    const m1 = await metrics();
    const tr1 = await traffic();
    const per = (i: number): string => ((tr1[i]! - tr0[i]!) / Math.max(1, KEYS)).toFixed(2);
    if (CHAT === 0) {
      console.log(`all tabs, per put: ${per(0)} data-channel messages, ${per(1)} protocol messages, ${per(2)} bytes`);
      const us = (k: 'renderers' | 'rendererMain' | 'rest'): string => (((cpu1[k] - cpu0[k]) / KEYS) * 1e6).toFixed(0);
      console.log(`CPU per put (µs): renderers ${us('renderers')} (main threads ${us('rendererMain')}), browser + GPU + network ${us('rest')}`);
    }
    if (tracing) {
      await sessions[TRACE_TAB]!.send('Tracing.end');
      await traced;
      const main = events.find((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain');
      // --trace-out FILE: the raw trace events, for a closer look (chrome://tracing or a script)
      const out = process.argv.indexOf('--trace-out');
      if (out >= 0) writeFileSync(process.argv[out + 1]!, JSON.stringify(events));
      const byName = new Map<string, { us: number; n: number }>();
      for (const e of events) {
        if (!main || e.tid !== main.tid || e.pid !== main.pid || e.ph !== 'X' || !e.dur) continue;
        const d = e.args?.data;
        const name = e.name === 'FunctionCall' && d ? `FunctionCall ${d.functionName || '?'} ${(d.url ?? '').split('/').pop()}:${d.lineNumber}` : e.name;
        const x = byName.get(name) ?? { us: 0, n: 0 };
        x.us += e.dur;
        x.n++;
        byName.set(name, x);
      }
      console.log('traced tab, main thread, trace events by total duration (nested events overlap):');
      for (const [k, v] of [...byName.entries()].sort((a, b) => b[1].us - a[1].us).slice(0, 25)) console.log(`${(v.us / 1000).toFixed(0).padStart(8)} ms ${String(v.n).padStart(7)}×  ${k}`);
      // which part of the page the paints cover: clip rectangle (x,y wxh) and the painted node
      const paints = new Map<string, { us: number; n: number }>();
      for (const e of events) {
        if (e.name !== 'Paint' || !main || e.tid !== main.tid || e.ph !== 'X' || !e.dur) continue;
        const c = e.args?.data?.clip ?? [];
        const [x, y, w, h] = [c[0] ?? 0, c[1] ?? 0, (c[2] ?? 0) - (c[0] ?? 0), (c[5] ?? 0) - (c[1] ?? 0)].map(Math.round);
        const k = `${x},${y} ${w}x${h} node ${e.args?.data?.nodeId ?? '?'}`;
        const v = paints.get(k) ?? { us: 0, n: 0 };
        v.us += e.dur;
        v.n++;
        paints.set(k, v);
      }
      const inval = new Map<string, number>();
      for (const e of events) {
        if (!e.name.includes('Invalidation') || e.tid !== main?.tid) continue;
        const d = e.args?.data as { nodeName?: string; reason?: string } | undefined;
        const k = `${e.name} ${d?.nodeName ?? '?'} ${d?.reason ?? ''}`;
        inval.set(k, (inval.get(k) ?? 0) + 1);
      }
      console.log('traced tab, layout and style invalidations by node:');
      for (const [k, n] of [...inval.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${String(n).padStart(7)}×  ${k}`);
      console.log('traced tab, paints by clip rectangle and node:');
      for (const [k, v] of [...paints.entries()].sort((a, b) => b[1].us - a[1].us).slice(0, 12)) console.log(`${(v.us / 1000).toFixed(0).padStart(8)} ms ${String(v.n).padStart(7)}×  ${k}`);
    }
    for (const [i, name] of ['writer', 'replica'].entries()) {
      const d = (k: string): string => (m1[i]![k]! - m0[i]![k]!).toFixed(k.endsWith('Duration') ? 2 : 0);
      console.log(`${name}: task ${d('TaskDuration')} s, script ${d('ScriptDuration')} s, layout ${d('LayoutDuration')} s (${d('LayoutCount')}), style ${d('RecalcStyleDuration')} s (${d('RecalcStyleCount')})`);
    }
    if (process.argv.includes('--idle')) {
      // --idle: CPU of all Chromium processes over 5 s once the puts are done (after --settle-reload)
      await new Promise((r) => setTimeout(r, arg('settle-reload', 3000)));
      const c0 = chromiumCpu();
      const m0i = await metrics();
      await new Promise((r) => setTimeout(r, 5000));
      const c1 = chromiumCpu();
      const m1i = await metrics();
      console.log(`idle 5 s after the puts: renderers ${(((c1.renderers - c0.renderers) / 5) * 100).toFixed(0)} % of a core (main threads ${(((c1.rendererMain - c0.rendererMain) / 5) * 100).toFixed(0)} %), browser + GPU + network ${(((c1.rest - c0.rest) / 5) * 100).toFixed(0)} %`);
      for (const [i, name] of ['writer', 'replica'].entries()) console.log(`  ${name}: task ${((m1i[i]!.TaskDuration! - m0i[i]!.TaskDuration!) / 5 * 100).toFixed(0)} %, script ${((m1i[i]!.ScriptDuration! - m0i[i]!.ScriptDuration!) / 5 * 100).toFixed(0)} %, layout ${((m1i[i]!.LayoutDuration! - m0i[i]!.LayoutDuration!) / 5 * 100).toFixed(0)} %`);
    }
    if (RELOAD) await profileReload(tabs[1]!, sessions[1]!, process.argv.includes('--peer') ? { tab: tabs[0]!, session: sessions[0]! } : undefined);
    if (PROFILE) {
      const profiles = await Promise.all(sessions.map((s) => s.send('Profiler.stop')));
      summarise('writer', profiles[0]!.profile as unknown as Profile, TOP);
      summarise('replica', profiles[1]!.profile as unknown as Profile, TOP);
      // --profile-out PREFIX: PREFIX-writer.cpuprofile and PREFIX-replica.cpuprofile (DevTools opens them)
      const out = process.argv.indexOf('--profile-out');
      if (out >= 0) for (const [i, name] of ['writer', 'replica'].entries()) writeFileSync(`${process.argv[out + 1]}-${name}.cpuprofile`, JSON.stringify(profiles[i]!.profile));
    }
  } finally {
    await browser.close();
    await server.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
