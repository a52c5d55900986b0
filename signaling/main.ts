/**
 * CLI entry: `npx tsx signaling/main.ts`
 *
 * Environment:
 *   PORT               TCP port (default 8787; 0 picks a free one)
 *   HOST               interface (default 127.0.0.1; 0.0.0.0 or :: to expose it)
 *   STATIC_DIR         directory of the built app (default dist/ at the repo root;
 *                      empty string serves no files)
 *   SIGNALING_LIMITS   JSON object overriding limits, e.g. '{"ratePerSec":200}'
 *                      (names in signaling/limits.ts)
 *   ICE_SERVERS, TURN_URLS, TURN_SECRET, TURN_TTL, ICE_TRANSPORT_POLICY,
 *   TLS_CERT, TLS_KEY, REDIS_URL, REDIS_PREFIX, TRUST_PROXY, ALLOWED_ORIGINS,
 *   CSP_CONNECT_SRC: see signaling/env.ts and the README
 *
 * SIGHUP re-reads TLS_CERT / TLS_KEY (a renewed certificate; open connections stay).
 */
import { resolveLimits, type Limits } from './limits';
import { DEFAULT_HOST, DEFAULT_PORT, startSignalingServer, type SignalingServer } from './server';
import { deployConfigFromEnv } from './env';
import { describeIce } from './ice';
import { redactRedisUrl } from './redis-bridge';
import { loadTls } from './tls';

function log(line: string): void {
  console.log(`${new Date().toISOString()} ${line}`);
}

function parsePort(value: string | undefined): number {
  if (value === undefined || value === '') return DEFAULT_PORT;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be an integer 0..65535, got "${value}"`);
  return port;
}

function parseLimits(value: string | undefined): Partial<Limits> {
  if (value === undefined || value.trim() === '') return {};
  const parsed: unknown = JSON.parse(value);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('SIGNALING_LIMITS must be a JSON object');
  }
  const limits = parsed as Partial<Limits>;
  resolveLimits(limits); // validates names and values now, with a clear message
  return limits;
}

async function main(): Promise<void> {
  // Handlers go in before the port opens: the kernel accepts connections as
  // soon as listen() returns, and a supervisor may signal us at any point.
  let server: SignalingServer | null = null;
  let stopRequested: NodeJS.Signals | null = null;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopRequested) {
      log(`${signal} again: exiting immediately`);
      process.exit(1);
    }
    stopRequested = signal;
    if (server) void shutdown(server, signal);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  const staticDirEnv = process.env.STATIC_DIR;
  const deploy = deployConfigFromEnv(process.env);
  const tls = deploy.tls ? await loadTls(deploy.tls) : undefined;
  server = await startSignalingServer({
    ice: deploy.ice,
    tls,
    redis: deploy.redis ?? undefined,
    trustProxy: deploy.trustProxy,
    allowedOrigins: deploy.allowedOrigins,
    connectSrc: deploy.connectSrc ?? undefined,
    port: parsePort(process.env.PORT),
    host: process.env.HOST || DEFAULT_HOST,
    staticDir: staticDirEnv === undefined ? undefined : staticDirEnv === '' ? null : staticDirEnv,
    limits: parseLimits(process.env.SIGNALING_LIMITS),
    log,
  });
  log(`signaling server listening on ${server.url} (WebSocket: ${server.url.replace(/^http/, 'ws')})`);
  log(describeIce(deploy.ice));
  if (deploy.redis) log(`redis: sharing topics through ${redactRedisUrl(deploy.redis.url)}`);
  if (deploy.trustProxy > 0) log(`client addresses from X-Forwarded-For, ${deploy.trustProxy} trusted proxy hop(s) (TRUST_PROXY)`);
  if (deploy.allowedOrigins) log(`WebSocket upgrades from pages of ${deploy.allowedOrigins.join(', ')} only (ALLOWED_ORIGINS)`);
  const tlsFiles = deploy.tls;
  if (tlsFiles) {
    const running = server;
    process.on('SIGHUP', () => {
      loadTls(tlsFiles).then(
        (material) => {
          running.setTls(material);
          log(`SIGHUP: TLS certificate reloaded from ${tlsFiles.certPath}`);
        },
        (err: unknown) => log(`SIGHUP: TLS certificate not reloaded, keeping the current one: ${err instanceof Error ? err.message : String(err)}`),
      );
    });
  }
  if (stopRequested) await shutdown(server, stopRequested);
}

async function shutdown(server: SignalingServer, signal: NodeJS.Signals): Promise<void> {
  log(`${signal}: closing ${server.stats().connections} connections`);
  try {
    await server.close();
  } catch (err) {
    log(`error while stopping: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  }
  log('signaling server stopped');
  process.exit(0);
}

main().catch((err: unknown) => {
  log(`signaling server failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
