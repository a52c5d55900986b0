/**
 * Our signaling server vs the stock y-webrtc-signaling server, side by side.
 *
 *   npx tsx scripts/bench-signaling.ts [--json] [--rounds N] [--seconds S]
 *
 * Both servers run as child processes on loopback (ours as `node --import tsx
 * signaling/main.ts`, so the RSS read from /proc is the server's own):
 *  1. memory: RSS with 1,000 idle connections, each subscribed to 2 topics
 *     (`<cluster>` and `<cluster>/<nodeId>`, as the app does), on a fresh process;
 *  2. relay: one publisher pipelines publishes to a topic with 100 subscribers;
 *     figure = messages delivered per second summed over all subscribers
 *     (median of several rounds, alternating servers);
 *  3. survival: one non-JSON frame, then: does a new client still get a pong?
 *  4. flood (ours only): one publisher sends 60 KiB publishes at 100/s (the
 *     frame-rate limit) to a topic whose 5 subscribers read at 256 KiB/s (a
 *     2 Mbit/s link); run against ours with its default limits and against ours
 *     with the byte rate limit lifted: are honest subscribers dropped as slow
 *     consumers, and what happens to the publisher?
 * For 1-3 ours runs with the per-connection rate limits (frames and bytes) lifted
 * (SIGNALING_LIMITS): the relay figure measures fan-out cost, and a single
 * publisher at tens of thousands of msg/s is exactly what the default limits are
 * there to stop. The per-address limits are lifted too: every bench client has
 * the address 127.0.0.1, where in the field they stand for 1,000 machines.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { WebSocket } from 'ws';
import type net from 'node:net';
import { clientFrame, rawWebSocket, startOurServerProcess, startStockServer, wsUrl, type ChildServer } from '../signaling/testing';

const args = process.argv.slice(2);
const asJson = args.includes('--json');
const argNumber = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} needs a positive number`);
  return v;
};
const ROUNDS = argNumber('--rounds', 5);
const ROUND_SECONDS = argNumber('--seconds', 3);
const SUBSCRIBERS = 100;
const IDLE_CONNECTIONS = 1000;
/** Publishes in flight (sent, not yet delivered to every subscriber). Keeps the
 * servers' send queues small: 400 × ~330 B per subscriber, well under 1 MiB. */
const WINDOW = 400;
const MAX_PUBLISHES_PER_ROUND = 400_000;
/** Length of the secondary, one-publish-at-a-time round. */
const UNPIPELINED_SECONDS = 1.5;
/** The flood: its length, the publisher's rate and frame, the honest subscribers' link. */
const FLOOD_SECONDS = 10;
const FLOOD_PER_SEC = 100;
const FLOOD_PAD_BYTES = 60 * 1024;
const FLOOD_SUBSCRIBERS = 5;
const FLOOD_READ_BYTES_PER_SEC = 256 * 1024;
/** Our limits for sections 1-3 (see the header). */
const LIFTED = { rateBurst: 1e9, ratePerSec: 1e9, rateBytesBurst: 1e12, rateBytesPerSec: 1e12, rateBytesBurstPerIp: 1e12, rateBytesPerSecPerIp: 1e12, maxConnectionsPerIp: 0, maxTopicsPerIp: 0 };

const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

// A y-webrtc-shaped signal (an ICE candidate), ~330 bytes on the wire.
const publishFrame = JSON.stringify({
  type: 'publish',
  topic: 'bench/relay',
  data: {
    type: 'signal',
    from: 'a3f1c2d4-5e6f-4a8b-9c0d-1e2f3a4b5c6d',
    to: 'b7e8f9a0-1b2c-4d3e-8f4a-5b6c7d8e9f0a',
    signal: {
      type: 'candidate',
      candidate: {
        candidate: 'candidate:842163049 1 udp 1677729535 203.0.113.7 54321 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag EsAw network-cost 999',
        sdpMid: '0',
        sdpMLineIndex: 0,
      },
    },
  },
});

function rssMB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]);
  if (!Number.isFinite(kb)) throw new Error(`no VmRSS for pid ${pid}`);
  return Math.round((kb / 1024) * 10) / 10;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    // Subscribers only count frames; skipping UTF-8 checks keeps the bench
    // client cheaper than the servers it measures.
    const ws = new WebSocket(url, { skipUTF8Validation: true, perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Sends ping and resolves at the pong: everything sent before it is processed. */
function sync(ws: WebSocket, timeoutMs = 10_000): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      ws.off('message', onMessage);
      resolve(false);
    }, timeoutMs);
    const onMessage = (data: Buffer): void => {
      if (data.toString().includes('"pong"')) {
        clearTimeout(timer);
        ws.off('message', onMessage);
        resolve(true);
      }
    };
    ws.on('message', onMessage);
    ws.send('{"type":"ping"}');
  });
}

async function closeAll(sockets: WebSocket[]): Promise<void> {
  await Promise.all(sockets.map((ws) => new Promise<void>((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    ws.once('close', () => resolve());
    ws.terminate();
  })));
}

// ---- 1. memory ------------------------------------------------------------------

async function measureIdleMemory(server: ChildServer): Promise<{ rssBaselineMB: number; rssIdle1000MB: number }> {
  const pid = server.child.pid!;
  await sleep(500);
  const rssBaselineMB = rssMB(pid);
  const sockets: WebSocket[] = [];
  for (let i = 0; i < IDLE_CONNECTIONS; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, IDLE_CONNECTIONS - i) }, () => open(wsUrl(server.url))));
    batch.forEach((ws, j) => ws.send(JSON.stringify({ type: 'subscribe', topics: ['bench', `bench/node-${i + j}`] })));
    sockets.push(...batch);
  }
  const synced = await Promise.all(sockets.map((ws) => sync(ws)));
  if (!synced.every(Boolean)) throw new Error('some idle connections did not answer');
  await sleep(1000); // let the server settle (allocations after the last subscribe)
  const rssIdle1000MB = rssMB(pid);
  await closeAll(sockets);
  return { rssBaselineMB, rssIdle1000MB };
}

// ---- 2. relay throughput ------------------------------------------------------------

interface RelayRound {
  relayPerSec: number;
  published: number;
  delivered: number;
  /** Deliveries still missing when the round ended (should be 0). */
  lost: number;
  seconds: number;
}

/** `window` publishes may be in flight; 1 = wait for every delivery before the
 * next publish (no pipelining, so no batching is possible on the server). */
async function measureRelay(server: ChildServer, window: number, roundSeconds: number): Promise<RelayRound> {
  const subscribers = await Promise.all(Array.from({ length: SUBSCRIBERS }, () => open(wsUrl(server.url))));
  for (const ws of subscribers) ws.send('{"type":"subscribe","topics":["bench/relay"]}');
  await Promise.all(subscribers.map((ws) => sync(ws)));
  const publisher = await open(wsUrl(server.url));

  // Correctness check on one relay before timing anything.
  const first = new Promise<Record<string, unknown>>((resolve) => subscribers[0]!.once('message', (d: Buffer) => resolve(JSON.parse(d.toString()) as Record<string, unknown>)));
  publisher.send(publishFrame);
  const relayed = await first;
  if (relayed.clients !== SUBSCRIBERS) throw new Error(`expected clients=${SUBSCRIBERS}, got ${String(relayed.clients)}`);
  await Promise.all(subscribers.map((ws) => sync(ws)));

  let sent = 0;
  let delivered = 0;
  let sending = true;
  let pumpScheduled = false;
  let lastDeliveryAt = 0;
  let resolveDrained: (() => void) | null = null;

  const lowWater = window === 1 ? 0 : (window * SUBSCRIBERS) / 2;
  const pump = (): void => {
    pumpScheduled = false;
    while (sending && sent < MAX_PUBLISHES_PER_ROUND && sent * SUBSCRIBERS - delivered < window * SUBSCRIBERS) {
      publisher.send(publishFrame);
      sent += 1;
    }
  };
  const onMessage = (): void => {
    delivered += 1;
    lastDeliveryAt = performance.now();
    if (!pumpScheduled && sending && sent * SUBSCRIBERS - delivered <= lowWater) {
      pumpScheduled = true;
      setImmediate(pump);
    }
    if (!sending && delivered === sent * SUBSCRIBERS) resolveDrained?.();
  };
  for (const ws of subscribers) ws.on('message', onMessage);

  const start = performance.now();
  pump();
  await sleep(roundSeconds * 1000);
  sending = false;
  if (delivered < sent * SUBSCRIBERS) {
    await Promise.race([new Promise<void>((r) => { resolveDrained = r; }), sleep(5000)]);
  }
  const seconds = (lastDeliveryAt - start) / 1000;
  await closeAll([...subscribers, publisher]);
  return { relayPerSec: Math.round(delivered / seconds), published: sent, delivered, lost: sent * SUBSCRIBERS - delivered, seconds: Math.round(seconds * 100) / 100 };
}

// ---- 3. survival ---------------------------------------------------------------------

async function survivesMalformed(server: ChildServer): Promise<boolean> {
  const bad = await open(wsUrl(server.url));
  bad.on('error', () => undefined);
  const answered = new Promise<void>((resolve) => {
    bad.once('message', () => resolve());
    bad.once('close', () => resolve());
    setTimeout(resolve, 2000);
  });
  bad.send('this is not JSON');
  await answered;
  await sleep(200); // a crashing process needs a moment to go
  try {
    const probe = await open(wsUrl(server.url));
    const ok = await sync(probe, 3000);
    await closeAll([probe, bad]);
    return ok;
  } catch {
    return false; // connection refused: the process is gone
  }
}

// ---- 4. flood ---------------------------------------------------------------------------

interface FloodSubscriber {
  bytes: number;
}

interface FloodResult {
  /** Honest subscribers the server terminated as slow consumers (its /healthz counter:
   * a dropped subscriber itself notices only once it has read what its socket buffers hold). */
  subscribersDropped: number;
  /** Seconds into the flood of the first such drop (/healthz polled every 250 ms). */
  firstDropS: number | null;
  /** KiB each honest subscriber received (median). */
  receivedKiBMedian: number;
  /** Publishes the flooder sent, and what the server did to it. */
  published: number;
  publisherErrors: string[];
  publisherClosedAfterS: number | null;
  publisherCloseCode: number | null;
}

/** A subscriber that reads no faster than `bytesPerSec` from `start`, like one on a slow link. */
async function slowSubscriber(server: ChildServer, topic: string, bytesPerSec: number): Promise<{ socket: net.Socket; stats: FloodSubscriber; startAt(t0: number): void }> {
  const socket = await rawWebSocket(server.port);
  socket.on('error', () => undefined); // a reset is how the server drops it; `close` records it
  const stats: FloodSubscriber = { bytes: 0 };
  let t0 = 0;
  const subscribed = new Promise<void>((resolve) => socket.once('data', () => resolve())); // the pong
  socket.write(clientFrame(0x1, Buffer.from(JSON.stringify({ type: 'subscribe', topics: [topic] }))));
  socket.write(clientFrame(0x1, Buffer.from('{"type":"ping"}')));
  await subscribed;
  socket.on('data', (chunk: Buffer) => {
    stats.bytes += chunk.length;
    const wait = t0 + (stats.bytes / bytesPerSec) * 1000 - performance.now();
    if (wait > 0) {
      socket.pause();
      setTimeout(() => socket.resume(), wait);
    }
  });
  return { socket, stats, startAt: (t) => { t0 = t; } };
}

async function slowConsumers(server: ChildServer): Promise<number> {
  const res = await fetch(`${server.url}healthz`);
  const body = (await res.json()) as { rejected: Record<string, number> };
  return body.rejected['slow-consumer'] ?? 0;
}

async function measureFlood(server: ChildServer): Promise<FloodResult> {
  const topic = 'bench/flood';
  const subs = await Promise.all(Array.from({ length: FLOOD_SUBSCRIBERS }, () => slowSubscriber(server, topic, FLOOD_READ_BYTES_PER_SEC)));
  const publisher = await open(wsUrl(server.url));
  const errors = new Set<string>();
  publisher.on('message', (d: Buffer) => {
    const m = JSON.parse(d.toString()) as { type?: string; reason?: string };
    if (m.type === 'error') errors.add(String(m.reason));
  });
  publisher.on('error', () => undefined); // closed by the server: recorded below
  let closedAt: number | null = null;
  let closeCode: number | null = null;
  const frame = JSON.stringify({ type: 'publish', topic, pad: 'x'.repeat(FLOOD_PAD_BYTES) });
  const t0 = performance.now();
  for (const s of subs) s.startAt(t0);
  let flooding = true;
  publisher.on('close', (code: number) => {
    if (!flooding) return; // closed by us at the end
    closedAt = (performance.now() - t0) / 1000;
    closeCode = code;
  });
  let sent = 0;
  let firstDropS: number | null = null;
  let polled = 0;
  // paced by the clock, catching up after late timers: FLOOD_PER_SEC on average
  while (performance.now() - t0 < FLOOD_SECONDS * 1000) {
    const elapsed = performance.now() - t0;
    const due = Math.floor((elapsed / 1000) * FLOOD_PER_SEC);
    for (; sent < due && publisher.readyState === WebSocket.OPEN; sent++) publisher.send(frame);
    if (firstDropS === null && elapsed - polled >= 250) {
      polled = elapsed;
      if ((await slowConsumers(server)) > 0) firstDropS = Math.round((elapsed / 1000) * 10) / 10;
    }
    await sleep(5);
  }
  await sleep(1000);
  flooding = false;
  const dropped = await slowConsumers(server);
  const received = subs.map((s) => s.stats.bytes / 1024).sort((a, b) => a - b);
  for (const s of subs) s.socket.destroy();
  await closeAll([publisher]);
  return {
    subscribersDropped: dropped,
    firstDropS,
    receivedKiBMedian: Math.round(received[Math.floor(received.length / 2)]!),
    published: sent,
    publisherErrors: [...errors],
    publisherClosedAfterS: closedAt === null ? null : Math.round((closedAt as number) * 10) / 10,
    publisherCloseCode: closeCode,
  };
}

// ---- run ---------------------------------------------------------------------------

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const benchStart = performance.now();
  const loadBefore = Math.round(os.loadavg()[0]! * 100) / 100;
  const cpus = os.cpus().length;
  progress(`starting servers… (${cpus} CPUs, load average ${loadBefore})`);
  if (loadBefore > cpus / 2) progress('note: the machine is busy; figures will be noisy (medians of alternating rounds damp it)');
  const ours = await startOurServerProcess({ SIGNALING_LIMITS: JSON.stringify(LIFTED), STATIC_DIR: '' });
  const stock = await startStockServer();
  try {
    const servers = { ours, stock } as const;
    const memory = {} as Record<keyof typeof servers, { rssBaselineMB: number; rssIdle1000MB: number }>;
    for (const name of ['ours', 'stock'] as const) {
      progress(`[${name}] memory with ${IDLE_CONNECTIONS} idle connections…`);
      memory[name] = await measureIdleMemory(servers[name]);
    }
    const rounds: Record<keyof typeof servers, RelayRound[]> = { ours: [], stock: [] };
    const unpipelined: Record<keyof typeof servers, RelayRound[]> = { ours: [], stock: [] };
    for (let r = 0; r < ROUNDS; r++) {
      for (const name of (r % 2 === 0 ? ['ours', 'stock'] : ['stock', 'ours']) as Array<keyof typeof servers>) {
        const round = await measureRelay(servers[name], WINDOW, ROUND_SECONDS);
        progress(`[${name}] relay round ${r + 1}/${ROUNDS}: ${round.relayPerSec.toLocaleString('en')} msg/s (${round.published} publishes × ${SUBSCRIBERS} in ${round.seconds} s${round.lost ? `, ${round.lost} LOST` : ''})`);
        rounds[name].push(round);
        const single = await measureRelay(servers[name], 1, UNPIPELINED_SECONDS);
        progress(`[${name}]   one publish at a time: ${single.relayPerSec.toLocaleString('en')} msg/s (${single.published} publishes)${single.lost ? `, ${single.lost} LOST` : ''}`);
        unpipelined[name].push(single);
      }
    }
    const survival = {} as Record<keyof typeof servers, boolean>;
    for (const name of ['ours', 'stock'] as const) {
      survival[name] = await survivesMalformed(servers[name]);
      progress(`[${name}] survives a non-JSON frame: ${survival[name]}`);
    }

    progress(`flood: ${FLOOD_PER_SEC} × ${FLOOD_PAD_BYTES / 1024} KiB publishes/s for ${FLOOD_SECONDS} s, ${FLOOD_SUBSCRIBERS} subscribers reading ${FLOOD_READ_BYTES_PER_SEC / 1024} KiB/s…`);
    const flood = { defaults: null as FloodResult | null, byteLimitLifted: null as FloodResult | null };
    for (const [name, limits] of [['defaults', {}], ['byteLimitLifted', { rateBytesBurst: 1e12, rateBytesPerSec: 1e12, rateBytesBurstPerIp: 1e12, rateBytesPerSecPerIp: 1e12 }]] as const) {
      const srv = await startOurServerProcess({ SIGNALING_LIMITS: JSON.stringify(limits), STATIC_DIR: '' });
      try {
        flood[name] = await measureFlood(srv);
      } finally {
        await srv.stop();
      }
      progress(`[ours, ${name}] flood: ${JSON.stringify(flood[name])}`);
    }

    const summary = (name: keyof typeof servers) => ({
      relayPerSec: median(rounds[name].map((x) => x.relayPerSec)),
      rssIdle1000MB: memory[name].rssIdle1000MB,
      survivesMalformed: survival[name],
      rssBaselineMB: memory[name].rssBaselineMB,
      rssDelta1000MB: Math.round((memory[name].rssIdle1000MB - memory[name].rssBaselineMB) * 10) / 10,
      relayRounds: rounds[name].map((x) => x.relayPerSec),
      relayUnpipelinedPerSec: median(unpipelined[name].map((x) => x.relayPerSec)),
      lost: [...rounds[name], ...unpipelined[name]].reduce((sum, x) => sum + x.lost, 0),
    });
    const result = {
      ours: summary('ours'),
      stock: summary('stock'),
      ratio: 0,
      ratioUnpipelined: 0,
      flood: { ...flood, setup: { seconds: FLOOD_SECONDS, publishesPerSec: FLOOD_PER_SEC, padBytes: FLOOD_PAD_BYTES, subscribers: FLOOD_SUBSCRIBERS, subscriberReadBytesPerSec: FLOOD_READ_BYTES_PER_SEC } },
      setup: { cpus, loadAverageAtStart: loadBefore, subscribers: SUBSCRIBERS, publishBytes: Buffer.byteLength(publishFrame), roundSeconds: ROUND_SECONDS, rounds: ROUNDS, idleConnections: IDLE_CONNECTIONS, topicsPerIdleConnection: 2 },
      benchSeconds: 0,
    };
    result.ratio = Math.round((result.ours.relayPerSec / result.stock.relayPerSec) * 100) / 100;
    result.ratioUnpipelined = Math.round((result.ours.relayUnpipelinedPerSec / result.stock.relayUnpipelinedPerSec) * 100) / 100;
    result.benchSeconds = Math.round((performance.now() - benchStart) / 1000);

    if (asJson) {
      process.stdout.write(`${JSON.stringify(result)}\n`);
    } else {
      const row = (label: string, a: string, b: string, c = ''): string => `${label.padEnd(40)}${a.padStart(14)}${b.padStart(14)}${c.padStart(12)}`;
      const fmt = (n: number): string => n.toLocaleString('en');
      console.log(row('', 'ours', 'stock', 'ours/stock'));
      console.log(row(`relay msg/s (${SUBSCRIBERS} subscribers, median)`, fmt(result.ours.relayPerSec), fmt(result.stock.relayPerSec), result.ratio.toFixed(2)));
      console.log(row('  one publish at a time (msg/s, median)', fmt(result.ours.relayUnpipelinedPerSec), fmt(result.stock.relayUnpipelinedPerSec), result.ratioUnpipelined.toFixed(2)));
      console.log(row('RSS, fresh process (MB)', fmt(result.ours.rssBaselineMB), fmt(result.stock.rssBaselineMB)));
      console.log(row(`RSS, ${IDLE_CONNECTIONS} idle conns × 2 topics (MB)`, fmt(result.ours.rssIdle1000MB), fmt(result.stock.rssIdle1000MB), (result.ours.rssIdle1000MB / result.stock.rssIdle1000MB).toFixed(2)));
      console.log(row('  RSS growth for those connections (MB)', fmt(result.ours.rssDelta1000MB), fmt(result.stock.rssDelta1000MB), (result.ours.rssDelta1000MB / result.stock.rssDelta1000MB).toFixed(2)));
      console.log(row('survives one non-JSON frame', result.ours.survivesMalformed ? 'yes' : 'NO', result.stock.survivesMalformed ? 'yes' : 'NO'));
      const f = (r: FloodResult | null): string => (r === null ? '—' : `${r.subscribersDropped}/${FLOOD_SUBSCRIBERS}${r.firstDropS === null ? '' : ` (first at ${r.firstDropS} s)`}`);
      const p = (r: FloodResult | null): string => (r === null ? '—' : r.publisherCloseCode === null ? 'not closed' : `closed ${r.publisherCloseCode} at ${r.publisherClosedAfterS} s`);
      const row2 = (label: string, a: string, b: string): string => `${label.padEnd(40)}${a.padStart(22)}${b.padStart(22)}`;
      console.log('');
      console.log(`flood (ours): ${FLOOD_PER_SEC} publishes of ${FLOOD_PAD_BYTES / 1024} KiB per second for ${FLOOD_SECONDS} s; ${FLOOD_SUBSCRIBERS} subscribers reading ${FLOOD_READ_BYTES_PER_SEC / 1024} KiB/s`);
      console.log(row2('', 'default limits', 'byte buckets lifted'));
      console.log(row2('  honest subscribers dropped', f(result.flood.defaults), f(result.flood.byteLimitLifted)));
      console.log(row2('  KiB received per subscriber (median)', fmt(result.flood.defaults?.receivedKiBMedian ?? 0), fmt(result.flood.byteLimitLifted?.receivedKiBMedian ?? 0)));
      console.log(row2('  the flooding publisher', p(result.flood.defaults), p(result.flood.byteLimitLifted)));
      console.log(`publish frame ${result.setup.publishBytes} B; ${ROUNDS} rounds × ${ROUND_SECONDS} s per server; ${cpus} CPUs, load average ${loadBefore} at start; bench took ${result.benchSeconds} s`);
    }
    if (result.ratio < 1) progress(`WARNING: our relay throughput is below stock (ratio ${result.ratio})`);
  } finally {
    await Promise.all([ours.stop(), stock.stop()]);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
