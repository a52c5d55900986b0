/**
 * TLS: the port speaks https and wss with TLS_CERT / TLS_KEY (a certificate made here
 * with openssl), a renewed certificate is taken without a restart; and the README's
 * nginx snippet (deploy/nginx.conf), run by a real nginx in front of a plain server.
 */
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSignalingServer, type SignalingServer } from './server';
import { selfSignedCert, startNginx, type NginxService, type SelfSignedCert } from './services';
import { freePort, REPO_ROOT, TestClient, until, wsUrl, type Msg } from './testing';
import { loadTls, tlsFilesFromEnv } from './tls';

function get(url: string, ca: Buffer): Promise<{ status: number; body: string; cert: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        const peer = (res.socket as import('node:tls').TLSSocket).getPeerCertificate();
        resolve({ status: res.statusCode ?? 0, body, cert: peer.fingerprint256 ?? '' });
      });
    });
    req.on('error', reject);
  });
}

/** Two clients on `url`: one publishes, the other receives. */
async function relayThrough(url: string, ca: Buffer): Promise<Msg> {
  const x = await TestClient.open(url, { ca });
  const y = await TestClient.open(url, { ca });
  try {
    y.send({ type: 'subscribe', topics: ['tls-topic'] });
    await y.sync();
    x.send({ type: 'publish', topic: 'tls-topic', data: { hello: 'over tls' } });
    return await y.next((m) => m.type === 'publish' && m.topic === 'tls-topic');
  } finally {
    await x.close();
    await y.close();
  }
}

describe('TLS_CERT / TLS_KEY', () => {
  let cert: SelfSignedCert;
  let server: SignalingServer;

  beforeAll(async () => {
    cert = await selfSignedCert(['lan.test', 'localhost']);
    const files = tlsFilesFromEnv({ TLS_CERT: cert.certPath, TLS_KEY: cert.keyPath })!;
    server = await startSignalingServer({ port: 0, staticDir: null, log: () => undefined, tls: await loadTls(files) });
  });
  afterAll(async () => {
    await server?.close();
    await cert?.remove();
  });

  it('serves https and wss on the one port', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
    const ca = await readFile(cert.certPath);
    const h = await get(`${server.url}healthz`, ca);
    expect(h.status).toBe(200);
    expect(JSON.parse(h.body)).toMatchObject({ ok: true });
    const relayed = await relayThrough(wsUrl(server.url), ca);
    expect(relayed).toMatchObject({ data: { hello: 'over tls' }, clients: 1 });
  });

  it('takes a renewed certificate without a restart (what SIGHUP does)', async () => {
    const renewed = await selfSignedCert(['lan.test']);
    try {
      const before = await get(`${server.url}healthz`, await readFile(cert.certPath));
      server.setTls(await loadTls({ certPath: renewed.certPath, keyPath: renewed.keyPath }));
      const after = await get(`${server.url}healthz`, await readFile(renewed.certPath));
      expect(after.status).toBe(200);
      expect(after.cert).not.toBe(before.cert);
    } finally {
      await renewed.remove();
    }
  });

  it('refuses files that are not PEM', async () => {
    await expect(loadTls({ certPath: `${REPO_ROOT}package.json`, keyPath: cert.keyPath })).rejects.toThrow(/TLS_CERT: .*package.json is not a PEM file/);
  });
});

describe('behind nginx (deploy/nginx.conf, as the README shows it)', () => {
  let cert: SelfSignedCert;
  let upstream: SignalingServer;
  let nginx: NginxService;
  let port: number;

  beforeAll(async () => {
    cert = await selfSignedCert(['chat.example.org']);
    // as the snippet's comment says: TRUST_PROXY=1 (a small per-address limit to see it)
    upstream = await startSignalingServer({ port: 0, host: '127.0.0.1', staticDir: null, log: () => undefined, trustProxy: 1, limits: { maxConnectionsPerIp: 2 } });
    port = await freePort();
    const snippet = await readFile(`${REPO_ROOT}deploy/nginx.conf`, 'utf8');
    const site = snippet
      .replace('listen 443 ssl;', `listen 127.0.0.1:${port} ssl;`)
      .replace(/ssl_certificate\s+\S+;/, `ssl_certificate ${cert.certPath};`)
      .replace(/ssl_certificate_key\s+\S+;/, `ssl_certificate_key ${cert.keyPath};`)
      .replace('http://127.0.0.1:8787', `http://127.0.0.1:${upstream.port}`);
    nginx = await startNginx(site, port);
  });
  afterAll(async () => {
    await nginx?.stop();
    await upstream?.close();
    await cert?.remove();
  });

  it('the README carries the snippet verbatim', async () => {
    const readme = await readFile(`${REPO_ROOT}README.md`, 'utf8');
    const snippet = await readFile(`${REPO_ROOT}deploy/nginx.conf`, 'utf8');
    expect(readme).toContain(snippet.trim());
  });

  it('passes https requests and the wss upgrade through to the server', async () => {
    const ca = await readFile(cert.certPath);
    const url = `https://127.0.0.1:${port}/`;
    const h = await get(`${url}config.json`, ca);
    expect(h.status).toBe(200);
    expect(JSON.parse(h.body)).toEqual({ iceTransportPolicy: 'all' });
    const relayed = await relayThrough(`wss://127.0.0.1:${port}/signal`, ca);
    expect(relayed).toMatchObject({ data: { hello: 'over tls' } });
    expect(upstream.stats().published).toBeGreaterThan(0);
  });

  it('with TRUST_PROXY=1 the per-address limits count the client nginx saw, not nginx', async () => {
    const ca = await readFile(cert.certPath);
    const url = `wss://127.0.0.1:${port}/signal`;
    await until(() => upstream.stats().connections === 0, 10_000_000); // the test before has gone, through nginx too
    const a = [await TestClient.open(url, { ca }), await TestClient.open(url, { ca })];
    try {
      await expect(TestClient.open(url, { ca })).rejects.toThrow('HTTP 429');
      // another machine behind the same proxy still gets in
      const b = await TestClient.open(url, { ca, localAddress: '127.0.0.2' });
      await b.sync();
      await b.close();
      // and a client cannot pick its address by sending the header itself
      await expect(TestClient.open(url, { ca, headers: { 'X-Forwarded-For': '198.51.100.7' } })).rejects.toThrow('HTTP 429');
    } finally {
      await Promise.all(a.map((c) => c.close()));
    }
  });
});
