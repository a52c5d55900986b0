/**
 * The page's node: everything of the boot that needs the node's code (simple-peer, the
 * core, the runtime). main.ts loads this chunk after it has started the reload's I/O
 * (IndexedDB reads, signaling sockets, the node id), so that I/O runs while this chunk
 * is fetched, compiled and evaluated (100-300 ms of a reload on a busy machine).
 */
import SimplePeer from 'simple-peer/simplepeer.min.js';
import { acquireIdentity, noteLeaving, reclaimedIdentity, rememberNeighbours } from './identity';
import { P2PNode } from './node';
import { nodeIdentity } from './node-identity';
import { takeOverAfterRestart, type Restart } from './orphans';
import { StoreRegistry, type PersistedState } from '../storage/store';
import type { SimplePeerCtor } from '../net/transport';
import type { WebSocketLike } from '../net/signaling';
import type { IceConfigSource } from './ice-config';
import type { ClusterSecret } from './cluster-secret';

export interface PageBoot {
  cluster: string;
  signaling: string[];
  nick: string;
  /** The id this tab had before a reload (sessionStorage), if any. */
  previous: string | null;
  /** That id, already taken back (reclaimNodeId), or null: acquireIdentity decides. */
  reclaimed: string | null;
  /** The previous id's persisted state, being read. */
  prefetch: Promise<PersistedState | null> | null;
  /** The previous page's overlay neighbours. */
  neighbours: string[];
  /** Signaling sockets opened ahead of time, by URL. */
  sockets: Map<string, WebSocketLike>;
  target: HTMLElement;
  /** ICE configuration, its first fetch under way. */
  ice: IceConfigSource;
  /** The cluster secret's keys and topics, being derived; null for an open cluster. */
  secret: Promise<ClusterSecret> | null;
  /** The KV replica count this tab asks the cluster for (`?replicas=`); the default when absent. */
  replicas?: number;
}

/** Longest the UI waits for the node to be ready before it mounts anyway. */
const UI_WAIT_MS = 1500;

/**
 * A tab with no id of its own (a new tab, not a reload) after a browser restart takes over
 * the identity and data of the tabs that were open (orphans.ts); null otherwise.
 */
async function restartTakeover(b: PageBoot): Promise<Restart | null> {
  if (b.reclaimed !== null || b.previous !== null || typeof indexedDB === 'undefined') return null;
  try {
    return await takeOverAfterRestart(new StoreRegistry());
  } catch (e) {
    // the watchers adopt the orphans later instead
    console.error('p2p: restart takeover', e);
    return null;
  }
}

export async function startPage(b: PageBoot): Promise<void> {
  const restart = await restartTakeover(b);
  const identity =
    restart?.identity ?? (b.reclaimed !== null ? await reclaimedIdentity(b.reclaimed) : null) ?? (await acquireIdentity()).identity;
  const id = identity.id;
  const preloaded = restart ? Promise.resolve(restart.state) : b.prefetch && id === b.previous ? b.prefetch : undefined;
  performance.mark('p2p:id');
  // links must not be dialled before the policy is known (relay-only hides addresses)
  await b.ice.ready;
  performance.mark('p2p:ice');
  const note = document.getElementById('boot-note');
  if (b.secret && note) note.textContent = `Deriving the key of cluster “${b.cluster}”…`;
  const secret = b.secret ? await b.secret : undefined;
  if (secret) performance.mark('p2p:secret');
  const node = new P2PNode({
    identity: nodeIdentity(identity),
    cluster: b.cluster,
    signaling: b.signaling,
    nick: b.nick,
    SimplePeer: SimplePeer as unknown as SimplePeerCtor,
    preloaded,
    restart: restart ?? undefined,
    // a reload rejoins through the overlay neighbours it had (dialled while it loads)
    contacts: id === b.previous ? b.neighbours : [],
    sockets: b.sockets,
    ice: b.ice,
    secret,
    config: b.replicas === undefined ? undefined : { kv: { n: b.replicas } },
  });
  window.p2p = node;
  // pagehide fires for closes, reloads and navigations (and, unlike unload, with bfcache)
  addEventListener('pagehide', (e) => {
    if (!e.persisted) rememberNeighbours(node.peers());
    node.leaveNow();
    if (!e.persisted) noteLeaving();
  });
  void node.ready.then(() => performance.mark('p2p:ready'));
  if (note) note.textContent = `Joining cluster “${b.cluster}” as ${id}…`;
  const started = node.start().then(() => performance.mark('p2p:started'));
  // The UI (Svelte, d3: its own chunk, 100-350 ms of main thread to load and mount) comes
  // once the node is ready, or after UI_WAIT_MS if joining takes longer. Mounted earlier,
  // it ran in the middle of a reload's rejoin (reading the keys, starting, dialling) and
  // delayed it by about as much; the page shows the note above meanwhile.
  await Promise.race([node.ready, new Promise((r) => setTimeout(r, UI_WAIT_MS))]);
  const { mountApp } = await import('../ui/mount');
  b.target.textContent = '';
  mountApp(b.target, node);
  performance.mark('p2p:mounted');
  await started;
}
