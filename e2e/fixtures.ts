/**
 * The Playwright fixture every spec uses (`import { test, expect } from './fixtures'`).
 *
 * Worker-scoped, started once per worker process and shared by every test it runs
 * (`playwright.config.ts` runs one worker, so once per run unless a failed test makes
 * Playwright start a fresh worker):
 *   - `browser`: Debian's Chromium with the flags of `harness.ts` (replaces Playwright's
 *     own `browser` fixture);
 *   - `server`: our signaling server on a free loopback port, serving the built app.
 *
 * Test-scoped, for opening nodes (every tab is a node):
 *   - `open(o)`: one tab in a new browser context (its own storage, as another browser),
 *     or in `o.context` for tabs of one browser;
 *   - `cluster(n, name, o)`: n tabs of a new cluster, opened one after another, by default
 *     each in its own browser context with nick t0, t1, …, and once all are open, waits
 *     until every tab lists exactly these tabs as members;
 *   - `browserProfile()`: one browser context whose tabs share IndexedDB, sessionStorage
 *     and Web Locks, as tabs of one browser profile.
 * Whatever a test leaves open (a failed test stops half-way) is closed when it ends, so
 * the next test starts with an idle browser.
 */
import { test as base, type Browser, type BrowserContext } from '@playwright/test';
import { launchBrowser, openTab, startOurServer, uniqueCluster, waitMembers, type Server, type Tab } from './harness';

export { expect } from '@playwright/test';

export interface TabOptions {
  cluster: string;
  nick?: string;
  /** app and signaling from this server instead of the worker's */
  server?: Server;
  /** signaling URL(s), comma-separated (default: the server's WebSocket URL) */
  signaling?: string;
  /** open the tab in this context (tabs of one browser) instead of a new one */
  context?: BrowserContext;
  /** wait for window.p2p.ready (default true) */
  ready?: boolean;
  /** `?replicas=`: the KV replica count this tab asks the cluster for */
  replicas?: number;
}

export interface ClusterOptions {
  /** `?replicas=` of every tab */
  replicas?: number;
  /** nick of tab i (default `t${i}`) */
  nicks?: string[];
  server?: Server;
  signaling?: string;
  /** every tab in this context instead of one context per tab */
  context?: BrowserContext;
  /**
   * Wait until every tab lists exactly the cluster's tabs as members (default true).
   * Allows 60 s per tab: forming the cluster is not what the tests measure, and a loaded
   * machine may need that long.
   */
  formed?: boolean;
}

export interface Cluster {
  /** the cluster's name (unique per call), for opening more tabs into it */
  name: string;
  tabs: Tab[];
}

export interface NodeFixtures {
  open(o: TabOptions): Promise<Tab>;
  cluster(n: number, name: string, o?: ClusterOptions): Promise<Cluster>;
  browserProfile(): Promise<BrowserContext>;
  /** contexts opened by this test and not closed yet (internal: closed when the test ends) */
  openContexts: Set<BrowserContext>;
}

interface WorkerFixtures {
  server: Server;
}

export const test = base.extend<NodeFixtures, WorkerFixtures>({
  browser: [
    async ({}, use) => {
      const browser = await launchBrowser();
      await use(browser);
      await browser.close();
    },
    { scope: 'worker' },
  ],
  server: [
    async ({}, use) => {
      const server = await startOurServer();
      await use(server);
      // honest tabs should never meet a limit: say so if they did (the tests have their own assertions)
      const refused = Object.entries(server.server.stats().rejected).filter(([, n]) => n > 0);
      if (refused.length > 0) console.log(`[server] refused or dropped during these tests: ${refused.map(([r, n]) => `${r} ${n}`).join(', ')}`);
      await server.close();
    },
    { scope: 'worker' },
  ],
  openContexts: async ({}, use) => {
    const contexts = new Set<BrowserContext>();
    await use(contexts);
    await Promise.all([...contexts].map((c) => c.close()));
  },
  browserProfile: async ({ browser, openContexts }, use) => {
    await use(() => newContext(browser, openContexts));
  },
  open: async ({ browser, server, openContexts }, use) => {
    await use(async (o) => {
      const s = o.server ?? server;
      const context = o.context ?? (await newContext(browser, openContexts));
      return openTab(browser, s.url, { cluster: o.cluster, signaling: o.signaling ?? s.ws, nick: o.nick, ready: o.ready, replicas: o.replicas }, context);
    });
  },
  cluster: async ({ open }, use) => {
    await use(async (n, name, o = {}) => {
      const c = uniqueCluster(name);
      const tabs: Tab[] = [];
      for (let i = 0; i < n; i++) {
        tabs.push(await open({ cluster: c, nick: o.nicks?.[i] ?? `t${i}`, server: o.server, signaling: o.signaling, context: o.context, replicas: o.replicas }));
      }
      if (o.formed !== false) await waitMembers(tabs, 60_000);
      return { name: c, tabs };
    });
  },
});

async function newContext(browser: Browser, registry: Set<BrowserContext>): Promise<BrowserContext> {
  const context = await browser.newContext();
  registry.add(context);
  context.once('close', () => registry.delete(context));
  return context;
}
