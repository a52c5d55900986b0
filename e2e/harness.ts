/**
 * Multi-tab harness: plain functions to launch Debian's Chromium, start signaling
 * servers on free loopback ports, open, crash, close and freeze tabs (one browser
 * context per node: separate storage, like separate browsers), and wait for the cluster.
 * The specs get the browser, the server and their tabs from the fixture (fixtures.ts);
 * the bench scripts (scripts/bench.ts, scripts/profile-kv.ts) use these functions directly.
 */
import { chromium, type Browser, type BrowserContext, type Page } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { startSignalingServer, type Limits, type SignalingServer } from '../signaling/server';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  // background tabs must keep their timers running (heartbeats)
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Server {
  url: string;
  ws: string;
  close(): Promise<void>;
}

/**
 * The per-address limits lifted: every tab of a test or bench has the address
 * 127.0.0.1, where in the field each would be another machine. The per-connection
 * limits stay at their defaults.
 */
export const ONE_ADDRESS_FOR_MANY: Partial<Limits> = { maxConnectionsPerIp: 0, maxTopicsPerIp: 0, rateBytesBurstPerIp: 1e12, rateBytesPerSecPerIp: 1e12 };

/** Our signaling server serving the built app, with the default limits unless `limits` overrides some. */
export async function startOurServer(port = 0, limits?: Partial<Limits>): Promise<Server & { server: SignalingServer }> {
  const server = await startSignalingServer({ port, host: '127.0.0.1', log: () => undefined, limits });
  return { server, url: server.url, ws: server.url.replace(/^http/, 'ws'), close: () => server.close() };
}

/** The stock y-webrtc-signaling server, as a child process. */
export async function startStockServer(): Promise<Server> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['node_modules/y-webrtc/bin/server.js'], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('running')) resolve();
    });
  });
  return {
    url: `http://127.0.0.1:${port}/`,
    ws: `ws://127.0.0.1:${port}`,
    close: async () => {
      child.kill('SIGTERM');
    },
  };
}

export interface Tab {
  context: BrowserContext;
  page: Page;
  id: string;
}

export interface OpenOptions {
  cluster: string;
  signaling?: string;
  nick?: string;
  /** wait for window.p2p.ready (default true) */
  ready?: boolean;
  /** `?replicas=` */
  replicas?: number;
}

/** Opens one node in its own browser context. */
export async function openTab(browser: Browser, appUrl: string, o: OpenOptions, context?: BrowserContext): Promise<Tab> {
  const ctx = context ?? (await browser.newContext());
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.error(`[pageerror] ${e.message}`));
  const q = new URLSearchParams({ cluster: o.cluster });
  if (o.signaling) q.set('signaling', o.signaling);
  if (o.nick) q.set('nick', o.nick);
  if (o.replicas !== undefined) q.set('replicas', String(o.replicas));
  await page.goto(`${appUrl}?${q}`);
  if (o.signaling && isForeignSignaling(o.signaling, appUrl)) await acceptSignalingConsent(page);
  await page.waitForFunction(() => (window as unknown as { p2p?: unknown }).p2p !== undefined);
  if (o.ready !== false) await page.evaluate(() => window.p2p.ready);
  const id = await page.evaluate(() => window.p2p.id);
  return { context: ctx, page, id };
}

/** Whether a tab of `appUrl` given `?signaling=<signaling>` asks its user first
 * (src/runtime/signaling-consent.ts): one of the servers is another origin. */
export function isForeignSignaling(signaling: string, appUrl: string): boolean {
  const app = new URL(appUrl);
  return signaling.split(',').some((s) => {
    const u = new URL(s.trim(), appUrl);
    const scheme = u.protocol === 'ws:' ? 'http:' : u.protocol === 'wss:' ? 'https:' : u.protocol;
    return `${scheme}//${u.host}` !== app.origin;
  });
}

/** Answers the page's "Connect through another signaling server?" dialog with yes, as a user would. */
export async function acceptSignalingConsent(page: Page): Promise<void> {
  await page.getByRole('dialog').getByRole('button', { name: 'Connect through it' }).click();
}

/** Kills the renderer, as a crashed tab: no pagehide, no goodbye. */
export async function crashTab(tab: Tab): Promise<void> {
  const cdp = await tab.context.newCDPSession(tab.page);
  const crashed = new Promise<void>((resolve) => tab.page.once('crash', () => resolve()));
  // the call never answers: its target dies while handling it
  void cdp.send('Page.crash').catch((e: unknown) => console.log(`[crashTab] ${(e as Error).message.split('\n')[0]}`));
  await Promise.race([crashed, new Promise((r) => setTimeout(r, 5_000))]);
  await tab.context.close();
}

/** Closes a tab the way a user does (pagehide runs). */
export async function closeTab(tab: Tab): Promise<void> {
  await tab.page.close({ runBeforeUnload: true });
  await tab.context.close();
}

export async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000, what = 'condition'): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: T = await fn();
  while (!ok(last)) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 200));
    last = await fn();
  }
  return last;
}

export function uniqueCluster(name: string): string {
  return `${name}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/**
 * Makes a tab go silent, as a frozen page (laptop lid closed, tab frozen by the browser):
 * none of its JavaScript runs (no timers, no heartbeats, no message handling) while its
 * WebRTC connections stay open underneath. Returns the function that thaws it.
 *
 * `Page.setWebLifecycleState({state: 'frozen'})` would be the natural call, but in
 * headless Debian Chromium 156 it answers success and does nothing: no `freeze` event,
 * timers keep firing, frames keep flowing (checked with a 100 ms interval counter, which
 * kept counting through 12 s of "frozen"). Pausing the page in the debugger stops all of
 * its JavaScript instead, and `Debugger.resume` lets it carry on where it stopped, like a
 * thaw.
 */
export async function freezeTab(tab: Tab): Promise<() => Promise<void>> {
  const cdp = await tab.context.newCDPSession(tab.page);
  await cdp.send('Debugger.enable');
  const paused = new Promise<void>((resolve) => cdp.once('Debugger.paused', () => resolve()));
  await cdp.send('Debugger.pause');
  // the pause takes effect at the next JavaScript the page runs (its timers fire every second)
  await paused;
  return async () => {
    await cdp.send('Debugger.resume');
    await cdp.send('Debugger.disable');
    await cdp.detach();
  };
}

/** Every given tab lists exactly the given tabs as live members. */
export async function waitMembers(tabs: Tab[], timeoutMs = 30_000): Promise<void> {
  const ids = tabs.map((t) => t.id).sort();
  for (const t of tabs) {
    await waitFor(
      () => t.page.evaluate(() => window.p2p.members().slice().sort()),
      (m) => JSON.stringify(m) === JSON.stringify(ids),
      timeoutMs,
      `members at ${t.id} to be ${ids.length}`,
    );
  }
}

/** Every key is held by min(N, tabs) of the tabs (N: the cluster's replica count): re-replication (hand-off) finished. */
export async function waitReplicated(tabs: Tab[], keys: string[], timeoutMs = 60_000): Promise<void> {
  const n = await tabs[0]!.page.evaluate(() => window.p2p.kv.replication().n);
  const want = Math.min(n, tabs.length);
  await waitFor(
    async () => {
      const held = await Promise.all(tabs.map((t) => t.page.evaluate(() => window.p2p.kv.localKeys())));
      const counts = new Map<string, number>();
      for (const h of held) for (const k of h) counts.set(k, (counts.get(k) ?? 0) + 1);
      return keys.filter((k) => (counts.get(k) ?? 0) < want).length;
    },
    (missing) => missing === 0,
    timeoutMs,
    `${keys.length} keys at ${want} replicas (value: keys still short of copies)`,
  );
}

/**
 * Puts `${prefix}0` … `${prefix}${n - 1}`, value `{ i, text: 'value i' }`, from one tab,
 * all n puts in flight at once. Resolves only when every put was acknowledged (rejects
 * with the first failure), with the keys in index order, or with `sorted: true` in string
 * order (`k/0`, `k/1`, `k/10`, `k/100`, …).
 */
export async function putMany(tab: Tab, prefix: string, n: number, o: { sorted?: boolean } = {}): Promise<string[]> {
  const keys = await tab.page.evaluate(
    async ({ prefix, n }) => {
      const keys = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
      await Promise.all(keys.map((k, i) => window.p2p.kv.put(k, { i, text: `value ${i}` })));
      return keys;
    },
    { prefix, n },
  );
  return o.sorted ? keys.sort() : keys;
}

/** Texts of a chat room's history at this tab, oldest first. */
export function chatTexts(tab: Tab, room = 'lobby'): Promise<string[]> {
  return tab.page.evaluate((room) => window.p2p.chat.history(room).map((m) => m.text), room);
}
