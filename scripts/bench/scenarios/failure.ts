/**
 * failure: `o.crash` tabs (3 of 8) crash at once; times from the crash until the
 * survivors list exactly the survivors, every survivor has read every key not lost,
 * every key is back to min(N, survivors) copies, and a chat probe reaches every survivor.
 */
import { pollUntil, sleep } from '../stats';
import { crash, keyOf, members, range, underReplicated, type BenchOptions, type BenchTab } from './shared';

export interface FailureResult {
  crashed: number;
  survivors: number;
  /** bulk keys held by no survivor at the crash (every copy was on a crashed tab); left out of the checks below */
  lostKeys: number;
  /** every survivor sees exactly the survivors (ours: members(); Yjs: its open, synced y-webrtc connections + 1) */
  membersMs: number | null;
  /**
   * every survivor has read every (not lost) bulk key at least once since the crash, with
   * the API a program reading everything uses (ours: kv.getMany, 1,000 keys per call; Yjs:
   * its local map), retrying the keys whose read failed
   */
  readableMs: number | null;
  /** the first getMany pass: keys whose read failed or read wrong, summed over survivors (retried until read) */
  firstPassFailed: number | null;
  /** getMany passes it took the slowest survivor to read every key */
  passes: number | null;
  /** the first getMany pass (all survivors at once): how long it took, ms */
  firstPassMs: number | null;
  /** the next full pass, one get per key with 50 in flight per survivor (at most 30 s): how long it took (all survivors at once) */
  verifyMs: number | null;
  /** that pass: reads that failed or read wrong, summed over survivors */
  verifyFailures: number | null;
  /** keys that pass did not get to within its 30 s, summed over survivors */
  verifyUntried: number | null;
  /** every (not lost) bulk key held by min(N, survivors) survivors (ours: re-replication done) */
  replicatedMs: number | null;
  /** the first probe chat message (one every 250 ms from a survivor) that reached every survivor: its last arrival */
  chatMs: number | null;
  probesSent: number;
  timedOut: string[];
}

/** Indices of the victims: spread over tabs 1..n-1 (tab 0 writes and sends, it survives). */
export function victims(n: number, count: number): number[] {
  const out: number[] = [];
  for (let j = 0; j < count; j++) out.push(1 + Math.floor(((j + 0.5) * (n - 1)) / count));
  return [...new Set(out)];
}

export async function failure(tabs: BenchTab[], o: BenchOptions, n: number): Promise<FailureResult> {
  const dead = new Set(victims(tabs.length, o.crash));
  const survivors = tabs.filter((t) => !dead.has(t.i));
  const timeout = o.failureMaxMs();
  const timedOut: string[] = [];
  // keys whose every copy is on a tab about to crash cannot survive (ours: all N
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
  /** Reads the keys in calls of `chunk` (getMany): those read wrong or whose read failed. */
  const bulkCheck = (t: BenchTab, idx: number[]): Promise<number[]> =>
    t.page.evaluate(
      async ({ idx, chunk }) => {
        const a = window.__ba!;
        const val = (i: number): string => `v${i}:`.padEnd(100, '.');
        const failed: number[] = [];
        for (let s = 0; s < idx.length; s += chunk) {
          const part = idx.slice(s, s + chunk);
          const got = await a.getMany(part.map((i) => `b/${i}`));
          part.forEach((i, j) => {
            if (got[j]?.v !== val(i)) failed.push(i);
          });
        }
        return failed;
      },
      { idx, chunk: 1_000 },
    );
  let firstPassFailed: number | null = null;
  let passes: number | null = null;
  let firstPassMs: number | null = null;
  let verifyMs: number | null = null;
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
          pending[j] = await bulkCheck(t, pending[j]!);
        }),
      );
      passes = (passes ?? 0) + 1;
      if (passes === 1) {
        firstPassFailed = pending.reduce((a, p) => a + p.length, 0);
        firstPassMs = since();
      }
    }
    const at = since();
    const v0 = Date.now();
    const again = await Promise.all(survivors.map((t) => readCheck(t, all, Date.now() + 30_000)));
    verifyMs = Date.now() - v0;
    verifyFailures = again.reduce((a, r) => a + r.failed.length, 0);
    verifyUntried = again.reduce((a, r) => a + r.untried.length, 0);
    return at;
  };

  const replicatedTask = async (): Promise<number | null> => {
    // ours: the cluster's replica count; Yjs holds every key on every tab (checked at 3 copies, as before)
    const n = await survivors[0]!.page.evaluate(() => (window as { p2p?: { kv: { replication(): { n: number } } } }).p2p?.kv.replication().n ?? 3);
    const want = Math.min(n, survivors.length);
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
    firstPassFailed,
    passes,
    firstPassMs,
    verifyMs,
    verifyFailures,
    verifyUntried,
    replicatedMs,
    chatMs,
    probesSent,
    timedOut,
  };
}
