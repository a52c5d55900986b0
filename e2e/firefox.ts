/**
 * Firefox tabs for the mixed-browser spec: Debian's firefox-esr driven by puppeteer-core
 * over WebDriver BiDi (Playwright's Firefox needs its own patched build). One browser
 * context per node, like the Chromium harness.
 */
import puppeteer, { type Browser, type BrowserContext, type Page } from 'puppeteer-core';

export const FIREFOX_PATH = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';

export const FIREFOX_PREFS: Record<string, unknown> = {
  // ICE candidates on loopback (off by default in Firefox): the tabs of this machine link over it
  'media.peerconnection.ice.loopback': true,
  // plain host candidates instead of mDNS names, which the Chromium side cannot resolve here
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  // background tabs keep their timers (heartbeats), as the Chromium flags do
  'dom.min_background_timeout_value': 4,
  'dom.timeout.enable_budget_timer_throttling': false,
};

export async function launchFirefox(): Promise<Browser> {
  return puppeteer.launch({ browser: 'firefox', executablePath: FIREFOX_PATH, headless: true, extraPrefsFirefox: FIREFOX_PREFS });
}

export interface FirefoxTab {
  context: BrowserContext;
  page: Page;
  id: string;
  errors: string[];
}

/** Opens one node in its own Firefox context and waits for `p2p.ready`. */
export async function openFirefoxTab(browser: Browser, appUrl: string, o: { cluster: string; nick?: string }): Promise<FirefoxTab> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => {
    const message = e instanceof Error ? e.message : String(e);
    errors.push(message);
    console.error(`[firefox pageerror] ${message}`);
  });
  const q = new URLSearchParams({ cluster: o.cluster });
  if (o.nick) q.set('nick', o.nick);
  await page.goto(`${appUrl}?${q}`);
  await page.waitForFunction(() => (window as unknown as { p2p?: unknown }).p2p !== undefined);
  await page.evaluate(() => window.p2p.ready);
  const id = await page.evaluate(() => window.p2p.id);
  return { context, page, id, errors };
}
