/**
 * chat: tab 0 sends `o.chat` messages, one every `o.chatIntervalMs`; latency is the first
 * arrival at each other tab minus the send time (one clock: every tab shares the
 * machine's wall clock), with the bytes sent and the main-thread busy time meanwhile.
 */
import { percentile } from '../../../src/util/percentile';
import { mean, pollUntil, round, sleep } from '../stats';
import { rtcBytes, taskSeconds, type BenchOptions, type BenchTab } from './shared';

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

export async function chat(tabs: BenchTab[], o: BenchOptions, idleRate: number): Promise<ChatResult> {
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
