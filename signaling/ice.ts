/**
 * ICE configuration the server hands to its pages (`GET /config.json`), so that a
 * plain share link works across networks without URL parameters.
 *
 * Environment (parsed by `iceSettingsFromEnv`, which throws a clear error on bad input):
 *   ICE_SERVERS           JSON array, as RTCConfiguration.iceServers
 *                         (e.g. '[{"urls":"stun:stun.example.org:3478"}]'; '[]' for none)
 *   TURN_URLS             comma-separated turn:/turns: URLs of a TURN server that runs
 *                         coturn's `use-auth-secret` (the TURN REST API scheme)
 *   TURN_SECRET           its `static-auth-secret`
 *   TURN_TTL              lifetime of a handed-out credential in seconds (default 86400)
 *   ICE_TRANSPORT_POLICY  `all` (default) or `relay` (every link through TURN: peers
 *                         never learn each other's addresses)
 *
 * TURN REST credentials (draft-uberti-behave-turn-rest-00, as coturn implements it):
 * username = `<unix expiry time>:<user>`, password = base64(HMAC-SHA1(secret, username)).
 * coturn recomputes the password from its own copy of the secret and refuses a
 * username whose expiry time has passed, so the secret never leaves the server and
 * a leaked credential stops working by itself.
 *
 * When nothing is configured the document carries no `iceServers`: the page then
 * picks its default (a public STUN server off loopback, none on loopback;
 * src/runtime/ice-config.ts).
 */
import { createHmac, randomBytes } from 'node:crypto';

export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export interface TurnSettings {
  urls: string[];
  secret: string;
  /** Seconds a credential stays valid. */
  ttlS: number;
}

export interface IceSettings {
  /** ICE_SERVERS; undefined when unset (the page's default applies unless TURN is set). */
  iceServers?: IceServer[];
  turn?: TurnSettings;
  transportPolicy: 'all' | 'relay';
}

/** The body of `GET /config.json`. */
export interface ClientIceConfig {
  iceServers?: IceServer[];
  iceTransportPolicy: 'all' | 'relay';
  /** Present when the servers include TURN credentials: seconds they stay valid from now. */
  credentialTtlS?: number;
}

export const DEFAULT_TURN_TTL_S = 86_400;
/** Shorter lifetimes make the page refetch every few seconds; tests use 6-10 s. */
export const MIN_TURN_TTL_S = 4;

const ICE_URL = /^(stun|stuns|turn|turns):[^\s]+$/i;
const TURN_URL = /^turns?:[^\s]+$/i;

function checkIceUrl(url: unknown, where: string): string {
  if (typeof url !== 'string' || !ICE_URL.test(url)) {
    throw new Error(`${where}: "${String(url).slice(0, 80)}" is not a stun:, stuns:, turn: or turns: URL`);
  }
  return url;
}

/** Validates a parsed ICE_SERVERS value: the shape RTCConfiguration.iceServers takes. */
export function parseIceServers(value: unknown, name = 'ICE_SERVERS'): IceServer[] {
  if (!Array.isArray(value)) throw new Error(`${name} must be a JSON array of {urls, username?, credential?} objects`);
  return value.map((entry: unknown, i): IceServer => {
    const where = `${name}[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new Error(`${where} must be an object with "urls"`);
    const e = entry as Record<string, unknown>;
    for (const key of Object.keys(e)) {
      if (key !== 'urls' && key !== 'username' && key !== 'credential') throw new Error(`${where}: unknown field "${key}" (urls, username, credential)`);
    }
    let urls: string | string[];
    if (Array.isArray(e.urls)) {
      if (e.urls.length === 0) throw new Error(`${where}.urls is empty`);
      urls = e.urls.map((u, j) => checkIceUrl(u, `${where}.urls[${j}]`));
    } else {
      urls = checkIceUrl(e.urls, `${where}.urls`);
    }
    const out: IceServer = { urls };
    if (e.username !== undefined) {
      if (typeof e.username !== 'string') throw new Error(`${where}.username must be a string`);
      out.username = e.username;
    }
    if (e.credential !== undefined) {
      if (typeof e.credential !== 'string') throw new Error(`${where}.credential must be a string`);
      out.credential = e.credential;
    }
    const isTurn = (Array.isArray(urls) ? urls : [urls]).some((u) => TURN_URL.test(u));
    if (isTurn && (out.username === undefined || out.credential === undefined)) {
      throw new Error(`${where}: a turn: server needs "username" and "credential" (or use TURN_URLS + TURN_SECRET)`);
    }
    return out;
  });
}

type Env = Record<string, string | undefined>;

const set = (v: string | undefined): v is string => v !== undefined && v.trim() !== '';

/** Reads the ICE variables; throws an Error naming the variable on bad input. */
export function iceSettingsFromEnv(env: Env): IceSettings {
  const settings: IceSettings = { transportPolicy: 'all' };
  if (set(env.ICE_SERVERS)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(env.ICE_SERVERS);
    } catch (err) {
      throw new Error(`ICE_SERVERS is not valid JSON (${(err as Error).message}); expected e.g. '[{"urls":"stun:stun.example.org:3478"}]' or '[]'`);
    }
    settings.iceServers = parseIceServers(parsed);
  }
  if (set(env.TURN_URLS) !== set(env.TURN_SECRET)) {
    throw new Error('TURN_URLS and TURN_SECRET go together: set both (or neither)');
  }
  if (set(env.TURN_URLS) && set(env.TURN_SECRET)) {
    const urls = env.TURN_URLS.split(',').map((u) => u.trim()).filter(Boolean);
    for (const u of urls) {
      if (!TURN_URL.test(u)) throw new Error(`TURN_URLS: "${u.slice(0, 80)}" is not a turn: or turns: URL`);
    }
    let ttlS = DEFAULT_TURN_TTL_S;
    if (set(env.TURN_TTL)) {
      ttlS = Number(env.TURN_TTL);
      if (!Number.isInteger(ttlS) || ttlS < MIN_TURN_TTL_S) throw new Error(`TURN_TTL must be an integer number of seconds >= ${MIN_TURN_TTL_S}, got "${env.TURN_TTL}"`);
    }
    settings.turn = { urls, secret: env.TURN_SECRET, ttlS };
  } else if (set(env.TURN_TTL)) {
    throw new Error('TURN_TTL is set but TURN_URLS / TURN_SECRET are not');
  }
  if (set(env.ICE_TRANSPORT_POLICY)) {
    const p = env.ICE_TRANSPORT_POLICY.trim();
    if (p !== 'all' && p !== 'relay') throw new Error(`ICE_TRANSPORT_POLICY must be "all" or "relay", got "${p}"`);
    settings.transportPolicy = p;
  }
  return settings;
}

/** TURN REST credential valid until `nowS + ttlS` (unix seconds). */
export function turnCredential(secret: string, ttlS: number, nowS: number, user: string): { username: string; credential: string } {
  const username = `${Math.floor(nowS) + ttlS}:${user}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential };
}

/** The document served at /config.json; fresh TURN credentials on every call. */
export function clientIceConfig(settings: IceSettings, nowMs: number = Date.now()): ClientIceConfig {
  const out: ClientIceConfig = { iceTransportPolicy: settings.transportPolicy };
  if (settings.iceServers === undefined && settings.turn === undefined) return out;
  const servers: IceServer[] = [...(settings.iceServers ?? [])];
  if (settings.turn) {
    // an opaque per-credential id: coturn logs it, nothing else reads it
    const user = randomBytes(6).toString('base64url');
    const { username, credential } = turnCredential(settings.turn.secret, settings.turn.ttlS, nowMs / 1000, user);
    servers.push({ urls: settings.turn.urls, username, credential });
    out.credentialTtlS = settings.turn.ttlS;
  }
  out.iceServers = servers;
  return out;
}

/** One line for the start-up log; never prints the secret. */
export function describeIce(settings: IceSettings): string {
  const parts: string[] = [];
  if (settings.iceServers !== undefined) parts.push(`ICE_SERVERS ${settings.iceServers.length} entr${settings.iceServers.length === 1 ? 'y' : 'ies'}`);
  if (settings.turn) parts.push(`TURN ${settings.turn.urls.join(',')} (credentials valid ${settings.turn.ttlS} s)`);
  if (parts.length === 0) parts.push('none configured (pages default to a public STUN server off loopback)');
  if (settings.transportPolicy === 'relay') parts.push('relay only');
  return `ICE: ${parts.join('; ')}`;
}
