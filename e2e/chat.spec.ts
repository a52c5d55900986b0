import { test, expect } from './fixtures';
import { chatTexts as texts, closeTab, waitFor, type Tab } from './harness';

test('chat messages reach every tab in order, rooms come and go, late joiners get history', async ({ cluster, open }) => {
  const { name: c, tabs } = await cluster(4, 'chat', { nicks: ['ann', 'bob', 'cid', 'dee'] });
  const [ann, bob, cid, dee] = tabs as [Tab, Tab, Tab, Tab];

  for (let i = 0; i < 10; i++) await ann.page.evaluate((i) => window.p2p.chat.send(`m${i}`), i);
  await bob.page.evaluate(() => window.p2p.chat.send('reply from bob'));
  const want = [...Array.from({ length: 10 }, (_, i) => `m${i}`), 'reply from bob'];
  for (const t of tabs) await waitFor(() => texts(t), (h) => JSON.stringify(h) === JSON.stringify(want), 15_000, `history at ${t.id}`);
  // honest tabs never refuse each other's signatures (a copy that lost its seal on the wire is refused)
  for (const t of tabs) expect(await t.page.evaluate(() => window.p2p.stats()['sig.refused'])).toBe(0);

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
  const late = await open({ cluster: c, nick: 'eve' });
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

test('a reloaded tab keeps its history and node id', async ({ cluster }) => {
  const { tabs } = await cluster(2, 'chat-reload', { nicks: ['ann', 'bob'], formed: false });
  const [a, b] = tabs as [Tab, Tab];
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
