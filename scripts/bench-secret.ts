/**
 * What the cluster secret costs (docs/security.md, "Cluster secret"), in Node and in
 * Chromium, with the load average (the machine is shared: read the figures against it).
 *
 *   npx tsx scripts/bench-secret.ts [--runs R] [--n N]
 *
 * - kdf: PBKDF2-SHA256 with the real iteration count, then the three HKDF keys, as
 *   trust/secret.ts derives them: ms per derivation, every one of R runs (a tab without
 *   the keys in its cache pays this once before it joins);
 * - cacheRead (Chromium only): reading the derived CryptoKeys back from IndexedDB, as a
 *   reload does instead of deriving (ms, median of R);
 * - seal / open: AES-GCM of a signed signaling message of about 1 KB (an offer's size) with
 *   a random IV and the topic as additional data, then base64: µs per message, median and
 *   p99 over N (the price of every announce, offer, answer, candidate and relayed frame
 *   on top of its signature);
 * - linkMac: HMAC-SHA-256 of a link transcript (one per hello, plus one check).
 * Chromium is Debian's (/usr/bin/chromium, or CHROMIUM_PATH), headless, on an empty page
 * served from 127.0.0.1 (WebCrypto needs a secure context; loopback is one).
 */
import os from 'node:os';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium } from 'playwright';
import { KDF_ITERATIONS } from '../src/trust/secret';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} needs a positive integer`);
  return v;
};
const RUNS = arg('--runs', 5);
const N = arg('--n', 1000);

interface Figures {
  kdfMs: number[];
  cacheReadMs: number | null;
  sealMedUs: number;
  sealP99Us: number;
  openMedUs: number;
  openP99Us: number;
  linkMacUs: number;
}

/**
 * Runs in Node and, as its source text, in the page: no imports, no closures. Mirrors
 * trust/secret.ts (deriveClusterKeys, encryptPayload, decryptPayload) step for step.
 */
async function measure(runs: number, n: number, iterations: number, idb: boolean): Promise<Figures> {
  const s = crypto.subtle;
  const enc = new TextEncoder();
  const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
  const derive = async (secret: string) => {
    const base = await s.importKey('raw', enc.encode(secret), 'PBKDF2', false, ['deriveBits']);
    const bits = await s.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: enc.encode('p2p-cluster/1|bench'), iterations }, base, 256);
    const master = await s.importKey('raw', bits, 'HKDF', false, ['deriveKey']);
    const hkdf = (info: string) => ({ name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: enc.encode(info) });
    const hmac = { name: 'HMAC', hash: 'SHA-256', length: 256 };
    const [topic, encKey, link] = await Promise.all([
      s.deriveKey(hkdf('p2p/topic'), master, hmac, false, ['sign']),
      s.deriveKey(hkdf('p2p/enc'), master, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']),
      s.deriveKey(hkdf('p2p/link'), master, hmac, false, ['sign', 'verify']),
    ]);
    return { topic, enc: encKey, link };
  };
  const kdfMs: number[] = [];
  let keys = null as Awaited<ReturnType<typeof derive>> | null;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    keys = await derive(`correct horse ${i}`);
    kdfMs.push(performance.now() - t);
  }
  const k = keys!;

  let cacheReadMs: number | null = null;
  if (idb) {
    const req = <T>(r: IDBRequest<T>) => new Promise<T>((res, rej) => ((r.onsuccess = () => res(r.result)), (r.onerror = () => rej(r.error))));
    const open = indexedDB.open('bench-secret', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('keys');
    const db = await req(open);
    await req(db.transaction('keys', 'readwrite').objectStore('keys').put(k, 'k'));
    const reads: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      const v = (await req(db.transaction('keys', 'readonly').objectStore('keys').get('k'))) as { enc?: unknown };
      if (!(v.enc instanceof CryptoKey)) throw new Error('cache read lost the key');
      reads.push(performance.now() - t);
    }
    cacheReadMs = q(reads, 0.5);
  }

  const topic = 'AbCdEfGhIjKlMnOpQrStUv';
  const aad = enc.encode(topic);
  const message = JSON.stringify({ t: 'signal', from: 'nabcdefghijklmnop', to: 'nqrstuvwxyzabcdef', ts: Date.now(), n: 'x'.repeat(16), pub: 'p'.repeat(44), sig: 's'.repeat(88), b: 'v'.repeat(800) });
  const b64 = (b: Uint8Array) => {
    let str = '';
    for (let i = 0; i < b.length; i += 0x8000) str += String.fromCharCode(...b.subarray(i, i + 0x8000));
    return btoa(str);
  };
  const unb64 = (str: string) => Uint8Array.from(atob(str), (c) => c.charCodeAt(0));
  // timed over runs of 20 (a page's clock is coarsened to 100 µs)
  const RUN = 20;
  const seals: number[] = [];
  const opens: number[] = [];
  const sealed: string[] = [];
  for (let i = 0; i < n; i += RUN) {
    sealed.length = 0;
    let t = performance.now();
    for (let j = 0; j < RUN; j++) {
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const ct = new Uint8Array(await s.encrypt({ name: 'AES-GCM', iv, additionalData: aad }, k.enc, enc.encode(message)));
      const out = new Uint8Array(12 + ct.length);
      out.set(iv);
      out.set(ct, 12);
      sealed.push(b64(out));
    }
    seals.push(((performance.now() - t) * 1000) / RUN);
    t = performance.now();
    for (const c of sealed) {
      const bytes = unb64(c);
      const pt = await s.decrypt({ name: 'AES-GCM', iv: bytes.subarray(0, 12), additionalData: aad }, k.enc, bytes.subarray(12));
      if (JSON.parse(new TextDecoder().decode(pt)).t !== 'signal') throw new Error('round trip failed');
    }
    opens.push(((performance.now() - t) * 1000) / RUN);
  }
  const transcript = new Uint8Array(200);
  let t = performance.now();
  for (let i = 0; i < n; i++) await s.sign('HMAC', k.link, transcript);
  const linkMacUs = ((performance.now() - t) * 1000) / n;
  return { kdfMs, cacheReadMs, sealMedUs: q(seals, 0.5), sealP99Us: q(seals, 0.99), openMedUs: q(opens, 0.5), openP99Us: q(opens, 0.99), linkMacUs };
}

const show = (f: Figures) => ({
  kdfMs: f.kdfMs.map((x) => Math.round(x)),
  cacheReadMs: f.cacheReadMs === null ? 'n/a' : Number(f.cacheReadMs.toFixed(1)),
  sealUs: `${Math.round(f.sealMedUs)} / ${Math.round(f.sealP99Us)} (median / p99)`,
  openUs: `${Math.round(f.openMedUs)} / ${Math.round(f.openP99Us)} (median / p99)`,
  linkMacUs: Math.round(f.linkMacUs),
});

async function main(): Promise<void> {
  const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`runs = ${RUNS}, n = ${N}, PBKDF2 iterations = ${KDF_ITERATIONS}, ${os.cpus().length} cores, load average before: ${load()}`);
  console.log('node', process.version, show(await measure(RUNS, N, KDF_ITERATIONS, false)));
  const server = http.createServer((_req, res) => res.end('<!doctype html><title>bench</title>'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    // tsx names functions with an `__name` helper the page does not have
    const f = await page.evaluate(`var __name = (fn) => fn; (${measure.toString()})(${RUNS}, ${N}, ${KDF_ITERATIONS}, true)`);
    console.log('chromium', browser.version(), show(f as Figures));
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
