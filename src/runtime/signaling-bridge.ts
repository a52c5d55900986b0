/**
 * The node's side of the signaling servers (y-webrtc protocol, several servers through
 * one SignalingPool). Two topics:
 *   `<cluster>`       announces: "I am here" (HyParView bootstrap and island probes);
 *   `<cluster>/<id>`  this node's inbox: WebRTC signals (SDP, ICE) and relayed frames
 *                     (transient messages to a node without a link to it).
 * Anybody can publish on a topic, so every message is signed by its sender and
 * verified, then validated (signal-messages.ts), before it reaches a handler: the `from`
 * a handler sees is proven (its key hashes to it and signed the message, within the
 * clock bound, not replayed). Bad ones are counted as `drop.signaling`.
 * Signing and verifying are asynchronous: outgoing messages are signed in order on one
 * chain and incoming ones verified in order on another, so a link's offer still goes
 * (and is handled) before its candidates.
 * Last will: every server holds a `will` message signed by this node ("my signaling
 * connection closed"), re-signed every WILL_REFRESH_MS so that it is always within the
 * receivers' clock bound, and publishes it on `<cluster>` the moment our connection to it
 * closes, which for a crashed or killed tab is at once. Receivers verify it like any
 * message and take it only as a hint (`will` handler: check the link to that node now);
 * a live node whose connection merely dropped answers the check. A node leaving on
 * purpose (pagehide: a close or a reload) withdraws it first.
 * With a cluster secret, the layer underneath (signaling-seal.ts) renames the topics and
 * encrypts every signed message as a whole (sign, then seal): a client without the secret
 * sees neither ids nor signatures. This class names topics the same either way.
 */
import type { WebSocketCtor, WebSocketLike } from '../net/signaling';
import { fromBase64, toBase64 } from '../wire/codec';
import { isClusterWide, MAX_SKEW_MS, parseBody, parseSignal, signSignal, SignalVerifier, type SignalType } from './signal-messages';
import type { NodeIdentity } from './node-identity';
import { openSignalingChannel, type SecretStatus, type SignalingChannel } from './signaling-seal';
import type { ClusterSecret } from './cluster-secret';
import { markOnce } from './marks';
import type { Stats } from './stats';
import type { SignalingState } from './api';

export interface SignalingOptions {
  identity: NodeIdentity;
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
  /** `from`'s last will: its connection to a signaling server closed (a hint, not a proof it is gone). */
  will(from: string): void;
  /** A server connection changed state. */
  state(): void;
  /** After a state change: at least one server is open. */
  open(): void;
}

/** A will is re-signed this often, well within the receivers' clock bound (MAX_SKEW_MS). */
export const WILL_REFRESH_MS = MAX_SKEW_MS / 2;

export class SignalingBridge {
  private readonly pool: SignalingChannel & { status(): SecretStatus };
  private readonly clusterTopic: string;
  private readonly selfTopic: string;
  private readonly verifier: SignalVerifier;
  private outChain: Promise<void> = Promise.resolve();
  private inChain: Promise<void> = Promise.resolve();
  private readonly id: string;
  private readonly willTimer: ReturnType<typeof setInterval>;
  /** Withdrawn (leaving on purpose): a will still being signed is not handed over. */
  private willWithdrawn = false;

  constructor(
    private readonly opts: SignalingOptions,
    private readonly stats: Stats,
    private readonly on: SignalingHandlers,
  ) {
    this.id = opts.identity.id;
    this.clusterTopic = opts.cluster;
    this.selfTopic = `${opts.cluster}/${this.id}`;
    this.verifier = new SignalVerifier(opts.identity, opts.cluster);
    const channel = { urls: opts.urls, id: this.id, cluster: opts.cluster, secret: opts.secret, onStatus: () => on.state() };
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
    this.armWill();
    this.willTimer = setInterval(() => this.armWill(), WILL_REFRESH_MS);
  }

  /** Publishes "I am here" on the cluster topic. */
  announce(isolated: boolean): void {
    this.publishSigned(this.clusterTopic, 'announce', '', { isolated });
  }

  /** A WebRTC signal for `to`'s end of link `conn`. */
  signal(to: string, conn: string, signal: unknown): void {
    markOnce('p2p:signal-out');
    this.publishSigned(`${this.opts.cluster}/${to}`, 'signal', to, { conn, signal });
  }

  /** A frame for a node we have no open link to. */
  relay(to: string, bytes: Uint8Array): void {
    this.publishSigned(`${this.opts.cluster}/${to}`, 'relay', to, { frame: toBase64(bytes) });
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
    this.withdrawWill();
    this.pool.close();
  }

  /**
   * Leaving on purpose (a close, a reload): nothing for the servers to publish, the LEAVE
   * says it. Without this, a reloading tab's will could reach a neighbour before its LEAVE
   * and get it suspected (keys moved away and back) rather than graced.
   */
  withdrawWill(): void {
    this.willWithdrawn = true;
    clearInterval(this.willTimer);
    this.pool.setWill(this.clusterTopic, null);
  }

  /** Signs a fresh will and hands it to the servers (each replaces the one it holds). */
  private armWill(): void {
    this.outChain = this.outChain
      .then(() => signSignal(this.opts.identity, this.opts.cluster, 'will', '', {}, Date.now()))
      .then(
        (msg) => {
          if (!this.willWithdrawn) this.pool.setWill(this.clusterTopic, msg);
        },
        (e: unknown) => this.stats.error('signing a will', e),
      );
  }

  /** Signs and publishes, in call order. */
  private publishSigned(topic: string, t: SignalType, to: string, body: Record<string, unknown>): void {
    this.outChain = this.outChain
      .then(() => signSignal(this.opts.identity, this.opts.cluster, t, to, body, Date.now()))
      .then(
        (msg) => void this.pool.publish(topic, msg),
        (e: unknown) => this.stats.error(`signing a ${t}`, e),
      );
  }

  private receive(topic: string, data: Record<string, unknown>, clients: number, own: boolean): void {
    if (own) {
      // our own publish echoed back by the server (the pool knows its message ids)
      if (topic === this.clusterTopic && data.t === 'announce') {
        this.stats.set('signaling.clients', clients);
        this.on.ownAnnounce(clients);
      }
      return;
    }
    const m = parseSignal(data);
    if (typeof m === 'string') return this.stats.count('drop.signaling', 1, m);
    if (topic === this.clusterTopic ? !isClusterWide(m.t) : topic !== this.selfTopic || isClusterWide(m.t) || m.to !== this.id) return;
    if (m.t === 'will' && m.from === this.id) return; // ours (or our previous page's), come back
    this.inChain = this.inChain
      .then(() => this.verifier.verify(m, Date.now()))
      .then(
        (err) => {
          if (err) return this.stats.count('drop.signaling', 1, err);
          const body = parseBody(m);
          if (typeof body === 'string') return this.stats.count('drop.signaling', 1, `${m.from}: ${body}`);
          this.deliver(m.t, m.from, body, clients);
        },
        (e: unknown) => this.stats.error('verifying a signaling message', e),
      );
  }

  /** A verified message: `from` is proven. */
  private deliver(t: SignalType, from: string, body: Record<string, unknown>, clients: number): void {
    if (t === 'announce') {
      this.stats.set('signaling.clients', clients);
      this.on.announce(from, clients, body.isolated === true);
    } else if (t === 'will') {
      this.stats.count('will.in');
      this.on.will(from);
    } else if (t === 'signal') {
      markOnce('p2p:signal-in');
      this.on.signal(from, body.conn as string, body.signal);
    } else {
      markOnce('p2p:relay-in');
      const bytes = fromBase64(body.frame as string);
      if (!bytes) return this.stats.count('drop.relay', 1, 'bad base64');
      this.stats.count('relay.in');
      this.on.relay(from, bytes);
    }
  }
}
