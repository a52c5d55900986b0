/**
 * The node's side of the signaling servers (y-webrtc protocol, several servers through
 * one SignalingPool). Two topics:
 *   `<cluster>`       announces: "I am here" (HyParView bootstrap and island probes);
 *   `<cluster>/<id>`  this node's inbox: WebRTC signals (SDP, ICE) and relayed frames
 *                     (transient messages to a node without a link to it).
 * Anybody can publish on a topic, so every message is validated (signal-messages.ts)
 * before it reaches a handler; bad ones are counted as `drop.signaling`.
 * With a cluster secret, the topics are renamed and every payload encrypted by the layer
 * underneath (signaling-seal.ts); this class names topics the same either way.
 */
import type { WebSocketCtor, WebSocketLike } from '../net/signaling';
import { fromBase64, toBase64 } from '../wire/codec';
import { validateSignal } from './signal-messages';
import { openSignalingChannel, type SecretStatus, type SignalingChannel } from './signaling-seal';
import type { ClusterSecret } from './cluster-secret';
import { markOnce } from './marks';
import type { Stats } from './stats';
import type { SignalingState } from './api';

export interface SignalingOptions {
  id: string;
  cluster: string;
  /** Server URLs; every one is used. */
  urls: string[];
  WebSocketImpl?: WebSocketCtor;
  /** Sockets opened ahead of time, by URL. */
  sockets?: Map<string, WebSocketLike>;
  /** The cluster secret: topics derived from it and payloads encrypted (signaling-seal.ts). */
  secret?: ClusterSecret;
}

export interface SignalingHandlers {
  /** Another node announced itself; `clients`: subscribers of the cluster topic. */
  announce(from: string, clients: number, isolated: boolean): void;
  /** Our own announce came back: `clients` tells whether anybody else is here. */
  ownAnnounce(clients: number): void;
  /** A WebRTC signal for the link `conn` from `from`. */
  signal(from: string, conn: string, signal: unknown): void;
  /** A frame relayed to us by `from`. */
  relay(from: string, bytes: Uint8Array): void;
  /** A server connection changed state. */
  state(): void;
  /** After a state change: at least one server is open. */
  open(): void;
}

export class SignalingBridge {
  private readonly pool: SignalingChannel & { status(): SecretStatus };
  private readonly clusterTopic: string;
  private readonly selfTopic: string;

  constructor(
    private readonly opts: SignalingOptions,
    private readonly stats: Stats,
    private readonly on: SignalingHandlers,
  ) {
    this.clusterTopic = opts.cluster;
    this.selfTopic = `${opts.cluster}/${opts.id}`;
    const channel = { urls: opts.urls, id: opts.id, cluster: opts.cluster, secret: opts.secret, onStatus: () => on.state() };
    this.pool = openSignalingChannel(channel, {
      WebSocketImpl: opts.WebSocketImpl,
      preopened: opts.sockets,
      onPublish: (topic, data, clients, _url, own) => this.receive(topic, data, clients, own === true),
      onState: () => {
        on.state();
        // the pool reports its first state while it is being constructed: not open yet
        if (this.pool?.isOpen()) {
          markOnce('p2p:signaling');
          on.open();
        }
      },
      onError: (what) => stats.count('drop.signaling', 1, what),
    }, stats);
    this.pool.subscribe(this.clusterTopic);
    this.pool.subscribe(this.selfTopic);
  }

  /** Publishes "I am here" on the cluster topic. */
  announce(isolated: boolean): void {
    this.pool.publish(this.clusterTopic, { t: 'announce', from: this.opts.id, isolated });
  }

  /** A WebRTC signal for `to`'s end of link `conn`. */
  signal(to: string, conn: string, signal: unknown): void {
    markOnce('p2p:signal-out');
    this.publishTo(to, { t: 'signal', conn, signal });
  }

  /** A frame for a node we have no open link to. */
  relay(to: string, bytes: Uint8Array): void {
    this.publishTo(to, { t: 'relay', frame: toBase64(bytes) });
  }

  isOpen(): boolean {
    return this.pool.isOpen();
  }

  states(): { url: string; state: SignalingState }[] {
    return this.pool.states();
  }

  /** Open cluster or protected, and whether this tab's secret looks wrong. */
  secretStatus(): SecretStatus {
    return this.pool.status();
  }

  close(): void {
    this.pool.close();
  }

  private publishTo(to: string, data: Record<string, unknown>): void {
    this.pool.publish(`${this.opts.cluster}/${to}`, { ...data, from: this.opts.id, to });
  }

  private receive(topic: string, data: Record<string, unknown>, clients: number, own: boolean): void {
    const err = validateSignal(data);
    if (err) return this.stats.count('drop.signaling', 1, err);
    const from = data.from as string;
    if (topic === this.clusterTopic && data.t === 'announce') {
      this.stats.set('signaling.clients', clients);
      if (own) this.on.ownAnnounce(clients);
      else this.on.announce(from, clients, data.isolated === true);
      return;
    }
    if (own || topic !== this.selfTopic || data.to !== this.opts.id) return;
    if (data.t === 'signal') {
      markOnce('p2p:signal-in');
      this.on.signal(from, data.conn as string, data.signal);
    } else if (data.t === 'relay') {
      markOnce('p2p:relay-in');
      const bytes = fromBase64(data.frame as string);
      if (!bytes) return this.stats.count('drop.relay', 1, 'bad base64');
      this.stats.count('relay.in');
      this.on.relay(from, bytes);
    }
  }
}
