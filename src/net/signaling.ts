/**
 * Client of the y-webrtc signaling protocol (subscribe / unsubscribe / publish / ping).
 * One SignalingConnection per server URL; a SignalingPool connects to all of them (as
 * y-webrtc does), publishes on every open one and drops the duplicates that arrive
 * through several servers. Connections reconnect with capped, jittered exponential
 * backoff and re-subscribe; a server that stops answering pings is dropped and redialled.
 */
import type { SignalingState } from '../runtime/api';

export interface WebSocketLike {
  readyState: number;
  send(data: string): void;
  close(): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
}
export type WebSocketCtor = new (url: string) => WebSocketLike;

export interface SignalingOptions {
  /** Topics to (re)subscribe on every (re)connect. */
  topics: () => string[];
  /** The last will frame to (re)send after subscribing on every (re)connect (SignalingPool.setWill). */
  will?: () => object | null;
  /** `own`: the server echoed one of our own publishes (it relays to every subscriber). */
  onPublish: (topic: string, data: Record<string, unknown>, clients: number, url: string, own?: boolean) => void;
  onState: (url: string, state: SignalingState) => void;
  /** Counted protocol problems (malformed frames from the server or other clients). */
  onError?: (what: string) => void;
  WebSocketImpl?: WebSocketCtor;
  /**
   * A socket to this server opened ahead of time (a page opens it before its node's code
   * has loaded): used for the first connection instead of dialling, in whatever state it
   * is by then. Later reconnects dial as usual.
   */
  preopened?: WebSocketLike;
  backoffMinMs?: number;
  backoffMaxMs?: number;
  pingIntervalMs?: number;
  random?: () => number;
}

const OPEN = 1;
/**
 * Largest frame sent (UTF-8 bytes): a server closes a connection that sends more than its
 * limit, 64 KiB for ours by default (signaling/limits.ts).
 */
export const MAX_FRAME_BYTES = 64 * 1024;

export class SignalingConnection {
  state: SignalingState = 'connecting';
  private ws: WebSocketLike | null = null;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private lastRx = 0;
  private closed = false;
  private preopened: WebSocketLike | undefined;

  constructor(
    readonly url: string,
    private readonly opts: SignalingOptions,
  ) {
    this.preopened = opts.preopened;
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    this.setState('connecting');
    const Ctor = this.opts.WebSocketImpl ?? (globalThis.WebSocket as unknown as WebSocketCtor);
    let ws: WebSocketLike;
    const early = this.preopened;
    this.preopened = undefined;
    if (early && early.readyState <= OPEN) return this.adopt(early, early.readyState === OPEN);
    early?.close();
    try {
      ws = new Ctor(this.url);
    } catch (e) {
      this.opts.onError?.(`signaling: cannot open ${this.url}: ${(e as Error).message}`);
      this.scheduleReconnect();
      return;
    }
    this.adopt(ws, false);
  }

  /** Take `ws` as the current socket; `open`: it is open already (its open event has passed). */
  private adopt(ws: WebSocketLike, open: boolean): void {
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.attempt = 0;
      this.lastRx = Date.now();
      this.setState('open');
      const topics = this.opts.topics();
      if (topics.length) this.sendRaw({ type: 'subscribe', topics });
      const will = this.opts.will?.();
      if (will) this.sendRaw(will);
      this.startPing();
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.lastRx = Date.now();
      this.onMessage(ev.data);
    };
    ws.onerror = () => {
      // onclose follows; reconnect happens there
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopPing();
      this.setState('closed');
      this.scheduleReconnect();
    };
    // as if it opened now, once the caller (still constructing us) is done
    if (open) queueMicrotask(() => ws.onopen?.(null));
  }

  private onMessage(raw: unknown): void {
    if (typeof raw !== 'string') {
      this.opts.onError?.('signaling: non-text frame');
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(raw);
    } catch {
      this.opts.onError?.('signaling: non-JSON frame');
      return;
    }
    if (typeof msg !== 'object' || msg === null) return this.opts.onError?.('signaling: frame is not an object');
    const m = msg as Record<string, unknown>;
    if (m.type === 'pong') return;
    if (m.type === 'error') return this.opts.onError?.(`signaling: server says ${String(m.reason).slice(0, 100)}`);
    if (m.type !== 'publish') return;
    const data = m.data;
    if (typeof m.topic !== 'string' || typeof data !== 'object' || data === null || Array.isArray(data)) {
      return this.opts.onError?.('signaling: malformed publish');
    }
    const clients = typeof m.clients === 'number' && Number.isFinite(m.clients) ? m.clients : 1;
    this.opts.onPublish(m.topic, data as Record<string, unknown>, clients, this.url);
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const min = this.opts.backoffMinMs ?? 500;
    const max = this.opts.backoffMaxMs ?? 10_000;
    const base = Math.min(max, min * 2 ** this.attempt);
    const delay = base / 2 + (this.opts.random ?? Math.random)() * (base / 2);
    this.attempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
  }

  private startPing(): void {
    const every = this.opts.pingIntervalMs ?? 10_000;
    this.stopPing();
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastRx > every * 2.5) {
        // the server vanished without a close: drop it and redial
        const ws = this.ws;
        this.ws = null;
        ws?.close();
        this.stopPing();
        this.setState('closed');
        this.scheduleReconnect();
        return;
      }
      this.sendRaw({ type: 'ping' });
    }, every);
  }

  private stopPing(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  private setState(s: SignalingState): void {
    if (this.state === s) return;
    this.state = s;
    this.opts.onState(this.url, s);
  }

  sendRaw(msg: object): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) return false;
    try {
      const text = JSON.stringify(msg);
      // the server would close the connection, losing whatever else is in flight on it
      const bytes = text.length * 3 <= MAX_FRAME_BYTES ? text.length : new TextEncoder().encode(text).byteLength;
      if (bytes > MAX_FRAME_BYTES) {
        this.opts.onError?.(`signaling: a frame of ${bytes} bytes not sent (over ${MAX_FRAME_BYTES})`);
        return false;
      }
      ws.send(text);
      return true;
    } catch (e) {
      this.opts.onError?.(`signaling: send failed: ${(e as Error).message}`);
      return false;
    }
  }

  close(): void {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.stopPing();
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    this.setState('closed');
  }
}

const OWN = 1;
const DELIVERED = 2;

export class SignalingPool {
  readonly connections: SignalingConnection[];
  private readonly topics = new Set<string>();
  /** The `will` frame every server holds for us (setWill), resent on reconnect. */
  private will: { type: 'will'; topic: string; data: Record<string, unknown> } | null = null;
  private readonly seen = new Map<string, number>();
  private seq = 0;

  /** `preopened`: sockets opened ahead of time, by URL (see SignalingOptions.preopened). */
  constructor(
    urls: string[],
    private readonly me: string,
    private readonly opts: Omit<SignalingOptions, 'topics' | 'preopened'> & { preopened?: Map<string, WebSocketLike> },
  ) {
    this.connections = urls.map(
      (url) =>
        new SignalingConnection(url, {
          ...opts,
          preopened: opts.preopened?.get(url),
          topics: () => [...this.topics],
          will: () => this.will,
          onPublish: (topic, data, clients, u) => {
            const mid = data.mid;
            if (typeof mid === 'string') {
              const state = this.seen.get(mid);
              if (state === DELIVERED) return;
              this.remember(mid, DELIVERED);
              if (state === OWN) return opts.onPublish(topic, data, clients, u, true);
            }
            opts.onPublish(topic, data, clients, u, false);
          },
        }),
    );
  }

  private remember(mid: string, state: number): void {
    this.seen.set(mid, state);
    if (this.seen.size > 4096) {
      // drop the oldest quarter (Map keeps insertion order)
      let n = 1024;
      for (const k of this.seen.keys()) {
        this.seen.delete(k);
        if (--n === 0) break;
      }
    }
  }

  subscribe(topic: string): void {
    if (this.topics.has(topic)) return;
    this.topics.add(topic);
    for (const c of this.connections) c.sendRaw({ type: 'subscribe', topics: [topic] });
  }

  unsubscribe(topic: string): void {
    if (!this.topics.delete(topic)) return;
    for (const c of this.connections) c.sendRaw({ type: 'unsubscribe', topics: [topic] });
  }

  /** Publishes on every open server; false when none is open. */
  publish(topic: string, data: Record<string, unknown>): boolean {
    const mid = this.ownMid();
    let sent = false;
    for (const c of this.connections) sent = c.sendRaw({ type: 'publish', topic, data: { ...data, mid } }) || sent;
    return sent;
  }

  /**
   * Our last will: every server holds `data` and publishes it on `topic` when our
   * connection to it closes (signaling/README.md, the `will` frame; the stock server
   * ignores it). One message id for all servers, so receivers see it once. Sent now and
   * after every reconnect; null clears it everywhere.
   */
  setWill(topic: string, data: Record<string, unknown> | null): void {
    this.will = data === null ? null : { type: 'will', topic, data: { ...data, mid: this.ownMid() } };
    for (const c of this.connections) c.sendRaw(this.will ?? { type: 'will' });
  }

  private ownMid(): string {
    const mid = `${this.me}:${++this.seq}:${Math.floor(Math.random() * 1e9).toString(36)}`;
    this.remember(mid, OWN);
    return mid;
  }

  isOpen(): boolean {
    return this.connections.some((c) => c.state === 'open');
  }

  states(): { url: string; state: SignalingState }[] {
    return this.connections.map((c) => ({ url: c.url, state: c.state }));
  }

  close(): void {
    for (const c of this.connections) c.close();
  }
}
