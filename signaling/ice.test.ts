/**
 * ICE configuration: the deployment variables (bad values stop the server with a clear
 * message), the TURN REST credential scheme, and GET /config.json.
 */
import { execFile, execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployConfigFromEnv } from './env';
import { clientIceConfig, iceSettingsFromEnv, turnCredential } from './ice';
import { startSignalingServer, type SignalingServer } from './server';
import { REPO_ROOT } from './testing';

/** Runs the CLI (`npm run serve`) with `env` until it exits: its exit code and output. */
function runCli(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'signaling/main.ts'], { cwd: REPO_ROOT, env: { ...process.env, PORT: '0', ...env }, timeout: 50_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, output: stdout + stderr });
    });
  });
}

describe('ICE variables', () => {
  it('nothing set: no servers in the document (the page picks its default), policy all', () => {
    const s = iceSettingsFromEnv({});
    expect(s).toEqual({ transportPolicy: 'all' });
    expect(clientIceConfig(s)).toEqual({ iceTransportPolicy: 'all' });
  });

  it('ICE_SERVERS=[] means none at all (what the tests use: nothing leaves the machine)', () => {
    expect(clientIceConfig(iceSettingsFromEnv({ ICE_SERVERS: '[]' }))).toEqual({ iceServers: [], iceTransportPolicy: 'all' });
  });

  it('accepts the RTCConfiguration.iceServers shape', () => {
    const s = iceSettingsFromEnv({
      ICE_SERVERS: '[{"urls":"stun:stun.example.org:3478"},{"urls":["turn:t.example.org:3478","turns:t.example.org:5349"],"username":"u","credential":"p"}]',
      ICE_TRANSPORT_POLICY: 'relay',
    });
    expect(s.iceServers).toHaveLength(2);
    expect(s.transportPolicy).toBe('relay');
  });

  it.each([
    [{ ICE_SERVERS: '[{"urls":"stun:x"' }, /ICE_SERVERS is not valid JSON/],
    [{ ICE_SERVERS: '{"urls":"stun:x"}' }, /ICE_SERVERS must be a JSON array/],
    [{ ICE_SERVERS: '[{"url":"stun:x"}]' }, /unknown field "url"/],
    [{ ICE_SERVERS: '[{"urls":"http://x"}]' }, /not a stun:, stuns:, turn: or turns: URL/],
    [{ ICE_SERVERS: '[{"urls":"turn:x:3478"}]' }, /needs "username" and "credential"/],
    [{ TURN_URLS: 'turn:x:3478' }, /TURN_URLS and TURN_SECRET go together/],
    [{ TURN_SECRET: 's' }, /TURN_URLS and TURN_SECRET go together/],
    [{ TURN_URLS: 'stun:x:3478', TURN_SECRET: 's' }, /not a turn: or turns: URL/],
    [{ TURN_URLS: 'turn:x', TURN_SECRET: 's', TURN_TTL: '1.5' }, /TURN_TTL must be an integer/],
    [{ TURN_URLS: 'turn:x', TURN_SECRET: 's', TURN_TTL: '2' }, /TURN_TTL must be an integer number of seconds >= 4/],
    [{ TURN_TTL: '60' }, /TURN_TTL is set but TURN_URLS/],
    [{ ICE_TRANSPORT_POLICY: 'relay-only' }, /ICE_TRANSPORT_POLICY must be "all" or "relay"/],
  ])('refuses %j', (env, message) => {
    expect(() => iceSettingsFromEnv(env)).toThrow(message);
  });

  it('the other deployment variables are checked too', () => {
    expect(() => deployConfigFromEnv({ TLS_CERT: '/x.pem' })).toThrow(/TLS_CERT and TLS_KEY go together/);
    expect(() => deployConfigFromEnv({ REDIS_URL: 'http://127.0.0.1:6379' })).toThrow(/REDIS_URL must start with redis:\/\/ or rediss:\/\//);
    expect(() => deployConfigFromEnv({ REDIS_URL: 'not a url' })).toThrow(/REDIS_URL is not a URL/);
    expect(() => deployConfigFromEnv({ REDIS_PREFIX: 'p' })).toThrow(/REDIS_PREFIX is set but REDIS_URL is not/);
    expect(deployConfigFromEnv({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_PREFIX: 'chat-eu', TLS_CERT: 'c.pem', TLS_KEY: 'k.pem' })).toEqual({
      ice: { transportPolicy: 'all' },
      tls: { certPath: 'c.pem', keyPath: 'k.pem' },
      redis: { url: 'redis://127.0.0.1:6379', prefix: 'chat-eu' },
      trustProxy: 0,
      allowedOrigins: null,
      connectSrc: null,
    });
  });

  it('a bad variable stops `npm run serve` at start with a message naming it', async () => {
    const [badJson, badCert] = await Promise.all([
      runCli({ ICE_SERVERS: '[{"urls":' }),
      runCli({ TLS_CERT: '/nonexistent/cert.pem', TLS_KEY: '/nonexistent/key.pem' }),
    ]);
    expect(badJson.code).toBe(1);
    expect(badJson.output).toMatch(/failed to start: ICE_SERVERS is not valid JSON/);
    expect(badCert.code).toBe(1);
    expect(badCert.output).toMatch(/failed to start: TLS_CERT: cannot read \/nonexistent\/cert.pem/);
  });
});

describe('TURN REST credentials (coturn use-auth-secret)', () => {
  it('username is "<expiry>:<user>", password base64(HMAC-SHA1(secret, username)), as openssl computes it', () => {
    const { username, credential } = turnCredential('north', 3600, 1_700_000_000, 'ann');
    expect(username).toBe('1700003600:ann');
    // the recipe of coturn's documentation, computed by another implementation
    const expected = execFileSync('sh', ['-c', `printf %s "$U" | openssl dgst -binary -sha1 -hmac "$S" | openssl base64`], { env: { ...process.env, U: username, S: 'north' } })
      .toString()
      .trim();
    expect(credential).toBe(expected);
  });
});

describe('GET /config.json', () => {
  let server: SignalingServer;
  const secret = 'config-test-secret';

  beforeAll(async () => {
    server = await startSignalingServer({
      port: 0,
      staticDir: null,
      log: () => undefined,
      ice: iceSettingsFromEnv({ ICE_SERVERS: '[{"urls":"stun:127.0.0.1:3478"}]', TURN_URLS: 'turn:127.0.0.1:3478?transport=udp,turn:127.0.0.1:3478?transport=tcp', TURN_SECRET: secret, TURN_TTL: '600' }),
    });
  });
  afterAll(() => server.close());

  it('serves the configured servers with fresh TURN credentials, never cached', async () => {
    const before = Math.floor(Date.now() / 1000);
    const res = await fetch(`${server.url}config.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { iceServers: { urls: string | string[]; username?: string; credential?: string }[]; iceTransportPolicy: string; credentialTtlS: number };
    expect(body.iceTransportPolicy).toBe('all');
    expect(body.credentialTtlS).toBe(600);
    expect(body.iceServers[0]).toEqual({ urls: 'stun:127.0.0.1:3478' });
    const turn = body.iceServers[1]!;
    expect(turn.urls).toEqual(['turn:127.0.0.1:3478?transport=udp', 'turn:127.0.0.1:3478?transport=tcp']);
    const expiry = Number(turn.username!.split(':')[0]);
    expect(expiry).toBeGreaterThanOrEqual(before + 600);
    expect(expiry).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 600);
    const user = turn.username!.slice(turn.username!.indexOf(':') + 1);
    expect(turn.credential).toBe(turnCredential(secret, 600, expiry - 600, user).credential);
    expect(JSON.stringify(body)).not.toContain(secret);

    const again = (await (await fetch(`${server.url}config.json`)).json()) as typeof body;
    expect(again.iceServers[1]!.username).not.toBe(turn.username);
  });
});
