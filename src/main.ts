import SimplePeer from 'simple-peer/simplepeer.min.js';
import { acquireNodeId, previousNeighbours, reclaimNodeId, releaseNodeId, rememberNeighbours, storedNodeId } from './runtime/identity';
import { prefetchPersisted } from './storage/store';
import { P2PNode } from './runtime/node';
import type { P2PApi } from './runtime/api';
import type { SimplePeerCtor } from './net/transport';

declare global {
  interface Window {
    p2p: P2PApi & { problems(): string[] };
  }
}

function defaultSignaling(): string {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/signal`;
}

async function boot(): Promise<void> {
  performance.mark('p2p:boot');
  const params = new URLSearchParams(location.search);
  const target = document.getElementById('app')!;
  if (params.get('mock') === '1') {
    const [{ createMockNode }, { mountApp }] = await Promise.all([import('./ui/mock-node'), import('./ui/mount')]);
    mountApp(target, createMockNode());
    return;
  }
  const cluster = (params.get('cluster') ?? 'default').trim() || 'default';
  const signaling = (params.get('signaling') ?? defaultSignaling())
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  // a reload: read the previous life's stores while waiting for its lock
  const previous = storedNodeId();
  const prefetch = previous ? prefetchPersisted(previous) : null;
  const neighbours = previousNeighbours();
  // a reload takes its id back at once (see reclaimNodeId), anything else may wait
  const id = reclaimNodeId() ?? (await acquireNodeId()).id;
  performance.mark('p2p:id');
  const node = new P2PNode({
    id,
    cluster,
    signaling,
    nick: params.get('nick') ?? '',
    SimplePeer: SimplePeer as unknown as SimplePeerCtor,
    preloaded: prefetch && id === previous ? prefetch : undefined,
    // a reload rejoins through the overlay neighbours it had (dialled while it loads)
    contacts: id === previous ? neighbours.filter((n) => n !== id) : [],
  });
  window.p2p = node;
  // pagehide fires for closes, reloads and navigations (and, unlike unload, with bfcache)
  addEventListener('pagehide', (e) => {
    if (!e.persisted) rememberNeighbours(node.peers());
    node.leaveNow();
    if (!e.persisted) releaseNodeId();
  });
  void node.ready.then(() => performance.mark('p2p:ready'));
  const note = document.getElementById('boot-note');
  if (note) note.textContent = `Joining cluster “${cluster}” as ${id}…`;
  const started = node.start().then(() => performance.mark('p2p:started'));
  // The UI (Svelte, d3: its own chunk, 100-350 ms of main thread to load and mount) comes
  // once the node is ready, or after UI_WAIT_MS if joining takes longer. Mounted earlier,
  // it ran in the middle of a reload's rejoin (reading the keys, starting, dialling) and
  // delayed it by about as much; the page shows the note above meanwhile.
  await Promise.race([node.ready, new Promise((r) => setTimeout(r, UI_WAIT_MS))]);
  const { mountApp } = await import('./ui/mount');
  target.textContent = '';
  mountApp(target, node);
  performance.mark('p2p:mounted');
  await started;
}

/** Longest the UI waits for the node to be ready before it mounts anyway. */
const UI_WAIT_MS = 1500;

boot().catch((e: unknown) => {
  console.error('p2p: failed to start', e);
  const el = document.getElementById('app');
  if (el) el.textContent = `Failed to start: ${(e as Error).message}`;
});
