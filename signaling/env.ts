/**
 * The deployment variables of `npm start` / `npm run serve` (signaling/main.ts), parsed
 * and checked before anything starts: a bad value stops the server with a message that
 * names the variable, instead of a server that half works.
 *
 *   ICE_SERVERS, TURN_URLS, TURN_SECRET, TURN_TTL, ICE_TRANSPORT_POLICY   signaling/ice.ts
 *   TLS_CERT, TLS_KEY                                                      signaling/tls.ts
 *   REDIS_URL, REDIS_PREFIX                                                signaling/redis-bridge.ts
 *   TRUST_PROXY                                                            signaling/client-address.ts
 *   ALLOWED_ORIGINS, CSP_CONNECT_SRC                                       signaling/web-policy.ts
 */
import { iceSettingsFromEnv, type IceSettings } from './ice';
import { checkRedisUrl, type RedisBridgeOptions } from './redis-bridge';
import { tlsFilesFromEnv, type TlsFiles } from './tls';
import { parseAllowedOrigins, parseConnectSrc } from './web-policy';

export interface DeployConfig {
  ice: IceSettings;
  tls: TlsFiles | null;
  redis: RedisBridgeOptions | null;
  /** Reverse proxies whose X-Forwarded-For is trusted (0: none). */
  trustProxy: number;
  /** Origins allowed to open a WebSocket; null: any. */
  allowedOrigins: string[] | null;
  /** CSP connect-src besides 'self'; null: the default (signaling/web-policy.ts). */
  connectSrc: string[] | null;
}

const REDIS_PREFIX = /^[A-Za-z0-9_.:-]{1,64}$/;

export function deployConfigFromEnv(env: Record<string, string | undefined>): DeployConfig {
  const ice = iceSettingsFromEnv(env);
  const tls = tlsFilesFromEnv(env);
  let redis: RedisBridgeOptions | null = null;
  const url = env.REDIS_URL?.trim() ?? '';
  if (url !== '') {
    redis = { url: checkRedisUrl(url) };
    const prefix = env.REDIS_PREFIX?.trim() ?? '';
    if (prefix !== '') {
      if (!REDIS_PREFIX.test(prefix)) throw new Error(`REDIS_PREFIX must be 1-64 characters of A-Z a-z 0-9 _ . : -, got "${prefix.slice(0, 80)}"`);
      redis.prefix = prefix;
    }
  } else if ((env.REDIS_PREFIX?.trim() ?? '') !== '') {
    throw new Error('REDIS_PREFIX is set but REDIS_URL is not');
  }
  const trustText = env.TRUST_PROXY?.trim() ?? '';
  const trustProxy = trustText === '' ? 0 : Number(trustText);
  if (!/^\d{1,2}$/.test(trustText === '' ? '0' : trustText)) {
    throw new Error(`TRUST_PROXY must be the number of reverse proxies in front of the server (0-99; 1 for one nginx), got "${trustText.slice(0, 40)}"`);
  }
  const origins = env.ALLOWED_ORIGINS?.trim() ?? '';
  const connect = env.CSP_CONNECT_SRC?.trim() ?? '';
  return {
    ice,
    tls,
    redis,
    trustProxy,
    allowedOrigins: origins === '' ? null : parseAllowedOrigins(origins),
    connectSrc: connect === '' ? null : parseConnectSrc(connect),
  };
}
