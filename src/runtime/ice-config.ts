/**
 * The page's ICE configuration (RTCConfiguration for every new link).
 *
 * Sources, strongest first:
 *   1. URL parameters, for testing and for users: `?ice=<JSON array of RTCIceServer>`
 *      replaces the servers; `?relay=1` forces relay-only (every link through TURN, so
 *      peers never learn this browser's addresses).
 *   2. The server's `/config.json` (signaling/ice.ts): ICE_SERVERS, TURN credentials,
 *      ICE_TRANSPORT_POLICY. Fetched without caching; TURN credentials are short-lived,
 *      so the document is fetched again when half their lifetime has passed (and retried
 *      with backoff if that fails, keeping the current one meanwhile).
 *   3. Default when the server configures no servers (or has no /config.json): a public
 *      STUN server for pages off loopback, so two home networks can link through their
 *      NATs; none on loopback (tabs of one machine need nothing, and tests contact no
 *      outside address).
 *
 * The first fetch starts with the page (main.ts) and is bounded by FETCH_TIMEOUT_MS;
 * links wait for it (a relay-only policy must hold from the first dial).
 */
import type { IceInfo } from './api';

export const PUBLIC_STUN: RTCIceServer = { urls: 'stun:stun.l.google.com:19302' };
export const FETCH_TIMEOUT_MS = 3_000;
const RETRY_MIN_MS = 5_000;
const RETRY_MAX_MS = 60_000;

const ICE_URL = /^(stun|stuns|turn|turns):\S+$/i;

export interface IceOverride {
  iceServers?: RTCIceServer[];
  relay?: boolean;
}

/** The server's /config.json, validated. */
export interface IceDocument {
  iceServers?: RTCIceServer[];
  iceTransportPolicy: 'all' | 'relay';
  credentialTtlS?: number;
}

export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

export function defaultIceServers(hostname: string): RTCIceServer[] {
  return isLoopbackHost(hostname) ? [] : [PUBLIC_STUN];
}

/** RTCIceServer[] from untrusted JSON (URL parameter or server); a string says what is wrong. */
export function parseIceServers(v: unknown): RTCIceServer[] | string {
  if (!Array.isArray(v)) return 'expected a JSON array of {urls, username?, credential?}';
  const out: RTCIceServer[] = [];
  for (const [i, e] of v.entries()) {
    if (typeof e !== 'object' || e === null || Array.isArray(e)) return `entry ${i} is not an object`;
    const { urls, username, credential } = e as Record<string, unknown>;
    const list = Array.isArray(urls) ? urls : [urls];
    if (list.length === 0 || !list.every((u) => typeof u === 'string' && ICE_URL.test(u))) return `entry ${i}: urls must be stun:, stuns:, turn: or turns: URLs`;
    if (username !== undefined && typeof username !== 'string') return `entry ${i}: username must be a string`;
    if (credential !== undefined && typeof credential !== 'string') return `entry ${i}: credential must be a string`;
    const server: RTCIceServer = { urls: urls as string | string[] };
    if (username !== undefined) server.username = username as string;
    if (credential !== undefined) server.credential = credential as string;
    out.push(server);
  }
  return out;
}

export function parseIceDocument(v: unknown): IceDocument | string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const d = v as Record<string, unknown>;
  const policy = d.iceTransportPolicy ?? 'all';
  if (policy !== 'all' && policy !== 'relay') return `iceTransportPolicy "${String(policy).slice(0, 20)}"`;
  const doc: IceDocument = { iceTransportPolicy: policy };
  if (d.iceServers !== undefined) {
    const servers = parseIceServers(d.iceServers);
    if (typeof servers === 'string') return `iceServers: ${servers}`;
    doc.iceServers = servers;
  }
  if (d.credentialTtlS !== undefined) {
    if (typeof d.credentialTtlS !== 'number' || !(d.credentialTtlS > 0)) return 'credentialTtlS must be a positive number';
    doc.credentialTtlS = d.credentialTtlS;
  }
  return doc;
}

/** `?ice=` and `?relay=1`; problems with them are reported, the parameter ignored. */
export function iceOverrideFromParams(params: URLSearchParams): { override: IceOverride; problems: string[] } {
  const override: IceOverride = {};
  const problems: string[] = [];
  const ice = params.get('ice');
  if (ice !== null) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(ice);
    } catch (e) {
      parsed = undefined;
      problems.push(`?ice= is not JSON (${(e as Error).message}); ignored`);
    }
    if (parsed !== undefined) {
      const servers = parseIceServers(parsed);
      if (typeof servers === 'string') problems.push(`?ice=: ${servers}; ignored`);
      else override.iceServers = servers;
    }
  }
  if (params.get('relay') === '1') override.relay = true;
  return { override, problems };
}

export interface IceSourceOptions {
  /** Where the server's document is (default `/config.json` of the page's origin). */
  url: string;
  hostname: string;
  override: IceOverride;
  fetchImpl?: typeof fetch;
  /** Problems with the URL parameters (iceOverrideFromParams), shown until a fetch succeeds. */
  paramProblems?: string[];
  /** Problems worth showing (a failed fetch). */
  onProblem?: (what: string) => void;
  timeoutMs?: number;
}

export class IceConfigSource {
  /** Resolves once the first fetch ended (answered, failed or timed out); never rejects. */
  readonly ready: Promise<void>;
  private doc: IceDocument | null = null;
  private fetchedAt = 0;
  private fetches = 0;
  private failures = 0;
  private lastError: string | null = null;
  private retryDelay = RETRY_MIN_MS;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;

  constructor(private readonly opts: IceSourceOptions) {
    if (opts.paramProblems?.length) this.lastError = opts.paramProblems.join('; ');
    this.ready = this.load();
  }

  /** The configuration for a link dialled now. */
  current(): RTCConfiguration {
    const servers = this.opts.override.iceServers ?? this.doc?.iceServers ?? defaultIceServers(this.opts.hostname);
    const relay = this.opts.override.relay === true || this.doc?.iceTransportPolicy === 'relay';
    return { iceServers: servers, iceTransportPolicy: relay ? 'relay' : 'all' };
  }

  describe(): IceInfo {
    const c = this.current();
    const urls = (c.iceServers ?? []).flatMap((s) => (Array.isArray(s.urls) ? s.urls : [s.urls]));
    const ttl = this.doc?.credentialTtlS;
    return {
      policy: c.iceTransportPolicy === 'relay' ? 'relay' : 'all',
      servers: urls,
      source: this.opts.override.iceServers ? 'url' : this.doc?.iceServers ? 'server' : 'default',
      credentialExpiresInS: ttl === undefined || this.opts.override.iceServers ? null : Math.round(ttl - (Date.now() - this.fetchedAt) / 1000),
      error: this.lastError,
    };
  }

  counters(): Record<string, number> {
    const c = this.current();
    return {
      'ice.configFetches': this.fetches,
      'ice.configFailures': this.failures,
      'ice.relayOnly': c.iceTransportPolicy === 'relay' ? 1 : 0,
      'ice.servers': (c.iceServers ?? []).length,
    };
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async load(): Promise<void> {
    const fetchImpl = this.opts.fetchImpl ?? fetch.bind(globalThis);
    const controller = new AbortController();
    const timeoutMs = this.opts.timeoutMs ?? FETCH_TIMEOUT_MS;
    const timeout = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const res = await fetchImpl(this.opts.url, { cache: 'no-store', signal: controller.signal, credentials: 'same-origin' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const doc = parseIceDocument(await res.json());
      if (typeof doc === 'string') throw new Error(doc);
      this.doc = doc;
      this.fetchedAt = Date.now();
      this.fetches++;
      this.lastError = this.opts.paramProblems?.length ? this.opts.paramProblems.join('; ') : null;
      this.retryDelay = RETRY_MIN_MS;
      // fresh credentials when half of their lifetime has passed
      if (doc.credentialTtlS !== undefined) this.schedule((doc.credentialTtlS * 1000) / 2);
    } catch (e) {
      this.failures++;
      const why = controller.signal.aborted ? `no answer within ${timeoutMs} ms` : (e as Error).message;
      this.lastError = `ICE configuration from ${this.opts.url}: ${why}`;
      this.opts.onProblem?.(`${this.lastError}${this.doc ? '; keeping the current one' : '; using the default'}`);
      // retried only while credentials need renewing (a server without /config.json stays without)
      if (this.doc?.credentialTtlS !== undefined) {
        this.schedule(this.retryDelay);
        this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
      }
    } finally {
      clearTimeout(timeout);
    }
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.load();
    }, delay);
  }
}
