/**
 * Relayed bench (ours only): the join and chat scenarios again with every link relayed
 * through a local coturn (`turnserver`, use-auth-secret, on 127.0.0.1), the server
 * handing out TURN credentials with ICE_TRANSPORT_POLICY=relay. Reported beside the
 * direct figures of the main run; `relayedLinks / openLinks` shows that every link
 * really was relayed. On one machine the relay adds two loopback hops and coturn's CPU,
 * not a wide-area round trip: the figures bound the relay's own cost.
 */
import type { Browser } from '@playwright/test';
import { iceSettingsFromEnv } from '../../../signaling/ice';
import { startSignalingServer } from '../../../signaling/server';
import { startTurn } from '../../../signaling/services';
import { ONE_ADDRESS_FOR_MANY } from '../../../e2e/harness';
import { runSystem, type SystemResult } from './run';
import type { BenchOptions, BenchTab, SystemTarget } from './shared';

export interface RelayResult extends SystemResult {
  /** Open links summed over the tabs at the end, and how many of them ran through the relay. */
  openLinks: number;
  relayedLinks: number;
}

export async function runRelayBench(browser: Browser, o: BenchOptions, runId: string): Promise<RelayResult> {
  const turn = await startTurn();
  const server = await startSignalingServer({
    port: 0,
    host: '127.0.0.1',
    log: () => undefined,
    limits: ONE_ADDRESS_FOR_MANY,
    ice: iceSettingsFromEnv({ ICE_SERVERS: '[]', TURN_URLS: turn.url, TURN_SECRET: turn.secret, ICE_TRANSPORT_POLICY: 'relay' }),
  });
  const cluster = `bench-relay-${runId}`;
  let openLinks = 0;
  let relayedLinks = 0;
  const target: SystemTarget = {
    kind: 'ours',
    label: 'this project, every link through coturn',
    reducedMotion: !o.motion,
    url: (i) => `${server.url}?${new URLSearchParams({ cluster, signaling: server.url.replace(/^http/, 'ws'), nick: `r${i}` })}`,
    diagnostics: async (tabs: BenchTab[]) => {
      const per = await Promise.all(tabs.map((t) => t.page.evaluate(() => window.p2p.stats())));
      openLinks = per.reduce((a, s) => a + (s['links.open'] ?? 0), 0);
      relayedLinks = per.reduce((a, s) => a + (s['links.relay'] ?? 0), 0);
      return { openLinks, relayedLinks, relayOnly: per.every((s) => s['ice.relayOnly'] === 1) };
    },
  };
  try {
    const r = await runSystem(browser, target, { ...o, only: new Set(['join', 'chat']) });
    return { ...r, openLinks, relayedLinks };
  } finally {
    await server.close();
    await turn.stop();
  }
}

const fmt = (x: number | null | undefined, digits = 1): string =>
  x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** Direct (the main run) beside relayed. */
export function relayTable(direct: SystemResult | undefined, relayed: RelayResult): string {
  const rows: [string, number | null | undefined, number | null | undefined, number][] = [
    ['tab joins the cluster, p50 (ms from navigation)', direct?.join?.msP50, relayed.join?.msP50, 1],
    ['  slowest tab (ms)', direct?.join?.msMax, relayed.join?.msMax, 1],
    [`  all ${relayed.tabs} tabs open and complete (ms)`, direct?.join?.clusterCompleteMs, relayed.join?.clusterCompleteMs, 0],
    ['chat delivery latency p50 (ms)', direct?.chat?.latencyMsP50, relayed.chat?.latencyMsP50, 2],
    ['chat delivery latency p99 (ms)', direct?.chat?.latencyMsP99, relayed.chat?.latencyMsP99, 2],
    ['chat delivered / expected (%)', pct(direct?.chat?.delivered, direct?.chat?.expected), pct(relayed.chat?.delivered, relayed.chat?.expected), 1],
  ];
  return [
    `Relayed (every link through coturn on 127.0.0.1; ${relayed.relayedLinks} of ${relayed.openLinks} open links relayed at the end; load average ${relayed.loadAvg.start.toFixed(2)}–${relayed.loadAvg.end.toFixed(2)}):`,
    '',
    '| | direct | relayed |',
    '|---|---:|---:|',
    ...rows.map(([label, a, b, d]) => `| ${label} | ${fmt(a, d)} | ${fmt(b, d)} |`),
    ...(relayed.errors.length ? ['', `relayed run: ${relayed.errors.join('; ')}`] : []),
  ].join('\n');
}

function pct(a: number | undefined, b: number | undefined): number | null {
  return a === undefined || b === undefined || b === 0 ? null : (100 * a) / b;
}
