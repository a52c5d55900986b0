/**
 * Relay-only links through a real coturn (`use-auth-secret`, listening and relaying on
 * 127.0.0.1 with loopback peers allowed), with the TURN credentials the server hands out
 * at /config.json:
 * - relay-only tabs form a cluster, chat and replicate, and every link is `relay`;
 * - credentials are renewed before they expire: a tab whose first credential has
 *   expired still links with a newcomer;
 * - with the TURN server stopped, relay-only tabs report that they cannot link, with the
 *   reason, and keep working alone (no page error, the KVS answers).
 */
import { test, expect, type Browser } from '@playwright/test';
import { closeTab, launchBrowser, openTab, uniqueCluster, waitFor, waitMembers, waitReplicated, type Tab } from './harness';
import { startSignalingServer, type SignalingServer } from '../signaling/server';
import { iceSettingsFromEnv } from '../signaling/ice';
import { startTurn, type TurnService } from '../signaling/services';
import { openTabWith } from './reach';

let browser: Browser;
let turn: TurnService;

test.beforeAll(async () => {
  browser = await launchBrowser();
  turn = await startTurn();
});
test.afterAll(async () => {
  await browser?.close();
  await turn?.stop();
});

/** Our server with TURN configured; `env` as `npm run serve` would read it. */
async function serverWith(env: Record<string, string>): Promise<SignalingServer> {
  const ice = iceSettingsFromEnv({ ICE_SERVERS: '[]', TURN_URLS: turn.url, TURN_SECRET: turn.secret, ...env });
  return startSignalingServer({ port: 0, host: '127.0.0.1', log: () => undefined, ice });
}

async function links(tab: Tab) {
  return tab.page.evaluate(() => window.p2p.links());
}

/** Every open link of every tab is relayed, and each tab has at least one. */
async function expectAllRelayed(tabs: Tab[]): Promise<void> {
  for (const t of tabs) {
    const { ls, stats } = await waitFor(
      () => t.page.evaluate(() => ({ ls: window.p2p.links(), stats: window.p2p.stats() })),
      ({ ls }) => ls.some((x) => x.state === 'open') && ls.filter((x) => x.state === 'open').every((x) => x.path !== null),
      15_000,
      `paths of ${t.id}'s links`,
    );
    const open = ls.filter((x) => x.state === 'open');
    expect(open.map((x) => x.path!.type)).toEqual(open.map(() => 'relay'));
    expect(open.every((x) => x.path!.local === 'relay')).toBe(true);
    expect(stats['links.relay']).toBe(open.length);
    expect(stats['links.host'] + stats['links.srflx']).toBe(0);
    expect(stats['ice.relayOnly']).toBe(1);
  }
}

test('relay-only tabs (ICE_TRANSPORT_POLICY=relay) form a cluster through coturn, chat and replicate', async () => {
  const server = await serverWith({ ICE_TRANSPORT_POLICY: 'relay' });
  const tabs: Tab[] = [];
  try {
    const cluster = uniqueCluster('turn');
    for (let i = 0; i < 3; i++) tabs.push(await openTab(browser, server.url, { cluster, nick: `r${i}` }));
    await waitMembers(tabs, 45_000);
    await expectAllRelayed(tabs);

    await tabs[0]!.page.evaluate(() => window.p2p.chat.send('through the relay'));
    for (const t of tabs.slice(1)) {
      await waitFor(() => t.page.evaluate(() => window.p2p.chat.history().map((m) => m.text)), (h) => h.includes('through the relay'), 15_000, 'chat over relayed links');
    }
    const keys = Array.from({ length: 20 }, (_, i) => `relay/${i}`);
    await tabs[1]!.page.evaluate((ks) => Promise.all(ks.map((k, i) => window.p2p.kv.put(k, { i }))), keys);
    await waitReplicated(tabs, keys);
    expect(await tabs[2]!.page.evaluate(() => window.p2p.kv.get('relay/7'))).toEqual({ i: 7 });

    // the UI says so too
    await expect(tabs[0]!.page.locator('#cluster .link.open .path.relay').first()).toBeVisible();
    await expect(tabs[0]!.page.locator('#cluster .policy')).toHaveText('relay only');
    // and coturn did relay: allocations were made with the served credentials
  } finally {
    for (const t of tabs) await closeTab(t);
    await server.close();
  }
});

test('?relay=1 tabs renew their TURN credentials before expiry and keep linking after the first one expired', async () => {
  // 8 s credentials: renewed every 4 s
  const server = await serverWith({ TURN_TTL: '8' });
  const tabs: Tab[] = [];
  try {
    const cluster = uniqueCluster('ttl');
    const open = (i: number) => openTabWith(browser, server.url, { cluster, nick: `t${i}`, params: { relay: '1' } });
    tabs.push(await open(0), await open(1));
    await waitMembers(tabs, 30_000);
    const first = await tabs[0]!.page.evaluate(() => window.p2p.stats()['ice.configFetches']);
    expect(first).toBeGreaterThanOrEqual(1);
    // past the first credential's expiry
    await tabs[0]!.page.waitForTimeout(10_000);
    const info = await tabs[0]!.page.evaluate(() => ({ fetches: window.p2p.stats()['ice.configFetches'], ice: window.p2p.info().ice }));
    expect(info.fetches).toBeGreaterThanOrEqual(first + 2);
    expect(info.ice!.credentialExpiresInS).toBeGreaterThan(0);
    expect(info.ice!.policy).toBe('relay');
    // a newcomer links with the old tabs: their new relay allocations use renewed credentials
    tabs.push(await open(2));
    await waitMembers(tabs, 30_000);
    await expectAllRelayed(tabs);
    const t0Links = await links(tabs[0]!);
    expect(t0Links.some((l) => l.state === 'open' && l.peer === tabs[2]!.id) || (await links(tabs[1]!)).some((l) => l.state === 'open' && l.peer === tabs[2]!.id)).toBe(true);
  } finally {
    for (const t of tabs) await closeTab(t);
    await server.close();
  }
});

test('with the TURN server stopped, relay-only tabs report that they cannot link, and keep working alone', async () => {
  const server = await serverWith({ ICE_TRANSPORT_POLICY: 'relay' });
  const tabs: Tab[] = [];
  const errors: string[] = [];
  await turn.stop();
  try {
    const cluster = uniqueCluster('noturn');
    for (let i = 0; i < 2; i++) {
      const t = await openTab(browser, server.url, { cluster, nick: `n${i}`, ready: false });
      t.page.on('pageerror', (e) => errors.push(e.message));
      tabs.push(t);
    }
    for (const t of tabs) {
      const other = tabs.find((x) => x !== t)!.id;
      // dials failed twice in a row: held off, shown with the reason (also while the peer dials back)
      const ls = await waitFor(() => links(t), (l) => l.some((x) => x.peer === other && (x.failures ?? 0) >= 2), 60_000, `${t.id} reports ${other} unreachable`);
      const u = ls.find((x) => x.peer === other)!;
      expect(u.state).not.toBe('open');
      expect(u.reason).toMatch(/^(dial timeout|no connection).* after [\d.]+ s: no relay candidate gathered: the TURN server is unreachable or refused the credentials/);
      expect(await t.page.evaluate(() => window.p2p.peers())).toEqual([]);
    }
    // visible in the UI, with the reason
    await expect(tabs[0]!.page.locator('#cluster .link .reason').first()).toContainText('TURN server is unreachable');
    // nothing else broke: signaling is up, the node answers, its KVS works alone
    for (const t of tabs) {
      const state = await t.page.evaluate(() => window.p2p.info().signaling.map((s) => s.state));
      expect(state).toEqual(['open']);
      await t.page.evaluate(() => window.p2p.kv.put('alone', 1));
      expect(await t.page.evaluate(() => window.p2p.kv.get('alone'))).toBe(1);
    }
    expect(errors).toEqual([]);

    // TURN back: the same tabs link (dials resume after their hold-off)
    await turn.start();
    await waitMembers(tabs, 90_000);
    await expectAllRelayed(tabs);
  } finally {
    for (const t of tabs) await closeTab(t);
    await server.close();
  }
});
