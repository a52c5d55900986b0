/**
 * A browser restart: tabs of one persistent browser profile write keys and chat, every tab
 * and then the browser are closed, the browser is started again on the same profile and one
 * tab opened. Its node takes over the stores the closed tabs left (runtime/orphans.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from '@playwright/test';
import { test, expect } from './fixtures';
import { CHROMIUM_ARGS, putMany, waitMembers, waitReplicated, waitFor, type Tab } from './harness';

const launch = (dir: string): Promise<BrowserContext> =>
  chromium.launchPersistentContext(dir, { executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS, headless: true });

async function openIn(ctx: BrowserContext, url: string): Promise<Tab> {
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.error(`[pageerror] ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(() => (window as unknown as { p2p?: unknown }).p2p !== undefined);
  await page.evaluate(() => window.p2p.ready);
  return { context: ctx, page, id: await page.evaluate(() => window.p2p.id) };
}

/** Keys and chat messages this tab's node holds locally (no network involved). */
const localData = (page: Page) =>
  page.evaluate(() => ({ keys: window.p2p.kv.localKeys(), chat: window.p2p.chat.history('lobby').map((m) => m.text) }));

async function restartAfter(delayMs: number, server: { url: string; ws: string }): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'p2p-restart-'));
  const cluster = `restart-${delayMs}-${Date.now().toString(36)}`;
  const url = `${server.url}?${new URLSearchParams({ cluster, signaling: server.ws })}`;
  try {
    let ctx = await launch(dir);
    const tabs: Tab[] = [];
    for (let i = 0; i < 4; i++) tabs.push(await openIn(ctx, url));
    await waitMembers(tabs, 60_000);
    const keys = await putMany(tabs[0]!, 'r/', 40);
    const texts: string[] = [];
    for (const [i, t] of tabs.entries()) {
      for (let j = 0; j < 2; j++) {
        const text = `tab ${i} says ${j}`;
        await t.page.evaluate((text) => window.p2p.chat.send(text), text);
        texts.push(text);
      }
    }
    await waitReplicated(tabs, keys);
    for (const t of tabs) {
      await waitFor(async () => (await localData(t.page)).chat.length, (n) => n === texts.length, 20_000, 'chat everywhere');
      await t.page.waitForFunction(() => window.p2p.stats()['storage.pending'] === 0);
    }
    const ids = tabs.map((t) => t.id);
    for (const t of tabs) await t.page.close({ runBeforeUnload: true });
    await ctx.close();
    await new Promise((r) => setTimeout(r, delayMs));

    ctx = await launch(dir);
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    const start = Date.now();
    await page.goto(url, { waitUntil: 'commit' });
    // every key and every chat message, from this browser's stores, within 2 s of navigation
    await page.waitForFunction(
      ({ keys, n }) => {
        const p = (window as unknown as { p2p?: typeof window.p2p }).p2p;
        if (!p) return false;
        const local = new Set(p.kv.localKeys());
        return keys.every((k) => local.has(k)) && p.chat.history('lobby').length >= n;
      },
      { keys, n: texts.length },
      { timeout: 15_000, polling: 20 },
    );
    const elapsed = Date.now() - start;
    console.log(`restart after ${delayMs} ms: every key and message after ${elapsed} ms`);
    expect(elapsed).toBeLessThanOrEqual(2_000);
    const got = await localData(page);
    // each message exactly once, in the order it was sent (one tab after the other)
    expect(got.chat).toEqual(texts);
    expect(ids).toContain(await page.evaluate(() => window.p2p.id));
    // the node serves them as reads too
    const read = await page.evaluate(async (keys) => {
      await window.p2p.ready;
      let ok = 0;
      for (const k of keys) if ((await window.p2p.kv.get(k)) !== undefined) ok++;
      return ok;
    }, keys);
    expect(read).toBe(keys.length);
    // The node signs as the id it took over (the orphan's key came with it): a second tab,
    // a fresh node, links to it (hellos), takes its broadcasts (seals) and the merged
    // history, whose entries carry their authors' seals (those authors' keys are deleted).
    const second = await openIn(ctx, url);
    const first: Tab = { context: ctx, page, id: await page.evaluate(() => window.p2p.id) };
    await waitMembers([first, second], 60_000);
    await page.evaluate(() => window.p2p.chat.send('back after the restart'));
    await waitFor(
      async () => (await localData(second.page)).chat,
      (c) => c.includes('back after the restart') && texts.every((t) => c.includes(t)),
      20_000,
      'the restarted node’s message and merged history at a new tab',
    );
    for (const t of [page, second.page]) {
      const s = await t.evaluate(() => window.p2p.stats());
      expect({ refused: s['sig.refused'], stripped: s['sig.proofsStripped'], hellos: s['links.helloFailures'] }).toEqual({ refused: 0, stripped: 0, hellos: 0 });
    }
    expect((await second.page.evaluate(() => window.p2p.stats()))['sig.verified']).toBeGreaterThan(0);
    await second.page.close();
    // the merged orphans are gone: a second restart finds one store only
    await waitFor(
      () => page.evaluate(async () => (await indexedDB.databases()).filter((d) => /^p2p-node-n[0-9a-z]+$/.test(d.name ?? '')).length),
      (n) => n === 1,
      10_000,
      'one KV store left',
    );
    await ctx.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('after a browser restart one tab shows every key and chat message of the closed tabs within 2 s', async ({ server }) => {
  await restartAfter(0, server);
});

test('the same with the browser started again 10 s later', async ({ server }) => {
  await restartAfter(10_000, server);
});
