/**
 * The `segments` scenario (this project only: y-webrtc + Yjs has no waiting queue).
 *
 *  1. Waiting peek: tab B (the waiter) calls `p2p.segments.peek(key, lastId)`, which waits;
 *     once the call is registered at the key's owner, tab A (the putter) calls
 *     `put(key, v)`. Latency = B's clock when the peek resolves − A's clock just before
 *     the put is issued. Both clocks are `performance.timeOrigin + performance.now()`
 *     (window.__ba.now, as in the chat and kv scenarios): every tab runs on this machine
 *     and shares its wall clock.
 *  2. Waiting take: the same with `take(key, 0)` on an empty queue.
 *  3. Concurrent takes: one queue filled with `items` puts (pipelined, from one tab), then
 *     3 tabs take from it at once, one take at a time each, until a take waits 1.5 s for
 *     nothing; items/s, and every acknowledged item must be taken exactly once.
 *
 * Keys of 1 and 2 are chosen so that the owner is the putter for a third of them, the
 * waiter for a third, and another tab for the rest (the owner and the "registered"
 * check read the core through the runtime node's `query` facade (core/queries.ts), which
 * the page API does not include; without it the keys are taken as they come and the bench
 * waits a fixed 30 ms for the registration instead).
 */
import { percentile } from '../../../src/util/percentile';
import { pollUntil, round, sleep } from '../stats';
import type { BenchOptions, BenchTab } from './shared';

export type OwnerAt = 'putter' | 'waiter' | 'other';

export interface SegLatency {
  /** samples with an answer (resolved with the value just put) */
  samples: number;
  msP50: number | null;
  msP99: number | null;
  msMax: number | null;
  /** the waiting call did not resolve within 10 s */
  missing: number;
  /** resolved with another value than the one just put */
  wrong: number;
  /** samples whose call was not seen registered at the owner within 1 s before the put (still measured) */
  notRegistered: number;
  /** per owner location (null when the owner could not be read) */
  byOwner: Record<OwnerAt, { samples: number; msP50: number | null; msP99: number | null }> | null;
}

export interface SegConcurrent {
  /** items asked for / acknowledged by the fill */
  items: number;
  putsOk: number;
  putErrors: number;
  /** pipelined puts (32 in flight) from one tab until the last acknowledgement */
  fillPutsPerSec: number | null;
  takers: number;
  /** tab index of the queue's owner (the takers are tabs 0, 1, 2), null when it could not be read */
  ownerTab: number | null;
  /** successful takes, summed over the takers */
  taken: number;
  perTaker: number[];
  /** items handed out more than once (extra copies) */
  duplicates: number;
  /** acknowledged items no taker got */
  missing: number;
  /** of those, items still in the queue afterwards (drained by one more tab) */
  leftover: number;
  /** items taken that no acknowledged put wrote (a put that timed out but was applied) */
  unexpected: number;
  takeErrors: number;
  /** from the common start until the last successful take (ms) */
  ms: number | null;
  itemsPerSec: number | null;
}

export interface SegmentsResult {
  /** tab indices of the putter and the waiter */
  putter: number;
  waiter: number;
  /** owner location could be read (core internals present) */
  ownerVisible: boolean;
  keys: { peek: number; take: number; owners: Record<OwnerAt, number> | null };
  peek: SegLatency;
  take: SegLatency;
  concurrent: SegConcurrent;
  /** change of the core's segments counters (sent.<type>, received.<type>, retransmits, redirected…) summed over all tabs */
  counters?: Record<string, number>;
}

interface KeyInfo {
  key: string;
  owner: OwnerAt | null;
}

/** What the bench reads of a tab's core queries: segment owners and SegStats (counters, gauges, per-type message counts). */
type PageQuery = { segments?: { ownerOf(k: string): string }; stats?: { segments(): Record<string, number | Record<string, number>> } };

/** The owner of each key in a tab's view, or null for each when the tab's core cannot be read (see the header). */
async function ownerOf(tab: BenchTab, keys: string[]): Promise<(string | null)[]> {
  return tab.page.evaluate((keys) => {
    const seg = (window.p2p as unknown as { query?: PageQuery }).query?.segments;
    return keys.map((k) => (seg && typeof seg.ownerOf === 'function' ? seg.ownerOf(k) : null));
  }, keys);
}

/** A tab's segment stats, flat: per-type message counts as `sent.<type>` and `received.<type>`. */
async function segStats(tab: BenchTab): Promise<Record<string, number> | null> {
  const stats = await tab.page.evaluate(() => {
    const q = (window.p2p as unknown as { query?: PageQuery }).query?.stats;
    return q && typeof q.segments === 'function' ? q.segments() : null;
  });
  if (stats === null) return null;
  const flat: Record<string, number> = {};
  for (const [k, v] of Object.entries(stats)) {
    if (typeof v === 'number') flat[k] = v;
    else for (const [t, n] of Object.entries(v)) flat[`${k}.${t}`] = n;
  }
  return flat;
}

/** `perCategory` keys for each owner location (putter, waiter, other), from `prefix`0, 1, … */
async function pickKeys(waiter: BenchTab, putterId: string, waiterId: string, prefix: string, perCategory: number): Promise<KeyInfo[]> {
  const candidates = Array.from({ length: 400 }, (_, i) => `${prefix}${i}`);
  const owners = await ownerOf(waiter, candidates);
  if (owners.some((x) => x === null)) return candidates.slice(0, perCategory * 3).map((key) => ({ key, owner: null }));
  const want: Record<OwnerAt, KeyInfo[]> = { putter: [], waiter: [], other: [] };
  candidates.forEach((key, i) => {
    const o = owners[i]!;
    const at: OwnerAt = o === putterId ? 'putter' : o === waiterId ? 'waiter' : 'other';
    if (want[at].length < perCategory) want[at].push({ key, owner: at });
  });
  // interleave, so consecutive samples change owner
  const out: KeyInfo[] = [];
  for (let i = 0; i < perCategory; i++) for (const at of ['putter', 'waiter', 'other'] as const) if (want[at][i]) out.push(want[at][i]!);
  return out;
}

function summarise(lat: { ms: number; owner: OwnerAt | null }[], missing: number, wrong: number, notRegistered: number): SegLatency {
  const ms = lat.map((x) => x.ms);
  const known = lat.every((x) => x.owner !== null) && lat.length > 0;
  const by = (at: OwnerAt) => {
    const v = lat.filter((x) => x.owner === at).map((x) => x.ms);
    return { samples: v.length, msP50: round(percentile(v, 50), 2), msP99: round(percentile(v, 99), 2) };
  };
  return {
    samples: lat.length,
    msP50: round(percentile(ms, 50), 2),
    msP99: round(percentile(ms, 99), 2),
    msMax: ms.length ? round(Math.max(...ms), 2) : null,
    missing,
    wrong,
    notRegistered,
    byOwner: known ? { putter: by('putter'), waiter: by('waiter'), other: by('other') } : null,
  };
}

/** Samples of "waiting peek/take in the waiter, then a put in the putter". */
async function waitLatency(
  kind: 'peek' | 'take',
  keys: KeyInfo[],
  putter: BenchTab,
  waiter: BenchTab,
  tabById: Map<string, BenchTab>,
  ownerIds: Map<string, string>,
  lastId: Map<string, number>,
  samples: number,
  capMs: number,
): Promise<SegLatency> {
  const lat: { ms: number; owner: OwnerAt | null }[] = [];
  let missing = 0;
  let wrong = 0;
  let notRegistered = 0;
  const until = Date.now() + capMs;
  for (let s = 0; s < samples && Date.now() < until; s++) {
    const k = keys[s % keys.length]!;
    const v = `${kind}:${s}`;
    const after = kind === 'peek' ? (lastId.get(k.key) ?? 0) : 0;
    const owner = tabById.get(ownerIds.get(k.key) ?? '');
    const waitersBefore = owner ? ((await segStats(owner))?.waiters ?? null) : null;
    const resolved = waiter.page.evaluate(
      ({ k, after, kind }) => {
        const a = window.__ba!;
        const call = kind === 'peek' ? window.p2p.segments.peek(k, after, { timeoutMs: 10_000 }) : window.p2p.segments.take(k, after, { timeoutMs: 10_000 });
        return call.then(
          (r) => ({ at: a.now(), id: r.id, value: r.value as unknown }),
          () => null,
        );
      },
      { k: k.key, after, kind },
    );
    // the call must be waiting at the owner before the put is issued
    if (owner && waitersBefore !== null) {
      const reg = await pollUntil(async () => (await segStats(owner))?.waiters ?? 0, (w) => w > waitersBefore, 1000, 1);
      if (!reg.ok) notRegistered++;
    } else {
      await sleep(30);
    }
    const start = await putter.page.evaluate(
      ({ k, v }) => {
        const a = window.__ba!;
        const t = a.now();
        void window.p2p.segments.put(k, v).catch(() => undefined);
        return t;
      },
      { k: k.key, v },
    );
    const r = await resolved;
    if (r === null) {
      missing++;
      continue;
    }
    if (r.value !== v) wrong++;
    else lat.push({ ms: r.at - start, owner: k.owner });
    if (kind === 'peek') lastId.set(k.key, Math.max(lastId.get(k.key) ?? 0, r.id));
  }
  return summarise(lat, missing, wrong, notRegistered);
}

async function concurrentTakes(tabs: BenchTab[], tabById: Map<string, BenchTab>, items: number, capMs: number): Promise<SegConcurrent> {
  const key = 'sg/q';
  const filler = tabs[0]!;
  const fill = await filler.page.evaluate(
    async ({ key, n, win, maxMs }) => {
      const a = window.__ba!;
      const ok: number[] = [];
      let errors = 0;
      let next = 0;
      const start = a.now();
      let last = start;
      const worker = async (): Promise<void> => {
        while (next < n && a.now() - start < maxMs) {
          const i = next++;
          try {
            await window.p2p.segments.put(key, `q${i}`);
            ok.push(i);
            last = a.now();
          } catch {
            errors++;
          }
        }
      };
      await Promise.all(Array.from({ length: win }, worker));
      return { ok, errors, ms: last - start };
    },
    { key, n: items, win: 32, maxMs: capMs },
  );
  const takers = tabs.slice(0, Math.min(3, tabs.length));
  const [ownerId] = await ownerOf(filler, [key]);
  const ownerTab = ownerId == null ? null : (tabById.get(ownerId)?.i ?? null);
  const idleMs = 1500;
  const startAt = Date.now() + 300; // a common start, after every evaluate has arrived
  const runs = await Promise.all(
    takers.map((t) =>
      t.page.evaluate(
        async ({ key, startAt, idleMs }) => {
          const a = window.__ba!;
          await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));
          const got: string[] = [];
          let errors = 0;
          let last: number | null = null;
          for (;;) {
            try {
              const r = await window.p2p.segments.take(key, 0, { timeoutMs: idleMs });
              got.push(String(r.value));
              last = a.now();
            } catch (e) {
              if (/timeout/i.test((e as Error).message)) break;
              if (++errors > 20) break;
            }
          }
          return { got, errors, last };
        },
        { key, startAt, idleMs },
      ),
    ),
  );
  // whatever is still queued (a take that timed out and was put back, or a taker that gave up)
  const drain = await filler.page.evaluate(async (key) => {
    const left: string[] = [];
    for (;;) {
      try {
        left.push(String((await window.p2p.segments.take(key, 0, { timeoutMs: 1000 })).value));
      } catch {
        return left;
      }
    }
  }, key);
  const acked = new Set(fill.ok.map((i) => `q${i}`));
  const seen = new Map<string, number>();
  for (const r of runs) for (const v of r.got) seen.set(v, (seen.get(v) ?? 0) + 1);
  let duplicates = 0;
  let unexpected = 0;
  for (const [v, c] of seen) {
    if (c > 1) duplicates += c - 1;
    if (!acked.has(v)) unexpected++;
  }
  let missing = 0;
  let leftover = 0;
  const left = new Set(drain);
  for (const v of acked) {
    if (seen.has(v)) continue;
    missing++;
    if (left.has(v)) leftover++;
  }
  const taken = runs.reduce((s, r) => s + r.got.length, 0);
  const lasts = runs.map((r) => r.last).filter((x): x is number => x !== null);
  const ms = lasts.length ? Math.max(...lasts) - startAt : null;
  return {
    items,
    putsOk: fill.ok.length,
    putErrors: fill.errors,
    fillPutsPerSec: fill.ms > 0 ? round(fill.ok.length / (fill.ms / 1000), 0) : null,
    takers: takers.length,
    ownerTab,
    taken,
    perTaker: runs.map((r) => r.got.length),
    duplicates,
    missing,
    leftover,
    unexpected,
    takeErrors: runs.reduce((s, r) => s + r.errors, 0),
    ms: ms === null ? null : round(ms, 1),
    itemsPerSec: ms && ms > 0 ? round(taken / (ms / 1000), 0) : null,
  };
}

export async function segments(tabs: BenchTab[], o: BenchOptions): Promise<SegmentsResult> {
  const putter = tabs[0]!;
  const waiter = tabs[1]!;
  const ids = await Promise.all(tabs.map((t) => t.page.evaluate(() => window.p2p.id)));
  const tabById = new Map(ids.map((id, j) => [id, tabs[j]!]));
  const before = await Promise.all(tabs.map(segStats));

  const peekKeys = await pickKeys(waiter, ids[0]!, ids[1]!, 'sg/p/', 4);
  const takeKeys = await pickKeys(waiter, ids[0]!, ids[1]!, 'sg/t/', 4);
  const all = [...peekKeys, ...takeKeys];
  const owners = await ownerOf(waiter, all.map((k) => k.key));
  const ownerIds = new Map<string, string>();
  all.forEach((k, i) => {
    if (owners[i]) ownerIds.set(k.key, owners[i]!);
  });

  // warm-up, not measured: the first request on a key makes its owner claim it (a round
  // trip to every member); and each waiter→owner and putter→owner path is used once
  const lastId = new Map<string, number>();
  for (const k of all) {
    const id = await putter.page.evaluate((k) => window.p2p.segments.put(k, 'warm'), k.key);
    lastId.set(k.key, id);
    if (takeKeys.includes(k)) await waiter.page.evaluate((k) => window.p2p.segments.take(k, 0, { timeoutMs: 10_000 }), k.key);
    else await waiter.page.evaluate(({ k, id }) => window.p2p.segments.peek(k, id - 1, { timeoutMs: 10_000 }), { k: k.key, id });
  }
  await sleep(500);

  o.log(`[ours] segments: waiting peek, ${o.segSamples} samples on ${peekKeys.length} keys`);
  const peek = await waitLatency('peek', peekKeys, putter, waiter, tabById, ownerIds, lastId, o.segSamples, o.segCapMs);
  o.log(`[ours] segments: waiting take, ${o.segSamples} samples on ${takeKeys.length} keys`);
  const take = await waitLatency('take', takeKeys, putter, waiter, tabById, ownerIds, lastId, o.segSamples, o.segCapMs);
  o.log(`[ours] segments: ${o.segItems} items, 3 tabs taking at once`);
  const concurrent = await concurrentTakes(tabs, tabById, o.segItems, o.segCapMs);

  const after = await Promise.all(tabs.map(segStats));
  let counters: Record<string, number> | undefined;
  if (before.every((b) => b !== null) && after.every((a) => a !== null)) {
    counters = {};
    after.forEach((a, j) => {
      for (const [k, v] of Object.entries(a!)) {
        if (['keys', 'owned', 'calls', 'waiters'].includes(k)) continue;
        const d = v - (before[j]![k] ?? 0);
        if (d !== 0) counters![k] = (counters![k] ?? 0) + d;
      }
    });
  }
  const ownersCount = all.every((k) => k.owner !== null)
    ? { putter: all.filter((k) => k.owner === 'putter').length, waiter: all.filter((k) => k.owner === 'waiter').length, other: all.filter((k) => k.owner === 'other').length }
    : null;
  return {
    putter: putter.i,
    waiter: waiter.i,
    ownerVisible: ownersCount !== null,
    keys: { peek: peekKeys.length, take: takeKeys.length, owners: ownersCount },
    peek,
    take,
    concurrent,
    ...(counters ? { counters } : {}),
  };
}
