/**
 * Byte helpers of the trust module: UTF-8, base32 (node ids), base64url (topics, keys in
 * JSON), base64, and the unambiguous transcript every signature and MAC is computed over.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** UTF-8 decoding that refuses invalid sequences (null then). */
export function fromUtf8(b: Uint8Array): string | null {
  try {
    return decoder.decode(b);
  } catch (e) {
    if (e instanceof TypeError) return null;
    throw e;
  }
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  let d = 0;
  for (let i = 0; i < a.byteLength; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/**
 * The bytes a signature or MAC covers: a label naming the purpose and version (domain
 * separation: a signature made for one purpose never verifies for another), then every
 * part as a 4-byte big-endian length and its bytes. Strings are UTF-8, numbers their
 * decimal form. The lengths make the encoding injective: no two part lists share bytes.
 */
export function transcript(label: string, ...parts: readonly (string | number | Uint8Array)[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const p of [label, ...parts]) {
    const b = typeof p === 'string' ? utf8(p) : typeof p === 'number' ? utf8(String(p)) : p;
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, b.byteLength);
    chunks.push(len, b);
  }
  return concatBytes(chunks);
}

const B32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** RFC 4648 base32, lowercase, no padding. */
export function base32(b: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const x of b) {
    value = (value << 8) | x;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

export function toBase64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

/** null for anything that is not base64. */
export function fromBase64(s: string): Uint8Array | null {
  let bin: string;
  try {
    bin = atob(s);
  } catch (e) {
    if (e instanceof DOMException || e instanceof Error) return null;
    throw e;
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** base64url without padding (RFC 4648 §5). */
export function toBase64Url(b: Uint8Array): string {
  return toBase64(b).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromBase64Url(s: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) return null;
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  return fromBase64(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
}

export function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

/** The bytes as an ArrayBuffer-backed view (what WebCrypto's BufferSource takes); copied only when shared memory backs them. */
export function own(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return b.buffer instanceof ArrayBuffer ? (b as Uint8Array<ArrayBuffer>) : new Uint8Array(b);
}
