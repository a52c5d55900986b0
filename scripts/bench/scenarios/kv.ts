/**
 * kv: a bulk load from tab 0 (`o.keys` puts of ~100 B, `o.window` in flight), timed until
 * every key has min(N, tabs) holders (Yjs: every tab); then, on the quiet cluster,
 * sequential put / get latency and the time until a put in one tab reads back in another.
 */
import { percentile } from '../../../src/util/percentile';
import type { SystemKind } from '../types';
import { mean, pollUntil, round, sleep } from '../stats';
import type { ReloadResult } from './reload';
import { range, rtcBytes, sampleVisible, taskSeconds, underReplicated, type BenchOptions, type BenchTab } from './shared';

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
  /** time from the first put until every key is held by min(N, tabs) tabs (Yjs: by every tab) */
  replicatedMs: number | null;
  replicatedPutsPerSec: number | null;
  /**
   * Transport bytes sent by all tabs from the first put until every key had its copies
   * (ours: N replicas, acks, routing and hinted copies included; Yjs: every tab), per put.
   */
  bytesPerPut: number | null;
  /** ours: the replica count the cluster used */
  replicas?: number;
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

export async function kv(tabs: BenchTab[], o: BenchOptions, kind: SystemKind): Promise<KvResult> {
  const writer = tabs[0]!;
  const bytes0 = await rtcBytes(tabs);
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
  const replicas = kind === 'ours' ? await tabs[0]!.page.evaluate(() => window.p2p.kv.replication().n) : undefined;
  const want = replicas !== undefined ? Math.min(replicas, tabs.length) : tabs.length;
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
  const bytes1 = await rtcBytes(tabs);
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
    bytesPerPut: rep.ok && n > 0 ? round((bytes1.transport - bytes0.transport) / n, 0) : null,
    replicas,
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
export async function kvLatency(tabs: BenchTab[], o: BenchOptions, res: KvResult): Promise<void> {
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

  const { visible: vis, missing } = await sampleVisible(writer, tabs[tabs.length - 1]!, 'v/', o);
  res.visibleMsP50 = round(percentile(vis, 50));
  res.visibleMsP99 = round(percentile(vis, 99));
  res.visibleMissing = missing;
  res.visibleSamples = vis.length + missing;
  res.latencyOps = { put: seq.put.length, get: seq.get.length };
}
