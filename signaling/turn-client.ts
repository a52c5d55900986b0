/**
 * A minimal TURN client (RFC 5766 Allocate over UDP, long-term credentials, RFC 5389
 * message integrity), for tests that ask a real TURN server whether it accepts a
 * credential. Not a test file itself.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';

const MAGIC = 0x2112a442;
const ALLOCATE = 0x0003;
const ALLOCATE_OK = 0x0103;
const ALLOCATE_ERROR = 0x0113;
const ATTR = { USERNAME: 0x0006, MESSAGE_INTEGRITY: 0x0008, ERROR_CODE: 0x0009, REALM: 0x0014, NONCE: 0x0015, REQUESTED_TRANSPORT: 0x0019 } as const;

type Attr = [type: number, value: Buffer];

function attrBytes([type, value]: Attr): Buffer {
  const pad = (4 - (value.length % 4)) % 4;
  const out = Buffer.alloc(4 + value.length + pad);
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(value.length, 2);
  value.copy(out, 4);
  return out;
}

/** A STUN message; with `key`, MESSAGE-INTEGRITY over everything before it. */
function encode(method: number, tid: Buffer, attrs: Attr[], key?: Buffer): Buffer {
  const body = Buffer.concat(attrs.map(attrBytes));
  const header = Buffer.alloc(20);
  header.writeUInt16BE(method, 0);
  header.writeUInt32BE(MAGIC, 4);
  tid.copy(header, 8);
  if (!key) {
    header.writeUInt16BE(body.length, 2);
    return Buffer.concat([header, body]);
  }
  // the length counts the MESSAGE-INTEGRITY attribute (4 + 20 bytes) it covers
  header.writeUInt16BE(body.length + 24, 2);
  const mac = createHmac('sha1', key).update(Buffer.concat([header, body])).digest();
  return Buffer.concat([header, body, attrBytes([ATTR.MESSAGE_INTEGRITY, mac])]);
}

interface Decoded {
  type: number;
  tid: Buffer;
  attrs: Map<number, Buffer>;
}

function decode(msg: Buffer): Decoded | null {
  if (msg.length < 20 || msg.readUInt32BE(4) !== MAGIC) return null;
  const attrs = new Map<number, Buffer>();
  let off = 20;
  const end = 20 + msg.readUInt16BE(2);
  while (off + 4 <= end && off + 4 <= msg.length) {
    const type = msg.readUInt16BE(off);
    const len = msg.readUInt16BE(off + 2);
    if (!attrs.has(type)) attrs.set(type, msg.subarray(off + 4, off + 4 + len));
    off += 4 + len + ((4 - (len % 4)) % 4);
  }
  return { type: msg.readUInt16BE(0), tid: msg.subarray(8, 20), attrs };
}

function errorCode(d: Decoded): number | null {
  const v = d.attrs.get(ATTR.ERROR_CODE);
  return v && v.length >= 4 ? (v[2]! & 0x7) * 100 + v[3]! : null;
}

export interface AllocateResult {
  ok: boolean;
  /** STUN error code of the authenticated attempt (401 Unauthorized, 438 Stale Nonce, …), null on success. */
  error: number | null;
}

/**
 * Allocate on `host:port` with a long-term credential: the first request gets the
 * realm and nonce (401), the second carries the credential.
 */
export async function tryAllocate(host: string, port: number, username: string, password: string, timeoutMs = 3000): Promise<AllocateResult> {
  const socket = dgram.createSocket('udp4');
  const transport: Attr = [ATTR.REQUESTED_TRANSPORT, Buffer.from([17, 0, 0, 0])]; // UDP
  const exchange = (msg: Buffer, tid: Buffer): Promise<Decoded> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.off('message', onMessage);
        reject(new Error(`no answer from TURN ${host}:${port} within ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (data: Buffer): void => {
        const d = decode(data);
        if (!d || !d.tid.equals(tid)) return;
        clearTimeout(timer);
        socket.off('message', onMessage);
        resolve(d);
      };
      socket.on('message', onMessage);
      socket.send(msg, port, host);
    });
  try {
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const tid1 = randomBytes(12);
    const challenge = await exchange(encode(ALLOCATE, tid1, [transport]), tid1);
    const realm = challenge.attrs.get(ATTR.REALM);
    const nonce = challenge.attrs.get(ATTR.NONCE);
    if (challenge.type !== ALLOCATE_ERROR || errorCode(challenge) !== 401 || !realm || !nonce) {
      throw new Error(`unexpected answer to an unauthenticated Allocate: type 0x${challenge.type.toString(16)}, error ${errorCode(challenge)}`);
    }
    const key = createHash('md5').update(`${username}:${realm.toString()}:${password}`).digest();
    const auth: Attr[] = [[ATTR.USERNAME, Buffer.from(username)], [ATTR.REALM, realm], [ATTR.NONCE, nonce]];
    const tid2 = randomBytes(12);
    const answer = await exchange(encode(ALLOCATE, tid2, [transport, ...auth], key), tid2);
    // a granted allocation is left to expire (the tests stop the TURN server anyway)
    if (answer.type === ALLOCATE_OK) return { ok: true, error: null };
    return { ok: false, error: errorCode(answer) };
  } finally {
    socket.close();
  }
}
