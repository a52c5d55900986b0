/**
 * The scenarios, written once against `window.__ba` (types.ts: PageAdapter) and run for
 * both systems on one cluster each, in this order: join, connections, chat, segments (ours
 * only, segments.ts), kv (with the heap measurement around its bulk load), failure.
 */
import os from 'node:os';
import type { Browser, BrowserContext, CDPSession, Page } from '@playwright/test';
import { NAME_SHIM, pageInit, type PageInitArg } from './page';
import { mean, percentile, pollUntil, round, sleep } from './stats';
import type { RtcBytes, SystemKind } from './types';
import { segments, type SegmentsResult } from './segments';

export type Scenario = 'join' | 'chat' | 'segments' | 'kv' | 'failure';
export const SCENARIOS: Scenario[] = ['join', 'chat', 'segments', 'kv', 'failure'];

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
  /** segments scenario (ours only, scripts/bench/segments.ts): samples per waiting-call measurement, items of the concurrent take, time cap of each part (ms) */
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

export interface ChatResult {
  sent: number;
  sendErrors: number;
  delivered: number;
  expected: number;
  latencyMsP50: number | null;
  latencyMsP99: number | null;
  latencyMsMax: number | null;
  /** (after − before) of transport bytesSent summed over all tabs, per message */
  bytesPerMessage: number | null;
  /** same with data-channel bytesSent (application payload) */
  payloadBytesPerMessage: number | null;
  /** bytesPerMessage minus the idle traffic (ResourceResult.idleBytesPerSec) over the run's duration */
  netBytesPerMessage: number | null;
  durationMs: number;
  /** mean main-thread busy % per tab while the messages were sent and delivered */
  cpuPct: number | null;
  /** ours: change of the stats() counters summed over all tabs during the run */
  counters?: Record<string, number>;
}

export interface KvResult {
  /** keys written by the bulk load (fewer than asked when the time cap stopped it: keysCapped) */
  keys: number;
  keysCapped: boolean;
  putErrors: number;
  firstPutError: string | null;
  /** keys / time until the last put resolved (ours: W=2 acks; Yjs: local set) */
  putsPerSec: number | null;
  /** per-put latency during the pipelined load */
  loadedPutMsP50: number | null;
  loadedPutMsP99: number | null;
  /** time from the first put until every key is held by min(N=3, tabs) tabs (Yjs: by every tab) */
  replicatedMs: number | null;
  replicatedPutsPerSec: number | null;
  replicatedOk: boolean;
  /** mean main-thread busy % per tab from the first put until replicated */
  cpuPct: number | null;
  /** sequential, on a quiet cluster */
  putMsP50: number | null;
  putMsP99: number | null;
  getMsP50: number | null;
  getMsP99: number | null;
  getErrors: number;
  /** put in one tab → first successful read of the value in another */
  visibleMsP50: number | null;
  visibleMsP99: number | null;
  visibleMissing: number;
  /** samples taken (time-capped at 25 s) */
  visibleSamples: number;
  /** sequential operations done (each loop time-capped at 20 s) */
  latencyOps: { put: number; get: number };
  /** ours: change of the stats() counters summed over all tabs from the first put until replicated */
  counters?: Record<string, number>;
  /** ours: tabs holding their share of the keys are reloaded one after another (issue #5: ready within 1 s): the median one */
  reload?: ReloadResult;
  /** ready (ms from navigation) of every reload, in order */
  reloadsMs?: (number | null)[];
  /** the slowest reload (not the median), for its timeline */
  reloadWorst?: ReloadResult;
}

export interface ReloadResult {
  /** keys this tab held before the reload */
  keysBefore: number;
  /** the reloaded tab kept its node id (and so its IndexedDB store) */
  sameId: boolean;
  /** ms from navigation: node id acquired (Web Lock), persisted state loaded (performance marks p2p:id, p2p:started) */
  /** the page's script started running (mark p2p:boot), ms from navigation */
  bootAt: number | null;
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

export interface ResourceResult {
  /** mean main-thread busy % per tab (CDP Performance TaskDuration) over 3 s of an idle, formed cluster */
  cpuIdlePct: number | null;
  /** transport bytes/s sent by all tabs together in that idle window */
  idleBytesPerSec: number | null;
  connectionsMean: number | null;
  connectionsMax: number | null;
  /** RTCPeerConnections ever created, summed over tabs */
  connectionsCreated: number;
  heapBeforeMB: number | null;
  heapAfterMB: number | null;
  /** mean per tab of (JS heap after the bulk load − before), after a forced GC */
  heapGrowthMBPerTab: number | null;
}

export interface FailureResult {
  crashed: number;
  survivors: number;
  /** bulk keys held by no survivor at the crash (every copy was on a crashed tab); left out of the checks below */
  lostKeys: number;
  /** every survivor sees exactly the survivors (ours: members(); Yjs: its open, synced y-webrtc connections + 1) */
  membersMs: number | null;
  /** every survivor has read every (not lost) bulk key at least once since the crash */
  readableMs: number | null;
  /** one more full pass of reads on every survivor after readableMs (at most 30 s): reads that failed or read wrong, summed over survivors */
  verifyFailures: number | null;
  /** keys that pass did not get to within its 30 s, summed over survivors */
  verifyUntried: number | null;
  /** every (not lost) bulk key held by min(3, survivors) survivors (ours: re-replication done) */
  replicatedMs: number | null;
  /** the first probe chat message (one every 250 ms from a survivor) that reached every survivor: its last arrival */
  chatMs: number | null;
  probesSent: number;
  timedOut: string[];
}

/** Ours only: one tab of the cluster crashes (issue #5's target), then a fresh tab takes its place. */
export interface CrashOneResult {
  /** every survivor's membership no longer lists the crashed tab as alive (suspect or dead: its keys move) */
  detectedMs: number | null;
  /** every bulk key held by min(3, survivors) survivors */
  replicatedMs: number | null;
  /** replicatedMs - detectedMs */
  replicatedAfterDetectionMs: number | null;
  /** the replacement tab joined and the cluster was full size again before the next step */
  replaced: boolean;
  timedOut: string[];
}

export interface SystemResult {
  system: SystemKind;
  label: string;
  tabs: number;
  join?: JoinResult;
  resources?: ResourceResult;
  chat?: ChatResult;
  kv?: KvResult;
  /** ours only (Yjs has no waiting queue) */
  segments?: SegmentsResult;
  failure?: FailureResult;
  crashOne?: CrashOneResult;
  errors: string[];
  diagnostics?: Record<string, unknown>;
  durationMs: number;
  /** 1-minute load average of the machine when this system's run started and ended */
  loadAvg: { start: number; end: number };
}

const MB = 1024 * 1024;

/** after − before for the counters that changed (message counts by type, bytes, relays, drops…). */
function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    if (k.startsWith('links.open') || k.startsWith('kv.localKeys') || k.startsWith('storage.pending') || k.startsWith('signaling.')) continue;
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}
const keyOf = (prefix: string, i: number): string => `${prefix}${i}`;

// ---------- tabs ----------

async function openBenchTab(browser: Browser, target: SystemTarget, i: number): Promise<BenchTab> {
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

/** Kills the renderer like harness.crashTab (no pagehide, no goodbye), without its console output. */
async function crash(tab: BenchTab): Promise<void> {
  tab.alive = false;
  const crashed = new Promise<void>((resolve) => tab.page.once('crash', () => resolve()));
  // the call never answers: its target dies while handling it
  void tab.cdp.send('Page.crash').catch(() => undefined);
  await Promise.race([crashed, sleep(5_000)]);
  await tab.context.close().catch(() => undefined);
}

/** Main-thread busy time (CDP Performance TaskDuration, seconds) of each tab, for busy-% over a window. */
async function taskSeconds(tabs: BenchTab[]): Promise<number[]> {
  return Promise.all(
    tabs.map(async (t) => {
      const { metrics } = await t.cdp.send('Performance.getMetrics');
      return metrics.find((m) => m.name === 'TaskDuration')?.value ?? 0;
    }),
  );
}

/** Runs `fn` and returns its result with the mean main-thread busy % per tab meanwhile. */
async function busy<T>(tabs: BenchTab[], fn: () => Promise<T>): Promise<[T, number | null]> {
  const a = await taskSeconds(tabs);
  const t0 = Date.now();
  const v = await fn();
  const b = await taskSeconds(tabs);
  const wall = (Date.now() - t0) / 1000;
  return [v, round(mean(b.map((x, i) => (100 * (x - a[i]!)) / wall)), 1)];
}

async function heapMB(tab: BenchTab): Promise<number> {
  await tab.cdp.send('HeapProfiler.collectGarbage');
  const { usedSize } = await tab.cdp.send('Runtime.getHeapUsage');
  return usedSize / MB;
}

async function rtcBytes(tabs: BenchTab[]): Promise<RtcBytes> {
  const all = await Promise.all(tabs.map((t) => t.page.evaluate(() => window.__ba!.rtcBytes())));
  return all.reduce((a, b) => ({
    transport: a.transport + b.transport,
    dataChannel: a.dataChannel + b.dataChannel,
    created: a.created + b.created,
    connected: a.connected + b.connected,
  }));
}

const members = (t: BenchTab): Promise<number> => t.page.evaluate(() => window.__ba!.members());

/** Tabs holding each key with the prefix, summed: how many keys have fewer than `want` holders. */
async function underReplicated(tabs: BenchTab[], prefix: string, indices: readonly number[], want: number): Promise<number> {
  const held = await Promise.all(tabs.map((t) => t.page.evaluate((p) => window.__ba!.localKeys(p), prefix)));
  const counts = new Map<string, number>();
  for (const h of held) for (const k of h) counts.set(k, (counts.get(k) ?? 0) + 1);
  let missing = 0;
  for (const i of indices) if ((counts.get(keyOf(prefix, i)) ?? 0) < want) missing++;
  return missing;
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

// ---------- the run ----------

export async function runSystem(browser: Browser, target: SystemTarget, o: BenchOptions): Promise<SystemResult> {
  const started = Date.now();
  const r: SystemResult = { system: target.kind, label: target.label, tabs: o.tabs, errors: [], durationMs: 0, loadAvg: { start: round(os.loadavg()[0], 2)!, end: 0 } };
  const tabs: BenchTab[] = [];
  const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
    const t = Date.now();
    o.log(`[${target.kind}] ${name}…`);
    try {
      await fn();
    } catch (e) {
      const msg = `${name}: ${(e as Error).message.split('\n')[0]}`;
      r.errors.push(msg);
      o.log(`[${target.kind}] FAILED ${msg}`);
    }
    o.log(`[${target.kind}] ${name} done in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  };

  try {
    let formed = false;
    await step('join', async () => {
      r.join = await join(browser, target, o, tabs);
      formed = true;
    });
    if (!formed) return r;
    // let the overlay and the membership settle before measuring anything else
    await sleep(2000);
    const res: ResourceResult = {
      cpuIdlePct: null,
      idleBytesPerSec: null,
      connectionsMean: null,
      connectionsMax: null,
      connectionsCreated: 0,
      heapBeforeMB: null,
      heapAfterMB: null,
      heapGrowthMBPerTab: null,
    };
    r.resources = res;
    await step('idle', async () => {
      const per = await Promise.all(tabs.map((t) => t.page.evaluate(() => window.__ba!.rtcBytes())));
      res.connectionsMean = round(mean(per.map((p) => p.connected)));
      res.connectionsMax = Math.max(...per.map((p) => p.connected));
      res.connectionsCreated = per.reduce((a, p) => a + p.created, 0);
      const b0 = await rtcBytes(tabs);
      const t0 = Date.now();
      const [, cpu] = await busy(tabs, () => sleep(3000));
      const b1 = await rtcBytes(tabs);
      res.cpuIdlePct = cpu;
      res.idleBytesPerSec = round((b1.transport - b0.transport) / ((Date.now() - t0) / 1000), 0);
    });
    const counted = async <T extends { counters?: Record<string, number> }>(fn: () => Promise<T>): Promise<T> => {
      const c0 = target.counters ? await target.counters(tabs) : null;
      const v = await fn();
      if (c0) v.counters = delta(c0, await target.counters!(tabs.filter((t) => t.alive)));
      return v;
    };
    if (o.only.has('chat')) await step('chat', async () => void (r.chat = await counted(() => chat(tabs, o, res.idleBytesPerSec ?? 0))));
    if (o.only.has('segments') && target.kind === 'ours') await step('segments', async () => void (r.segments = await segments(tabs, o)));
    const needKeys = o.only.has('kv') || o.only.has('failure');
    if (needKeys) {
      await step('kv', async () => {
        const heapBefore = await Promise.all(tabs.map(heapMB));
        r.kv = await counted(() => kv(tabs, o, target.kind));
        const heapAfter = await Promise.all(tabs.map(heapMB));
        r.resources!.heapBeforeMB = round(mean(heapBefore));
        r.resources!.heapAfterMB = round(mean(heapAfter));
        r.resources!.heapGrowthMBPerTab = round(mean(heapAfter.map((h, i) => h - heapBefore[i]!)));
        if (o.only.has('kv')) await kvLatency(tabs, o, r.kv);
        if (o.only.has('kv') && target.kind === 'ours' && tabs.length > 1) {
          const runs: ReloadResult[] = [];
          for (let k = 0; k < o.reloads; k++) {
            if (k > 0) await sleep(3000); // the previous reload's repair settles
            runs.push(await reloadReady(tabs[1 + (k % (tabs.length - 1))]!));
          }
          const done = runs.filter((x) => x.readyMs !== null).sort((a, b) => a.readyMs! - b.readyMs!);
          // the median (an unfinished reload counts as the slowest), its timeline shown
          r.kv.reload = runs.length > done.length && done.length <= runs.length / 2 ? runs.find((x) => x.readyMs === null) : done[Math.floor((runs.length - 1) / 2)];
          r.kv.reloadsMs = runs.map((x) => x.readyMs);
          r.kv.reloadWorst = runs.find((x) => x.readyMs === null) ?? done[done.length - 1];
        }
      });
    }
    if (o.only.has('failure') && target.kind === 'ours' && tabs.length >= 4 && r.kv) {
      const n = r.kv.keys;
      await step('crash one', async () => void (r.crashOne = await crashOne(browser, target, tabs, o, n)));
    }
    if (o.only.has('failure') && tabs.length - o.crash >= 1 && o.crash > 0 && r.kv && r.crashOne?.replaced !== false) {
      const n = r.kv.keys;
      await step('failure', async () => void (r.failure = await failure(tabs, o, n)));
    }
    if (!o.only.has('kv')) delete r.kv;
    if (target.diagnostics) {
      await step('diagnostics', async () => void (r.diagnostics = await target.diagnostics!(tabs.filter((t) => t.alive))));
    }
  } finally {
    const open = tabs.filter((t) => t.alive);
    for (const t of open) t.alive = false;
    await Promise.all(open.map((t) => t.context.close().catch(() => undefined)));
    r.durationMs = Date.now() - started;
    r.loadAvg.end = round(os.loadavg()[0], 2)!;
  }
  return r;
}

async function join(browser: Browser, target: SystemTarget, o: BenchOptions, tabs: BenchTab[]): Promise<JoinResult> {
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

async function chat(tabs: BenchTab[], o: BenchOptions, idleRate: number): Promise<ChatResult> {
  const before = await rtcBytes(tabs);
  const cpu0 = await taskSeconds(tabs);
  const t0 = Date.now();
  const sender = tabs[0]!;
  const sent = await sender.page.evaluate(
    async ({ count, interval }) => {
      const a = window.__ba!;
      const times: number[] = [];
      const sends: Promise<void>[] = [];
      let errors = 0;
      const start = a.now();
      for (let i = 0; i < count; i++) {
        const wait = start + i * interval - a.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        times.push(a.now());
        sends.push(a.chatSend(`c:${i}`).catch(() => void errors++));
      }
      await Promise.all(sends);
      return { times, errors };
    },
    { count: o.chat, interval: o.chatIntervalMs },
  );
  const receivers = tabs.slice(1);
  const got = await pollUntil(
    () => Promise.all(receivers.map((t) => t.page.evaluate((n) => [...window.__ba!.chatArrivals.keys()].filter((k) => k.startsWith('c:')).length, o.chat))),
    (counts) => counts.every((c) => c >= o.chat),
    30_000,
    100,
  );
  // trailing lazy-push (IHAVE) traffic belongs to the messages too
  await sleep(500);
  const after = await rtcBytes(tabs);
  const durationMs = Date.now() - t0;
  const cpu1 = await taskSeconds(tabs);
  const lat: number[] = [];
  let delivered = 0;
  for (const t of receivers) {
    const arr = await t.page.evaluate((n) => {
      const m = window.__ba!.chatArrivals;
      return Array.from({ length: n }, (_, i) => m.get(`c:${i}`) ?? null);
    }, o.chat);
    arr.forEach((at, i) => {
      if (at !== null) {
        delivered++;
        lat.push(at - sent.times[i]!);
      }
    });
  }
  const gross = (after.transport - before.transport) / o.chat;
  return {
    sent: o.chat,
    sendErrors: sent.errors,
    delivered,
    expected: o.chat * receivers.length,
    latencyMsP50: round(percentile(lat, 50)),
    latencyMsP99: round(percentile(lat, 99)),
    latencyMsMax: lat.length ? round(Math.max(...lat)) : null,
    bytesPerMessage: round(gross, 1),
    payloadBytesPerMessage: round((after.dataChannel - before.dataChannel) / o.chat, 1),
    netBytesPerMessage: round(gross - (idleRate * (durationMs / 1000)) / o.chat, 1),
    durationMs: got.ok ? durationMs : -1,
    cpuPct: round(mean(cpu1.map((x, i) => (100 * (x - cpu0[i]!)) / (durationMs / 1000))), 1),
  };
}

async function kv(tabs: BenchTab[], o: BenchOptions, kind: SystemKind): Promise<KvResult> {
  const writer = tabs[0]!;
  const t0 = Date.now();
  const cpu0 = await taskSeconds(tabs);
  const bulk = await writer.page.evaluate(
    async ({ n, win, maxMs }) => {
      const a = window.__ba!;
      const val = (i: number): string => `v${i}:`.padEnd(100, '.');
      const lat: number[] = [];
      let errors = 0;
      let firstError: string | null = null;
      const start = a.now();
      // time cap: no new puts after maxMs (the keys written are then 0..written-1)
      const open = (): boolean => a.now() - start < maxMs;
      let written = 0;
      if (a.sync) {
        // local document updates: no acknowledgement to wait for; yield to the event
        // loop after every window so the provider's sends go out as they would
        const yieldTask = (): Promise<void> =>
          new Promise((r) => {
            const ch = new MessageChannel();
            ch.port1.onmessage = () => r();
            ch.port2.postMessage(0);
          });
        for (let i = 0; i < n && open(); i++) {
          const s = a.now();
          await a.put(`b/${i}`, val(i));
          lat.push(a.now() - s);
          written = i + 1;
          if (i % win === win - 1) await yieldTask();
        }
      } else {
        let next = 0;
        const worker = async (): Promise<void> => {
          while (next < n && open()) {
            const i = next++;
            written = next;
            const s = a.now();
            try {
              await a.put(`b/${i}`, val(i));
              lat.push(a.now() - s);
            } catch (e) {
              errors++;
              firstError ??= (e as Error).message;
            }
          }
        };
        await Promise.all(Array.from({ length: win }, worker));
      }
      return { ms: a.now() - start, lat, errors, firstError, written };
    },
    { n: o.keys, win: o.window, maxMs: o.bulkMaxMs() },
  );
  const n = bulk.written;
  const want = kind === 'ours' ? Math.min(3, tabs.length) : tabs.length;
  // cheap check first (the per-tab key counts), then the exact one
  const rep = await pollUntil(
    async () => {
      const counts = await Promise.all(tabs.map((t) => t.page.evaluate(() => window.__ba!.localCount())));
      if (counts.reduce((a, b) => a + b, 0) < n * want) return -1;
      return underReplicated(tabs, 'b/', range(n), want);
    },
    (missing) => missing === 0,
    o.replicationMaxMs(),
    100,
  );
  const replicatedMs = Date.now() - t0;
  const cpu1 = await taskSeconds(tabs);
  if (kind === 'ours') {
    // let IndexedDB write-behind drain before the heap is measured
    await pollUntil(() => Promise.all(tabs.map((t) => t.page.evaluate(() => window.p2p.stats()['storage.pending'] ?? 0))), (p) => p.every((x) => x === 0), 30_000, 100);
  }
  return {
    keys: n,
    keysCapped: n < o.keys,
    putErrors: bulk.errors,
    firstPutError: bulk.firstError,
    putsPerSec: round((n - bulk.errors) / (bulk.ms / 1000), 0),
    loadedPutMsP50: round(percentile(bulk.lat, 50)),
    loadedPutMsP99: round(percentile(bulk.lat, 99)),
    replicatedMs: rep.ok ? replicatedMs : null,
    replicatedPutsPerSec: rep.ok ? round(n / (replicatedMs / 1000), 0) : null,
    replicatedOk: rep.ok,
    cpuPct: round(mean(cpu1.map((x, i) => (100 * (x - cpu0[i]!)) / (replicatedMs / 1000))), 1),
    putMsP50: null,
    putMsP99: null,
    getMsP50: null,
    getMsP99: null,
    getErrors: 0,
    visibleMsP50: null,
    visibleMsP99: null,
    visibleMissing: 0,
    visibleSamples: 0,
    latencyOps: { put: 0, get: 0 },
  };
}

/** Unloaded put / get latency and time until readable elsewhere (fills in `res`). */
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

async function kvLatency(tabs: BenchTab[], o: BenchOptions, res: KvResult): Promise<void> {
  const writer = tabs[0]!;
  await sleep(1000);
  const seq = await writer.page.evaluate(
    async ({ ops, n, capMs }) => {
      const a = window.__ba!;
      const val = (i: number): string => `v${i}:`.padEnd(100, '.');
      const put: number[] = [];
      const get: number[] = [];
      let getErrors = 0;
      let until = a.now() + capMs;
      for (let i = 0; i < ops && a.now() < until; i++) {
        const s = a.now();
        await a.put(`l/${i}`, val(i));
        put.push(a.now() - s);
      }
      until = a.now() + capMs;
      for (let i = 0; i < ops && a.now() < until; i++) {
        const k = (i * 7919) % n;
        const s = a.now();
        const v = await a.get(`b/${k}`).catch(() => undefined);
        get.push(a.now() - s);
        if (v !== val(k)) getErrors++;
      }
      return { put, get, getErrors };
    },
    { ops: o.latencyOps, n: res.keys, capMs: 20_000 },
  );
  res.putMsP50 = round(percentile(seq.put, 50), 3);
  res.putMsP99 = round(percentile(seq.put, 99), 3);
  res.getMsP50 = round(percentile(seq.get, 50), 3);
  res.getMsP99 = round(percentile(seq.get, 99), 3);
  res.getErrors = seq.getErrors;

  const observer = tabs[tabs.length - 1]!;
  const vis: number[] = [];
  let missing = 0;
  const visUntil = Date.now() + 25_000;
  for (let s = 0; s < o.visibilitySamples && Date.now() < visUntil; s++) {
    const k = `v/${s}`;
    const v = `w${s}:`.padEnd(100, '.');
    const seen = observer.page.evaluate(({ k, v }) => window.__ba!.waitVisible(k, v, 10_000), { k, v });
    await sleep(5); // the observer is looking before the write starts
    const start = await writer.page.evaluate(({ k, v }) => {
      const a = window.__ba!;
      const t = a.now();
      void a.put(k, v).catch(() => undefined);
      return t;
    }, { k, v });
    const at = await seen;
    if (at === null) missing++;
    else vis.push(at - start);
  }
  res.visibleMsP50 = round(percentile(vis, 50));
  res.visibleMsP99 = round(percentile(vis, 99));
  res.visibleMissing = missing;
  res.visibleSamples = vis.length + missing;
  res.latencyOps = { put: seq.put.length, get: seq.get.length };
}

/** Indices of the victims: spread over tabs 1..n-1 (tab 0 writes and sends, it survives). */
export function victims(n: number, count: number): number[] {
  const out: number[] = [];
  for (let j = 0; j < count; j++) out.push(1 + Math.floor(((j + 0.5) * (n - 1)) / count));
  return [...new Set(out)];
}

/**
 * The last tab crashes: when does every survivor stop counting it alive (the KVS moves its
 * keys then), and when is every key back to 3 copies. Then a fresh tab replaces it, so the
 * crash-3-of-N step that follows starts from a full cluster again.
 */
async function crashOne(browser: Browser, target: SystemTarget, tabs: BenchTab[], o: BenchOptions, n: number): Promise<CrashOneResult> {
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
  const replicated = pollUntil(() => underReplicated(survivors, 'b/', range(n), Math.min(3, survivors.length)), (m) => m === 0, timeout, 100).then((r) =>
    r.ok ? since() : (timedOut.push(`replicated (${r.value} keys below 3 copies)`), null),
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

async function failure(tabs: BenchTab[], o: BenchOptions, n: number): Promise<FailureResult> {
  const dead = new Set(victims(tabs.length, o.crash));
  const survivors = tabs.filter((t) => !dead.has(t.i));
  const timeout = o.failureMaxMs();
  const timedOut: string[] = [];
  // keys whose every copy is on a tab about to crash cannot survive (ours: all N=3
  // replicas crashed); the checks below cover the keys that still have a copy
  const heldBySurvivor = new Set<string>();
  for (const keys of await Promise.all(survivors.map((t) => t.page.evaluate(() => window.__ba!.localKeys('b/'))))) for (const k of keys) heldBySurvivor.add(k);
  const keep = range(n).filter((i) => heldBySurvivor.has(keyOf('b/', i)));
  const t0 = Date.now();
  await Promise.all(tabs.filter((t) => dead.has(t.i)).map(crash));
  const since = (): number => Date.now() - t0;

  const membersTask = async (): Promise<number | null> => {
    const r = await pollUntil(() => Promise.all(survivors.map(members)), (m) => m.every((x) => x === survivors.length), timeout, 100);
    if (!r.ok) timedOut.push(`members (last: ${JSON.stringify(r.value)})`);
    return r.ok ? since() : null;
  };

  /** Reads the keys: those read wrong or whose read failed, and those not tried before `until` (wall-clock ms). */
  const readCheck = (t: BenchTab, idx: number[], until: number): Promise<{ failed: number[]; untried: number[] }> =>
    t.page.evaluate(
      async ({ idx, win, until }) => {
        const a = window.__ba!;
        const val = (i: number): string => `v${i}:`.padEnd(100, '.');
        const failed: number[] = [];
        let next = 0;
        const worker = async (): Promise<void> => {
          while (next < idx.length && Date.now() < until) {
            const i = idx[next++]!;
            const v = await a.get(`b/${i}`).catch(() => undefined);
            if (v !== val(i)) failed.push(i);
          }
        };
        await Promise.all(Array.from({ length: win }, worker));
        return { failed: failed.sort((x, y) => x - y), untried: idx.slice(next) };
      },
      { idx, win: 50, until },
    );
  let verifyFailures: number | null = null;
  let verifyUntried: number | null = null;
  const readTask = async (): Promise<number | null> => {
    const all = keep;
    const pending = survivors.map(() => all);
    while (pending.some((p) => p.length > 0)) {
      if (since() > timeout) {
        timedOut.push(`readable (still unread per survivor: ${pending.map((p) => p.length).join(',')})`);
        return null;
      }
      await Promise.all(
        survivors.map(async (t, j) => {
          if (pending[j]!.length === 0) return;
          const r = await readCheck(t, pending[j]!, t0 + timeout);
          pending[j] = [...r.failed, ...r.untried];
        }),
      );
    }
    const at = since();
    const again = await Promise.all(survivors.map((t) => readCheck(t, all, Date.now() + 30_000)));
    verifyFailures = again.reduce((a, r) => a + r.failed.length, 0);
    verifyUntried = again.reduce((a, r) => a + r.untried.length, 0);
    return at;
  };

  const replicatedTask = async (): Promise<number | null> => {
    const want = Math.min(3, survivors.length);
    const r = await pollUntil(() => underReplicated(survivors, 'b/', keep, want), (m) => m === 0, timeout, 250);
    if (!r.ok) timedOut.push(`replicated (${r.value} keys below ${want} copies)`);
    return r.ok ? since() : null;
  };

  let probesSent = 0;
  const chatTask = async (): Promise<number | null> => {
    const sender = survivors[0]!;
    const sendTimes: number[] = [];
    while (since() < timeout) {
      const p = probesSent++;
      sendTimes.push(Date.now());
      await sender.page.evaluate((p) => void window.__ba!.chatSend(`probe:${p}`).catch(() => undefined), p);
      const arrivals = await Promise.all(
        survivors.map((t) =>
          t.page.evaluate((n) => {
            const m = window.__ba!.chatArrivals;
            return Array.from({ length: n }, (_, i) => m.get(`probe:${i}`) ?? null);
          }, probesSent),
        ),
      );
      for (let i = 0; i < probesSent; i++) {
        const at = arrivals.map((a) => a[i]);
        if (at.every((x) => x !== null)) return Math.round(Math.max(...(at as number[])) - t0);
      }
      await sleep(Math.max(0, sendTimes[p]! + 250 - Date.now()));
    }
    timedOut.push('chat');
    return null;
  };

  const [membersMs, readableMs, replicatedMs, chatMs] = await Promise.all([membersTask(), readTask(), replicatedTask(), chatTask()]);
  return {
    crashed: dead.size,
    survivors: survivors.length,
    lostKeys: n - keep.length,
    membersMs,
    readableMs,
    verifyFailures,
    verifyUntried,
    replicatedMs,
    chatMs,
    probesSent,
    timedOut,
  };
}
