/**
 * Failures the product is judged by (issue #8): a tab that goes silent (frozen page, as a
 * laptop lid or a discarded background tab) and comes back, and the signaling server
 * restarting while the cluster runs.
 */
import { test, expect } from './fixtures';
import { chatTexts as texts, closeTab, freePort, freezeTab, putMany, startOurServer, waitFor, waitMembers, waitReplicated, type Server, type Tab } from './harness';

/** The keys this tab cannot read back with their value (quorum reads), each with why. */
async function unreadable(tab: Tab, keys: string[]): Promise<string[]> {
  return tab.page.evaluate(async (keys) => {
    const bad: string[] = [];
    for (let i = 0; i < keys.length; i += 20) {
      await Promise.all(
        keys.slice(i, i + 20).map(async (k) => {
          try {
            const v = (await window.p2p.kv.get(k)) as { i: number } | undefined;
            if (!v || !k.endsWith(`/${v.i}`)) bad.push(`${k}: ${JSON.stringify(v)}`);
          } catch (e) {
            bad.push(`${k}: ${(e as Error).message}`);
          }
        }),
      );
    }
    return bad.sort();
  }, keys);
}

/**
 * Every key becomes readable from this tab. A read that times out (quorum not reached in
 * 3 s, e.g. while an overloaded machine stalls every tab for seconds and links are
 * re-dialled) is tried again; a key that was lost never becomes readable.
 */
async function waitReadable(tabs: Tab[], tab: Tab, keys: string[], timeout = 60_000): Promise<void> {
  let bad = keys;
  try {
    await waitFor(
      async () => (bad = (await unreadable(tab, bad)).map((b) => b.slice(0, b.indexOf(': ')))),
      (b) => b.length === 0,
      timeout,
      `every key readable from ${tab.id} (tab ${tabs.indexOf(tab)})`,
    );
  } catch (e) {
    await dump(tabs, bad.slice(0, 3));
    throw e;
  }
}

/** What each tab knows, printed when a check fails (links, members, recent problems). */
async function dump(tabs: Tab[], keys: string[] = []): Promise<void> {
  for (const [i, t] of tabs.entries()) {
    const d = await t.page.evaluate(
      (keys) => ({
        peers: window.p2p.peers(),
        members: window.p2p.members(),
        signaling: window.p2p.info().signaling.map((s) => s.state),
        links: Object.fromEntries(Object.entries(window.p2p.stats()).filter(([k]) => k.startsWith('links.') || k.startsWith('drop.'))),
        replicas: Object.fromEntries(keys.map((k) => [k, window.p2p.kv.replicas(k)])),
        problems: window.p2p.problems().slice(-25),
      }),
      keys,
    );
    console.log(`[dump] tab ${i} ${t.id} ${JSON.stringify(d, null, 1)}`);
  }
}

async function waitChat(tabs: Tab[], text: string, timeout = 30_000): Promise<void> {
  for (const t of tabs) await waitFor(() => texts(t), (h) => h.includes(text), timeout, `"${text}" at ${t.id}`);
}

test('a frozen tab is declared dead, then rejoins and catches up when it thaws', async ({ cluster }) => {
  const { tabs } = await cluster(4, 'freeze');
  const [a, b, , sleeper] = tabs as [Tab, Tab, Tab, Tab];
  const survivors = tabs.slice(0, 3);

  const before = await putMany(a, 'before/', 20);

  // (Page.setWebLifecycleState 'frozen' is a no-op in this headless Chromium: see freezeTab)
  const thaw = await freezeTab(sleeper);
  // the link heartbeat notices the silence, membership declares the member gone
  await waitMembers(survivors, 60_000);

  // written while the tab sleeps: every put acknowledged by the 3 survivors
  const during = await putMany(b, 'during/', 30);
  await a.page.evaluate(() => window.p2p.chat.send('said while you slept'));
  await waitChat(survivors, 'said while you slept');

  await thaw();
  await waitMembers(tabs, 60_000);

  // the thawed tab reads everything, including what was written while it was frozen
  for (const t of [sleeper, ...survivors]) await waitReadable(tabs, t, [...before, ...during]);
  // and takes its share of the replicas back
  await waitReplicated(tabs, [...before, ...during]);
  // chat history missed while asleep comes from the neighbours on the new links
  await waitChat([sleeper], 'said while you slept');

  // chat both ways after the rejoin
  await b.page.evaluate(() => window.p2p.chat.send('welcome back'));
  await waitChat([sleeper], 'welcome back');
  await sleeper.page.evaluate(() => window.p2p.chat.send('I am back'));
  await waitChat(survivors, 'I am back');
  // after the heal, every tab's history holds each message exactly once
  for (const t of tabs) {
    const got = await texts(t);
    for (const m of ['said while you slept', 'welcome back', 'I am back']) expect(got.filter((x) => x === m), `${t.id}: ${m}`).toHaveLength(1);
  }

  for (const t of tabs) await closeTab(t);
});

test('the signaling server restarts mid-run: writes, chat and joins keep working', async ({ cluster, open }) => {
  // a server of its own, stopped and started again on the same port
  const port = await freePort();
  let server: Server = await startOurServer(port);
  try {
    const { name: c, tabs } = await cluster(4, 'sigrestart', { server });
    const [writer, b] = tabs as [Tab, Tab, Tab, Tab];

    const linkLosses = async (ts: Tab[]) =>
      (await Promise.all(ts.map((t) => t.page.evaluate(() => window.p2p.stats()['links.heartbeatTimeouts'] ?? 0)))).reduce((x, y) => x + y, 0);
    const lossesBefore = await linkLosses(tabs);

    // a writer that puts one key after another and records which were acknowledged
    await writer.page.evaluate(() => {
      const w = window as unknown as { acked: string[]; failed: string[]; stop: boolean; done: Promise<void> };
      w.acked = [];
      w.failed = [];
      w.stop = false;
      w.done = (async () => {
        for (let i = 0; !w.stop; i++) {
          const k = `w/${i}`;
          try {
            await window.p2p.kv.put(k, { i, text: `value ${i}` });
            w.acked.push(k);
          } catch (e) {
            w.failed.push(`${k}: ${(e as Error).message}`);
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
    });
    const progress = () => writer.page.evaluate(() => (window as unknown as { acked: string[]; failed: string[] }).acked.length);
    const failures = () => writer.page.evaluate(() => (window as unknown as { failed: string[] }).failed);
    const signalingOpen = (t: Tab) => t.page.evaluate(() => window.p2p.info().signaling.every((s) => s.state === 'open'));

    await waitFor(progress, (n) => n >= 10, 30_000, 'writes before the restart');

    await server.close();
    for (const t of tabs) await waitFor(() => signalingOpen(t), (open) => !open, 30_000, `${t.id} notices the server is gone`);
    // with the server down the WebRTC links carry on: writes and chat keep working
    const atStop = await progress();
    await waitFor(progress, (n) => n >= atStop + 30, 30_000, 'writes acknowledged while the server is down');
    await b.page.evaluate(() => window.p2p.chat.send('no server, still talking'));
    await waitChat(tabs, 'no server, still talking');
    expect(await progress()).toBeGreaterThan(atStop);

    server = await startOurServer(port);
    for (const t of tabs) await waitFor(() => signalingOpen(t), (open) => open, 30_000, `${t.id} reconnects to the new server`);
    const atRestart = await progress();
    await waitFor(progress, (n) => n >= atRestart + 10, 30_000, 'writes after the restart');

    // a newcomer finds the cluster through the new server
    const late = await open({ cluster: c, server, nick: 'late' });
    const all = [...tabs, late];
    await waitMembers(all, 60_000);
    await late.page.evaluate(() => window.p2p.chat.send('hello from the newcomer'));
    await waitChat(all, 'hello from the newcomer');
    await b.page.evaluate(() => window.p2p.chat.send('after the restart'));
    await waitChat(all, 'after the restart');

    await writer.page.evaluate(() => {
      const w = window as unknown as { stop: boolean; done: Promise<void> };
      w.stop = true;
      return w.done;
    });
    const acked = await writer.page.evaluate(() => (window as unknown as { acked: string[] }).acked);
    expect(acked.length).toBeGreaterThan(atRestart);
    // Links stay up without the server, so no put may fail. The one excuse is a link that
    // really died (heartbeat lost: seen on this shared 2-core box when other test suites
    // starve every tab for ~5 s): then the put may time out, like any request in flight.
    const failed = await failures();
    if (failed.length) {
      const losses = (await linkLosses(all)) - lossesBefore;
      console.warn(`[failure.spec] ${failed.length} of ${failed.length + acked.length} puts failed, ${losses} links lost their heartbeat meanwhile: ${failed.slice(0, 5).join('; ')}`);
      if (losses === 0) await dump(all);
      expect(losses, `puts failed while every link stayed up: ${failed.join('; ')}`).toBeGreaterThan(0);
    }
    // every acknowledged write is readable from every tab, the newcomer included
    for (const t of all) await waitReadable(all, t, acked);

    for (const t of all) await closeTab(t);
  } finally {
    await server.close();
  }
});
