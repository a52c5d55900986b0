/**
 * WebRTC data channels to other nodes, one link per peer, opened on demand.
 *
 * - A send to a peer without a link dials it (simple-peer, signals relayed to the peer's
 *   `<cluster>/<id>` topic) and queues the frame until the channel opens.
 * - Glare (both sides dial at once): the link initiated by the smaller id wins.
 * - Heartbeat: on a link silent for most of `heartbeatMs` (10 s) the end with the smaller
 *   id sends a probe, which the other answers at once with a 1-byte heartbeat (any frame
 *   proves liveness); a link silent for `deadAfterMs` (25 s, checked every second) is
 *   closed and reported down. This is the backstop for a peer whose
 *   JavaScript stopped while its network stack runs on (a frozen or hung tab): nothing else
 *   reports it. Crashes and closes are found sooner by the checks below; each heartbeat
 *   costs about 130 bytes on the wire (DTLS and SCTP framing and the SACK back), so the
 *   period is what an idle link costs (docs/benchmarks.md, "Idle links").
 * - Checks: when something says the peer may be gone, `check(peer)` sends a probe frame,
 *   which a live peer answers at once with a heartbeat, and drops the link if nothing at
 *   all arrives from the peer within `withinMs` instead of `deadAfterMs`. Two things ask:
 *   the peer's last will (its signaling connection closed, runtime/signaling-bridge.ts;
 *   1 s) and the browser's ICE agent, whose consent checks (RFC 7675) run underneath
 *   whatever the pages do and turn the connection "disconnected" 5-7 s after the other
 *   end's network stack stops answering: a crashed tab without a will, a cut network
 *   (ICE_CHECK_MS). A connection that recovers answers the probe and stays.
 * - Every failure (dial timeout, ICE failure, channel error, heartbeat loss) ends in
 *   exactly one onLinkDown for that peer; an explicit close() reports nothing.
 * - Diagnostics (link-stats.ts): an open link's selected candidate pair (host / srflx /
 *   relay) and RTT are read from getStats() when it opens and every 5 s. A dial that
 *   never opened records why (no relay candidate, no candidate pair worked, …); after two
 *   such failures in a row the peer is unreachable for a while (5 s, doubling up to
 *   60 s): a send to it fails at once (reported down) instead of dialling again, and
 *   `linkInfos()` shows it with the reason. A dial from the peer is always answered.
 * - Coalescing: frames sent to a peer are queued and written in one task scheduled right
 *   after the current one, back to back in as few data-channel messages as possible
 *   (`concatFrames`, at most COALESCE_BYTES each). Under load the replies to a whole
 *   batch of incoming messages leave as one message instead of one each: every
 *   `RTCDataChannel.send` and every message event on the other side costs far more than
 *   the bytes it carries. When idle, a frame waits only for that one task.
 * - Hello (docs/security.md, "Links and identities"): once the data channel opens, each
 *   side first sends a hello (`auth.hello`) that proves its id over both ends' DTLS
 *   fingerprints, read from the local and remote SDP. The link counts as open (onLinkUp,
 *   queued frames written, frames delivered) only when our hello is sent and the peer's
 *   verified (`auth.verify`); the first message must be the hello, and frames that arrive
 *   while it is being checked wait (at most EARLY_FRAMES). A failed hello closes the link
 *   and is counted (`helloFailures`), never against the id the peer claimed: that id is
 *   not held off, and the overlay hears of it only for a dial it asked for.
 * - Incoming dials from peers that are not members (`isMember`) are rate-limited (a token
 *   bucket, DIAL_BURST per DIAL_REFILL_MS) and at most MAX_PENDING_INCOMING of them are
 *   pending at once: every one costs an RTCPeerConnection.
 * - Signals that arrive before their offer wait for it in a store bounded per sender and
 *   in total, in count, bytes and age (early-signals.ts; drops counted as `earlyDropped`).
 */
import type SimplePeerType from 'simple-peer';
import { concatFrames, HEARTBEAT_FRAME, PROBE_FRAME } from '../wire/codec';
import { EarlySignals } from './early-signals';
import { markOnce } from '../runtime/marks';
import { sdpFingerprint } from '../trust/transcripts';
import { candidateLineType, failureReason, noCandidates, selectedPath, type CandidateCounts, type LinkPath } from './link-stats';

/** Defaults: a silent link sends a heartbeat every HEARTBEAT_MS and is dead after DEAD_AFTER_MS of silence. */
export const HEARTBEAT_MS = 10_000;
export const DEAD_AFTER_MS = 25_000;
/** How long a link whose ICE connection went "disconnected" may stay silent after its check. */
export const ICE_CHECK_MS = 2_000;
/** Period of the heartbeat and deadline sweep. */
const TICK_MS = 1_000;

/** A link that has sent nothing for this long sends its next frames without waiting for a task (`write`). */
export const IDLE_LINK_MS = 5;

/** Frames to one peer are coalesced into data-channel messages of at most this size. */
export const COALESCE_BYTES = 64 * 1024;

type Peer = SimplePeerType.Instance;
export type SimplePeerCtor = new (opts: SimplePeerType.Options) => Peer;

/** The two DTLS certificate fingerprints of a link (from the local and the remote SDP). */
export interface LinkFingerprints {
  local: string;
  remote: string;
}

/** How a link proves who is at each end (runtime/link-hello.ts). */
export interface LinkAuth {
  /** The hello frame this side sends first on its link to `peer`. */
  hello(peer: string, fp: LinkFingerprints): Promise<Uint8Array>;
  /** null when `frame` is a hello that proves `peer`'s id over `fp` (as this side sees them); else why not. */
  verify(peer: string, fp: LinkFingerprints, frame: Uint8Array): Promise<string | null>;
}

export interface TransportOptions {
  me: string;
  /** Link hellos: no frame of a link is delivered before its peer proved its id. */
  auth: LinkAuth;
  /** Members' dials are not rate-limited (false for everyone when absent). */
  isMember?: (peer: string) => boolean;
  SimplePeer: SimplePeerCtor;
  /** Deliver a signal (offer/answer/candidate) to `to` through the signaling server. */
  sendSignal: (to: string, conn: string, signal: unknown) => void;
  onFrame: (from: string, bytes: Uint8Array) => void;
  onLinkUp: (peer: string) => void;
  onLinkDown: (peer: string, reason: string) => void;
  onError?: (what: string) => void;
  /** Read at every dial: a refreshed configuration (new TURN credentials) applies to new links. */
  rtcConfig?: RTCConfiguration | (() => RTCConfiguration);
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
  /** Last probe this end sent to ask for a heartbeat (the end with the smaller id asks). */
  lastAsk: number;
  openedAt: number;
  dialTimer: ReturnType<typeof setTimeout> | null;
  createdAt: number;
  policy: 'all' | 'relay';
  turnConfigured: boolean;
  local: CandidateCounts;
  remote: CandidateCounts;
  candidateErrors: string[];
  path: LinkPath | null;
  /** The data channel opened; the hellos run (open is set once both are done). */
  connected: boolean;
  fp: LinkFingerprints | null;
  helloSent: boolean;
  /** The peer's hello: not seen, being verified, verified. */
  peerHello: 'none' | 'checking' | 'ok';
  /** Frames that arrived while the peer's hello was being verified. */
  held: Uint8Array[];
  /**
   * Frames that arrived before simple-peer reported the link connected: its 'connect' waits
   * for an async getStats(), and the peer's channel may already carry its hello by then.
   */
  preConnect: Uint8Array[];
}

/** Frames a peer may send behind its hello before the hello is verified. */
const EARLY_FRAMES = 64;
/** Incoming dials from non-members: a bucket of DIAL_BURST, one token back every DIAL_REFILL_MS / DIAL_BURST. */
const DIAL_BURST = 5;
const DIAL_REFILL_MS = 10_000;
/** Incoming links from non-members that may be connecting at once. */
const MAX_PENDING_INCOMING = 8;

/** A peer whose last dials never opened. */
interface Unreachable {
  reason: string;
  /** Dials in a row that failed. */
  failures: number;
  at: number;
  /** No dial before this time (ms epoch). */
  retryAt: number;
  /** A refused send was reported down since the last failure (once per hold-off). */
  reported: boolean;
}

/** One link (or unreachable peer) as `linkInfos()` reports it. */
export interface LinkInfo {
  peer: string;
  state: 'connecting' | 'open' | 'unreachable';
  /** Open links: the selected path, once getStats() has answered. */
  path: LinkPath | null;
  /** ms epoch: dial started (connecting), opened (open), last failure (unreachable). */
  since: number;
  /**
   * The peer's last dials failed (also on a connecting link: a retry, or the peer dialling
   * back): why, how many in a row, and (unreachable) ms until this side dials again.
   */
  reason?: string;
  failures?: number;
  retryInMs?: number;
}

/** Dials in a row that may fail before a peer is held off; then 5 s, doubling, at most 60 s. */
const FREE_FAILURES = 1;
const COOLDOWN_MIN_MS = 5_000;
const COOLDOWN_MAX_MS = 60_000;
/** Unreachable records are kept this long after the last failure. */
const UNREACHABLE_KEEP_MS = 10 * 60_000;
/** An open link's path and RTT are read from getStats() this often. */
const PATH_EVERY_MS = 5_000;
/** A pending dial closed or replaced after this long counts as failed (glare resolves in ms). */
const ABANDONED_AFTER_MS = 2_000;

export interface LinkStats {
  /** data-channel messages sent (several frames coalesced count once) */
  framesOut: number;
  /** frames handed to send() and written */
  messagesOut: number;
  /** flushes that went out at the end of the task's microtasks, the link being idle (`write`) */
  promptFlushes: number;
  framesIn: number;
  bytesOut: number;
  bytesIn: number;
  dials: number;
  dialFailures: number;
  heartbeatTimeouts: number;
  /** Link checks started (check()), and those that got no answer in time (the link was dropped). */
  checks: number;
  /** Of the checks, those started because the link's ICE connection went "disconnected". */
  iceChecks: number;
  checkTimeouts: number;
  queueDrops: number;
  /** Sends refused because the peer was unreachable (held off after failed dials). */
  unreachableDrops: number;
  /** Links closed because the peer's hello was missing, malformed or did not verify. */
  helloFailures: number;
  /** Incoming dials from non-members refused by the rate limit or the pending cap. */
  dialsRefused: number;
  /** Signals that overtook their offer and were dropped or refused by the bounds of early-signals.ts. */
  earlyDropped: number;
  linksUp: number;
  linksDown: number;
}

export class Transport {
  private readonly links = new Map<string, Link>();
  /** Signals that overtook their offer (bounded per sender and in total, early-signals.ts). */
  private readonly early = new EarlySignals();
  private readonly heartbeat: ReturnType<typeof setInterval>;
  private connSeq = 0;
  /** Links with frames in `out`, and the task that will write them. */
  private readonly dirty = new Set<Link>();
  private flushPending = false;
  private readonly flushChannel = new MessageChannel();
  private readonly unreachable = new Map<string, Unreachable>();
  private pathsReadAt = Date.now();
  readonly stats: LinkStats = {
    framesOut: 0, messagesOut: 0, promptFlushes: 0, framesIn: 0, bytesOut: 0, bytesIn: 0, dials: 0, dialFailures: 0,
    heartbeatTimeouts: 0, checks: 0, iceChecks: 0, checkTimeouts: 0, queueDrops: 0, unreachableDrops: 0, helloFailures: 0, dialsRefused: 0, earlyDropped: 0, linksUp: 0, linksDown: 0,
  };
  private dialTokens = DIAL_BURST;
  private dialTokensAt = Date.now();

  constructor(private readonly opts: TransportOptions) {
    // a dead link is found within deadAfterMs + one tick
    this.heartbeat = setInterval(() => this.beat(), Math.min(TICK_MS, (opts.heartbeatMs ?? HEARTBEAT_MS) / 2));
    this.flushChannel.port1.onmessage = () => this.flush();
  }

  /** Send a frame; dials the peer when there is no link. */
  send(to: string, frame: Uint8Array): void {
    let link = this.links.get(to);
    if (!link) {
      if (this.heldOff(to)) return this.refuse(to);
      link = this.dial(to);
    }
    if (link.open) this.write(link, frame);
    else if (link.queue.length < (this.opts.maxQueuedFrames ?? 2048)) link.queue.push(frame);
    else this.stats.queueDrops++;
  }

  /** Open a link to `to` ahead of any frame (no-op when there is one). */
  connect(to: string): void {
    if (!this.links.has(to) && !this.heldOff(to)) this.dial(to);
  }

  /** Open and connecting links, then unreachable peers (most recent failure first). */
  linkInfos(): LinkInfo[] {
    const now = Date.now();
    const out: LinkInfo[] = [];
    for (const l of this.links.values()) {
      const info: LinkInfo = { peer: l.peer, state: l.open ? 'open' : 'connecting', path: l.open ? l.path : null, since: l.open ? l.openedAt : l.createdAt };
      const u = l.open ? undefined : this.unreachable.get(l.peer);
      if (u) {
        info.reason = u.reason;
        info.failures = u.failures;
      }
      out.push(info);
    }
    const failed = [...this.unreachable].filter(([peer]) => !this.links.has(peer)).sort((a, b) => b[1].at - a[1].at);
    for (const [peer, u] of failed) {
      out.push({ peer, state: 'unreachable', path: null, since: u.at, reason: u.reason, failures: u.failures, retryInMs: Math.max(0, u.retryAt - now) });
    }
    return out;
  }

  /** The peer failed too many dials in a row and its hold-off has not passed. */
  private heldOff(peer: string): boolean {
    const u = this.unreachable.get(peer);
    return u !== undefined && Date.now() < u.retryAt;
  }

  /**
   * A send to a held-off peer: dropped, and the peer reported down (after this task) once
   * per hold-off, so that the overlay turns to another peer instead of waiting for an
   * answer; later sends in the same hold-off are dropped quietly.
   */
  private refuse(peer: string): void {
    this.stats.unreachableDrops++;
    const u = this.unreachable.get(peer);
    if (!u || u.reported) return;
    u.reported = true;
    setTimeout(() => {
      if (!this.links.has(peer)) this.opts.onLinkDown(peer, `unreachable: ${u.reason}`);
    }, 0);
  }

  private recordFailure(link: Link, cause: string): void {
    const now = Date.now();
    const prev = this.unreachable.get(link.peer);
    const failures = (prev?.failures ?? 0) + 1;
    const hold = failures <= FREE_FAILURES ? 0 : Math.min(COOLDOWN_MAX_MS, COOLDOWN_MIN_MS * 2 ** (failures - FREE_FAILURES - 1));
    const reason = failureReason({
      cause,
      policy: link.policy,
      turnConfigured: link.turnConfigured,
      local: link.local,
      remote: link.remote,
      candidateErrors: link.candidateErrors,
    });
    this.unreachable.delete(link.peer); // re-inserted last: the map stays in failure order
    this.unreachable.set(link.peer, { reason, failures, at: now, retryAt: now + hold, reported: false });
    for (const [peer, u] of this.unreachable) {
      if (now - u.at < UNREACHABLE_KEEP_MS && this.unreachable.size <= 256) break;
      this.unreachable.delete(peer);
    }
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
    // the overlay gave up waiting for this dial (its request timed out): a failed dial
    this.noteAbandoned(link, 'no connection');
    this.drop(link, null);
  }

  /** A dial that never opened and is dropped without an error of its own still failed, if
   * it had time to: recorded so that a peer nobody can reach shows up as such. */
  private noteAbandoned(link: Link, cause: string): void {
    const age = Date.now() - link.createdAt;
    if (!link.open && age >= ABANDONED_AFTER_MS) this.recordFailure(link, `${cause} after ${(age / 1000).toFixed(1)} s`);
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
      const before = this.early.dropped;
      this.early.add(from, conn, signal, Date.now());
      if (this.early.dropped > before) {
        this.stats.earlyDropped += this.early.dropped - before;
        this.opts.onError?.(`transport: early signals from ${from} past their bound, oldest dropped`);
      }
      return;
    }
    if (!link && !this.admitDial(from)) return;
    const replacedQueue = link && !link.open ? link.queue : [];
    if (link) {
      if (link.initiator && !link.open && this.opts.me < from) return; // glare: our dial wins
      // Glare lost: replace our pending dial and keep its queue. An open link being
      // re-dialled means the peer restarted (same id, fresh node): report the old one down.
      this.noteAbandoned(link, 'no connection (the peer dialled again)');
      this.drop(link, link.open ? 'peer restarted' : null);
    }
    const fresh = this.create(from, conn, false);
    fresh.queue.push(...replacedQueue);
    this.feed(fresh, signal);
    for (const s of this.early.take(from, conn, Date.now())) this.feed(fresh, s);
  }

  /** An offer from `from`, with no link to it: members always, others within the rate limit and the pending cap. */
  private admitDial(from: string): boolean {
    if (this.opts.isMember?.(from)) return true;
    const now = Date.now();
    this.dialTokens = Math.min(DIAL_BURST, this.dialTokens + ((now - this.dialTokensAt) * DIAL_BURST) / DIAL_REFILL_MS);
    this.dialTokensAt = now;
    let pending = 0;
    for (const l of this.links.values()) if (!l.open && !l.initiator && !this.opts.isMember?.(l.peer)) pending++;
    if (this.dialTokens < 1 || pending >= MAX_PENDING_INCOMING) {
      this.stats.dialsRefused++;
      this.opts.onError?.(`transport: dial from ${from} refused (${pending >= MAX_PENDING_INCOMING ? 'too many pending' : 'rate limit'})`);
      return false;
    }
    this.dialTokens--;
    return true;
  }

  private dial(to: string): Link {
    this.stats.dials++;
    const conn = `${this.opts.me}.${(++this.connSeq).toString(36)}.${Math.floor(Math.random() * 1e6).toString(36)}`;
    return this.create(to, conn, true);
  }

  private create(peer: string, conn: string, initiator: boolean): Link {
    const rc = this.opts.rtcConfig;
    const config = (typeof rc === 'function' ? rc() : rc) ?? { iceServers: [] };
    const rtc = new this.opts.SimplePeer({
      initiator,
      trickle: true,
      config,
      channelConfig: { ordered: true },
    });
    const link: Link = {
      peer, conn, rtc, initiator, open: false, queue: [], out: [], lastRx: Date.now(), lastTx: 0, lastAsk: 0, openedAt: 0, dialTimer: null,
      createdAt: Date.now(),
      policy: config.iceTransportPolicy === 'relay' ? 'relay' : 'all',
      turnConfigured: (config.iceServers ?? []).some((s) => (Array.isArray(s.urls) ? s.urls : [s.urls]).some((u) => /^turns?:/i.test(u))),
      local: noCandidates(),
      remote: noCandidates(),
      candidateErrors: [],
      path: null,
      connected: false,
      fp: null,
      helloSent: false,
      peerHello: 'none',
      held: [],
      preConnect: [],
    };
    this.links.set(peer, link);
    const dialTimeoutMs = this.opts.dialTimeoutMs ?? 10_000;
    link.dialTimer = setTimeout(() => {
      if (this.links.get(peer) === link && !link.open) {
        this.stats.dialFailures++;
        this.drop(link, `dial timeout after ${dialTimeoutMs / 1000} s`);
      }
    }, dialTimeoutMs);
    const pc = (rtc as unknown as { _pc?: RTCPeerConnection })._pc;
    pc?.addEventListener('icecandidateerror', (ev) => {
      const e = ev as RTCPeerConnectionIceErrorEvent;
      if (link.candidateErrors.length < 8) link.candidateErrors.push(`${e.url || 'ICE server'}: ${e.errorCode} ${e.errorText}`.trim());
    });
    rtc.on('signal', (signal: unknown) => {
      const line = candidateOf(signal);
      if (line !== null) {
        const t = candidateLineType(line);
        if (t) link.local[t]++;
      }
      if (this.links.get(peer) === link) this.opts.sendSignal(peer, conn, signal);
    });
    rtc.on('iceStateChange', (ice: string) => {
      markOnce(`p2p:ice-${ice}`);
      // the other end stopped answering consent checks: crashed, or the network is cut
      if (ice === 'disconnected' && this.links.get(peer) === link && link.open) {
        this.stats.iceChecks++;
        this.check(peer, ICE_CHECK_MS, 'its ICE connection went disconnected');
      }
    });
    rtc.on('connect', () => {
      if (this.links.get(peer) !== link) return;
      link.connected = true;
      link.lastRx = Date.now();
      this.sendHello(link);
      const early = link.preConnect;
      link.preConnect = [];
      for (const data of early) if (this.links.get(peer) === link && !link.open) this.beforeOpen(link, data);
    });
    rtc.on('data', (data: Uint8Array) => {
      if (this.links.get(peer) !== link) return;
      link.lastRx = Date.now();
      if (!link.open) return this.beforeOpen(link, data);
      if (this.control(link, data)) return;
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
        this.drop(link, err.code === 'ERR_ICE_CONNECTION_FAILURE' ? 'ICE failed' : `webrtc error ${err.code ?? ''} ${err.message}`.trim());
      }
    });
    return link;
  }

  /** The link's fingerprints as this side sees them; null when an SDP has none. */
  private fingerprints(link: Link): LinkFingerprints | null {
    const pc = (link.rtc as unknown as { _pc?: RTCPeerConnection })._pc;
    const local = sdpFingerprint(pc?.localDescription?.sdp);
    const remote = sdpFingerprint(pc?.remoteDescription?.sdp);
    return local !== null && remote !== null ? { local, remote } : null;
  }

  /** The data channel opened: our hello goes first, written alone. */
  private sendHello(link: Link): void {
    link.fp = this.fingerprints(link);
    if (!link.fp) return this.helloFailed(link, 'no DTLS fingerprint in the SDP');
    this.opts.auth.hello(link.peer, link.fp).then(
      (hello) => {
        if (this.links.get(link.peer) !== link) return;
        try {
          link.rtc.send(hello);
        } catch (e) {
          this.drop(link, `hello send failed: ${(e as Error).message}`);
          return;
        }
        link.helloSent = true;
        this.maybeOpen(link);
      },
      (e: unknown) => {
        this.opts.onError?.(`transport: signing the hello for ${link.peer} failed: ${(e as Error).message}`);
        if (this.links.get(link.peer) === link) this.drop(link, 'hello not signed');
      },
    );
  }

  /** A message on a link that is not open yet: the peer's hello first, then frames kept until it verifies. */
  private beforeOpen(link: Link, data: Uint8Array): void {
    if (!link.connected) {
      if (link.preConnect.length >= EARLY_FRAMES) return this.helloFailed(link, 'too many frames before the channel opened');
      link.preConnect.push(data);
      return;
    }
    if (link.peerHello !== 'none') {
      if (link.held.length >= EARLY_FRAMES) return this.helloFailed(link, 'too many frames before the hello verified');
      link.held.push(data);
      return;
    }
    const fp = link.fp;
    if (!fp) return; // sendHello already failed the link
    link.peerHello = 'checking';
    this.opts.auth.verify(link.peer, fp, data).then(
      (err) => {
        if (this.links.get(link.peer) !== link) return;
        if (err !== null) return this.helloFailed(link, err);
        link.peerHello = 'ok';
        this.maybeOpen(link);
      },
      (e: unknown) => {
        this.opts.onError?.(`transport: verifying the hello of ${link.peer} failed: ${(e as Error).message}`);
        if (this.links.get(link.peer) === link) this.helloFailed(link, 'hello not verified');
      },
    );
  }

  /** Both hellos are done: the link is open, and carries what waited for it. */
  private maybeOpen(link: Link): void {
    if (link.open || !link.helloSent || link.peerHello !== 'ok') return;
    const peer = link.peer;
    link.open = true;
    link.openedAt = Date.now();
    link.lastRx = Date.now();
    if (link.dialTimer) clearTimeout(link.dialTimer);
    link.dialTimer = null;
    this.unreachable.delete(peer);
    this.stats.linksUp++;
    this.readPath(link);
    this.opts.onLinkUp(peer);
    const queued = link.queue;
    link.queue = [];
    for (const f of queued) if (link.open) this.write(link, f);
    const held = link.held;
    link.held = [];
    for (const data of held) {
      if (this.links.get(peer) !== link) return;
      if (this.control(link, data)) continue;
      this.stats.framesIn++;
      this.stats.bytesIn += data.byteLength;
      this.opts.onFrame(peer, data);
    }
  }

  /**
   * The peer did not prove its id: the link is closed and counted, but the claimed id is
   * not held off (anyone can claim it), and the overlay hears of it only for our own dial.
   */
  private helloFailed(link: Link, why: string): void {
    this.stats.helloFailures++;
    this.opts.onError?.(`transport: hello from ${link.peer} refused: ${why}`);
    this.drop(link, link.initiator ? `hello failed: ${why}` : null, false);
  }

  /** The selected candidate pair of an open link, from getStats() (async; kept on the link). */
  private readPath(link: Link): void {
    const pc = (link.rtc as unknown as { _pc?: RTCPeerConnection })._pc;
    if (!pc || typeof pc.getStats !== 'function') return;
    pc.getStats().then(
      (report) => {
        const reports: Record<string, unknown>[] = [];
        report.forEach((r: Record<string, unknown>) => reports.push(r));
        const path = selectedPath(reports);
        if (path && this.links.get(link.peer) === link) link.path = path;
      },
      (e: unknown) => this.opts.onError?.(`transport: getStats for ${link.peer} failed: ${(e as Error).message}`),
    );
  }

  private feed(link: Link, signal: unknown): void {
    const line = candidateOf(signal);
    if (line !== null) {
      const t = candidateLineType(line);
      if (t) link.remote[t]++;
    }
    try {
      link.rtc.signal(signal as SimplePeerType.SignalData);
    } catch (e) {
      this.opts.onError?.(`transport: bad signal from ${link.peer}: ${(e as Error).message}`);
    }
  }

  /**
   * Queues a frame. The queued frames go out coalesced: at the end of this task's
   * microtasks when the link has sent nothing for IDLE_LINK_MS (a lone message, such as a
   * chat copy a relay forwards, leaves before the tasks queued behind it run: rendering,
   * timers, other links' frames), else in a task of their own (MessageChannel), so a
   * burst's frames written across several microtasks still share data-channel messages.
   */
  private write(link: Link, frame: Uint8Array): void {
    link.out.push(frame);
    this.dirty.add(link);
    if (!this.flushPending) {
      this.flushPending = true;
      if (Date.now() - link.lastTx >= IDLE_LINK_MS) {
        this.stats.promptFlushes++;
        queueMicrotask(() => {
          if (this.flushPending) this.flush();
        });
      } else this.flushChannel.port2.postMessage(null);
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

  /**
   * The peer may be gone (its last will came: its signaling connection closed). An open
   * link asks it for a heartbeat now and is dropped, reported down, if nothing at all
   * arrives from the peer within `withinMs`; a live peer answers within a round trip, so
   * a crashed one is found in `withinMs` rather than `deadAfterMs`. False: no open link.
   */
  check(peer: string, withinMs: number, why = 'its signaling connection closed'): boolean {
    const link = this.links.get(peer);
    if (!link?.open) return false;
    const asked = Date.now();
    this.stats.checks++;
    try {
      link.lastTx = asked;
      link.rtc.send(PROBE_FRAME);
    } catch (e) {
      this.drop(link, `probe send failed: ${(e as Error).message}`);
      return true;
    }
    setTimeout(() => {
      if (this.links.get(peer) !== link || !link.open || link.lastRx > asked) return;
      this.stats.checkTimeouts++;
      this.drop(link, `no answer to a link check within ${withinMs} ms (${why})`);
    }, withinMs);
    return true;
  }

  /** A heartbeat or a probe (answered at once): not a frame for the node. */
  private control(link: Link, data: Uint8Array): boolean {
    if (data.byteLength === 0 || data.byteLength > 2 || data[0] !== HEARTBEAT_FRAME[0]) return false;
    if (data.byteLength === 2 && data[1] === PROBE_FRAME[1] && link.open) {
      try {
        link.lastTx = Date.now();
        link.rtc.send(HEARTBEAT_FRAME);
      } catch (e) {
        this.drop(link, `heartbeat send failed: ${(e as Error).message}`);
      }
    }
    return true;
  }

  private beat(): void {
    const now = Date.now();
    const deadAfter = this.opts.deadAfterMs ?? DEAD_AFTER_MS;
    if (now - this.pathsReadAt >= PATH_EVERY_MS) {
      this.pathsReadAt = now;
      for (const link of this.links.values()) if (link.open) this.readPath(link);
    }
    for (const link of [...this.links.values()]) {
      if (!link.open) continue;
      if (now - link.lastRx > deadAfter) {
        this.stats.heartbeatTimeouts++;
        this.drop(link, `no heartbeat for ${now - link.lastRx} ms`);
        continue;
      }
      // Any frame proves liveness; heartbeats only fill silences of three quarters of a
      // period or more. On a silent link one end (the smaller id) asks with a probe and the
      // other answers at once, so one round proves both ends alive in three packets on the
      // wire (probe, answer carrying the probe's SACK, the answer's SACK) where two
      // independent heartbeats cost four. The other end sends on its own only when the
      // asking end has been silent for a period and a half (its timers stalled, say).
      const period = this.opts.heartbeatMs ?? HEARTBEAT_MS;
      const asker = this.opts.me < link.peer;
      const quarters = (period * 3) / 4;
      const due = asker
        ? now - link.lastTx >= quarters || (now - link.lastRx >= quarters && now - link.lastAsk >= quarters)
        : now - link.lastTx >= quarters && now - link.lastRx >= (period * 3) / 2;
      if (!due) continue;
      try {
        link.lastTx = now;
        if (asker) link.lastAsk = now;
        link.rtc.send(asker ? PROBE_FRAME : HEARTBEAT_FRAME);
      } catch (e) {
        this.drop(link, `heartbeat send failed: ${(e as Error).message}`);
      }
    }
    this.early.expire(now);
  }

  /** reason null: closed on purpose, not reported. `record`: a link that never opened counts as a failed dial of the peer. */
  private drop(link: Link, reason: string | null, record = true): void {
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
    link.held = [];
    link.preConnect = [];
    if (reason !== null && !wasOpen && record) this.recordFailure(link, reason);
    if (reason !== null) this.opts.onLinkDown(link.peer, wasOpen || !record ? reason : (this.unreachable.get(link.peer)?.reason ?? reason));
  }
}

/** The SDP line of a trickled ICE candidate signal, or null for anything else. */
function candidateOf(signal: unknown): string | null {
  if (typeof signal !== 'object' || signal === null) return null;
  const c = (signal as { candidate?: unknown }).candidate;
  if (typeof c !== 'object' || c === null) return null;
  const line = (c as { candidate?: unknown }).candidate;
  return typeof line === 'string' ? line : null;
}
