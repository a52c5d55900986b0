/** The printed table, the issue's targets, and the simulator summary. */
import type { SystemResult } from './scenarios/run';

export interface Target {
  name: string;
  measured: number | null;
  /** human-readable bound, e.g. "≥ 5000" or "≤ 0.5 × 812 = 406" */
  target: string;
  met: boolean | null;
  unit: string;
}

const fmt = (x: number | null | undefined, digits = 1): string => {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  const d = Math.abs(x) >= 100 ? 0 : digits;
  return x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
};
const ratio = (a: number | null | undefined, b: number | null | undefined): string =>
  a == null || b == null || b === 0 || !Number.isFinite(a) || !Number.isFinite(b) ? '' : (a / b).toFixed(2);

function bound(name: string, unit: string, measured: number | null | undefined, op: '≤' | '≥', limit: number | null | undefined, how?: string): Target {
  const m = measured ?? null;
  const l = limit ?? null;
  const target = l === null ? `${op} ${how ?? '?'} (reference not measured)` : `${op} ${how ? `${how} = ` : ''}${fmt(l, 2)}`;
  const met = m === null || l === null ? null : op === '≤' ? m <= l : m >= l;
  return { name, measured: m, target, met, unit };
}

export function targets(ours: SystemResult | undefined, yjs: SystemResult | undefined): Target[] {
  const yb = yjs?.chat?.bytesPerMessage;
  const yp50 = yjs?.chat?.latencyMsP50;
  const yp99 = yjs?.chat?.latencyMsP99;
  const yheap = yjs?.resources?.heapGrowthMBPerTab;
  return [
    bound('KV puts/s from one tab, W quorum on disk, pipelined', 'puts/s', ours?.kv?.putsPerSec, '≥', 5000),
    bound('KV put p50, unloaded', 'ms', ours?.kv?.putMsP50, '≤', 3),
    bound('KV put p99, unloaded', 'ms', ours?.kv?.putMsP99, '≤', 20),
    bound('KV get p50, unloaded', 'ms', ours?.kv?.getMsP50, '≤', 2),
    bound('KV: reloaded tab ready (keys restored, rejoined), median', 'ms', ours?.kv?.reload?.readyMs, '≤', 1000),
    bound('KV: one tab crashes, every survivor has detected it', 'ms', ours?.crashOne?.detectedMs, '≤', 5000),
    bound('KV: then every key back to N copies, after detection', 'ms', ours?.crashOne?.replicatedAfterDetectionMs, '≤', 3000),
    bound('bytes per chat message, all tabs', 'B', ours?.chat?.bytesPerMessage, '≤', yb == null ? null : 0.5 * yb, `0.5 × y-webrtc ${fmt(yb)}`),
    bound('RTCPeerConnections per tab (max)', '', ours?.resources?.connectionsMax, '≤', 5),
    bound('chat delivery p50', 'ms', ours?.chat?.latencyMsP50, '≤', yp50, `y-webrtc`),
    bound('chat delivery p99', 'ms', ours?.chat?.latencyMsP99, '≤', yp99 == null ? null : 1.5 * yp99, `1.5 × y-webrtc ${fmt(yp99, 2)}`),
    bound('JS heap growth per tab, 0 → keys', 'MB', ours?.resources?.heapGrowthMBPerTab, '≤', yheap == null ? null : 0.5 * yheap, `0.5 × Yjs ${fmt(yheap, 2)}`),
    bound('segments: waiting peek p50, put in another tab', 'ms', ours?.segments?.peek.msP50, '≤', 50),
  ];
}

type Row = [string, string, string, string];

function rows(o: SystemResult | undefined, y: SystemResult | undefined): Row[] {
  const out: Row[] = [];
  const add = (label: string, a: number | null | undefined, b: number | null | undefined, digits = 1, withRatio = true): void => {
    out.push([label, fmt(a, digits), fmt(b, digits), withRatio ? ratio(a, b) : '']);
  };
  const section = (label: string): void => void out.push([`**${label}**`, '', '', '']);
  section('join');
  add('tab joins the cluster and is synced, p50 (ms from navigation)', o?.join?.msP50, y?.join?.msP50);
  add('  same, slowest tab (ms)', o?.join?.msMax, y?.join?.msMax);
  add(`  all ${o?.tabs ?? y?.tabs} tabs open and complete (ms)`, o?.join?.clusterCompleteMs, y?.join?.clusterCompleteMs);
  const sum = (xs: number[] | undefined): number | undefined => xs?.reduce((a, x) => a + x, 0);
  add('    of which the bench opening contexts and pages, all tabs (ms)', sum(o?.join?.phases?.beforeNavMs), sum(y?.join?.phases?.beforeNavMs));
  add('    navigation to joined, all tabs (ms)', sum(o?.join?.phases?.toJoinedMs), sum(y?.join?.phases?.toJoinedMs));
  add('    last tab joined to every tab complete (ms)', o?.join?.phases?.completeAfterLastMs, y?.join?.phases?.completeAfterLastMs);
  section('idle cluster');
  add('RTCPeerConnections per tab, mean', o?.resources?.connectionsMean, y?.resources?.connectionsMean);
  add('  max', o?.resources?.connectionsMax, y?.resources?.connectionsMax, 0);
  add('main thread busy per tab, idle (%)', o?.resources?.cpuIdlePct, y?.resources?.cpuIdlePct);
  add('bytes/s sent by all tabs, idle', o?.resources?.idleBytesPerSec, y?.resources?.idleBytesPerSec, 0);
  add('main thread busy per tab, idle 30 s later (%)', o?.resources?.cpuSettledPct, y?.resources?.cpuSettledPct);
  add('bytes/s sent by all tabs, idle 30 s later', o?.resources?.settledBytesPerSec, y?.resources?.settledBytesPerSec, 0);
  if (o?.chat || y?.chat) {
    section(`chat (${o?.chat?.sent ?? y?.chat?.sent} messages from one tab)`);
    add('delivery latency p50 (ms)', o?.chat?.latencyMsP50, y?.chat?.latencyMsP50, 2);
    add('delivery latency p99 (ms)', o?.chat?.latencyMsP99, y?.chat?.latencyMsP99, 2);
    add('delivery latency max (ms)', o?.chat?.latencyMsMax, y?.chat?.latencyMsMax, 2);
    add('delivered / expected (%)', pct(o?.chat?.delivered, o?.chat?.expected), pct(y?.chat?.delivered, y?.chat?.expected), 1, false);
    add('bytes sent per message, all tabs (transport)', o?.chat?.bytesPerMessage, y?.chat?.bytesPerMessage);
    add('  data-channel payload bytes per message', o?.chat?.payloadBytesPerMessage, y?.chat?.payloadBytesPerMessage);
    add('  per message, idle traffic subtracted', o?.chat?.netBytesPerMessage, y?.chat?.netBytesPerMessage);
    add('main thread busy per tab meanwhile (%)', o?.chat?.cpuPct, y?.chat?.cpuPct);
  }
  out.push(...segmentRows(o));
  if (o?.kv || y?.kv) {
    const capped = o?.kv?.keysCapped || y?.kv?.keysCapped ? ' — time cap reached, fewer than asked' : '';
    section(`kv (${o?.kv?.keys ?? y?.kv?.keys} puts of ~100 B from one tab${capped})`);
    add(`puts/s until the last put resolved (ours: W=${o?.kv?.replicas ? Math.floor(o.kv.replicas / 2) + 1 : 'majority'} acks on disk; Yjs: local)`, o?.kv?.putsPerSec, y?.kv?.putsPerSec, 0, false);
    add(`puts/s until fully replicated (ours: ${o?.kv?.replicas ?? 'N'} copies; Yjs: every tab)`, o?.kv?.replicatedPutsPerSec, y?.kv?.replicatedPutsPerSec, 0);
    add('bytes on the wire per put, all tabs, until replicated (acks and routing included)', o?.kv?.bytesPerPut, y?.kv?.bytesPerPut, 0);
    add('  put latency under that load p50 (ms)', o?.kv?.loadedPutMsP50, y?.kv?.loadedPutMsP50, 2, false);
    add('  put latency under that load p99 (ms)', o?.kv?.loadedPutMsP99, y?.kv?.loadedPutMsP99, 2, false);
    add('  puts that failed (ours: no W quorum within 3 s)', o?.kv?.putErrors, y?.kv?.putErrors, 0, false);
    add('  main thread busy per tab meanwhile (%)', o?.kv?.cpuPct, y?.kv?.cpuPct);
    add('put p50, unloaded, sequential (ms)', o?.kv?.putMsP50, y?.kv?.putMsP50, 3, false);
    add('put p99, unloaded (ms)', o?.kv?.putMsP99, y?.kv?.putMsP99, 3, false);
    add('get p50, unloaded (ms)', o?.kv?.getMsP50, y?.kv?.getMsP50, 3, false);
    add('get p99, unloaded (ms)', o?.kv?.getMsP99, y?.kv?.getMsP99, 3, false);
    add('put → readable in another tab p50 (ms)', o?.kv?.visibleMsP50, y?.kv?.visibleMsP50, 2);
    add('put → readable in another tab p99 (ms)', o?.kv?.visibleMsP99, y?.kv?.visibleMsP99, 2);
    add('put → kv.watch listener in another tab p50 (ms)', o?.watch?.notifyMsP50, null, 2);
    add('put → kv.watch listener in another tab p99 (ms)', o?.watch?.notifyMsP99, null, 2);
    const rl = o?.kv?.reload;
    if (rl) {
      const all = o?.kv?.reloadsMs ?? [];
      const worst = all.some((x) => x === null) ? null : Math.max(...(all as number[]));
      out.push([`a tab holding its keys reloaded, median of ${all.length || 1}: ready (restored + rejoined), ms from navigation`, fmt(rl.readyMs, 1), 'n/a', '']);
      if (all.length > 1) out.push(['  every reload, in order (ms); worst', `${all.map((x) => fmt(x, 0)).join(' / ')}; ${worst === null ? 'one never got ready' : fmt(worst, 0)}`, 'n/a', '']);
      out.push([`  the median one: keys it held`, String(rl.keysBefore), 'n/a', '']);
      out.push(['  of which loading IndexedDB (ms)', fmt(rl.loadMs, 0), 'n/a', '']);
      out.push(['  script running / node id acquired / state loaded (the rest is joining), ms from navigation', `${fmt(rl.bootAt, 0)} / ${fmt(rl.idAt, 0)} / ${fmt(rl.startedAt, 0)}`, 'n/a', '']);
      if (rl.timeline?.length) out.push(['  timeline, ms from navigation', rl.timeline.map(([k, t]) => `${k} ${t}`).join(', '), 'n/a', '']);
      const w = o?.kv?.reloadWorst;
      if (w && w !== rl && w.timeline?.length) out.push(['  the slowest reload\'s timeline', w.timeline.map(([k, t]) => `${k} ${t}`).join(', '), 'n/a', '']);
      out.push(['  keys restored from IndexedDB / held once ready', `${rl.restored ?? '—'} / ${rl.keysAtReady ?? '—'}`, 'n/a', '']);
      if (!rl.sameId) out.push(["  the reloaded tab came back under a NEW node id", "!", "n/a", ""]);
    }
  }
  if (o?.resources?.heapGrowthMBPerTab != null || y?.resources?.heapGrowthMBPerTab != null) {
    add('JS heap per tab before the keys (MB, after GC)', o?.resources?.heapBeforeMB, y?.resources?.heapBeforeMB, 2);
    add('JS heap growth per tab, 0 → all keys (MB)', o?.resources?.heapGrowthMBPerTab, y?.resources?.heapGrowthMBPerTab, 2);
  }
  if (o?.crashOne) {
    const c = o.crashOne;
    section(`one tab crashes (ours; ms after the crash)`);
    add('every survivor has detected it (not alive in its membership)', c.detectedMs, undefined, 0, false);
    add('every key back to N copies', c.replicatedMs, undefined, 0, false);
    add('  of which after detection', c.replicatedAfterDetectionMs, undefined, 0, false);
    if (!c.replaced) out.push([`  a fresh tab did not replace it in time, the next step is skipped (${c.timedOut.join('; ')})`, '!', '', '']);
  }
  if (o?.failure || y?.failure) {
    const f = o?.failure ?? y?.failure!;
    section(`failure (crash ${f.crashed} of ${f.crashed + f.survivors} tabs; ms after the crash)`);
    add('keys lost: every copy was on a crashed tab (count)', o?.failure?.lostKeys, y?.failure?.lostKeys, 0, false);
    add('survivors see exactly the survivors', o?.failure?.membersMs, y?.failure?.membersMs, 0);
    add('every survivor has read every other key (kv.getMany, 1,000 keys a call)', o?.failure?.readableMs, y?.failure?.readableMs, 0);
    add('  the first getMany pass: ms (all survivors at once)', o?.failure?.firstPassMs, y?.failure?.firstPassMs, 0, false);
    add('  the first getMany pass: keys whose read failed, all survivors (read again)', o?.failure?.firstPassFailed, y?.failure?.firstPassFailed, 0, false);
    add('  getMany passes until every key was read', o?.failure?.passes, y?.failure?.passes, 0, false);
    add('  then a second full pass, one get per key, 50 in flight per survivor: ms', o?.failure?.verifyMs, y?.failure?.verifyMs, 0, false);
    add('  that pass (≤ 30 s): reads that failed, all survivors', o?.failure?.verifyFailures, y?.failure?.verifyFailures, 0, false);
    add('  keys that pass did not reach in 30 s, all survivors', o?.failure?.verifyUntried, y?.failure?.verifyUntried, 0, false);
    add('every key back to min(N, survivors) copies', o?.failure?.replicatedMs, y?.failure?.replicatedMs, 0);
    add('a chat message from a survivor reaches all survivors', o?.failure?.chatMs, y?.failure?.chatMs, 0);
  }
  return out;
}

/** The segments scenario: ours only, the Yjs column says n/a. */
function segmentRows(o: SystemResult | undefined): Row[] {
  const s = o?.segments;
  if (!s) return [];
  const out: Row[] = [];
  const add = (label: string, a: number | null | undefined, digits = 1): void => void out.push([label, fmt(a, digits), 'n/a', '']);
  const c = s.concurrent;
  out.push([`**segments (waiter tab ${s.waiter}, putter tab ${s.putter}; ms from just before the put)**`, '', '', '']);
  add(`waiting peek resolves after a put in another tab, p50 (ms; ${s.peek.samples} samples)`, s.peek.msP50, 2);
  add('  p99 (ms)', s.peek.msP99, 2);
  if (s.peek.byOwner) {
    const b = s.peek.byOwner;
    add(`  p50, owner = putter / waiter / other tab (${b.putter.samples} / ${b.waiter.samples} / ${b.other.samples} samples): putter`, b.putter.msP50, 2);
    add('    waiter', b.waiter.msP50, 2);
    add('    other tab', b.other.msP50, 2);
  }
  add('  missing (no answer in 10 s) + wrong value', s.peek.missing + s.peek.wrong, 0);
  add(`waiting take resolves after a put in another tab, p50 (ms; ${s.take.samples} samples)`, s.take.msP50, 2);
  add('  p99 (ms)', s.take.msP99, 2);
  if (s.take.byOwner) {
    const b = s.take.byOwner;
    add('  p50, owner = putter', b.putter.msP50, 2);
    add('    waiter', b.waiter.msP50, 2);
    add('    other tab', b.other.msP50, 2);
  }
  add('  missing + wrong value', s.take.missing + s.take.wrong, 0);
  add(`${c.takers} tabs taking at once from one queue of ${c.putsOk} items: items/s`, c.itemsPerSec, 0);
  out.push([`  items per taker (tabs ${c.perTaker.map((_, i) => i).join(', ')}; queue owner: ${c.ownerTab === null ? '?' : `tab ${c.ownerTab}`})`, c.perTaker.join(' / '), 'n/a', '']);
  add('  items taken twice (duplicates)', c.duplicates, 0);
  add('  items no taker got (missing)', c.missing, 0);
  add('  filling that queue from one tab, pipelined: puts/s', c.fillPutsPerSec, 0);
  return out;
}

const pct = (a: number | undefined, b: number | undefined): number | null => (a == null || !b ? null : (100 * a) / b);

export function table(o: SystemResult | undefined, y: SystemResult | undefined): string {
  const head: Row = ['', 'ours', 'y-webrtc + Yjs', 'ours / Yjs'];
  const all = [head, ...rows(o, y)];
  const lines = all.map((r) => `| ${r[0]} | ${r[1]} | ${r[2]} | ${r[3]} |`);
  lines.splice(1, 0, '|---|---:|---:|---:|');
  return lines.join('\n');
}

export function targetTable(ts: Target[]): string {
  const lines = ['| target (ours, issue) | measured | target | |', '|---|---:|---|---|'];
  for (const t of ts) {
    lines.push(`| ${t.name} | ${fmt(t.measured, t.measured !== null && Number.isInteger(t.measured) ? 0 : 2)}${t.unit ? ` ${t.unit}` : ''} | ${t.target}${t.unit && !t.target.includes('reference') ? ` ${t.unit}` : ''} | ${t.met === null ? 'n/a' : t.met ? 'met' : '**missed**'} |`);
  }
  return lines.join('\n');
}

export interface SimRun {
  args: string[];
  ok: boolean;
  wallMs: number;
  report?: Record<string, unknown>;
  error?: string;
}

export function simTable(runs: SimRun[]): string {
  const pick = (r: SimRun, k: string): string => {
    const v = r.report?.[k];
    return typeof v === 'number' ? fmt(v, Number.isInteger(v) ? 0 : 3) : v === null ? 'null' : v === undefined ? '—' : String(v);
  };
  const fields: [string, string][] = [
    ['healMs', 'heal: one component again after (ms, simulated)'],
    ['connectedAfterFailure', 'survivors in largest component right after the crash'],
    ['connectedAfterHeal', 'largest component after healing'],
    ['activeMean', 'active view mean (before crash)'],
    ['joinMessagesMean', 'messages per join, mean'],
    ['reliability', 'broadcast reliability, stable overlay'],
    ['rmr', 'relative message redundancy, stable tree'],
    ['ldh', 'last delivery hop'],
    ['deliveryMsP50', 'broadcast delivery p50 (ms, simulated)'],
    ['deliveryMsP99', 'broadcast delivery p99 (ms, simulated)'],
    ['reliabilityAfterFailureOfReachable', 'reliability right after the crash, of reachable nodes'],
    ['reliabilityResettled', 'reliability after the heal settles'],
    ['rmrResettled', 'RMR after the heal settles'],
    ['wallMs', 'wall time (ms)'],
  ];
  const lines = [`| | ${runs.map((r) => `${r.report?.nodes ?? '?'} nodes`).join(' | ')} |`, `|---|${runs.map(() => '---:').join('|')}|`];
  for (const [k, label] of fields) {
    if (runs.every((r) => r.report?.[k] === undefined)) continue;
    lines.push(`| ${label} (\`${k}\`) | ${runs.map((r) => pick(r, k)).join(' | ')} |`);
  }
  for (const r of runs) if (!r.ok) lines.push(`\nsim ${r.args.join(' ')} FAILED: ${r.error}`);
  return lines.join('\n');
}
