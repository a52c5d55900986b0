/**
 * Hardened y-webrtc signaling server. Wire-compatible with the stock
 * `y-webrtc-signaling` (node_modules/y-webrtc/bin/server.js): same messages,
 * same relay (whole object plus `clients`, sender included when subscribed).
 * Differences are only in what happens to bad input and abusive clients: a
 * frame is answered with `{type:'error', reason}` or that one connection is
 * closed, and the process keeps serving everyone else. The same HTTP port
 * serves the built app and `GET /healthz`.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';
import { resolveLimits, type Limits } from './limits';
import { parseClientFrame, REJECT_REASONS, type ClientMessage, type RejectReason } from './protocol';
import { RateLimitedLog, TokenBucket } from './rate';
import { createStaticHandler } from './static';
import { clientIceConfig, type IceSettings } from './ice';
import { clientAddress } from './client-address';
import { originAllowed, securityHeaders } from './web-policy';
import { startRedisBridge, type BridgeHealth, type RedisBridgeOptions, type TopicBridge } from './redis-bridge';
import type { TlsMaterial } from './tls';
import { TopicTable } from './topics';

export type { Limits } from './limits';
export type { RejectReason } from './protocol';

export interface SignalingServerOptions {
  /** TCP port; 0 picks a free one. Default 8787. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  /** Directory of the built app; null serves no files. Default `dist/` at the repo root. */
  staticDir?: string | null;
  limits?: Partial<Limits>;
  /** Log sink (one line per call). Default console.log. */
  log?: (line: string) => void;
  /** ICE servers and policy served at /config.json (signaling/ice.ts); default: nothing configured. */
  ice?: IceSettings;
  /** Certificate and key: the port speaks https/wss (signaling/tls.ts). */
  tls?: TlsMaterial;
  /** Share topics with other servers through Redis (signaling/redis-bridge.ts). */
  redis?: RedisBridgeOptions;
  /** Reverse proxies in front of the server whose X-Forwarded-For is trusted for
   * the client address (signaling/client-address.ts). Default 0: the header is ignored. */
  trustProxy?: number;
  /** Origins whose pages may open a WebSocket (signaling/web-policy.ts); null or
   * absent: any. Upgrades without an Origin header (not from a browser) pass. */
  allowedOrigins?: string[] | null;
  /** CSP connect-src sources besides 'self' (default: `ws: wss:`). */
  connectSrc?: string[];
}

export interface ServerStats {
  connections: number;
  topics: number;
  /** Subscriptions summed over topics (a topic with 3 subscribers counts 3). */
  subscriptions: number;
  /** Client addresses tracked for the per-address limits (with connections, or
   * whose byte bucket has not refilled since their last one closed). */
  addresses: number;
  uptimeS: number;
  /** Count of each refused frame, dropped message or closed connection, by reason. */
  rejected: Record<RejectReason, number>;
  /** Publish frames relayed, and frames delivered to subscribers by those relays. */
  published: number;
  delivered: number;
  /** Bytes of the frames clients sent (admitted or not). */
  receivedBytes: number;
  /** Log lines withheld by the log rate limit. */
  logSuppressed: number;
  /** Connections holding a will, and wills relayed when their connection closed. */
  wills: number;
  willsPublished: number;
  /** With REDIS_URL: the bridge's state. */
  redis?: BridgeHealth;
}

export interface SignalingServer {
  port: number;
  /** http(s)://host:port/ — the WebSocket endpoint is the same with ws(s):// */
  url: string;
  /** Replaces the TLS certificate and key for new connections (no-op without TLS). */
  setTls(tls: TlsMaterial): void;
  close(): Promise<void>;
  stats(): ServerStats;
}

export const DEFAULT_PORT = 8787;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_STATIC_DIR = fileURLToPath(new URL('../dist/', import.meta.url));

/** Close codes (RFC 6455 §7.4.1). */
const CLOSE_GOING_AWAY = 1001;
const CLOSE_UNSUPPORTED_DATA = 1003;
const CLOSE_POLICY_VIOLATION = 1008;
const CLOSE_INTERNAL_ERROR = 1011;

/** Reasons answered with an error frame; the connection stays open. */
const REPLIED = new Set<RejectReason>(['not-json', 'not-object', 'bad-field', 'bad-topic', 'too-deep', 'will-too-large', 'too-many-topics', 'ip-topic-limit', 'server-topic-limit']);

/** Bytes of a server→client text frame carrying `payload` bytes (RFC 6455 §5.2 header). */
function wireSize(payload: number): number {
  return payload + (payload < 126 ? 2 : payload < 65536 ? 4 : 10);
}

const SEND_TEXT = { binary: false } as const;
const PONG = { type: 'pong' } as const;

/** A receiver's corked bytes are flushed early past this, so one tick's batch
 * stays small and is not mistaken for a backed-up (slow) consumer. */
const CORK_FLUSH_BYTES = 64 * 1024;

/**
 * What the connections of one client address (signaling/client-address.ts)
 * share. Kept while the address has a connection, and after its last one
 * closed until its byte bucket is full again: closing and reopening connections
 * must not hand out a fresh burst.
 */
class AddressState {
  connections = 0;
  /** Subscriptions held by its connections, summed. */
  subscriptions = 0;
  readonly bytes: TokenBucket;

  constructor(limits: Limits, now: number) {
    this.bytes = new TokenBucket(limits.rateBytesBurstPerIp, limits.rateBytesPerSecPerIp, now);
  }
}

class Connection {
  readonly topics = new Set<string>();
  /** Frames per second. */
  readonly bucket: TokenBucket;
  /** Bytes per second. */
  readonly byteBucket: TokenBucket;
  /** Rate-limit drops since both buckets were last at least half full. */
  drops = 0;
  /**
   * Answered the last ping. Only a pong carrying that ping's random payload
   * counts: a client that does not read never sees the ping, and frames it sends
   * (or unsolicited pongs, which RFC 6455 allows) prove it can write, not that it
   * reads what the server queues for it.
   */
  alive = true;
  /** Payload of the last ping sent; the pong must echo it. */
  pingPayload: Buffer | null = null;
  closing = false;
  /** Bytes written to `socket` since it was corked in this tick (0 = not corked). */
  corkedBytes = 0;
  /** Relayed as if this connection published it, the moment it closes. */
  will: { topic: string; body: Record<string, unknown> } | null = null;

  constructor(
    readonly ws: WebSocket,
    /** The upgraded TCP socket under `ws`, kept to batch writes (cork/uncork). */
    readonly socket: Duplex,
    /** The client's address, as logged. */
    readonly ip: string,
    /** What the per-address limits count by (signaling/client-address.ts). */
    readonly ipKey: string,
    readonly address: AddressState,
    readonly id: number,
    limits: Limits,
    now: number,
  ) {
    this.bucket = new TokenBucket(limits.rateBurst, limits.ratePerSec, now);
    this.byteBucket = new TokenBucket(limits.rateBytesBurst, limits.rateBytesPerSec, now);
  }
}

function formatUrl(host: string, port: number, secure: boolean): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return `${secure ? 'https' : 'http'}://${h}:${port}/`;
}

export async function startSignalingServer(opts: SignalingServerOptions = {}): Promise<SignalingServer> {
  const limits = resolveLimits(opts.limits);
  const host = opts.host ?? DEFAULT_HOST;
  const sink = opts.log ?? ((line: string) => console.log(line));
  const clientLog = new RateLimitedLog(sink, limits.logBurst, limits.logPerSec, () => performance.now());
  const staticDir = opts.staticDir === undefined ? DEFAULT_STATIC_DIR : opts.staticDir;
  const serveStatic = staticDir === null ? null : createStaticHandler(staticDir);
  const startedAt = performance.now();

  const topics = new TopicTable<Connection>(limits.maxTopics);
  const connections = new Set<Connection>();
  /** By address key; see AddressState for how long an entry lives. */
  const addresses = new Map<string, AddressState>();
  const trustProxy = opts.trustProxy ?? 0;
  const allowedOrigins = opts.allowedOrigins ?? null;
  const headers = securityHeaders(opts.connectSrc);
  let warnedForwarded = false;
  const rejected = Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>;
  let published = 0;
  let delivered = 0;
  let receivedBytes = 0;
  let wills = 0;
  let willsPublished = 0;
  /** Cleared when the server shuts down: its going down says nothing about its
   * clients, and thousands of wills to connections that are all closing are noise. */
  let publishWills = true;
  let nextId = 1;
  let closing: Promise<void> | null = null;

  const count = (reason: RejectReason, conn: Connection | null, detail: string): void => {
    rejected[reason] += 1;
    clientLog.line(`signaling: ${reason}${conn ? ` conn=${conn.id} ip=${conn.ip}` : ''}: ${detail}`);
  };

  /** Terminates rather than closes: a close frame would queue behind the backlog. */
  const dropSlowConsumer = (conn: Connection): void => {
    if (conn.closing) return;
    conn.closing = true;
    count('slow-consumer', conn, `more than ${limits.maxBufferedBytes} bytes queued; terminated`);
    conn.ws.terminate();
  };

  const closeConn = (conn: Connection, code: number, reason: string): void => {
    if (conn.closing) return;
    conn.closing = true;
    conn.ws.close(code, reason);
  };

  /*
   * Write batching. A pipelining publisher delivers many publish frames in one
   * TCP read, and ws emits them in the same tick; without batching every relay
   * is one writev() per receiver. Corking each receiver's socket on its first
   * relay of the tick and uncorking all of them once the tick's work is done
   * turns N relays into one write per receiver. Only the public net.Socket
   * cork()/uncork() of the socket we were handed at upgrade is used; ws's own
   * cork/uncork pairs nest inside ours.
   */
  const corked: Connection[] = [];
  let flushScheduled = false;

  const uncork = (conn: Connection): void => {
    if (conn.corkedBytes === 0) return;
    conn.corkedBytes = 0;
    conn.socket.uncork();
  };

  const flushCorked = (): void => {
    flushScheduled = false;
    for (const conn of corked) uncork(conn);
    corked.length = 0;
  };

  /** Subscribers of `topic` here and, with Redis, on the other servers (redis-bridge.ts says why). */
  const clientCount = (topic: string): number => (topics.subscribers(topic)?.size ?? 0) + (bridge?.remoteCount(topic) ?? 0);
  /** After a subscription change: the bridge tells the other servers. */
  const noteCount = (topic: string): void => bridge?.countChanged(topic, topics.subscribers(topic)?.size ?? 0);

  const relay = (topic: string, body: Record<string, unknown>): void => {
    bridge?.publish(topic, body);
    relayLocal(topic, body);
  };

  /**
   * Every frame the server sends a client goes through here (relays, pongs,
   * error replies): a receiver with more than maxBufferedBytes queued is
   * terminated instead of being given more, whatever the frame. Returns whether
   * the frame was queued.
   */
  const deliver = (receiver: Connection, frame: Buffer, wireBytes: number): boolean => {
    const ws = receiver.ws;
    if (receiver.closing || ws.readyState !== WebSocket.OPEN) return false;
    // Bytes corked in this tick are ours to flush, not a sign of backlog.
    if (ws.bufferedAmount - receiver.corkedBytes > limits.maxBufferedBytes) {
      uncork(receiver);
      dropSlowConsumer(receiver);
      return false;
    }
    if (receiver.corkedBytes === 0) {
      receiver.socket.cork();
      corked.push(receiver);
      if (!flushScheduled) {
        flushScheduled = true;
        process.nextTick(flushCorked);
      }
    }
    receiver.corkedBytes += wireBytes; // before send: nonzero means "uncork me"
    ws.send(frame, SEND_TEXT);
    if (receiver.corkedBytes > CORK_FLUSH_BYTES) uncork(receiver);
    return true;
  };

  const reply = (conn: Connection, message: object): void => {
    const frame = Buffer.from(JSON.stringify(message));
    deliver(conn, frame, wireSize(frame.length));
  };

  const relayLocal = (topic: string, body: Record<string, unknown>): void => {
    const receivers = topics.subscribers(topic);
    if (!receivers) return;
    body.clients = clientCount(topic);
    // Serialized once for all receivers (the stock server stringifies per
    // receiver), and as a Buffer so ws does not re-encode the string each time.
    const frame = Buffer.from(JSON.stringify(body));
    const wireBytes = wireSize(frame.length);
    published += 1;
    for (const receiver of receivers) {
      if (deliver(receiver, frame, wireBytes)) delivered += 1;
    }
  };

  const handleMessage = (conn: Connection, message: ClientMessage): void => {
    switch (message.type) {
      case 'subscribe': {
        for (const topic of message.topics) {
          if (conn.topics.has(topic)) continue;
          if (conn.topics.size >= limits.maxTopicsPerConnection) {
            count('too-many-topics', conn, `already subscribed to ${conn.topics.size} topics`);
            reply(conn, { type: 'error', reason: 'too-many-topics' });
            return;
          }
          if (limits.maxTopicsPerIp > 0 && conn.address.subscriptions >= limits.maxTopicsPerIp) {
            count('ip-topic-limit', conn, `connections from ${conn.ipKey} hold ${limits.maxTopicsPerIp} subscriptions`);
            reply(conn, { type: 'error', reason: 'ip-topic-limit' });
            return;
          }
          if (!topics.add(topic, conn)) {
            count('server-topic-limit', conn, `server holds ${topics.size} topics`);
            reply(conn, { type: 'error', reason: 'server-topic-limit' });
            return;
          }
          conn.topics.add(topic);
          conn.address.subscriptions += 1;
          noteCount(topic);
        }
        return;
      }
      case 'unsubscribe':
        for (const topic of message.topics) {
          if (!conn.topics.delete(topic)) continue;
          topics.remove(topic, conn);
          conn.address.subscriptions -= 1;
          noteCount(topic);
        }
        return;
      case 'publish':
        relay(message.topic, message.body);
        return;
      case 'will':
        wills += (message.will ? 1 : 0) - (conn.will ? 1 : 0);
        conn.will = message.will;
        return;
      case 'ping':
        reply(conn, PONG);
        return;
    }
  };

  /** Token buckets per connection (frames, bytes) and per address (bytes);
   * sustained abuse closes the connection. */
  const admit = (conn: Connection, bytes: number): boolean => {
    const now = performance.now();
    const reason: RejectReason | null = !conn.bucket.take(now)
      ? 'rate-limited'
      : !conn.byteBucket.take(now, bytes)
        ? 'byte-rate-limited'
        : !conn.address.bytes.take(now, bytes)
          ? 'ip-byte-rate-limited'
          : null;
    if (reason === null) {
      if (conn.drops > 0 && conn.bucket.level >= limits.rateBurst / 2 && conn.byteBucket.level >= limits.rateBytesBurst / 2) conn.drops = 0;
      return true;
    }
    conn.drops += 1;
    rejected[reason] += 1;
    if (conn.drops === 1) {
      const over = reason === 'rate-limited' ? `${limits.ratePerSec} msg/s` : reason === 'byte-rate-limited' ? `${limits.rateBytesPerSec} bytes/s` : `${limits.rateBytesPerSecPerIp} bytes/s from ${conn.ipKey}`;
      clientLog.line(`signaling: ${reason} conn=${conn.id} ip=${conn.ip}: over ${over}`);
      reply(conn, { type: 'error', reason });
    }
    if (conn.drops >= limits.rateDropsBeforeClose) {
      count('flood', conn, `${conn.drops} frames over the rate limit; closed`);
      closeConn(conn, CLOSE_POLICY_VIOLATION, 'rate limit');
    }
    return false;
  };

  const onFrame = (conn: Connection, data: Buffer, isBinary: boolean): void => {
    if (conn.closing) return;
    receivedBytes += data.length;
    if (!admit(conn, data.length)) return;
    if (isBinary) {
      count('binary', conn, `${data.length}-byte binary frame; closed`);
      closeConn(conn, CLOSE_UNSUPPORTED_DATA, 'binary frames not supported');
      return;
    }
    const result = parseClientFrame(data.toString('utf8'), limits);
    if (result.ok) {
      handleMessage(conn, result.message);
      return;
    }
    count(result.reason, conn, result.detail);
    if (REPLIED.has(result.reason)) reply(conn, { type: 'error', reason: result.reason });
  };

  /** Last line of defence: an exception here would escape into ws's socket
   * handler and kill the process, i.e. every other client. */
  const onFrameGuarded = (conn: Connection, data: Buffer, isBinary: boolean): void => {
    try {
      onFrame(conn, data, isBinary);
    } catch (err) {
      rejected['internal-error'] += 1;
      sink(`signaling: internal-error conn=${conn.id} ip=${conn.ip}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      closeConn(conn, CLOSE_INTERNAL_ERROR, 'internal error');
    }
  };

  /** Guarded like a frame: an exception in a 'close' listener would escape into
   * ws and kill the process. */
  const publishWill = (conn: Connection, will: { topic: string; body: Record<string, unknown> }): void => {
    try {
      relay(will.topic, will.body);
      willsPublished += 1;
    } catch (err) {
      rejected['internal-error'] += 1;
      sink(`signaling: internal-error conn=${conn.id} ip=${conn.ip} (will): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  };

  /** Drops an address without connections whose byte bucket is full again. */
  const forgetIfIdle = (ipKey: string, now: number): void => {
    const a = addresses.get(ipKey);
    if (a && a.connections === 0 && a.bytes.full(now)) addresses.delete(ipKey);
  };

  const onConnection = (ws: WebSocket, socket: Duplex, ip: string, ipKey: string): void => {
    const now = performance.now();
    let address = addresses.get(ipKey);
    if (!address) {
      address = new AddressState(limits, now);
      addresses.set(ipKey, address);
    }
    address.connections += 1;
    const conn = new Connection(ws, socket, ip, ipKey, address, nextId++, limits, now);
    connections.add(conn);
    ws.on('message', (data: Buffer, isBinary: boolean) => onFrameGuarded(conn, data, isBinary));
    ws.on('pong', (payload: Buffer) => {
      if (conn.pingPayload !== null && payload.equals(conn.pingPayload)) conn.alive = true;
    });
    ws.on('error', (err: Error & { code?: string }) => {
      // ws closes the connection itself after a protocol error (1009 for an
      // oversized frame, 1007 for bad UTF-8, 1002 otherwise).
      const reason: RejectReason = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'oversized' : 'protocol-error';
      count(reason, conn, `${err.code ?? 'error'}: ${err.message}`);
      conn.closing = true;
    });
    ws.on('close', () => {
      conn.closing = true;
      uncork(conn);
      for (const topic of conn.topics) {
        topics.remove(topic, conn);
        noteCount(topic);
      }
      conn.address.subscriptions -= conn.topics.size;
      conn.topics.clear();
      connections.delete(conn);
      conn.address.connections -= 1;
      forgetIfIdle(ipKey, performance.now());
      // Every close ends here (client close, drop, terminate, flood, error), after
      // the subscriptions are gone: the closing connection is not a receiver.
      if (conn.will) {
        wills -= 1;
        if (publishWills) publishWill(conn, conn.will);
        conn.will = null;
      }
    });
  };

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxFrameBytes,
    perMessageDeflate: false,
    clientTracking: false,
  });

  const refuseUpgrade = (socket: Duplex, status: string): void => {
    // Node's HTTP server drops its error listener from upgraded sockets; without
    // one, a reset from this client would be an uncaught 'error'.
    socket.on('error', () => socket.destroy());
    // Destroyed once the reply is flushed, whether or not the client reads it.
    socket.once('finish', () => socket.destroy());
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  };

  const bridge: TopicBridge | null = opts.redis
    ? startRedisBridge(opts.redis, {
        deliver: (topic, body) => relayLocal(topic, body),
        localCount: (topic) => topics.subscribers(topic)?.size ?? 0,
        log: sink,
      })
    : null;

  const json = (req: http.IncomingMessage, res: http.ServerResponse, value: unknown): void => {
    const body = JSON.stringify(value);
    // no-store: /config.json carries short-lived TURN credentials, /healthz live state
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
      const s = stats();
      // still ok with Redis down: this server serves its own tabs (redis.state says the rest)
      json(req, res, { ok: true, connections: s.connections, topics: s.topics, uptimeS: s.uptimeS, rejected: s.rejected, ...(s.redis ? { redis: s.redis } : {}) });
      return;
    }
    if (path === '/config.json' && (req.method === 'GET' || req.method === 'HEAD')) {
      json(req, res, clientIceConfig(opts.ice ?? { transportPolicy: 'all' }));
      return;
    }
    if (!serveStatic) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('not found\n');
      return;
    }
    serveStatic(req, res).catch((err: unknown) => {
      sink(`signaling: static file error for ${req.url}: ${err instanceof Error ? err.message : String(err)}`);
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('internal error\n');
      } else {
        res.destroy();
      }
    });
  };
  const server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : http.createServer(handler);

  // WebSocket upgrades are accepted on any path, like the stock server.
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const forwarded = req.headers['x-forwarded-for'];
    const { address: ip, key: ipKey } = clientAddress(req.socket.remoteAddress, forwarded, trustProxy);
    if (forwarded !== undefined && trustProxy === 0 && !warnedForwarded && limits.maxConnectionsPerIp + limits.maxTopicsPerIp > 0) {
      warnedForwarded = true;
      sink(`signaling: upgrades carry X-Forwarded-For but TRUST_PROXY is not set: every client behind that proxy counts as ${ip} for maxConnectionsPerIp and maxTopicsPerIp (README: "Behind a reverse proxy")`);
    }
    if (closing) {
      refuseUpgrade(socket, '503 Service Unavailable');
      return;
    }
    if (!originAllowed(req.headers.origin, allowedOrigins)) {
      count('origin-refused', null, `ip=${ip}: Origin ${JSON.stringify(String(req.headers.origin).slice(0, 100))} not allowed; upgrade refused`);
      refuseUpgrade(socket, '403 Forbidden');
      return;
    }
    if (connections.size >= limits.maxConnections) {
      count('connection-limit', null, `ip=${ip}: ${connections.size} connections open; upgrade refused`);
      refuseUpgrade(socket, '503 Service Unavailable');
      return;
    }
    if (limits.maxConnectionsPerIp > 0 && (addresses.get(ipKey)?.connections ?? 0) >= limits.maxConnectionsPerIp) {
      count('ip-connection-limit', null, `ip=${ip}: ${limits.maxConnectionsPerIp} connections open from ${ipKey}; upgrade refused`);
      refuseUpgrade(socket, '429 Too Many Requests');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, socket, ip, ipKey));
  });

  // One timer for all connections (the stock server keeps one per connection).
  const pingTimer = setInterval(() => {
    const now = performance.now();
    for (const key of addresses.keys()) forgetIfIdle(key, now);
    for (const conn of connections) {
      if (conn.closing) continue;
      if (!conn.alive) {
        conn.closing = true;
        count('ping-timeout', conn, `no pong within ${limits.pingIntervalMs} ms; terminated`);
        conn.ws.terminate();
        continue;
      }
      // a backlog nobody reads is caught here too, whether or not relays come
      if (conn.ws.bufferedAmount - conn.corkedBytes > limits.maxBufferedBytes) {
        dropSlowConsumer(conn);
        continue;
      }
      conn.alive = false;
      conn.pingPayload = randomBytes(8);
      conn.ws.ping(conn.pingPayload);
    }
  }, limits.pingIntervalMs);
  pingTimer.unref();

  function stats(): ServerStats {
    return {
      connections: connections.size,
      topics: topics.size,
      subscriptions: topics.subscriptions,
      addresses: addresses.size,
      uptimeS: Math.round((performance.now() - startedAt) / 1000),
      rejected: { ...rejected },
      published,
      delivered,
      receivedBytes,
      logSuppressed: clientLog.suppressedTotal,
      wills,
      willsPublished,
      ...(bridge ? { redis: bridge.health() } : {}),
    };
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? DEFAULT_PORT, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = formatUrl(host, port, opts.tls !== undefined);

  const shutdown = async (): Promise<void> => {
    publishWills = false;
    clearInterval(pingTimer);
    const open = [...connections];
    const allClosed = Promise.all(open.map((c) => new Promise<void>((resolve) => {
      if (c.ws.readyState === WebSocket.CLOSED) resolve();
      else c.ws.once('close', () => resolve());
    })));
    for (const conn of open) {
      conn.closing = true;
      conn.ws.close(CLOSE_GOING_AWAY, 'server shutting down');
    }
    // Clients get a moment to answer the close handshake; then we cut.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([allClosed, new Promise<void>((resolve) => { timer = setTimeout(resolve, 1000); })]);
    clearTimeout(timer);
    for (const conn of open) conn.ws.terminate();
    await allClosed;
    wss.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await bridge?.close();
  };

  return {
    port,
    url,
    stats,
    setTls: (tls) => {
      if (server instanceof https.Server) server.setSecureContext({ cert: tls.cert, key: tls.key });
    },
    close: () => (closing ??= shutdown()),
  };
}
