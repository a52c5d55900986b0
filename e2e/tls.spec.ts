/**
 * TLS: the server with a self-signed certificate (made here with openssl) and
 * ICE_SERVERS=[]; tabs open it over https under a non-loopback name (lan.test mapped to
 * 127.0.0.1 by Chromium's host resolver rules, every other name unresolvable), so they
 * are secure contexts off loopback, and join over wss.
 */
import { test, expect, chromium, type Browser } from '@playwright/test';
import { CHROMIUM_ARGS, closeTab, freePort, openTab, uniqueCluster, waitFor, waitMembers, type Tab } from './harness';
import { startSignalingServer, type SignalingServer } from '../signaling/server';
import { iceSettingsFromEnv } from '../signaling/ice';
import { loadTls } from '../signaling/tls';
import { selfSignedCert, type SelfSignedCert } from '../signaling/services';

let browser: Browser;
let cert: SelfSignedCert;
let server: SignalingServer;

test.beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [...CHROMIUM_ARGS, '--host-resolver-rules=MAP lan.test 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE *.local'],
  });
  cert = await selfSignedCert(['lan.test']);
  server = await startSignalingServer({
    port: await freePort(),
    host: '127.0.0.1',
    log: () => undefined,
    tls: await loadTls({ certPath: cert.certPath, keyPath: cert.keyPath }),
    // off loopback the page would default to a public STUN server: not in tests
    ice: iceSettingsFromEnv({ ICE_SERVERS: '[]' }),
  });
});
test.afterAll(async () => {
  await browser?.close();
  await server?.close();
  await cert?.remove();
});

test('tabs opened over https from a non-loopback name are secure contexts and join over wss', async () => {
  const url = `https://lan.test:${server.port}/`;
  const cluster = uniqueCluster('tls');
  const tabs: Tab[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      tabs.push(await openTab(browser, url, { cluster, nick: `s${i}` }, context));
    }
    await waitMembers(tabs, 45_000);
    for (const t of tabs) {
      const env = await t.page.evaluate(() => ({
        origin: location.origin,
        secure: isSecureContext,
        subtle: typeof crypto.subtle?.digest === 'function',
        locks: typeof navigator.locks?.request === 'function',
        signaling: window.p2p.info().signaling,
        ice: window.p2p.info().ice,
      }));
      expect(env).toEqual({
        origin: `https://lan.test:${server.port}`,
        secure: true,
        subtle: true,
        locks: true,
        signaling: [{ url: `wss://lan.test:${server.port}/signal`, state: 'open' }],
        ice: { policy: 'all', servers: [], source: 'server', credentialExpiresInS: null, error: null },
      });
    }
    await tabs[0]!.page.evaluate(() => window.p2p.chat.send('over wss'));
    await waitFor(() => tabs[2]!.page.evaluate(() => window.p2p.chat.history().map((m) => m.text)), (h) => h.includes('over wss'), 15_000, 'chat between https tabs');
    expect(server.stats().connections).toBe(3);
  } finally {
    for (const t of tabs) await closeTab(t);
  }
});
