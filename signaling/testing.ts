/**
 * Test and benchmark helpers: a WebSocket client that queues what it receives,
 * a raw TCP WebSocket client for frames `ws` will not send (or for a peer that
 * stops reading), and the stock y-webrtc server as a child process.
 * Not a test file itself (no `.test.ts`), so Vitest does not collect it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { WebSocket, type ClientOptions } from 'ws';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const STOCK_SERVER = fileURLToPath(new URL('../node_modules/y-webrtc/bin/server.js', import.meta.url));

// Any JSON message from the server; tests read fields loosely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Msg = Record<string, any>;

interface Waiter {
  match: (m: Msg) => boolean;
  resolve: (m: Msg) => void;
}

export class TestClient {
  /** Received and not yet taken by `next`. */
  readonly inbox: Msg[] = [];
  /** Text frames that were not JSON (should never happen). */
  readonly garbage: string[] = [];
  private readonly waiters: Waiter[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const text = data.toString('utf8');
      let m: Msg;
      try {
        m = JSON.parse(text) as Msg;
      } catch (err) {
        this.garbage.push(`${isBinary ? 'binary' : 'text'}: ${text.slice(0, 80)} (${String(err)})`);
        return;
      }
      const i = this.waiters.findIndex((w) => w.match(m));
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
      else this.inbox.push(m);
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }));
    });
    // A server that drops us makes `ws` emit errors (e.g. ECONNRESET); the
    // `closed` promise is how tests observe that.
    ws.on('error', () => undefined);
  }

  static open(url: string, options?: ClientOptions): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options);
      const client = new TestClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  sendRaw(data: string | Buffer, binary = typeof data !== 'string'): void {
    this.ws.send(data, { binary });
  }

  /** Resolves with the first message (received or to come) that matches. */
  next(match: (m: Msg) => boolean = () => true): Promise<Msg> {
    const i = this.inbox.findIndex(match);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]!);
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  nextOfType(type: string): Promise<Msg> {
    return this.next((m) => m.type === type);
  }

  /** ping → pong. The server handles a connection's frames in order, so on
   * return everything it sent us before the pong is in `inbox`. */
  async sync(): Promise<void> {
    this.send({ type: 'ping' });
    await this.nextOfType('pong');
  }

  close(): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
    return this.closed;
  }
}

export function wsUrl(httpUrl: string, path = '/'): string {
  return httpUrl.replace(/^http/, 'ws').replace(/\/$/, '') + path;
}

/** Publishes on a fresh topic and waits for the relay: proof that a client is
 * still being served. Returns the relayed message. */
let probeCounter = 0;
export async function assertRelayWorks(client: TestClient): Promise<Msg> {
  const topic = `probe-${++probeCounter}-${randomBytes(4).toString('hex')}`;
  client.send({ type: 'subscribe', topics: [topic] });
  client.send({ type: 'publish', topic, data: { probe: probeCounter } });
  const relayed = await client.next((m) => m.type === 'publish' && m.topic === topic);
  client.send({ type: 'unsubscribe', topics: [topic] });
  await client.sync();
  return relayed;
}

/** Waits until `condition()` holds, checking after each turn of the event
 * loop; for state that settles asynchronously (a close seen by the server).
 * Bounded by a number of turns, not by a clock. */
export async function until(condition: () => boolean, turns = 100_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('condition never became true');
}

// ---- raw WebSocket over TCP -------------------------------------------------

/** A client frame (masked, as RFC 6455 requires from clients). */
export function clientFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const mask = randomBytes(4);
  const len = payload.length;
  const header: number[] = [(fin ? 0x80 : 0) | opcode];
  if (len < 126) header.push(0x80 | len);
  else if (len < 65536) header.push(0x80 | 126, len >> 8, len & 0xff);
  else {
    header.push(0x80 | 127, 0, 0, 0, 0);
    header.push((len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff);
  }
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = payload[i]! ^ mask[i % 4]!;
  return Buffer.concat([Buffer.from(header), mask, masked]);
}

/** Opens a TCP connection and completes the WebSocket handshake by hand. */
export function rawWebSocket(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host);
    let buffered = Buffer.alloc(0);
    socket.once('error', reject);
    socket.on('connect', () => {
      socket.write(
        'GET / HTTP/1.1\r\n' +
          `Host: ${host}:${port}\r\n` +
          'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
          'Sec-WebSocket-Version: 13\r\n\r\n',
      );
    });
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const head = buffered.subarray(0, end).toString();
      if (!head.startsWith('HTTP/1.1 101')) {
        socket.destroy();
        reject(new Error(`handshake refused: ${head.split('\r\n')[0]}`));
        return;
      }
      socket.off('error', reject);
      resolve(socket);
    };
    socket.on('data', onData);
  });
}

// ---- processes -----------------------------------------------------------------

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on the port. */
export async function waitForPort(port: number, child: ChildProcess, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server process exited (${child.exitCode ?? child.signalCode})`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on port ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface ChildServer {
  port: number;
  url: string;
  child: ChildProcess;
  output: () => string;
  stop(): Promise<number | null>;
}

async function startChild(command: string, args: string[], env: NodeJS.ProcessEnv, port: number): Promise<ChildServer> {
  const child = spawn(command, args, { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await waitForPort(port, child);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${output}`);
  }
  return {
    port,
    url: `http://127.0.0.1:${port}/`,
    child,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** The stock `y-webrtc-signaling` server from node_modules, on a free port. */
export async function startStockServer(): Promise<ChildServer> {
  const port = await freePort();
  return startChild(process.execPath, [STOCK_SERVER], { PORT: String(port) }, port);
}

/** Our server's CLI as a child process (one node process, so its RSS is the server's). */
export async function startOurServerProcess(env: NodeJS.ProcessEnv = {}): Promise<ChildServer> {
  const port = await freePort();
  return startChild(process.execPath, ['--import', 'tsx', 'signaling/main.ts'], { PORT: String(port), HOST: '127.0.0.1', ...env }, port);
}
