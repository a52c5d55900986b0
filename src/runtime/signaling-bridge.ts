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
 */
import { SignalingPool, type WebSocketCtor, type WebSocketLike } from '../net/signaling';
import { fromBase64, toBase64 } from '../wire/codec';
import { parseBody, parseSignal, signSignal, SignalVerifier, type SignalType } from './signal-messages';
import type { NodeIdentity } from './node-identity';
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
  private readonly pool: SignalingPool;
  private readonly clusterTopic: string;
  private readonly selfTopic: string;
  private readonly verifier: SignalVerifier;
  private outChain: Promise<void> = Promise.resolve();
  private inChain: Promise<void> = Promise.resolve();
  private readonly id: string;

  constructor(
    private readonly opts: SignalingOptions,
    private readonly stats: Stats,
    private readonly on: SignalingHandlers,
  ) {
    this.id = opts.identity.id;
    this.clusterTopic = opts.cluster;
    this.selfTopic = `${opts.cluster}/${this.id}`;
    this.verifier = new SignalVerifier(opts.identity, opts.cluster);
    this.pool = new SignalingPool(opts.urls, this.id, {
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
    });
    this.pool.subscribe(this.clusterTopic);
    this.pool.subscribe(this.selfTopic);
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

  close(): void {
    this.pool.close();
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
    if (topic === this.clusterTopic ? m.t !== 'announce' : topic !== this.selfTopic || m.t === 'announce' || m.to !== this.id) return;
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
