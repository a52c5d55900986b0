/**
 * WebRTC data channels to other nodes, one link per peer, opened on demand.
 *
 * - A send to a peer without a link dials it (simple-peer, signals relayed to the peer's
 *   `<cluster>/<id>` topic) and queues the frame until the channel opens.
 * - Glare (both sides dial at once): the link initiated by the smaller id wins.
 * - Heartbeat: a link that sent nothing for most of `heartbeatMs` (1 s) sends a 1-byte
 *   frame (any frame proves liveness); a link silent for `deadAfterMs` (3 s, checked
 *   every half period) is closed and reported down. Browsers do not reliably report a closed
 *   or crashed tab, and a frozen tab reports nothing at all.
 * - Every failure (dial timeout, ICE failure, channel error, heartbeat loss) ends in
 *   exactly one onLinkDown for that peer; an explicit close() reports nothing.
 * - Coalescing: frames sent to a peer are queued and written in one task scheduled right
 *   after the current one, back to back in as few data-channel messages as possible
 *   (`concatFrames`, at most COALESCE_BYTES each). Under load the replies to a whole
 *   batch of incoming messages leave as one message instead of one each: every
 *   `RTCDataChannel.send` and every message event on the other side costs far more than
 *   the bytes it carries. When idle, a frame waits only for that one task.
 */
import type SimplePeerType from 'simple-peer';
import { concatFrames, HEARTBEAT_FRAME } from '../wire/codec';
import { markOnce } from '../runtime/marks';

/** Frames to one peer are coalesced into data-channel messages of at most this size. */
export const COALESCE_BYTES = 64 * 1024;

type Peer = SimplePeerType.Instance;
export type SimplePeerCtor = new (opts: SimplePeerType.Options) => Peer;

export interface TransportOptions {
  me: string;
  SimplePeer: SimplePeerCtor;
  /** Deliver a signal (offer/answer/candidate) to `to` through the signaling server. */
  sendSignal: (to: string, conn: string, signal: unknown) => void;
  onFrame: (from: string, bytes: Uint8Array) => void;
  onLinkUp: (peer: string) => void;
  onLinkDown: (peer: string, reason: string) => void;
  onError?: (what: string) => void;
  rtcConfig?: RTCConfiguration;
  dialTimeoutMs?: number;
  heartbeatMs?: number;
  deadAfterMs?: number;
  maxQueuedFrames?: number;
}

interface Link {
  peer: string;
  conn: string;
  rtc: Peer;
  initiator: boolean;
  open: boolean;
  queue: Uint8Array[];
  /** Frames written since the last flush (open links only). */
  out: Uint8Array[];
  lastRx: number;
  /** Last write of any data: a link that carried traffic within heartbeatMs needs no heartbeat. */
  lastTx: number;
  openedAt: number;
  dialTimer: ReturnType<typeof setTimeout> | null;
}

export interface LinkStats {
  /** data-channel messages sent (several frames coalesced count once) */
  framesOut: number;
  /** frames handed to send() and written */
  messagesOut: number;
  framesIn: number;
  bytesOut: number;
  bytesIn: number;
  dials: number;
  dialFailures: number;
  heartbeatTimeouts: number;
  queueDrops: number;
  linksUp: number;
  linksDown: number;
}

export class Transport {
  private readonly links = new Map<string, Link>();
  private readonly early = new Map<string, { at: number; signals: unknown[] }>();
  private readonly heartbeat: ReturnType<typeof setInterval>;
  private connSeq = 0;
  /** Links with frames in `out`, and the task that will write them. */
  private readonly dirty = new Set<Link>();
  private flushPending = false;
  private readonly flushChannel = new MessageChannel();
  readonly stats: LinkStats = {
    framesOut: 0, messagesOut: 0, framesIn: 0, bytesOut: 0, bytesIn: 0, dials: 0, dialFailures: 0,
    heartbeatTimeouts: 0, queueDrops: 0, linksUp: 0, linksDown: 0,
  };

  constructor(private readonly opts: TransportOptions) {
    // checked twice per period: a dead link is found within deadAfterMs + half a period
    this.heartbeat = setInterval(() => this.beat(), (opts.heartbeatMs ?? 1000) / 2);
    this.flushChannel.port1.onmessage = () => this.flush();
  }

  /** Send a frame; dials the peer when there is no link. */
  send(to: string, frame: Uint8Array): void {
    let link = this.links.get(to);
    if (!link) link = this.dial(to);
    if (link.open) this.write(link, frame);
    else if (link.queue.length < (this.opts.maxQueuedFrames ?? 2048)) link.queue.push(frame);
    else this.stats.queueDrops++;
  }

  /** Open a link to `to` ahead of any frame (no-op when there is one). */
  connect(to: string): void {
    if (!this.links.has(to)) this.dial(to);
  }

  /** Send only over an already open link; false when there is none. */
  sendIfOpen(to: string, frame: Uint8Array): boolean {
    const link = this.links.get(to);
    if (!link?.open) return false;
    this.write(link, frame);
    return true;
  }

  isOpen(peer: string): boolean {
    return this.links.get(peer)?.open ?? false;
  }

  openPeers(): string[] {
    return [...this.links.values()].filter((l) => l.open).map((l) => l.peer);
  }

  bufferedAmount(peer: string): number {
    const l = this.links.get(peer);
    return l?.open ? (l.rtc as unknown as { bufferedAmount: number }).bufferedAmount : 0;
  }

  /**
   * Close the link without reporting it down (the caller decided). Frames already queued
   * for it (typically the DISCONNECT that explains the close) are written first: dropping
   * them made every eviction look like a failure to the other side.
   */
  close(peer: string): void {
    const link = this.links.get(peer);
    if (!link) return;
    this.writeOut(link);
    this.drop(link, null);
  }

  closeAll(): void {
    clearInterval(this.heartbeat);
    this.flush();
    this.flushChannel.port1.close();
    for (const link of [...this.links.values()]) this.drop(link, null);
  }

  /** A signal for us arrived through the signaling server. */
  handleSignal(from: string, conn: string, signal: unknown): void {
    const link = this.links.get(from);
    if (link && link.conn === conn) {
      this.feed(link, signal);
      return;
    }
    const isOffer = typeof signal === 'object' && signal !== null && (signal as { type?: unknown }).type === 'offer';
    if (!isOffer) {
      // a candidate that overtook its offer (several signaling servers): keep it briefly
      const key = `${from} ${conn}`;
      const e = this.early.get(key) ?? { at: Date.now(), signals: [] };
      if (e.signals.length < 64) e.signals.push(signal);
      this.early.set(key, e);
      return;
    }
    const replacedQueue = link && !link.open ? link.queue : [];
    if (link) {
      if (link.initiator && !link.open && this.opts.me < from) return; // glare: our dial wins
      // Glare lost: replace our pending dial and keep its queue. An open link being
      // re-dialled means the peer restarted (same id, fresh node): report the old one down.
      this.drop(link, link.open ? 'peer restarted' : null);
    }
    const fresh = this.create(from, conn, false);
    fresh.queue.push(...replacedQueue);
    this.feed(fresh, signal);
    const key = `${from} ${conn}`;
    const early = this.early.get(key);
    if (early) {
      this.early.delete(key);
      for (const s of early.signals) this.feed(fresh, s);
    }
  }

  private dial(to: string): Link {
    this.stats.dials++;
    const conn = `${this.opts.me}.${(++this.connSeq).toString(36)}.${Math.floor(Math.random() * 1e6).toString(36)}`;
    return this.create(to, conn, true);
  }

  private create(peer: string, conn: string, initiator: boolean): Link {
    const rtc = new this.opts.SimplePeer({
      initiator,
      trickle: true,
      config: this.opts.rtcConfig ?? { iceServers: [] },
      channelConfig: { ordered: true },
    });
    const link: Link = { peer, conn, rtc, initiator, open: false, queue: [], out: [], lastRx: Date.now(), lastTx: 0, openedAt: 0, dialTimer: null };
    this.links.set(peer, link);
    link.dialTimer = setTimeout(() => {
      if (this.links.get(peer) === link && !link.open) {
        this.stats.dialFailures++;
        this.drop(link, 'dial timeout');
      }
    }, this.opts.dialTimeoutMs ?? 10_000);
    rtc.on('signal', (signal: unknown) => {
      if (this.links.get(peer) === link) this.opts.sendSignal(peer, conn, signal);
    });
    rtc.on('iceStateChange', (ice: string) => markOnce(`p2p:ice-${ice}`));
    rtc.on('connect', () => {
      if (this.links.get(peer) !== link) return;
      link.open = true;
      link.openedAt = Date.now();
      link.lastRx = Date.now();
      if (link.dialTimer) clearTimeout(link.dialTimer);
      link.dialTimer = null;
      this.stats.linksUp++;
      this.opts.onLinkUp(peer);
      const queued = link.queue;
      link.queue = [];
      for (const f of queued) if (link.open) this.write(link, f);
    });
    rtc.on('data', (data: Uint8Array) => {
      if (this.links.get(peer) !== link) return;
      link.lastRx = Date.now();
      if (data.byteLength === 1 && data[0] === HEARTBEAT_FRAME[0]) return;
      this.stats.framesIn++;
      this.stats.bytesIn += data.byteLength;
      this.opts.onFrame(peer, data);
    });
    rtc.on('close', () => {
      if (this.links.get(peer) === link) this.drop(link, 'closed by peer');
    });
    rtc.on('error', (err: Error & { code?: string }) => {
      if (this.links.get(peer) === link) {
        if (!link.open) this.stats.dialFailures++;
        this.drop(link, `webrtc error ${err.code ?? ''} ${err.message}`.trim());
      }
    });
    return link;
  }

  private feed(link: Link, signal: unknown): void {
    try {
      link.rtc.signal(signal as SimplePeerType.SignalData);
    } catch (e) {
      this.opts.onError?.(`transport: bad signal from ${link.peer}: ${(e as Error).message}`);
    }
  }

  private write(link: Link, frame: Uint8Array): void {
    link.out.push(frame);
    this.dirty.add(link);
    if (!this.flushPending) {
      this.flushPending = true;
      this.flushChannel.port2.postMessage(null);
    }
  }

  /** Write every link's queued frames, coalesced. */
  flush(): void {
    this.flushPending = false;
    const links = [...this.dirty];
    this.dirty.clear();
    for (const link of links) this.writeOut(link);
  }

  private writeOut(link: Link): void {
    const frames = link.out;
    link.out = [];
    this.dirty.delete(link);
    if (!link.open || frames.length === 0) return;
    this.stats.messagesOut += frames.length;
    link.lastTx = Date.now();
    for (const msg of concatFrames(frames, COALESCE_BYTES)) {
      try {
        link.rtc.send(msg);
        this.stats.framesOut++;
        this.stats.bytesOut += msg.byteLength;
      } catch (e) {
        this.drop(link, `send failed: ${(e as Error).message}`);
        return;
      }
    }
  }

  private beat(): void {
    const now = Date.now();
    const deadAfter = this.opts.deadAfterMs ?? 3000;
    for (const link of [...this.links.values()]) {
      if (!link.open) continue;
      if (now - link.lastRx > deadAfter) {
        this.stats.heartbeatTimeouts++;
        this.drop(link, `no heartbeat for ${now - link.lastRx} ms`);
        continue;
      }
      // any frame proves liveness to the other side; heartbeats only fill silences of
      // three quarters of a period or more, so a silent link sends one per period
      if (now - link.lastTx < ((this.opts.heartbeatMs ?? 1000) * 3) / 4) continue;
      try {
        link.lastTx = now;
        link.rtc.send(HEARTBEAT_FRAME);
      } catch (e) {
        this.drop(link, `heartbeat send failed: ${(e as Error).message}`);
      }
    }
    for (const [k, e] of this.early) if (now - e.at > 10_000) this.early.delete(k);
  }

  /** reason null: closed on purpose, not reported. */
  private drop(link: Link, reason: string | null): void {
    if (this.links.get(link.peer) === link) this.links.delete(link.peer);
    if (link.dialTimer) clearTimeout(link.dialTimer);
    link.dialTimer = null;
    const wasOpen = link.open;
    link.open = false;
    link.out = [];
    this.dirty.delete(link);
    link.rtc.removeAllListeners();
    link.rtc.on('error', () => undefined); // late errors from a destroyed peer are expected
    link.rtc.destroy();
    if (wasOpen) this.stats.linksDown++;
    if (reason !== null) this.opts.onLinkDown(link.peer, reason);
  }
}
