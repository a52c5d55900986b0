/**
 * Hardening limits of the signaling server. Every value can be overridden per
 * server (tests use small ones); the defaults are what `npm start` runs with.
 * signaling/README.md ("Limits and hardening") lists each limit with the
 * behaviour that applies when a client crosses it.
 */
export interface Limits {
  /** Largest WebSocket frame accepted (bytes). Passed to ws `maxPayload`, so a
   * bigger frame is refused while its header is read, never buffered. SDP offers
   * with many candidates are 2–10 KiB, so 64 KiB leaves ample room. */
  maxFrameBytes: number;
  /** Token bucket per connection: burst size (messages). */
  rateBurst: number;
  /** Token bucket per connection: refill rate (messages per second). */
  ratePerSec: number;
  /** Byte bucket per connection (the bytes of the frames a client sends): burst.
   * At least `maxFrameBytes`, so a frame of the largest size can always pass. */
  rateBytesBurst: number;
  /** Byte bucket per connection: refill rate (bytes per second). Bounds what one
   * publisher can push at every subscriber of a topic: at the default, 64 KiB/s,
   * a subscriber on a 1 Mbit/s link keeps up with any one publisher, so a
   * flooding publisher cannot get honest subscribers dropped as slow consumers. */
  rateBytesPerSec: number;
  /** Byte bucket shared by the connections of one client address (an IPv6
   * client: its /64): burst, at least `maxFrameBytes`. It outlives the address's
   * connections until it is full again, so reconnecting does not refill it, and
   * many connections do not multiply the per-connection rate. */
  rateBytesBurstPerIp: number;
  /** Byte bucket per client address: refill rate (bytes per second). */
  rateBytesPerSecPerIp: number;
  /** Frames dropped for the rate limit, without the bucket recovering to half
   * full in between, after which the connection is closed (1008). */
  rateDropsBeforeClose: number;
  /** Topics one connection may be subscribed to at once. */
  maxTopicsPerConnection: number;
  /** Distinct topics on the whole server. */
  maxTopics: number;
  /** Longest topic name (UTF-16 code units); empty names are always refused. */
  maxTopicLength: number;
  /** Deepest nesting of objects/arrays in a published message (the frame itself
   * is depth 1). A y-webrtc signal is 4 deep; re-serialising a 30,000-deep
   * array, which fits in 64 KiB, would overflow the stack. */
  maxJsonDepth: number;
  /** Largest will frame (bytes of its text). The server holds one will per
   * connection until it closes, so wills take at most maxConnections × this
   * (10,000 × 4 KiB = 40 MiB), not × maxFrameBytes (640 MiB). A larger will is
   * refused and the previous one kept; 0 refuses every will. */
  maxWillBytes: number;
  /** Open WebSocket connections on the whole server. */
  maxConnections: number;
  /** Open WebSocket connections from one client address (an IPv6 client: its
   * /64); 0 = no limit. Behind a reverse proxy every client has the proxy's
   * address unless the server is told to trust it (`trustProxy`, TRUST_PROXY). */
  maxConnectionsPerIp: number;
  /** Subscriptions held by the connections of one client address (an IPv6
   * client: its /64), summed over them; 0 = no limit. A tab holds 2 per server. */
  maxTopicsPerIp: number;
  /** Interval of server pings; a connection that has not answered the previous
   * ping when the next one is due is terminated. */
  pingIntervalMs: number;
  /** Bytes queued for one receiver beyond which it is a slow consumer and is
   * terminated instead of letting its queue grow. */
  maxBufferedBytes: number;
  /** Log lines about misbehaving clients: burst, then this many per second. */
  logBurst: number;
  logPerSec: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxFrameBytes: 64 * 1024,
  rateBurst: 300,
  ratePerSec: 100,
  rateBytesBurst: 256 * 1024,
  rateBytesPerSec: 64 * 1024,
  rateBytesBurstPerIp: 1024 * 1024,
  rateBytesPerSecPerIp: 128 * 1024,
  rateDropsBeforeClose: 200,
  maxTopicsPerConnection: 64,
  maxTopics: 100_000,
  maxTopicLength: 256,
  maxJsonDepth: 32,
  maxWillBytes: 4096,
  maxConnections: 10_000,
  maxConnectionsPerIp: 64,
  maxTopicsPerIp: 256,
  pingIntervalMs: 30_000,
  maxBufferedBytes: 1024 * 1024,
  logBurst: 20,
  logPerSec: 1,
});

/** Merges overrides into the defaults; refuses values that would disable a
 * limit by accident (NaN, negative, non-integer counts). */
export function resolveLimits(overrides: Partial<Limits> = {}): Limits {
  const limits: Limits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(overrides)) {
    if (!(key in DEFAULT_LIMITS)) throw new Error(`unknown signaling limit "${key}"`);
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new Error(`signaling limit "${key}" must be a finite number >= 0, got ${String(value)}`);
    }
    limits[key as keyof Limits] = value;
  }
  if (limits.maxFrameBytes < 1024) throw new Error('signaling limit "maxFrameBytes" must be >= 1024');
  if (limits.rateBytesBurst < limits.maxFrameBytes) {
    throw new Error(`signaling limit "rateBytesBurst" (${limits.rateBytesBurst}) must be >= maxFrameBytes (${limits.maxFrameBytes}), or frames of the largest size could never pass`);
  }
  if (limits.rateBytesBurstPerIp < limits.maxFrameBytes) {
    throw new Error(`signaling limit "rateBytesBurstPerIp" (${limits.rateBytesBurstPerIp}) must be >= maxFrameBytes (${limits.maxFrameBytes})`);
  }
  if (limits.pingIntervalMs < 10) throw new Error('signaling limit "pingIntervalMs" must be >= 10');
  return limits;
}
