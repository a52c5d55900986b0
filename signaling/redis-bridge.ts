/**
 * Several signaling processes share their topics through Redis pub/sub (REDIS_URL), so
 * tabs connected to different servers behind a load balancer form one cluster.
 *
 * Redis channels (prefix `p2p-signaling` unless REDIS_PREFIX says otherwise):
 *   <prefix>:t:<topic>   subscribed by every server that has a local subscriber of <topic>:
 *                          { s, n, b }   a publish: b is the client's frame, relayed by every
 *                                        other server to its own subscribers
 *                          { s, n, q? }  server s now has n local subscribers (q: "and tell
 *                                        me your counts": sent when s takes the topic up)
 *   <prefix>:servers     { s, hb } every 5 s while up, { s, bye } on a clean shutdown
 *
 * `clients` across servers. The relayed frame's `clients` is the topic's subscribers on
 * every server: local count + the last count each other server reported (every frame a
 * server sends carries its count). The y-webrtc client does not read `clients`; this
 * project's does: an announce answered with `clients <= 1` means "alone", and HyParView
 * answers an announce with probability min(1, 2 / clients) (src/core/hyparview). A count
 * of this server only would make a tab alone on its server believe it is alone in the
 * cluster, and make every server's tabs answer as if their server were the cluster
 * (more welcomes than needed); a sum keeps both right. A server that stops sending
 * heartbeats for 15 s is forgotten, so a crashed server's subscribers stop counting.
 *
 * Outage: while Redis is unreachable this server keeps relaying among its own tabs,
 * `clients` counts them only (the tabs that can still find each other), /healthz says
 * `redis.state: "down"`, and the transitions are logged once each. When Redis is back
 * the client re-subscribes, and this server re-announces its counts with `q` so that
 * every server's sums are right again. Publishes made during the outage are not queued:
 * a signal that old is useless (its dial timed out), and announces repeat by themselves.
 */
import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';

export interface BridgeHooks {
  /** A publish from another server: relay `body` to this server's subscribers of `topic`. */
  deliver(topic: string, body: Record<string, unknown>): void;
  /** Subscribers of `topic` on this server. */
  localCount(topic: string): number;
  log(line: string): void;
}

export interface BridgeHealth {
  state: 'connecting' | 'up' | 'down';
  /** Other servers heard from within the last SERVER_TIMEOUT_MS. */
  servers: number;
  /** When `state` last changed (ISO time). */
  since: string;
  lastError: string | null;
  /** Messages sent to / received from Redis, and publishes not forwarded (Redis down or a send failed). */
  sent: number;
  received: number;
  dropped: number;
}

export interface TopicBridge {
  /** The local subscriber count of `topic` changed to `n`. */
  countChanged(topic: string, n: number): void;
  /** Forward a client's publish to the other servers. */
  publish(topic: string, body: Record<string, unknown>): void;
  /** Subscribers of `topic` on other servers, as last reported (0 while Redis is down). */
  remoteCount(topic: string): number;
  health(): BridgeHealth;
  close(): Promise<void>;
}

export interface RedisBridgeOptions {
  url: string;
  prefix?: string;
  heartbeatMs?: number;
  serverTimeoutMs?: number;
}

export const HEARTBEAT_MS = 5_000;
export const SERVER_TIMEOUT_MS = 15_000;
export const DEFAULT_REDIS_PREFIX = 'p2p-signaling';

/** Per topic, per other server: the subscriber count it last reported. Pure. */
export class RemoteCounts {
  private readonly byTopic = new Map<string, Map<string, number>>();
  private readonly byServer = new Map<string, Set<string>>();
  private readonly lastSeen = new Map<string, number>();

  /** Any message from `server` proves it is alive. */
  seen(server: string, now: number): void {
    this.lastSeen.set(server, now);
  }

  set(topic: string, server: string, n: number): void {
    let counts = this.byTopic.get(topic);
    let topics = this.byServer.get(server);
    if (n <= 0) {
      counts?.delete(server);
      if (counts?.size === 0) this.byTopic.delete(topic);
      topics?.delete(topic);
      return;
    }
    if (!counts) this.byTopic.set(topic, (counts = new Map()));
    if (!topics) this.byServer.set(server, (topics = new Set()));
    counts.set(server, n);
    topics.add(topic);
  }

  total(topic: string): number {
    let sum = 0;
    for (const n of this.byTopic.get(topic)?.values() ?? []) sum += n;
    return sum;
  }

  /** Forget one topic (this server no longer has subscribers of it). */
  dropTopic(topic: string): void {
    for (const server of this.byTopic.get(topic)?.keys() ?? []) this.byServer.get(server)?.delete(topic);
    this.byTopic.delete(topic);
  }

  dropServer(server: string): void {
    for (const topic of this.byServer.get(server) ?? []) {
      const counts = this.byTopic.get(topic);
      counts?.delete(server);
      if (counts?.size === 0) this.byTopic.delete(topic);
    }
    this.byServer.delete(server);
    this.lastSeen.delete(server);
  }

  /** Drops servers not heard from since `now - timeoutMs`; returns their ids. */
  expire(now: number, timeoutMs: number): string[] {
    const gone = [...this.lastSeen].filter(([, at]) => now - at > timeoutMs).map(([s]) => s);
    for (const s of gone) this.dropServer(s);
    return gone;
  }

  servers(): number {
    return this.lastSeen.size;
  }

  clear(): void {
    this.byTopic.clear();
    this.byServer.clear();
    this.lastSeen.clear();
  }
}

/** Message on a topic channel or the servers channel, validated. */
type BridgeMessage =
  | { kind: 'publish'; s: string; n: number; b: Record<string, unknown> }
  | { kind: 'count'; s: string; n: number; q: boolean }
  | { kind: 'heartbeat'; s: string }
  | { kind: 'bye'; s: string };

export function parseBridgeMessage(text: string): BridgeMessage | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    return `not JSON: ${(err as Error).message.slice(0, 80)}`;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not an object';
  const m = v as Record<string, unknown>;
  if (typeof m.s !== 'string' || m.s.length === 0 || m.s.length > 64) return 'bad server id';
  if (m.hb === 1) return { kind: 'heartbeat', s: m.s };
  if (m.bye === 1) return { kind: 'bye', s: m.s };
  if (typeof m.n !== 'number' || !Number.isInteger(m.n) || m.n < 0) return 'bad count';
  if (m.b !== undefined) {
    if (typeof m.b !== 'object' || m.b === null || Array.isArray(m.b)) return 'bad body';
    return { kind: 'publish', s: m.s, n: m.n, b: m.b as Record<string, unknown> };
  }
  return { kind: 'count', s: m.s, n: m.n, q: m.q === 1 };
}

/** redis://user:secret@host → redis://user:***@host, for logs. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

/** REDIS_URL: redis:// or rediss:// (TLS); throws a clear error otherwise. */
export function checkRedisUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`REDIS_URL is not a URL: "${url.slice(0, 80)}" (expected e.g. redis://127.0.0.1:6379)`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`REDIS_URL must start with redis:// or rediss://, got "${u.protocol}"`);
  return url;
}

export function startRedisBridge(opts: RedisBridgeOptions, hooks: BridgeHooks): TopicBridge {
  const serverId = randomBytes(6).toString('base64url');
  const prefix = opts.prefix ?? DEFAULT_REDIS_PREFIX;
  const heartbeatMs = opts.heartbeatMs ?? HEARTBEAT_MS;
  const timeoutMs = opts.serverTimeoutMs ?? SERVER_TIMEOUT_MS;
  const serversChannel = `${prefix}:servers`;
  const topicChannel = (topic: string): string => `${prefix}:t:${topic}`;
  const channelPrefix = `${prefix}:t:`;
  const where = redactRedisUrl(opts.url);

  const remote = new RemoteCounts();
  let state: BridgeHealth['state'] = 'connecting';
  let since = new Date();
  let lastError: string | null = null;
  let sent = 0;
  let received = 0;
  let dropped = 0;
  let closing = false;
  /** Topics whose channel we subscribe (local count > 0). */
  const wanted = new Set<string>();
  /** Topics unsubscribed while Redis was down: unsubscribed again once it is back. */
  const released = new Set<string>();

  const socket = {
    connectTimeout: 2_000,
    // 100 ms, 200 ms, … at most 2 s between attempts, forever
    reconnectStrategy: (retries: number) => (closing ? false : Math.min(100 * 2 ** retries, 2_000)),
  } as const;
  // The publisher fails fast while disconnected (nothing piles up); the subscriber
  // queues its (un)subscribes and re-subscribes by itself on reconnect.
  const pub = createClient({ url: opts.url, socket, disableOfflineQueue: true });
  const sub = createClient({ url: opts.url, socket });

  const setState = (next: BridgeHealth['state']): void => {
    if (state === next) return;
    state = next;
    since = new Date();
    if (next === 'down') {
      remote.clear();
      hooks.log(`redis: connection to ${where} lost (${lastError ?? 'closed'}); serving the tabs of this server only until it is back`);
    } else if (next === 'up') {
      hooks.log(`redis: connected to ${where} (server id ${serverId}); sharing topics with the other servers`);
      resync();
    }
  };

  const onError = (err: Error): void => {
    lastError = err.message || err.name;
    if (!closing && !(pub.isReady && sub.isReady)) setState('down');
  };
  const onReady = (): void => {
    if (pub.isReady && sub.isReady) setState('up');
  };
  const onDown = (): void => {
    if (!closing) setState('down');
  };
  for (const client of [pub, sub]) {
    client.on('error', onError);
    client.on('ready', onReady);
    client.on('reconnecting', onDown);
    client.on('end', onDown);
  }

  const send = (channel: string, message: object): void => {
    if (state !== 'up') {
      dropped += 1;
      return;
    }
    sent += 1;
    pub.publish(channel, JSON.stringify(message)).catch((err: unknown) => {
      dropped += 1;
      lastError = err instanceof Error ? err.message : String(err);
    });
  };

  const onTopicMessage = (message: string, channel: string): void => {
    received += 1;
    if (!channel.startsWith(channelPrefix)) return;
    const topic = channel.slice(channelPrefix.length);
    const m = parseBridgeMessage(message);
    if (typeof m === 'string') {
      hooks.log(`redis: dropped a malformed message on ${channel.slice(0, 120)}: ${m}`);
      return;
    }
    if (m.s === serverId || m.kind === 'heartbeat' || m.kind === 'bye') return;
    if (!wanted.has(topic)) return; // an unsubscribe still on its way
    remote.seen(m.s, Date.now());
    remote.set(topic, m.s, m.n);
    if (m.kind === 'publish') hooks.deliver(topic, m.b);
    else if (m.q) send(channel, { s: serverId, n: hooks.localCount(topic) });
  };

  const onServersMessage = (message: string): void => {
    received += 1;
    const m = parseBridgeMessage(message);
    if (typeof m === 'string' || m.s === serverId) return;
    if (m.kind === 'bye') remote.dropServer(m.s);
    else remote.seen(m.s, Date.now());
  };

  const subscribeTopic = (topic: string): void => {
    sub.subscribe(topicChannel(topic), onTopicMessage).then(
      // announce our count once subscribed, so the answers reach us
      () => send(topicChannel(topic), { s: serverId, n: hooks.localCount(topic), q: 1 }),
      (err: unknown) => {
        lastError = err instanceof Error ? err.message : String(err);
      },
    );
  };

  const unsubscribeTopic = (topic: string): void => {
    sub.unsubscribe(topicChannel(topic), onTopicMessage).catch((err: unknown) => {
      lastError = err instanceof Error ? err.message : String(err);
      released.add(topic);
    });
  };

  /** After (re)connecting: every wanted channel subscribed, counts announced with `q`. */
  const resync = (): void => {
    for (const topic of released) if (!wanted.has(topic)) unsubscribeTopic(topic);
    released.clear();
    for (const topic of wanted) subscribeTopic(topic);
  };

  sub.subscribe(serversChannel, onServersMessage).catch((err: unknown) => {
    lastError = err instanceof Error ? err.message : String(err);
  });

  const heartbeat = setInterval(() => {
    const gone = remote.expire(Date.now(), timeoutMs);
    if (gone.length) hooks.log(`redis: no heartbeat from server(s) ${gone.join(', ')} for ${timeoutMs / 1000} s; their subscribers no longer count`);
    if (state === 'up') send(serversChannel, { s: serverId, hb: 1 });
  }, heartbeatMs);
  heartbeat.unref();

  // Not awaited: a server whose Redis is down at start serves its own tabs meanwhile.
  for (const client of [pub, sub]) {
    client.connect().catch((err: unknown) => {
      lastError = err instanceof Error ? err.message : String(err);
      if (!closing) setState('down');
    });
  }

  return {
    countChanged(topic, n) {
      if (n > 0 && !wanted.has(topic)) {
        wanted.add(topic);
        released.delete(topic);
        subscribeTopic(topic);
      } else if (n > 0) {
        send(topicChannel(topic), { s: serverId, n });
      } else if (n === 0 && wanted.delete(topic)) {
        send(topicChannel(topic), { s: serverId, n: 0 });
        remote.dropTopic(topic);
        unsubscribeTopic(topic);
      }
    },
    publish(topic, body) {
      send(topicChannel(topic), { s: serverId, n: hooks.localCount(topic), b: body });
    },
    remoteCount(topic) {
      return state === 'up' ? remote.total(topic) : 0;
    },
    health() {
      return { state, servers: remote.servers(), since: since.toISOString(), lastError, sent, received, dropped };
    },
    async close() {
      clearInterval(heartbeat);
      if (state === 'up') {
        try {
          await pub.publish(serversChannel, JSON.stringify({ s: serverId, bye: 1 }));
        } catch (err) {
          hooks.log(`redis: could not say goodbye: ${(err as Error).message}`);
        }
      }
      closing = true;
      await Promise.all(
        [pub, sub].map(async (client) => {
          if (client.isOpen) await client.close();
          else client.destroy();
        }),
      );
    },
  };
}
