import SimplePeer from 'simple-peer/simplepeer.min.js';
import { acquireNodeId, releaseNodeId, storedNodeId } from './runtime/identity';
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
  // The UI (Svelte, d3) is its own chunk, fetched and compiled while the node starts: in
  // one bundle it delayed the node's start by about half of the page's load time, and a
  // reloaded tab is ready only once it has started and rejoined.
  const ui = import('./ui/mount');
  const params = new URLSearchParams(location.search);
  const target = document.getElementById('app')!;
  if (params.get('mock') === '1') {
    const [{ createMockNode }, { mountApp }] = await Promise.all([import('./ui/mock-node'), ui]);
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
  const { id } = await acquireNodeId();
  performance.mark('p2p:id');
  const node = new P2PNode({
    id,
    cluster,
    signaling,
    nick: params.get('nick') ?? '',
    SimplePeer: SimplePeer as unknown as SimplePeerCtor,
    preloaded: prefetch && id === previous ? prefetch : undefined,
  });
  window.p2p = node;
  // pagehide fires for closes, reloads and navigations (and, unlike unload, with bfcache)
  addEventListener('pagehide', (e) => {
    node.leaveNow();
    if (!e.persisted) releaseNodeId();
  });
  // IndexedDB reads run while the UI mounts (the mount alone is ~100 ms of main thread)
  const started = node.start();
  const { mountApp } = await ui;
  mountApp(target, node);
  await started;
  performance.mark('p2p:started');
  void node.ready.then(() => performance.mark('p2p:ready'));
}

boot().catch((e: unknown) => {
  console.error('p2p: failed to start', e);
  const el = document.getElementById('app');
  if (el) el.textContent = `Failed to start: ${(e as Error).message}`;
});
