/**
 * What signatures cost (docs/security.md, "Signatures"): Ed25519 sign and verify through
 * WebCrypto, in Node and in Chromium, per message and in a batch, with the load average
 * (the machine is shared: read the figures against it).
 *
 *   npx tsx scripts/bench-signatures.ts [--n N]
 *
 * - sign / verify: one awaited at a time (the latency a message pays), µs per operation,
 *   median and p99 over runs of 20 (a page's clock is coarsened to 100 µs);
 * - batch: N started at once and awaited together (throughput when a link delivers many);
 * - Node also runs the runtime's own path (seals.ts): seal a chat broadcast (encode +
 *   sign), open it at a neighbour (key cache, verify, decode), seal and open a routed
 *   /tell. A broadcast pays one signature at its origin and one verification per hop; a
 *   routed envelope one signature at its source and one verification at its destination
 *   (hops forward it unopened).
 * Chromium is Debian's (/usr/bin/chromium, or CHROMIUM_PATH), headless, on an empty page
 * served from 127.0.0.1 (WebCrypto needs a secure context; loopback is one).
 */
import os from 'node:os';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium } from 'playwright';
import { generateIdentity } from '../src/trust/keys';
import { Sealer } from '../src/runtime/seals';
import { nodeIdentity } from '../src/runtime/node-identity';

const args = process.argv.slice(2);
const nArg = args.indexOf('--n');
const N = nArg >= 0 ? Number(args[nArg + 1]) : 2000;
if (!Number.isInteger(N) || N < 10) throw new Error('--n needs an integer ≥ 10');

interface Figures {
  signMedUs: number;
  signP99Us: number;
  verifyMedUs: number;
  verifyP99Us: number;
  batchSignUs: number;
  batchVerifyUs: number;
}

/** Runs in Node and, as its source text, in the page: no imports, no closures. */
async function measure(n: number): Promise<Figures> {
  const alg = { name: 'Ed25519' };
  const pair = (await crypto.subtle.generateKey(alg, false, ['sign', 'verify'])) as CryptoKeyPair;
  const msg = new Uint8Array(200);
  crypto.getRandomValues(msg);
  const sig = new Uint8Array(await crypto.subtle.sign(alg, pair.privateKey, msg));
  const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
  // one awaited at a time, timed over runs of 20 (a page's clock is coarsened to 100 µs)
  const signs: number[] = [];
  const verifies: number[] = [];
  const RUN = 20;
  for (let i = 0; i < n; i += RUN) {
    let t = performance.now();
    for (let j = 0; j < RUN; j++) await crypto.subtle.sign(alg, pair.privateKey, msg);
    signs.push(((performance.now() - t) * 1000) / RUN);
    t = performance.now();
    for (let j = 0; j < RUN; j++) await crypto.subtle.verify(alg, pair.publicKey, sig, msg);
    verifies.push(((performance.now() - t) * 1000) / RUN);
  }
  let t = performance.now();
  await Promise.all(Array.from({ length: n }, () => crypto.subtle.sign(alg, pair.privateKey, msg)));
  const batchSignUs = ((performance.now() - t) * 1000) / n;
  t = performance.now();
  await Promise.all(Array.from({ length: n }, () => crypto.subtle.verify(alg, pair.publicKey, sig, msg)));
  const batchVerifyUs = ((performance.now() - t) * 1000) / n;
  return { signMedUs: q(signs, 0.5), signP99Us: q(signs, 0.99), verifyMedUs: q(verifies, 0.5), verifyP99Us: q(verifies, 0.99), batchSignUs, batchVerifyUs };
}

async function runtimePath(n: number): Promise<Record<string, number>> {
  const a = await generateIdentity();
  const b = await generateIdentity();
  const sa = new Sealer(nodeIdentity(a), 'bench');
  const sb = new Sealer(nodeIdentity(b), 'bench');
  const data = { type: 'chat.message', message: { id: `${a.id}:x`, room: 'lobby', from: a.id, nick: 'alice', text: 'x'.repeat(80), ts: 1 } };
  const q = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const seal: number[] = [];
  const open: number[] = [];
  const route: number[] = [];
  const openRoute: number[] = [];
  for (let i = 0; i < n; i++) {
    const id = `${a.id}:t:${i}`;
    let t = performance.now();
    const s = await sa.sealBroadcast(id, 'chat', data);
    seal.push((performance.now() - t) * 1000);
    t = performance.now();
    if (!(await sb.openBroadcast(id, a.id, 'chat', s))) throw new Error('own seal refused');
    open.push((performance.now() - t) * 1000);
    t = performance.now();
    const env = await sa.sealRoute({ src: a.id, dst: b.id, ttl: 12, msg: { type: 'chat.tell', message: { ...data.message, room: '@direct', to: b.id } } });
    route.push((performance.now() - t) * 1000);
    t = performance.now();
    if (!(await sb.openRoute(env as never))) throw new Error('own route refused');
    openRoute.push((performance.now() - t) * 1000);
  }
  return { sealBroadcastUs: q(seal), openBroadcastUs: q(open), sealRouteUs: q(route), openRouteUs: q(openRoute) };
}

const round = (f: Record<string, number>) => Object.fromEntries(Object.entries(f).map(([k, v]) => [k, Math.round(v)]));

async function main(): Promise<void> {
  const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`n = ${N}, ${os.cpus().length} cores, load average before: ${load()}`);
  console.log('node', process.version, round(await measure(N) as unknown as Record<string, number>));
  console.log('node, runtime path (seals.ts), median µs', round(await runtimePath(Math.min(N, 1000))));
  const server = http.createServer((_req, res) => res.end('<!doctype html><title>bench</title>'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    const version = browser.version();
    // tsx names functions with an `__name` helper the page does not have
    const f = await page.evaluate(`var __name = (fn) => fn; (${measure.toString()})(${N})`);
    console.log('chromium', version, round(f as Record<string, number>));
  } finally {
    await browser.close();
    server.close();
  }
  console.log(`load average after: ${load()}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
