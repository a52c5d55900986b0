/**
 * idle (every run, after join): on the formed, quiet cluster, the WebRTC connections per
 * tab, the bytes all tabs send per second and the main-thread busy time over 3 s. The
 * heap figures of the same result are measured around the kv bulk load (run.ts).
 */
import { mean, round, sleep } from '../stats';
import { busy, rtcBytes, type BenchTab } from './shared';

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

export function emptyResources(): ResourceResult {
  return {
    cpuIdlePct: null,
    idleBytesPerSec: null,
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
}
