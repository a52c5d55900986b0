/**
 * Through the UI alone (no window.p2p): what a person does with two tabs open.
 * Also saves screenshots of every panel, 4 tabs in a cluster, at 1280×800 and 390×844.
 */
import type { Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { test, expect } from './fixtures';
import { closeTab, type Tab } from './harness';

const kvList = (p: Page) => p.getByRole('list', { name: /Stored entries/ });

test('chat and the KVS editor work across two tabs through the UI', async ({ cluster }) => {
  // no wait for the membership: the member list below is what a person looks at
  const [a, b] = (await cluster(2, 'ui', { nicks: ['ann', 'bob'], formed: false })).tabs as [Tab, Tab];
  // the cluster is visible: b shows up in a's member list
  await expect(a.page.getByRole('region', { name: /cluster/i })).toContainText('bob', { timeout: 20_000 });

  // chat: type in one tab, see it in the other
  await a.page.getByLabel('Message').fill('hello from the UI');
  await a.page.getByLabel('Message').press('Enter');
  await expect(b.page.getByRole('log')).toContainText('hello from the UI', { timeout: 15_000 });
  // a bad command gets a clear message in the chat pane
  await b.page.getByLabel('Message').fill('/frobnicate');
  await b.page.getByLabel('Message').press('Enter');
  await expect(b.page.getByRole('region', { name: /chat/i }).getByRole('alert')).toContainText(/unknown command/i);

  // the cluster's replica count, agreed by both tabs, is shown with the KV store
  for (const t of [a, b]) await expect(t.page.getByTestId('kv-replication')).toHaveText('4 copies per key (W 3, R 3)');

  // KVS: create in one tab, see it in the other's list
  await a.page.getByLabel('Key', { exact: true }).fill('ui/greeting');
  await a.page.getByLabel('Value', { exact: true }).fill('{"text": "hi", "n": 1}');
  await a.page.getByRole('button', { name: 'Save' }).click();
  // the other tab's list shows the new key by itself (no Refresh)
  await expect(kvList(b.page)).toContainText('ui/greeting', { timeout: 15_000 });
  // tab A keeps the saved entry open in its editor
  await expect(a.page.getByLabel('Value', { exact: true })).toHaveValue(/"hi"/, { timeout: 10_000 });

  // edit it from the other tab
  await kvList(b.page).getByRole('button', { name: /ui\/greeting/ }).click();
  await expect(b.page.getByLabel('Value', { exact: true })).toHaveValue(/"hi"/, { timeout: 10_000 });
  await b.page.getByLabel('Value', { exact: true }).fill('{"text": "edited", "n": 2}');
  await b.page.getByRole('button', { name: 'Save' }).click();
  await expect(b.page.getByRole('status').filter({ hasText: 'Saved "ui/greeting"' })).toBeVisible({ timeout: 15_000 });
  // tab A's open editor (not edited there) follows the change without a reload
  await expect(a.page.getByLabel('Value', { exact: true })).toHaveValue(/edited/, { timeout: 15_000 });

  // an invalid JSON value is refused with the reason, and nothing is saved
  await a.page.getByLabel('Value', { exact: true }).fill('{"text": oops}');
  await a.page.getByRole('button', { name: 'Save' }).click();
  await expect(a.page.locator('#kv-value-error')).toBeVisible();
  await b.page.getByRole('button', { name: 'Refresh' }).click();
  await kvList(b.page).getByRole('button', { name: /ui\/greeting/ }).click();
  await expect(b.page.getByLabel('Value', { exact: true })).toHaveValue(/edited/);

  // delete, with confirmation
  await b.page.getByRole('button', { name: 'Delete', exact: true }).click();
  await b.page.getByRole('button', { name: 'Yes, delete' }).click();
  await a.page.getByRole('button', { name: 'Refresh' }).click();
  await expect(a.page.getByRole('region', { name: 'KV store' })).toContainText('The store is empty', { timeout: 15_000 });
  await expect(a.page.getByRole('button', { name: /^ui\/greeting,/ })).toHaveCount(0);

  await closeTab(a);
  await closeTab(b);
});

test('screenshots of every panel with 4 tabs, desktop and phone', async ({ cluster }) => {
  const dir = 'test-results/screenshots';
  mkdirSync(dir, { recursive: true });
  const { tabs } = await cluster(4, 'shots', { nicks: ['ann', 'bob', 'cid', 'dee'], formed: false });
  const page = tabs[0]!.page;
  await expect(page.getByRole('region', { name: /cluster/i })).toContainText('dee', { timeout: 20_000 });
  await page.getByLabel('Message').fill('hello everyone');
  await page.getByLabel('Message').press('Enter');
  await page.getByLabel('Key', { exact: true }).fill('config/theme');
  await page.getByLabel('Value', { exact: true }).fill('{"dark": true}');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.waitForTimeout(1500);
  for (const [w, h] of [[1280, 800], [390, 844]] as const) {
    await page.setViewportSize({ width: w, height: h });
    await page.waitForTimeout(500);
    await page.screenshot({ path: `${dir}/app-${w}x${h}.png`, fullPage: true });
    for (const region of await page.getByRole('region').all()) {
      const name = ((await region.getAttribute('aria-labelledby')) ?? 'panel').replace(/[^a-z0-9-]/gi, '');
      await region.screenshot({ path: `${dir}/${name}-${w}x${h}.png` });
    }
  }
  for (const t of tabs) await closeTab(t);
});
