import { previousNeighbours, reclaimNodeId, storedNodeId } from './runtime/identity';
import { prefetchPersisted } from './storage/store';
import type { P2PApi } from './runtime/api';
import type { WebSocketLike } from './net/signaling';
import { IceConfigSource, iceOverrideFromParams } from './runtime/ice-config';
import { confirmSignaling } from './runtime/signaling-consent';
import { openClusterSecret, pageSecret } from './runtime/cluster-secret';
import { replicasParam } from './runtime/replicas-param';

declare global {
  interface Window {
    p2p: P2PApi & { problems(): string[] };
  }
}

function defaultSignaling(): string {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/signal`;
}

/**
 * The entry is small on purpose: it starts the I/O a reload waits for (reading the
 * previous life's stores, connecting to signaling, taking the node id back) and only
 * then loads the node's code (runtime/page.ts) and, once the node is ready, the UI.
 */
async function boot(): Promise<void> {
  performance.mark('p2p:boot');
  const params = new URLSearchParams(location.search);
  const target = document.getElementById('app')!;
  if (params.get('mock') === '1') {
    const [{ createMockNode }, { mountApp }] = await Promise.all([import('./ui/mock-node'), import('./ui/mount')]);
    target.textContent = '';
    mountApp(target, createMockNode());
    return;
  }
  const cluster = (params.get('cluster') ?? 'default').trim() || 'default';
  // the cluster secret (#secret= or this tab's sessionStorage): its slow KDF (or the key
  // cache) runs while the rest of the boot does
  const secretText = pageSecret(cluster, { location, history, storage: sessionStorage });
  const secret = secretText === null ? null : openClusterSecret(cluster, secretText);
  secret?.catch(() => undefined); // awaited, and reported, by startPage
  const requested = (params.get('signaling') ?? defaultSignaling())
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  // ICE servers (TURN credentials) from the server, fetched while the rest loads
  const { override, problems } = iceOverrideFromParams(params);
  const ice = new IceConfigSource({
    url: '/config.json',
    hostname: location.hostname,
    override,
    paramProblems: problems,
    onProblem: (p) => console.warn(`p2p: ${p}`),
  });
  for (const p of problems) console.warn(`p2p: ${p}`);
  const previous = storedNodeId();
  const prefetch = previous ? prefetchPersisted(previous) : null;
  const neighbours = previousNeighbours();
  // a reload takes its id back at once (see reclaimNodeId); anything else decides later
  const reclaimed = reclaimNodeId();
  // a server other than this page's is used only once the user accepted it: no socket before
  const signaling = await confirmSignaling(requested, defaultSignaling(), {
    location,
    storage: sessionStorage,
    ask: async (servers) => (await import('./runtime/signaling-consent-dialog')).askSignalingConsent(servers, document),
  });
  const sockets = new Map<string, WebSocketLike>();
  for (const url of signaling) {
    try {
      sockets.set(url, new WebSocket(url) as unknown as WebSocketLike);
    } catch {
      // a bad URL: the signaling client reports it when it dials
    }
  }
  const { startPage } = await import('./runtime/page');
  const replicas = replicasParam(params.get('replicas'));
  if (replicas.problem) console.warn(`p2p: ${replicas.problem}`);
  await startPage({ cluster, signaling, nick: params.get('nick') ?? '', previous, reclaimed, prefetch, neighbours, sockets, target, ice, secret, replicas: replicas.value });
}

boot().catch((e: unknown) => {
  console.error('p2p: failed to start', e);
  const el = document.getElementById('app');
  if (el) el.textContent = `Failed to start: ${(e as Error).message}`;
});
