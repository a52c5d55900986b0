/**
 * One system's run: the scenarios in this order, on one cluster of `o.tabs` tabs: join,
 * idle (connections, bytes, CPU), chat, segments (ours only), kv (with the heap around
 * its bulk load, then latency and the reloads), crash one (ours), failure. A scenario
 * that throws is recorded in `errors` and the run goes on with the next one.
 */
import os from 'node:os';
import type { Browser } from '@playwright/test';
import { mean, round, sleep } from '../stats';
import type { SystemKind } from '../types';
import { chat, type ChatResult } from './chat';
import { crashOne, type CrashOneResult } from './crash';
import { failure, type FailureResult } from './failure';
import { emptyResources, idle, type ResourceResult } from './idle';
import { join, type JoinResult } from './join';
import { kv, kvLatency, type KvResult } from './kv';
import { reloads } from './reload';
import { segments, type SegmentsResult } from './segments';
import { watch, type WatchResult } from './watch';
import { heapMB, type BenchOptions, type BenchTab, type SystemTarget } from './shared';

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
  /** ours only: kv.watch notification latency beside put → visible */
  watch?: WatchResult;
  failure?: FailureResult;
  crashOne?: CrashOneResult;
  errors: string[];
  diagnostics?: Record<string, unknown>;
  durationMs: number;
  /** 1-minute load average of the machine when this system's run started and ended */
  loadAvg: { start: number; end: number };
}

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
    const res = emptyResources();
    r.resources = res;
    await step('idle', () => idle(tabs, res));
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
        if (o.only.has('kv') && target.kind === 'ours' && tabs.length > 1) Object.assign(r.kv, await reloads(tabs, o));
      });
    }
    if (o.only.has('watch') && target.kind === 'ours' && tabs.length > 1) await step('watch', async () => void (r.watch = await watch(tabs, o)));
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
