/**
 * The HTTP side of the signaling port: static files of the built app with SPA
 * fallback, /healthz, path traversal refused; and the CLI (env, URL line,
 * clean shutdown on SIGTERM).
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_STATIC_DIR, startSignalingServer, type SignalingServer } from './server';
import { REPO_ROOT, startOurServerProcess, TestClient, wsUrl } from './testing';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** Sends the path exactly as given (no client-side normalisation of `..`). */
function request(server: { port: number }, rawPath: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.port, path: rawPath, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const SECRET = 'TOP-SECRET-do-not-serve';
const INDEX = '<!doctype html><title>p2p</title><div id=app></div>';

describe('static files and /healthz', () => {
  let tmp: string;
  let server: SignalingServer;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'signaling-static-'));
    const www = path.join(tmp, 'www');
    await mkdir(path.join(www, 'assets'), { recursive: true });
    await writeFile(path.join(www, 'index.html'), INDEX);
    await writeFile(path.join(www, 'assets', 'index-abc123.js'), 'console.log("app")');
    await writeFile(path.join(www, 'style.css'), 'body{}');
    await writeFile(path.join(www, 'logo.svg'), '<svg/>');
    await writeFile(path.join(www, 'blob.bin'), Buffer.from([0, 1, 2, 3]));
    await writeFile(path.join(www, 'app.webmanifest'), '{}');
    await writeFile(path.join(tmp, 'secret.txt'), SECRET);
    await writeFile(path.join(tmp, 'www-secret.txt'), SECRET); // shares the root's name as a prefix
    await symlink(path.join(tmp, 'secret.txt'), path.join(www, 'leak.txt'));
    await symlink(tmp, path.join(www, 'leakdir'));
    server = await startSignalingServer({ port: 0, staticDir: www, log: () => undefined });
  });

  afterAll(async () => {
    await server.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it('serves index.html at /', async () => {
    const r = await request(server, '/');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['cache-control']).toBe('no-cache');
    expect(r.body.toString()).toBe(INDEX);
  });

  it.each([
    ['/assets/index-abc123.js', 'text/javascript; charset=utf-8'],
    ['/style.css', 'text/css; charset=utf-8'],
    ['/logo.svg', 'image/svg+xml'],
    ['/blob.bin', 'application/octet-stream'],
    ['/app.webmanifest', 'application/manifest+json; charset=utf-8'],
    ['/index.html', 'text/html; charset=utf-8'],
  ])('serves %s as %s', async (p, type) => {
    const r = await request(server, p);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe(type);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(Number(r.headers['content-length'])).toBe(r.body.length);
  });

  it('marks hashed /assets/ files immutable', async () => {
    const r = await request(server, '/assets/index-abc123.js?v=1');
    expect(r.headers['cache-control']).toContain('immutable');
  });

  it('falls back to index.html for app routes (SPA), but not for missing files', async () => {
    const route = await request(server, '/room/general?nick=ann');
    expect(route.status).toBe(200);
    expect(route.body.toString()).toBe(INDEX);
    expect((await request(server, '/assets/missing-123.js')).status).toBe(404);
  });

  it('answers HEAD without a body and refuses other methods', async () => {
    const head = await request(server, '/style.css', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('6');
    expect(head.body.length).toBe(0);
    const post = await request(server, '/', 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it.each([
    '/../secret.txt',
    '/../../../../../../etc/passwd',
    '/assets/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2E%2E%2Fsecret.txt',
    '/..%2fsecret.txt',
    '/assets%2f..%2f..%2fsecret.txt',
    '/..\\secret.txt',
    '/%5c..%5csecret.txt',
    '/index.html%00.js',
    '/%E0%A4%A', // malformed percent-encoding
  ])('refuses path traversal or malformed path %s with 400', async (p) => {
    const r = await request(server, p);
    expect(r.status).toBe(400);
    expect(r.body.toString()).not.toContain(SECRET);
  });

  it.each(['/leak.txt', '/leakdir/secret.txt', '/leakdir/www-secret.txt'])('does not follow a symlink out of the root: %s', async (p) => {
    const r = await request(server, p);
    expect(r.status).toBe(404);
    expect(r.body.toString()).not.toContain(SECRET);
  });

  it('GET /healthz reports connections, topics, uptime and rejection counters', async () => {
    const a = await TestClient.open(wsUrl(server.url));
    a.send({ type: 'subscribe', topics: ['t1', 't2'] });
    a.sendRaw('not json');
    await a.nextOfType('error');
    const r = await request(server, '/healthz');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    const body = JSON.parse(r.body.toString());
    expect(body).toMatchObject({ ok: true, connections: 1, topics: 2 });
    expect(typeof body.uptimeS).toBe('number');
    expect(body.rejected['not-json']).toBe(1);
    expect(body.rejected['slow-consumer']).toBe(0);
    expect(server.stats()).toMatchObject({ connections: 1, topics: 2, subscriptions: 2 });
    await a.close();
  });

  it.each<[string, string, number]>([
    ['/', 'GET', 200],
    ['/room/general', 'GET', 200],
    ['/assets/index-abc123.js', 'GET', 200],
    ['/assets/missing-123.js', 'GET', 404],
    ['/%2e%2e/secret.txt', 'GET', 400],
    ['/', 'POST', 405],
    ['/healthz', 'GET', 200],
    ['/config.json', 'GET', 200],
  ])('%s (%s, %i) carries the CSP, no-framing, nosniff and Referrer-Policy headers', async (p, method, status) => {
    const r = await request(server, p, method);
    expect(r.status).toBe(status);
    const csp = String(r.headers['content-security-policy']);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("connect-src 'self' ws: wss:");
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
  });

  it('accepts WebSocket upgrades on a static file path too', async () => {
    const a = await TestClient.open(wsUrl(server.url, '/index.html'));
    await a.sync();
    await a.close();
  });
});

describe('static directory configuration', () => {
  it('defaults to dist/ at the repo root', () => {
    expect(path.resolve(DEFAULT_STATIC_DIR)).toBe(path.join(REPO_ROOT, 'dist'));
  });

  it('says the app is not built when the directory is missing, and still signals', async () => {
    const server = await startSignalingServer({ port: 0, staticDir: path.join(tmpdir(), 'no-such-dir-signaling'), log: () => undefined });
    const r = await request(server, '/');
    expect(r.status).toBe(404);
    expect(r.body.toString()).toContain('app not built');
    expect((await request(server, '/healthz')).status).toBe(200);
    const a = await TestClient.open(wsUrl(server.url));
    await a.sync();
    await a.close();
    await server.close();
  });

  it('narrows the CSP connect-src to the configured signaling servers', async () => {
    const server = await startSignalingServer({ port: 0, staticDir: null, connectSrc: ['wss://signal.example.org'], log: () => undefined });
    const csp = String((await request(server, '/healthz')).headers['content-security-policy']);
    expect(csp).toContain("connect-src 'self' wss://signal.example.org;");
    expect(csp).not.toContain('ws:;');
    await server.close();
  });

  it('serves no files with staticDir: null', async () => {
    const server = await startSignalingServer({ port: 0, staticDir: null, log: () => undefined });
    expect((await request(server, '/')).status).toBe(404);
    expect((await request(server, '/healthz')).status).toBe(200);
    await server.close();
  });
});

describe('close()', () => {
  it('closes client sockets with 1001 and frees the port', async () => {
    const lines: string[] = [];
    const server = await startSignalingServer({ port: 0, staticDir: null, log: (l) => lines.push(l) });
    const a = await TestClient.open(wsUrl(server.url));
    await a.sync();
    await server.close();
    expect((await a.closed).code).toBe(1001);
    const again = await startSignalingServer({ port: server.port, staticDir: null, log: () => undefined });
    await again.close();
  });
});

describe('CLI (signaling/main.ts)', () => {
  it('reads PORT/HOST, logs its URL, and exits 0 on SIGTERM after closing sockets', async () => {
    const proc = await startOurServerProcess({ STATIC_DIR: '' });
    const a = await TestClient.open(wsUrl(proc.url));
    await a.sync();
    expect(proc.output()).toContain(`http://127.0.0.1:${proc.port}/`);
    const code = await proc.stop();
    expect(code).toBe(0);
    expect((await a.closed).code).toBe(1001);
    expect(proc.output()).toContain('signaling server stopped');
  });

  it('exits 0 on SIGINT too', async () => {
    const proc = await startOurServerProcess();
    proc.child.kill('SIGINT');
    expect(await proc.stop()).toBe(0);
  });

  it('honours ALLOWED_ORIGINS and CSP_CONNECT_SRC', async () => {
    const proc = await startOurServerProcess({ STATIC_DIR: '', ALLOWED_ORIGINS: 'https://chat.example.org', CSP_CONNECT_SRC: 'wss://chat.example.org' });
    await expect(TestClient.open(wsUrl(proc.url), { origin: 'https://evil.example' })).rejects.toThrow('HTTP 403');
    const a = await TestClient.open(wsUrl(proc.url), { origin: 'https://chat.example.org' });
    await a.sync();
    await a.close();
    expect(String((await request(proc, '/healthz')).headers['content-security-policy'])).toContain("connect-src 'self' wss://chat.example.org;");
    expect(proc.output()).toContain('WebSocket upgrades from pages of https://chat.example.org only');
    expect(await proc.stop()).toBe(0);
  });

  it('honours SIGNALING_LIMITS', async () => {
    const proc = await startOurServerProcess({ SIGNALING_LIMITS: JSON.stringify({ maxTopicsPerConnection: 1 }) });
    const a = await TestClient.open(wsUrl(proc.url));
    a.send({ type: 'subscribe', topics: ['a', 'b'] });
    expect(await a.next()).toEqual({ type: 'error', reason: 'too-many-topics' });
    await a.close();
    expect(await proc.stop()).toBe(0);
  });
});
