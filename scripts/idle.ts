/**
 * Developer tool: what an idle cluster costs per tab: main thread, bytes on the wire, and
 * which messages make them.
 *
 *   npx tsx scripts/idle.ts [--tabs 8] [--settle 40000] [--window 10000] [--chat N]
 *
 * Opens N tabs of the built app (one browser context each; `npm run build` first) on a
 * fresh signaling server, waits `--settle` ms (the overlay graph's layout animation runs
 * for the first ~20 s), then reports CDP `Performance.getMetrics` deltas averaged over the
 * tabs for two windows with the tabs visible, and two with `document.visibilityState`
 * emulated as hidden (the app's own reaction to a background tab; Chromium's throttling of
 * real background tabs is not included). Prints the load average with each line.
 *
 * Bytes: transport `bytesSent` of every RTCPeerConnection (DTLS and SCTP framing, SACKs
 * and link heartbeats included, as the bench counts them), the node's own frames
 * (`stats()` `bytes.out`) and the frames by message type (`out.<type>`), per tab per second.
 *
 * `--chat N`: after the idle windows, one more window in which the first tab sends N chat
 * messages at 20 a second, reported per message (all tabs): what a message costs on the
 * wire and in frames of each type, idle traffic included.
 */
import { loadavg } from 'node:os';
import type { CDPSession } from '@playwright/test';
import { launchBrowser, openTab, type Tab, startOurServer, uniqueCluster } from '../e2e/harness';
import { numberArg } from './args';

const arg = numberArg;
const TABS = arg('tabs', 8);
const SETTLE = arg('settle', 40_000);
const WINDOW = arg('window', 10_000);
const CHAT = arg('chat', 0);
const METRICS = ['TaskDuration', 'ScriptDuration', 'LayoutDuration', 'RecalcStyleDuration'] as const;
const HIDE = `Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
document.dispatchEvent(new Event('visibilitychange'));`;

// before the app's scripts: keep every RTCPeerConnection for getStats()
const TRACK_PCS = `(() => {
  const pcs = (window.__pcs = []);
  const Orig = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Orig { constructor(c) { super(c); pcs.push(this); } };
})();`;

interface Bytes {
  transport: number;
  counters: Record<string, number>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const server = await startOurServer();
  const browser = await launchBrowser();
  try {
    const cluster = uniqueCluster('idle');
    const tabs: Tab[] = [];
    for (let i = 0; i < TABS; i++) {
      const context = await browser.newContext();
      await context.addInitScript(TRACK_PCS);
      tabs.push(await openTab(browser, server.url, { cluster }, context));
    }
    const sessions: CDPSession[] = await Promise.all(
      tabs.map(async (t) => {
        const s = await t.context.newCDPSession(t.page);
        await s.send('Performance.enable');
        return s;
      }),
    );
    const read = () =>
      Promise.all(
        sessions.map(async (s) => {
          const m = (await s.send('Performance.getMetrics')).metrics;
          return METRICS.map((name) => m.find((x) => x.name === name)?.value ?? 0);
        }),
      );
    const bytes = (): Promise<Bytes[]> =>
      Promise.all(
        tabs.map((t) =>
          t.page.evaluate(async () => {
            let transport = 0;
            for (const pc of (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs) {
              if (pc.connectionState === 'closed') continue;
              (await pc.getStats()).forEach((s: { type: string; bytesSent?: number }) => {
                if (s.type === 'transport') transport += s.bytesSent ?? 0;
              });
            }
            const counters: Record<string, number> = {};
            for (const [k, v] of Object.entries(window.p2p.stats())) if (k.startsWith('out.') || k === 'bytes.out' || k.endsWith('Timeouts')) counters[k] = v;
            return { transport, counters };
          }),
        ),
      );
    const measure = async (label: string, during?: () => Promise<void>) => {
      const a = await read();
      const ba = await bytes();
      const t0 = Date.now();
      if (during) await during();
      else await sleep(WINDOW);
      const b = await read();
      const bb = await bytes();
      const dt = (Date.now() - t0) / 1000;
      const pct = (k: number) => ((b.reduce((x, v, i) => x + v[k]! - a[i]![k]!, 0) / b.length / dt) * 100).toFixed(2);
      const perTab = (f: (x: Bytes) => number) => bb.reduce((x, v, i) => x + Math.max(0, f(v) - f(ba[i]!)), 0) / bb.length / dt;
      console.log(`${label}: per tab task ${pct(0)} %, script ${pct(1)} %, layout ${pct(2)} %, style ${pct(3)} %  (load average ${loadavg()[0]!.toFixed(1)})`);
      // a link torn down in the window takes its counter with it: a transport figure is a lower bound then
      console.log(`  per tab per second: ${perTab((x) => x.transport).toFixed(0)} bytes on the wire (transport), ${perTab((x) => x.counters['bytes.out'] ?? 0).toFixed(0)} bytes of frames`);
      const keys = new Set(bb.flatMap((x) => Object.keys(x.counters)).filter((k) => k !== 'bytes.out'));
      const rows = [...keys].map((k) => [k, perTab((x) => x.counters[k] ?? 0)] as const).filter(([, v]) => v > 0).sort((x, y) => y[1] - x[1]);
      console.log(`  ${rows.map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}`);
      if (during) {
        // per chat message, all tabs
        const perMsg = (per: number) => (per * bb.length * dt) / CHAT;
        console.log(`  per chat message, all tabs: ${perMsg(perTab((x) => x.transport)).toFixed(0)} bytes on the wire, ${perMsg(perTab((x) => x.counters['bytes.out'] ?? 0)).toFixed(0)} bytes of frames`);
        console.log(`  ${rows.map(([k, v]) => `${k} ${perMsg(v).toFixed(2)}`).join(', ')}`);
      }
    };
    await sleep(SETTLE);
    await measure('idle, tabs visible');
    await measure('idle, tabs visible (again)');
    for (const t of tabs) await t.page.evaluate(HIDE);
    await measure('idle, tabs hidden (emulated)');
    await measure('idle, tabs hidden (emulated, again)');
    if (CHAT > 0) {
      await measure(`chat: ${CHAT} messages from one tab, 20 a second`, async () => {
        for (let i = 0; i < CHAT; i++) {
          await tabs[0]!.page.evaluate((text) => window.p2p.chat.send(text), `idle.ts message ${i}`);
          await sleep(50);
        }
        await sleep(2_000); // the last ones arrive, their announcements are flushed
      });
    }
  } finally {
    await browser.close();
    await server.close();
  }
}

void main();
