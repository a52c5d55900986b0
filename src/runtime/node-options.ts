/** What a P2PNode (node.ts) is built from: the page's boot (page.ts) fills these in. */
import type { CoreConfig } from '../core/node';
import type { WebSocketCtor, WebSocketLike } from '../net/signaling';
import type { SimplePeerCtor } from '../net/transport';
import type { PersistedState } from '../storage/store';
import type { IceConfigSource } from './ice-config';
import type { ClusterSecret } from './cluster-secret';
import type { Restart } from './orphans';
import type { NodeIdentity } from './node-identity';

export interface NodeOptions {
  /** The node's key pair and the id derived from it (node-identity.ts). */
  identity: NodeIdentity;
  cluster: string;
  signaling: string[];
  nick: string;
  SimplePeer: SimplePeerCtor;
  WebSocketImpl?: WebSocketCtor;
  config?: CoreConfig;
  /** Persist to IndexedDB (off in environments without it). */
  persist?: boolean;
  /** The persisted state, already being read (prefetchPersisted); loaded here when absent or null. */
  preloaded?: Promise<PersistedState | null>;
  /**
   * A restarted browser's first tab took over an orphan's identity (orphans.ts): `preloaded`
   * holds the merged state, and the merged orphans are retired once it is stored.
   */
  restart?: Restart;
  /** Resolve `ready` as "alone" when no signaling server answered within this time. */
  aloneAfterMs?: number;
  /**
   * Nodes to rejoin through first: a reloaded tab's previous overlay neighbours (see
   * join.ts): dialled as soon as signaling is up, while the persisted state loads, and
   * handed to the overlay at start (see HyParView `start`).
   */
  contacts?: string[];
  /** Signaling sockets opened ahead of time, by URL (the page opens them before this code loads). */
  sockets?: Map<string, WebSocketLike>;
  /** Safety net on top of the KVS's own request timeout: no API promise hangs. */
  apiTimeoutMs?: number;
  /** ICE servers and policy of new links (ice-config.ts); none when absent. */
  ice?: IceConfigSource;
  /**
   * The cluster secret's keys and topics (cluster-secret.ts): signaling is sealed with it
   * and link hellos carry a MAC with its K_link, so a peer without it never links.
   * None: an open cluster.
   */
  secret?: ClusterSecret;
}
