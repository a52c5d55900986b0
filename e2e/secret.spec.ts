/**
 * The cluster secret (#secret= in the URL): tabs that share it form the cluster and chat;
 * a tab with another secret never links and tells its user; a bare signaling client that
 * listens on every topic it can name reads no node id, SDP or frame.
 */
import type { BrowserContext } from '@playwright/test';
import { test, expect } from './fixtures';
import { chatTexts, uniqueCluster, waitFor, waitMembers, type Tab } from './harness';
import { TestClient } from '../signaling/testing';
import { lobbyTopic } from '../src/runtime/cluster-secret';

async function openWithSecret(context: BrowserContext, appUrl: string, cluster: string, nick: string, secret: string): Promise<Tab> {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`[pageerror] ${e.message}`));
  const q = new URLSearchParams({ cluster, nick });
  await page.goto(`${appUrl}?${q}#${new URLSearchParams({ secret })}`);
  await page.waitForFunction(() => (window as unknown as { p2p?: unknown }).p2p !== undefined);
  await page.evaluate(() => window.p2p.ready);
  return { context, page, id: await page.evaluate(() => window.p2p.id) };
}

test('tabs with the same secret link and chat; a listener on every topic it can name reads no id, SDP or frame', async ({ browserProfile, server }) => {
  const c = uniqueCluster('secret');
  const spy = await TestClient.open(server.ws);
  const frames: string[] = [];
  spy.ws.on('message', (d: Buffer) => frames.push(d.toString('utf8')));
  spy.send({ type: 'subscribe', topics: [c, 'default', `${c}/`, await lobbyTopic(c)] });

  const a = await openWithSecret(await browserProfile(), server.url, c, 'ann', 'open sesame');
  // as if it had guessed the first tab's id: its inbox in an open cluster
  spy.send({ type: 'subscribe', topics: [`${c}/${a.id}`] });
  const b = await openWithSecret(await browserProfile(), server.url, c, 'bob', 'open sesame');
  spy.send({ type: 'subscribe', topics: [`${c}/${b.id}`] });
  await waitMembers([a, b], 60_000);

  await a.page.evaluate(() => window.p2p.chat.send('hello under a secret'));
  await waitFor(() => chatTexts(b), (h) => h.includes('hello under a secret'), 15_000, 'chat at bob');

  // the secret left the address bar, the header says the cluster is protected
  expect(await a.page.evaluate(() => location.hash)).toBe('');
  await expect(a.page.getByTestId('secret-indicator')).toHaveText(/protected/);
  expect(await a.page.evaluate(() => window.p2p.info().secret)).toMatchObject({ protected: true, wrongSecret: false });

  const raw = frames.join('\n');
  expect(raw).toContain('"c":'); // the lobby's sealed presences reached it
  for (const clear of [a.id, b.id, 'ann', 'bob', 'hello under a secret', 'sdp', 'candidate', 'fingerprint']) expect(raw).not.toContain(clear);
  spy.ws.close();
});

test('a tab with the wrong secret never links and is told so', async ({ browserProfile, server }) => {
  const c = uniqueCluster('secret-wrong');
  const a = await openWithSecret(await browserProfile(), server.url, c, 'ann', 'right one');
  const b = await openWithSecret(await browserProfile(), server.url, c, 'bob', 'right one');
  await waitMembers([a, b], 60_000);
  const m = await openWithSecret(await browserProfile(), server.url, c, 'mal', 'wrong one');

  await expect(m.page.getByTestId('wrong-secret')).toBeVisible({ timeout: 20_000 });
  await expect(m.page.getByTestId('wrong-secret')).toContainText('Wrong secret?');
  // it had time to find them: nothing links, nobody lists it, it lists nobody
  await m.page.waitForTimeout(3_000);
  expect(await m.page.evaluate(() => window.p2p.peers())).toEqual([]);
  expect(await m.page.evaluate(() => window.p2p.members())).toEqual([m.id]);
  for (const t of [a, b]) {
    expect(await t.page.evaluate(() => window.p2p.members().slice().sort())).toEqual([a.id, b.id].sort());
    await expect(t.page.getByTestId('wrong-secret')).toHaveCount(0);
  }
});
