/**
 * The cluster secret: keys derived from it, the signaling topics they name, and the
 * AES-GCM encryption of everything published on signaling.
 *
 *   master  = PBKDF2-SHA256(secret, salt "p2p-cluster/1|" + cluster, KDF_ITERATIONS)
 *   K_topic = HKDF-SHA256(master, info "p2p/topic")  HMAC-SHA256: topic names
 *   K_enc   = HKDF-SHA256(master, info "p2p/enc")    AES-GCM-256: signaling payloads
 *   K_link  = HKDF-SHA256(master, info "p2p/link")   HMAC-SHA256: the link hello's MAC
 *
 * PBKDF2 is slow on purpose (an outsider who captured a payload must pay it for every
 * guess of the secret); HKDF then separates the uses, so no key serves two purposes.
 * Every derived key is non-extractable. The salt binds the keys to the cluster name: one
 * secret used for two clusters gives unrelated keys.
 */
import { fromBase64, own, toBase64, toBase64Url, utf8 } from './bytes';

/** OWASP's 2023 figure for PBKDF2-HMAC-SHA256. */
export const KDF_ITERATIONS = 310_000;
/** Characters of base64url kept of a topic's HMAC: 132 bits. */
export const TOPIC_CHARS = 22;
const IV_BYTES = 12;

export interface ClusterKeys {
  topic: CryptoKey;
  enc: CryptoKey;
  link: CryptoKey;
}

const HMAC = { name: 'HMAC', hash: 'SHA-256', length: 256 } as const;

export async function deriveClusterKeys(cluster: string, secret: string, iterations = KDF_ITERATIONS): Promise<ClusterKeys> {
  const s = crypto.subtle;
  const base = await s.importKey('raw', own(utf8(secret)), 'PBKDF2', false, ['deriveBits']);
  const bits = await s.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: own(utf8(`p2p-cluster/1|${cluster}`)), iterations }, base, 256);
  const master = await s.importKey('raw', bits, 'HKDF', false, ['deriveKey']);
  const hkdf = (info: string) => ({ name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: own(utf8(info)) });
  const [topic, enc, link] = await Promise.all([
    s.deriveKey(hkdf('p2p/topic'), master, HMAC, false, ['sign']),
    s.deriveKey(hkdf('p2p/enc'), master, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']),
    s.deriveKey(hkdf('p2p/link'), master, HMAC, false, ['sign', 'verify']),
  ]);
  return { topic, enc, link };
}

async function hmac(key: CryptoKey, data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign('HMAC', key, own(data)));
}

/** The cluster's announce topic: nobody without the secret can name it. */
export async function clusterTopic(keys: ClusterKeys): Promise<string> {
  return toBase64Url(await hmac(keys.topic, utf8('cluster'))).slice(0, TOPIC_CHARS);
}

/** A node's inbox topic: nobody without the secret can tell whose inbox a topic is. */
export async function nodeTopic(keys: ClusterKeys, id: string): Promise<string> {
  return toBase64Url(await hmac(keys.topic, utf8(`node|${id}`))).slice(0, TOPIC_CHARS);
}

/** HMAC of a link transcript with K_link (the hello's proof of the secret). */
export function linkMac(keys: ClusterKeys, data: Uint8Array): Promise<Uint8Array> {
  return hmac(keys.link, data);
}

/** Constant-time check of a link MAC. */
export async function checkLinkMac(keys: ClusterKeys, mac: Uint8Array, data: Uint8Array): Promise<boolean> {
  return crypto.subtle.verify('HMAC', keys.link, own(mac), own(data));
}

/**
 * `base64(iv | AES-GCM(K_enc, iv, plaintext, aad))`. The additional data is the topic
 * the payload is published on, so a payload moved to another topic fails to decrypt.
 */
export async function encryptPayload(keys: ClusterKeys, plaintext: Uint8Array, aad: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: own(utf8(aad)) }, keys.enc, own(plaintext)));
  const out = new Uint8Array(IV_BYTES + ct.byteLength);
  out.set(iv);
  out.set(ct, IV_BYTES);
  return toBase64(out);
}

/** The plaintext, or null when the payload is not base64, too short, or fails authentication. */
export async function decryptPayload(keys: ClusterKeys, payload: string, aad: string): Promise<Uint8Array | null> {
  const bytes = fromBase64(payload);
  if (!bytes || bytes.byteLength < IV_BYTES + 16) return null;
  try {
    const pt = await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: own(bytes.subarray(0, IV_BYTES)), additionalData: own(utf8(aad)) },
      keys.enc,
      own(bytes.subarray(IV_BYTES)),
    );
    return new Uint8Array(pt);
  } catch (e) {
    // WebCrypto reports a failed tag check as an OperationError: wrong key or tampered bytes
    if (e instanceof DOMException && e.name === 'OperationError') return null;
    throw e;
  }
}
