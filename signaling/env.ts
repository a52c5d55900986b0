/**
 * The deployment variables of `npm start` / `npm run serve` (signaling/main.ts), parsed
 * and checked before anything starts: a bad value stops the server with a message that
 * names the variable, instead of a server that half works.
 *
 *   ICE_SERVERS, TURN_URLS, TURN_SECRET, TURN_TTL, ICE_TRANSPORT_POLICY   signaling/ice.ts
 *   TLS_CERT, TLS_KEY                                                      signaling/tls.ts
 *   REDIS_URL, REDIS_PREFIX                                                signaling/redis-bridge.ts
 */
import { iceSettingsFromEnv, type IceSettings } from './ice';
import { checkRedisUrl, type RedisBridgeOptions } from './redis-bridge';
import { tlsFilesFromEnv, type TlsFiles } from './tls';

export interface DeployConfig {
  ice: IceSettings;
  tls: TlsFiles | null;
  redis: RedisBridgeOptions | null;
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
  return { ice, tls, redis };
}
