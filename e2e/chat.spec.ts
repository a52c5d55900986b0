import { test, expect, type Browser } from '@playwright/test';
import { closeTab, launchBrowser, openTab, startOurServer, uniqueCluster, waitFor, type Server, type Tab } from './harness';

let browser: Browser;
let server: Server;

test.beforeAll(async () => {
  browser = await launchBrowser();
  server = await startOurServer();
});
test.afterAll(async () => {
  await browser?.close();
  await server?.close();
});

const texts = (t: Tab, room = 'lobby') => t.page.evaluate((room) => window.p2p.chat.history(room).map((m) => m.text), room);

test('chat messages reach every tab in order, rooms come and go, late joiners get history', async () => {
  const c = uniqueCluster('chat');
  const tabs: Tab[] = [];
  for (const nick of ['ann', 'bob', 'cid', 'dee']) tabs.push(await openTab(browser, server.url, { cluster: c, signaling: server.ws, nick }));
  const [ann, bob, cid, dee] = tabs as [Tab, Tab, Tab, Tab];
  for (const t of tabs) await waitFor(() => t.page.evaluate(() => window.p2p.members().length), (n) => n === 4, 30_000, 'members');

  for (let i = 0; i < 10; i++) await ann.page.evaluate((i) => window.p2p.chat.send(`m${i}`), i);
  await bob.page.evaluate(() => window.p2p.chat.send('reply from bob'));
  const want = [...Array.from({ length: 10 }, (_, i) => `m${i}`), 'reply from bob'];
  for (const t of tabs) await waitFor(() => texts(t), (h) => JSON.stringify(h) === JSON.stringify(want), 15_000, `history at ${t.id}`);

  // rooms: a room exists while it has a member
  await cid.page.evaluate(() => window.p2p.chat.join('ops'));
  await waitFor(() => ann.page.evaluate(() => window.p2p.chat.rooms()), (r) => r.includes('ops'), 15_000, 'ops visible');
  await cid.page.evaluate(() => window.p2p.chat.send('in ops', 'ops'));
  await cid.page.evaluate(() => window.p2p.chat.leave('ops'));
  await waitFor(() => ann.page.evaluate(() => window.p2p.chat.rooms()), (r) => !r.includes('ops'), 15_000, 'ops gone');

  // /tell reaches only its recipient
  await dee.page.evaluate(() => window.p2p.chat.tell('ann', 'psst'));
  await waitFor(() => ann.page.evaluate(() => window.p2p.chat.history('@direct').map((m) => m.text)), (h) => h.includes('psst'), 15_000, 'tell arrives');
  expect(await bob.page.evaluate(() => window.p2p.chat.history('@direct').map((m) => m.text))).not.toContain('psst');

  // a late joiner sees the recent history
  const late = await openTab(browser, server.url, { cluster: c, signaling: server.ws, nick: 'eve' });
  await waitFor(() => texts(late), (h) => JSON.stringify(h) === JSON.stringify(want), 20_000, 'late joiner history');

  // overlong and bad input: a clear error, nothing sent
  const err = await ann.page.evaluate(() => window.p2p.chat.send('x'.repeat(5000)).then(() => 'sent', (e: Error) => e.message));
  expect(err).toMatch(/long|characters/i);
  const nickErr = await ann.page.evaluate(() => {
    try {
      window.p2p.chat.setNick('');
      return 'accepted';
    } catch (e) {
      return (e as Error).message;
    }
  });
  expect(nickErr).toMatch(/nick/i);
  for (const t of [...tabs, late]) await closeTab(t);
});

test('a reloaded tab keeps its history and node id', async () => {
  const c = uniqueCluster('chat-reload');
  const a = await openTab(browser, server.url, { cluster: c, signaling: server.ws, nick: 'ann' });
  const b = await openTab(browser, server.url, { cluster: c, signaling: server.ws, nick: 'bob' });
  await waitFor(() => b.page.evaluate(() => window.p2p.peers().length), (n) => n > 0, 20_000, 'b joined');
  await a.page.evaluate(() => window.p2p.chat.send('before reload'));
  await waitFor(() => texts(b), (h) => h.includes('before reload'), 15_000, 'b got it');
  await b.page.reload();
  await b.page.waitForFunction(() => (window as unknown as { p2p?: unknown }).p2p !== undefined);
  await b.page.evaluate(() => window.p2p.ready);
  expect(await b.page.evaluate(() => window.p2p.id)).toBe(b.id);
  await waitFor(() => texts(b), (h) => h.includes('before reload'), 15_000, 'history after reload');
  await closeTab(a);
  await closeTab(b);
});
