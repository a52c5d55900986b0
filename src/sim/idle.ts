import type { NodeId } from '../core/types';
import { percentileSorted } from '../util/percentile';
import { createCoreNetwork, type CoreNetwork } from './core';

/**
 * The idle cost of a formed cluster of whole CoreNodes (HyParView, Plumtree, membership,
 * router, KVS, chat, segments), each message through the real codec: N nodes join as in
 * the core's tests (`start`, no contact: each finds the cluster through the modelled
 * signaling server's announces), K keys and a few chat messages are written, everything
 * settles, then every message and byte each node sends and receives is counted over a
 * long quiet window. Bytes are the core's encoded messages only: no seals or signatures
 * (the runtime adds about 100 bytes per signed message), no WebRTC/SCTP/DTLS framing, no
 * transport link heartbeats (src/net/transport.ts: 1 byte per idle link per 10 s).
 */
export interface IdleScenario {
  nodes: number;
  seed: number;
  /** Virtual ms between two nodes' `start` (joins overlap when the gap is short). */
  joinGapMs: number;
  /** KV keys written (round-robin over the nodes) once everyone has joined. */
  keys: number;
  /** Chat messages sent (round-robin) once everyone has joined. */
  chats: number;
  /** Virtual ms after the last write before the window opens: joining traffic and backoffs are over. */
  settleMs: number;
  /** Virtual ms of the measured window. */
  windowMs: number;
  /** How many message types the report lists (by messages, then bytes). */
  topTypes: number;
  /** Progress lines (stderr in the command). */
  log?: (line: string) => void;
}

export const DEFAULT_IDLE_SCENARIO: Readonly<Omit<IdleScenario, 'log'>> = Object.freeze({
  nodes: 100,
  seed: 1,
  joinGapMs: 300,
  keys: 1_000,
  chats: 10,
  settleMs: 300_000,
  windowMs: 600_000,
  topTypes: 8,
});

/** Per node per second over the window: the cluster's mean, and p50 / max over nodes. */
export interface RateStats {
  mean: number;
  p50: number;
  max: number;
}

export interface IdleTypeRate {
  type: string;
  /** Messages of this type sent per node per second (cluster mean). */
  msgs: number;
  /** Bytes of this type sent per node per second (cluster mean). */
  bytes: number;
  /** Mean encoded size. */
  bytesPerMsg: number;
}

/** The scenario it ran (without its report and logging options), then what it measured. */
export interface IdleReport extends Omit<IdleScenario, 'topTypes' | 'log'> {
  /** Live members every node sees at the window's start (min over nodes): N when membership converged. */
  membersMin: number;
  /** Active view size, min / mean / max over nodes at the window's start. */
  activeMin: number;
  activeMean: number;
  activeMax: number;
  /** Messages and bytes sent per node per second (what a tab uploads). */
  sentMsgs: RateStats;
  sentBytes: RateStats;
  /** Messages and bytes received per node per second (what a tab handles). */
  recvMsgs: RateStats;
  recvBytes: RateStats;
  /** Sends that went through the signaling relay (transient, no link), per node per second. */
  relayedPerNodeSec: number;
  /** Announces published on signaling per node per second, and heard per node per second. */
  announcesPerNodeSec: number;
  announcesHeardPerNodeSec: number;
  /** Sent messages by type, most messages first (`topTypes` of them). */
  byType: IdleTypeRate[];
  /** Messages sent during joining, writes and settling (everything before the window). */
  setupMessages: number;
  simMs: number;
  wallMs: number;
  /** Resident set size and V8 heap at the window's end, MB (the whole process). */
  rssMb: number;
  heapMb: number;
  note: string;
}

export const IDLE_NOTE =
  "bytes are the core's encoded messages (real codec): no seals/signatures (the runtime adds about 100 bytes per signed message), " +
  'no WebRTC/SCTP/DTLS framing, no transport link heartbeats (1 byte per idle link per 10 s, src/net/transport.ts)';

interface Counter {
  sentMsgs: number;
  sentBytes: number;
  recvMsgs: number;
  recvBytes: number;
  heard: number;
}

/** Builds the cluster, settles it, measures the window. Deterministic for a seed (except wallMs, rssMb, heapMb). */
export function runIdleScenario(options: Partial<IdleScenario> = {}): IdleReport {
  const o: IdleScenario = { ...DEFAULT_IDLE_SCENARIO, ...options };
  if (!Number.isInteger(o.nodes) || o.nodes < 2) throw new Error('nodes must be an integer >= 2');
  if (o.windowMs <= 0) throw new Error('windowMs must be > 0');
  const log = o.log ?? (() => {});
  const wallStart = performance.now();
  let measuring = false;
  const counters = new Map<NodeId, Counter>();
  const types = new Map<string, { msgs: number; bytes: number }>();
  const counter = (id: NodeId): Counter => {
    let c = counters.get(id);
    if (c === undefined) {
      c = { sentMsgs: 0, sentBytes: 0, recvMsgs: 0, recvBytes: 0, heard: 0 };
      counters.set(id, c);
    }
    return c;
  };
  const net: CoreNetwork = createCoreNetwork({
    seed: o.seed,
    onWire: (node, dir, type, bytes) => {
      if (!measuring) return;
      const c = counter(node);
      if (dir === 'out') {
        c.sentMsgs++;
        c.sentBytes += bytes;
        const t = types.get(type) ?? { msgs: 0, bytes: 0 };
        t.msgs++;
        t.bytes += bytes;
        types.set(type, t);
      } else {
        c.recvMsgs++;
        c.recvBytes += bytes;
      }
    },
    onAnnounce: (node) => {
      if (measuring) counter(node).heard++;
    },
  });

  const ids: NodeId[] = [];
  for (let i = 0; i < o.nodes; i++) {
    const id = `n${i}`;
    ids.push(id);
    net.add(id);
    net.input(id, { type: 'start', nick: `nick${i}` });
    net.runFor(o.joinGapMs);
    if ((i + 1) % 500 === 0) log(`joined ${i + 1}/${o.nodes} at ${(net.now / 1000).toFixed(0)} s virtual, ${net.stats.sent} messages, ${mb(process.memoryUsage().rss)} MB rss`);
  }
  let req = 0;
  for (let k = 0; k < o.keys; k++) net.input(ids[k % ids.length]!, { type: 'api', req: ++req, call: { type: 'kv.put', key: `idle/${k}`, value: { k } } });
  for (let c = 0; c < o.chats; c++) net.input(ids[(c * 7) % ids.length]!, { type: 'api', req: ++req, call: { type: 'chat.send', room: 'lobby', text: `idle ${c}` } });
  log(`all ${o.nodes} started; ${o.keys} keys and ${o.chats} chat messages written; settling ${o.settleMs / 1000} s virtual`);
  net.runFor(o.settleMs);

  let membersMin = Infinity;
  const actives: number[] = [];
  for (const id of net.liveIds()) {
    const node = net.node(id)!;
    membersMin = Math.min(membersMin, node.query.members.live().length);
    actives.push(node.activeView().length);
  }
  const setupMessages = net.stats.sent;
  const relayed0 = net.stats.relayed;
  const announces0 = net.stats.announces;
  log(`settled (${setupMessages} messages so far); measuring ${o.windowMs / 1000} s virtual`);
  measuring = true;
  net.runFor(o.windowMs);
  measuring = false;

  const secs = o.windowMs / 1000;
  const live = net.liveIds();
  const n = live.length;
  const rate = (pick: (c: Counter) => number): RateStats => {
    const v = live.map((id) => pick(counters.get(id) ?? { sentMsgs: 0, sentBytes: 0, recvMsgs: 0, recvBytes: 0, heard: 0 }) / secs).sort((a, b) => a - b);
    const sum = v.reduce((s, x) => s + x, 0);
    return { mean: round(sum / n), p50: round(percentileSorted(v, 50) ?? 0), max: round(v[v.length - 1] ?? 0) };
  };
  const byType = [...types.entries()]
    .map(([type, t]) => ({ type, msgs: round(t.msgs / n / secs), bytes: round(t.bytes / n / secs), bytesPerMsg: Math.round(t.bytes / t.msgs) }))
    .sort((a, b) => b.msgs - a.msgs || b.bytes - a.bytes)
    .slice(0, o.topTypes);
  const heard = [...counters.values()].reduce((s, c) => s + c.heard, 0);
  const mem = process.memoryUsage();
  return {
    nodes: o.nodes,
    seed: o.seed,
    joinGapMs: o.joinGapMs,
    keys: o.keys,
    chats: o.chats,
    settleMs: o.settleMs,
    windowMs: o.windowMs,
    membersMin: membersMin === Infinity ? 0 : membersMin,
    activeMin: Math.min(...actives),
    activeMean: round(actives.reduce((s, x) => s + x, 0) / actives.length),
    activeMax: Math.max(...actives),
    sentMsgs: rate((c) => c.sentMsgs),
    sentBytes: rate((c) => c.sentBytes),
    recvMsgs: rate((c) => c.recvMsgs),
    recvBytes: rate((c) => c.recvBytes),
    relayedPerNodeSec: round((net.stats.relayed - relayed0) / n / secs),
    announcesPerNodeSec: round((net.stats.announces - announces0) / n / secs),
    announcesHeardPerNodeSec: round(heard / n / secs),
    byType,
    setupMessages,
    simMs: net.now,
    wallMs: Math.round(performance.now() - wallStart),
    rssMb: mb(mem.rss),
    heapMb: mb(mem.heapUsed),
    note: IDLE_NOTE,
  };
}

/** The report as the command prints it. */
export function idleSummary(r: IdleReport): string {
  const f = (s: RateStats, unit: string) => `${s.mean} ${unit} (p50 ${s.p50}, max ${s.max})`;
  return [
    `Idle CoreNode cluster: ${r.nodes} nodes, seed ${r.seed}; joins ${r.joinGapMs} ms apart, ${r.keys} keys, ${r.chats} chat messages; ` +
      `settled ${r.settleMs / 1000} s, measured over ${r.windowMs / 1000} s (virtual)`,
    `cluster          every node sees >= ${r.membersMin} live members; active view min ${r.activeMin} mean ${r.activeMean} max ${r.activeMax}`,
    `per node per s   sent ${f(r.sentMsgs, 'msgs')}, ${f(r.sentBytes, 'bytes')}`,
    `                 received ${f(r.recvMsgs, 'msgs')}, ${f(r.recvBytes, 'bytes')}`,
    `signaling        relayed sends ${r.relayedPerNodeSec}/s, announces published ${r.announcesPerNodeSec}/s, heard ${r.announcesHeardPerNodeSec}/s per node`,
    `top types (sent per node per s):`,
    ...r.byType.map((t) => `  ${t.type.padEnd(16)} ${String(t.msgs).padStart(9)} msgs ${String(t.bytes).padStart(10)} bytes  (${t.bytesPerMsg} B each)`),
    `setup            ${r.setupMessages} messages before the window`,
    `time             ${(r.simMs / 1000).toFixed(0)} s simulated in ${(r.wallMs / 1000).toFixed(1)} s; rss ${r.rssMb} MB, heap ${r.heapMb} MB`,
    `note             ${r.note}`,
  ].join('\n');
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function mb(bytes: number): number {
  return Math.round(bytes / 1048576);
}
