/**
 * The node's WebRTC links (net/transport.ts) and the frames on them: core messages are
 * put in their compact wire form (core/wire.ts), encoded, counted (`out.<type>`,
 * `bytes.out`) and sent over the link, or relayed through signaling when the core marks
 * a send `transient` and no link is open. Incoming frames (from a link or a relay) are
 * decoded and every message validated on its own; valid ones go to `message`, bad ones
 * are counted (`drop.<code>`), and a peer that keeps sending garbage loses its link.
 * Every link starts with hellos (link-hello.ts): the peer id a link's frames are handed
 * on with is the one its hello proved, and a relayed frame's is the one its signature
 * proved (signaling-bridge.ts).
 */
import { validateWire, type WireMessage } from '../core/node';
import { fromWire, toWire } from '../core/wire';
import { decodeAll, encode } from '../wire/codec';
import { Transport, type LinkInfo, type SimplePeerCtor } from '../net/transport';
import { markOnce } from './marks';
import { linkHello } from './link-hello';
import type { NodeIdentity } from './node-identity';
import type { IceConfigSource } from './ice-config';
import type { Stats } from './stats';

/** Malformed messages (strikes, decaying at STRIKE_DECAY_PER_SEC, stats.ts) after which a peer's link is closed. */
export const MAX_STRIKES = 50;
/**
 * How long a link whose peer's last will came may stay silent after a check. A live peer
 * answers within a round trip (plus its main thread's delay); the heartbeat deadline
 * (deadAfterMs, 25 s) would otherwise find a crashed one.
 */
export const WILL_CHECK_MS = 1_000;
/**
 * Largest frame relayed through signaling: base64 (×4/3), and with a cluster secret base64
 * again around the sealed message (×16/9 in all), plus the signed envelope, stays under
 * the signaling server's default frame limit (64 KiB). Routed messages fall back to a
 * relay when no path is known, and a batch of KV writes can be larger.
 */
export const MAX_RELAY_BYTES = 32 * 1024;

export interface PeerLinkOptions {
  identity: NodeIdentity;
  cluster: string;
  /** K_link of the cluster secret (hellos carry its MAC); absent in an open cluster. */
  linkMacKey?: CryptoKey;
  /** Members' dials are not rate-limited. */
  isMember?: (peer: string) => boolean;
  SimplePeer: SimplePeerCtor;
  /** ICE servers and policy of new links; none when absent. */
  ice?: IceConfigSource;
}

export interface PeerLinkHandlers {
  /** A valid message from `from`. */
  message(from: string, msg: WireMessage): void;
  /** A link opened. */
  linkUp(): void;
  /** The link to `peer` failed or was closed for misbehaving. */
  linkDown(peer: string): void;
  /** Deliver a WebRTC signal to `to` (through signaling). */
  signal(to: string, conn: string, signal: unknown): void;
  /** Relay a frame to `to` (through signaling). */
  relay(to: string, bytes: Uint8Array): void;
}

export class PeerLinks {
  private readonly transport: Transport;

  constructor(
    opts: PeerLinkOptions,
    private readonly stats: Stats,
    private readonly on: PeerLinkHandlers,
  ) {
    this.transport = new Transport({
      me: opts.identity.id,
      auth: linkHello({ identity: opts.identity, cluster: opts.cluster, macKey: opts.linkMacKey }),
      isMember: opts.isMember,
      SimplePeer: opts.SimplePeer,
      sendSignal: (to, conn, signal) => on.signal(to, conn, signal),
      onFrame: (from, bytes) => this.receive(from, bytes),
      onLinkUp: () => {
        markOnce('p2p:link');
        on.linkUp();
      },
      onLinkDown: (peer, reason) => {
        stats.count('link.down', 1, `${peer}: ${reason}`);
        on.linkDown(peer);
      },
      onError: (what) => stats.count('drop.signal', 1, what),
      rtcConfig: opts.ice ? () => opts.ice!.current() : undefined,
    });
  }

  send(to: string, msg: WireMessage, transient: boolean): void {
    const bytes = encode(toWire(msg));
    this.stats.count(`out.${msg.type}`);
    this.stats.count('bytes.out', bytes.byteLength);
    if (transient && !this.transport.isOpen(to)) {
      // a server closes a connection that sends a frame over its limit (64 KiB by default),
      // and with it everything else in flight there: such a message is dropped here instead
      if (bytes.byteLength > MAX_RELAY_BYTES) return this.stats.count('drop.relayTooLarge', 1, `${msg.type} of ${bytes.byteLength} bytes to ${to}: over ${MAX_RELAY_BYTES}`);
      this.stats.count('relay.out');
      this.on.relay(to, bytes);
    } else {
      this.transport.send(to, bytes);
    }
  }

  /** A frame from `from`, over a link or relayed. */
  receive(from: string, bytes: Uint8Array): void {
    this.stats.count('bytes.in', bytes.byteLength);
    const r = decodeAll<WireMessage>(bytes, validateWire, fromWire);
    for (const msg of r.msgs) {
      this.stats.count(`in.${msg.type}`);
      this.on.message(from, msg);
    }
    for (const error of r.errors) {
      this.stats.count(`drop.${error.code}`, 1, `${from}: ${error.message}`);
      if (this.stats.strike(from) > MAX_STRIKES) {
        this.stats.forgive(from);
        this.stats.count('link.struckOut', 1, from);
        this.transport.close(from);
        this.on.linkDown(from);
        return;
      }
    }
  }

  /**
   * `peer`'s last will came (its signaling connection closed): an open link to it is
   * checked now and dropped if the peer does not answer within WILL_CHECK_MS.
   */
  check(peer: string): void {
    this.transport.check(peer, WILL_CHECK_MS);
  }

  connect(peer: string): void {
    this.transport.connect(peer);
  }

  close(peer: string): void {
    this.transport.close(peer);
  }

  handleSignal(from: string, conn: string, signal: unknown): void {
    this.transport.handleSignal(from, conn, signal);
  }

  /** Sends the frames coalesced for later in this task now (a closing page may not run it). */
  flush(): void {
    this.transport.flush();
  }

  closeAll(): void {
    this.transport.closeAll();
  }

  linkInfos(): LinkInfo[] {
    return this.transport.linkInfos();
  }

  /** The transport's counters, as `p2p.stats()` names them. */
  counters(): Record<string, number> {
    const t = this.transport.stats;
    return {
      'links.open': this.transport.openPeers().length,
      'links.dials': t.dials,
      'links.dialFailures': t.dialFailures,
      'links.heartbeatTimeouts': t.heartbeatTimeouts,
      'links.checks': t.checks,
      'links.checkTimeouts': t.checkTimeouts,
      'links.iceChecks': t.iceChecks,
      'frames.out': t.framesOut,
      'messages.out': t.messagesOut,
      'links.promptFlushes': t.promptFlushes,
      'frames.in': t.framesIn,
      'links.unreachableDrops': t.unreachableDrops,
      'links.helloFailures': t.helloFailures,
      'links.dialsRefused': t.dialsRefused,
      'links.earlyDropped': t.earlyDropped,
    };
  }
}
