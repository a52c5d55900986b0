/**
 * Real services for tests and benchmarks, started on free loopback ports: Debian's
 * `redis-server`, coturn's `turnserver`, `nginx`, and a self-signed certificate made
 * with `openssl`. Every process is a child of the test and is stopped by it.
 * Not a test file itself.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, waitForPort } from './testing';

export const REDIS_SERVER = process.env.REDIS_SERVER_PATH ?? '/usr/bin/redis-server';
export const TURNSERVER = process.env.TURNSERVER_PATH ?? '/usr/bin/turnserver';
export const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx';

function need(binary: string, apt: string): void {
  if (!existsSync(binary)) throw new Error(`${binary} is missing: apt-get install ${apt} (.ci/run installs it)`);
}

interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<void>;
}

function run(binary: string, args: string[], cwd?: string): Proc {
  const child = spawn(binary, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (d: Buffer): void => {
    output = (output + d.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, output: () => output, exited };
}

async function stop(p: Proc | null): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const killed = setTimeout(() => p.child.kill('SIGKILL'), 3000);
  await p.exited;
  clearTimeout(killed);
}

async function started(p: Proc, port: number, what: string): Promise<void> {
  try {
    await waitForPort(port, p.child);
  } catch (err) {
    await stop(p);
    throw new Error(`${what} did not start: ${(err as Error).message}\n${p.output()}`);
  }
}

export interface RedisService {
  port: number;
  url: string;
  /** Stops it (SIGTERM, no persistence) / starts it again on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startRedis(): Promise<RedisService> {
  need(REDIS_SERVER, 'redis-server');
  const port = await freePort();
  let proc: Proc | null = null;
  const start = async (): Promise<void> => {
    proc = run(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--loglevel', 'warning']);
    await started(proc, port, 'redis-server');
  };
  await start();
  return { port, url: `redis://127.0.0.1:${port}`, stop: () => stop(proc), start };
}

export interface TurnService {
  port: number;
  secret: string;
  realm: string;
  /** turn:127.0.0.1:<port>?transport=udp */
  url: string;
  output(): string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/**
 * coturn with `use-auth-secret` (the TURN REST API), listening and relaying on 127.0.0.1
 * only, with loopback peers allowed: relay-only ICE between tabs of this machine.
 */
export async function startTurn(secret = `test-secret-${Date.now().toString(36)}`): Promise<TurnService> {
  need(TURNSERVER, 'coturn');
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), 'coturn-'));
  const realm = 'p2p.test';
  let proc: Proc | null = null;
  const start = async (): Promise<void> => {
    proc = run(TURNSERVER, [
      '-n', // no configuration file
      '--listening-ip', '127.0.0.1',
      '--relay-ip', '127.0.0.1',
      '--listening-port', String(port),
      '--allow-loopback-peers',
      '--use-auth-secret',
      '--static-auth-secret', secret,
      '--realm', realm,
      '--fingerprint',
      '--no-tls',
      '--no-dtls',
      '--no-cli',
      '--no-multicast-peers',
      '--userdb', path.join(dir, 'turndb'),
      '--pidfile', path.join(dir, 'turnserver.pid'),
      '--log-file', 'stdout',
      '--simple-log',
    ]);
    await started(proc, port, 'turnserver');
  };
  await start();
  return {
    port,
    secret,
    realm,
    url: `turn:127.0.0.1:${port}?transport=udp`,
    output: () => proc?.output() ?? '',
    stop: () => stop(proc),
    start,
  };
}

export interface SelfSignedCert {
  dir: string;
  certPath: string;
  keyPath: string;
  remove(): Promise<void>;
}

/** A throwaway certificate for the given DNS names (and 127.0.0.1), valid one day. */
export async function selfSignedCert(names: string[]): Promise<SelfSignedCert> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tls-'));
  const certPath = path.join(dir, 'cert.pem');
  const keyPath = path.join(dir, 'key.pem');
  const san = [...names.map((n) => `DNS:${n}`), 'IP:127.0.0.1'].join(',');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', `/CN=${names[0] ?? 'localhost'}`, '-addext', `subjectAltName=${san}`, '-keyout', keyPath, '-out', certPath], { stdio: 'pipe' });
  return { dir, certPath, keyPath, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface NginxService {
  port: number;
  output(): string;
  stop(): Promise<void>;
}

/**
 * nginx in the foreground with `siteConfig` (a `server { … }` block, plus whatever it
 * needs at http level) inside a minimal main configuration; everything under a
 * temporary prefix, so no system file is read or written.
 */
export async function startNginx(siteConfig: string, port: number): Promise<NginxService> {
  need(NGINX, 'nginx');
  const dir = await mkdtemp(path.join(tmpdir(), 'nginx-'));
  const conf = path.join(dir, 'nginx.conf');
  await writeFile(
    conf,
    [
      'worker_processes 1;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log warn;`,
      'events { worker_connections 256; }',
      'http {',
      `  access_log off;`,
      `  client_body_temp_path ${dir}/body;`,
      `  proxy_temp_path ${dir}/proxy;`,
      `  fastcgi_temp_path ${dir}/fastcgi;`,
      `  uwsgi_temp_path ${dir}/uwsgi;`,
      `  scgi_temp_path ${dir}/scgi;`,
      siteConfig,
      '}',
      '',
    ].join('\n'),
  );
  const proc = run(NGINX, ['-p', dir, '-c', conf, '-e', `${dir}/error.log`, '-g', 'daemon off;'], dir);
  await started(proc, port, 'nginx');
  return {
    port,
    output: () => proc.output(),
    stop: async () => {
      await stop(proc);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
