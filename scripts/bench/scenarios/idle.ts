/**
 * idle (every run, after join): on the formed, quiet cluster, the WebRTC connections per
 * tab, the bytes all tabs send per second and the main-thread busy time over 3 s right
 * after the join, and again over 10 s once the cluster was left alone 30 s more. The
 * heap figures of the same result are measured around the kv bulk load (run.ts).
 */
import { mean, round, sleep } from '../stats';
import { busy, rtcBytes, type BenchTab } from './shared';

export interface ResourceResult {
  /** mean main-thread busy % per tab (CDP Performance TaskDuration) over 3 s of an idle, formed cluster */
  cpuIdlePct: number | null;
  /** transport bytes/s sent by all tabs together in that idle window */
  idleBytesPerSec: number | null;
  /** the same two figures over SETTLED_WINDOW_MS once the cluster had SETTLE_MS more to settle (links, views and trees done changing) */
  cpuSettledPct: number | null;
  settledBytesPerSec: number | null;
  connectionsMean: number | null;
  connectionsMax: number | null;
  /** RTCPeerConnections ever created, summed over tabs */
  connectionsCreated: number;
  heapBeforeMB: number | null;
  heapAfterMB: number | null;
  /** mean per tab of (JS heap after the bulk load − before), after a forced GC */
  heapGrowthMBPerTab: number | null;
}

export function emptyResources(): ResourceResult {
  return {
    cpuIdlePct: null,
    idleBytesPerSec: null,
    cpuSettledPct: null,
    settledBytesPerSec: null,
    connectionsMean: null,
    connectionsMax: null,
    connectionsCreated: 0,
    heapBeforeMB: null,
    heapAfterMB: null,
    heapGrowthMBPerTab: null,
  };
}

/** Fills in the idle figures of `res`. */
export async function idle(tabs: BenchTab[], res: ResourceResult): Promise<void> {
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
  // the window above starts as the last tab completes its join, while links, views and
  // the broadcast tree are still settling (its figures moved 1-16 % between runs of one
  // build); the cluster left alone a while longer shows what idling itself costs
  await sleep(SETTLE_MS);
  const s0 = await rtcBytes(tabs);
  const u0 = Date.now();
  const [, settled] = await busy(tabs, () => sleep(SETTLED_WINDOW_MS));
  const s1 = await rtcBytes(tabs);
  res.cpuSettledPct = settled;
  res.settledBytesPerSec = round((s1.transport - s0.transport) / ((Date.now() - u0) / 1000), 0);
}

/**
 * How long the cluster is left alone after the first idle window, and the second window's
 * length. 10 s and 5 s until 2026-12-07: once the link heartbeats were slowed, what was
 * left in that window was mostly the join still settling (first floods of each origin's
 * tree, KV rebalancing, the first shuffle walks), and it read 1,156-7,025 bytes/s for 8
 * tabs across runs of one build.
 */
export const SETTLE_MS = 30_000;
export const SETTLED_WINDOW_MS = 10_000;
