import { test, expect, type NodeFixtures } from './fixtures';
import { closeTab, crashTab, startStockServer, waitFor, type Tab } from './harness';

/** Two tabs of the app on our server, signalling through `signaling` (default: our server), linked to each other. */
async function connectedPair(cluster: NodeFixtures['cluster'], signaling?: string): Promise<[Tab, Tab]> {
  const [a, b] = (await cluster(2, 'pair', { nicks: ['alice', 'bob'], signaling, formed: false })).tabs as [Tab, Tab];
  await waitFor(() => a.page.evaluate(() => window.p2p.peers()), (p) => p.includes(b.id), 20_000, 'a sees b');
  await waitFor(() => b.page.evaluate(() => window.p2p.peers()), (p) => p.includes(a.id), 20_000, 'b sees a');
  return [a, b];
}

async function exchangeChat(a: Tab, b: Tab): Promise<void> {
  await a.page.evaluate(() => window.p2p.chat.send('hello from a'));
  await waitFor(() => b.page.evaluate(() => window.p2p.chat.history().map((m) => m.text)), (h) => h.includes('hello from a'), 15_000, 'b receives a chat message');
  // and it crossed a data channel, not the signaling server
  const frames = await b.page.evaluate(() => window.p2p.stats()['frames.in'] ?? 0);
  expect(frames).toBeGreaterThan(0);
}

test('two tabs find each other through our signaling server and exchange data', async ({ cluster }) => {
  const [a, b] = await connectedPair(cluster);
  await exchangeChat(a, b);
  await closeTab(a);
  await closeTab(b);
});

test('the same works through the stock y-webrtc-signaling server', async ({ cluster }) => {
  const stock = await startStockServer();
  try {
    const [a, b] = await connectedPair(cluster, stock.ws);
    await exchangeChat(a, b);
    await closeTab(a);
    await closeTab(b);
  } finally {
    await stock.close();
  }
});

test('a closed tab is dropped from peers() within a few seconds', async ({ cluster }) => {
  const [a, b] = await connectedPair(cluster);
  await closeTab(b);
  await waitFor(() => a.page.evaluate(() => window.p2p.peers()), (p) => !p.includes(b.id), 8_000, 'a drops closed b');
  await closeTab(a);
});

test('a crashed tab is dropped from peers() within a few seconds', async ({ cluster }) => {
  const [a, b] = await connectedPair(cluster);
  await crashTab(b);
  await waitFor(() => a.page.evaluate(() => window.p2p.peers()), (p) => !p.includes(b.id), 10_000, 'a drops crashed b');
  await closeTab(a);
});

/** Kills b's renderer and keeps its context (crashTab closes it, which would close its sockets too). */
async function crashRenderer(b: Tab): Promise<void> {
  const cdp = await b.context.newCDPSession(b.page);
  const crashed = new Promise<void>((resolve) => b.page.once('crash', () => resolve()));
  void cdp.send('Page.crash').catch(() => undefined);
  await crashed;
}

/** How a's link to a crashed peer ended: found by a link check after its will, or by the heartbeat deadline. */
async function howFound(a: Tab): Promise<{ wills: number; checkTimeouts: number; heartbeatTimeouts: number }> {
  return a.page.evaluate(() => {
    const s = window.p2p.stats();
    return { wills: s['will.in'] ?? 0, checkTimeouts: s['links.checkTimeouts'] ?? 0, heartbeatTimeouts: s['links.heartbeatTimeouts'] ?? 0 };
  });
}

test('a crashed tab\'s last will reaches its peers, which drop its link by a check rather than the heartbeat deadline', async ({ cluster }) => {
  const [a, b] = await connectedPair(cluster);
  await crashRenderer(b);
  await waitFor(() => a.page.evaluate(() => window.p2p.peers()), (p) => !p.includes(b.id), 10_000, 'a drops crashed b');
  expect(await howFound(a)).toEqual({ wills: 1, checkTimeouts: 1, heartbeatTimeouts: 0 });
  await b.context.close();
  await closeTab(a);
});

test('through the stock server (no will), a crashed tab is still found, by a check when ICE reports the connection disconnected', async ({ cluster }) => {
  const stock = await startStockServer();
  try {
    const [a, b] = await connectedPair(cluster, stock.ws);
    await crashRenderer(b);
    // ICE consent checks go unanswered: "disconnected" after 5-7 s, then the check's 2 s (the heartbeat deadline is 25 s)
    await waitFor(() => a.page.evaluate(() => window.p2p.peers()), (p) => !p.includes(b.id), 15_000, 'a drops crashed b');
    expect(await howFound(a)).toEqual({ wills: 0, checkTimeouts: 1, heartbeatTimeouts: 0 });
    await b.context.close();
    await closeTab(a);
  } finally {
    await stock.close();
  }
});

test('a reloading tab withdraws its will: none is published, and its peer does not suspect it', async ({ cluster, server }) => {
  const [a, b] = await connectedPair(cluster);
  const signaling = (server as unknown as { server: { stats(): { willsPublished: number } } }).server;
  const stats = () => signaling.stats();
  const before = stats().willsPublished;
  await b.page.reload();
  await b.page.waitForFunction(() => (window as unknown as { p2p?: { peers(): string[] } }).p2p?.peers().length === 1);
  await waitFor(() => a.page.evaluate(() => window.p2p.peers()), (p) => p.includes(b.id), 20_000, 'a links to reloaded b');
  expect(stats().willsPublished).toBe(before);
  expect(await a.page.evaluate(() => window.p2p.stats()['mem.suspicionsRaised'] ?? 0)).toBe(0);
  await closeTab(a);
  await closeTab(b);
});

test('a reload keeps the node id; a duplicated tab gets its own', async ({ cluster }) => {
  const [a] = (await cluster(1, 'ids', { formed: false })).tabs as [Tab];
  await a.page.reload();
  await a.page.waitForFunction(() => (window as unknown as { p2p?: unknown }).p2p !== undefined);
  expect(await a.page.evaluate(() => window.p2p.id)).toBe(a.id);
  // the reloaded page holds the id's lock (once), and nobody is left waiting for it
  const locks = await waitFor(
    () => a.page.evaluate(async () => {
      const q = await navigator.locks.query();
      return { held: (q.held ?? []).map((l) => l.name), pending: (q.pending ?? []).map((l) => l.name) };
    }),
    (l) => l.held.includes(`p2p-node-${a.id}`),
    10_000,
    'the reloaded page holds its lock',
  );
  expect(locks.held.filter((n) => n === `p2p-node-${a.id}`)).toHaveLength(1);
  expect(locks.pending).toEqual([]);
  // a second page in the same context copying all of sessionStorage, like "Duplicate tab"
  const session = await a.page.evaluate(() => Object.entries(sessionStorage));
  const dup = await a.context.newPage();
  await dup.addInitScript((entries) => {
    for (const [k, v] of entries) sessionStorage.setItem(k, v);
  }, session);
  await dup.goto(a.page.url());
  await dup.waitForFunction(() => (window as unknown as { p2p?: unknown }).p2p !== undefined);
  expect(await dup.evaluate(() => window.p2p.id)).not.toBe(a.id);
  await closeTab(a);
});
