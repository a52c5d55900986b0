/**
 * Node identities: Ed25519 key pairs (WebCrypto) and the node id derived from the public
 * key, so that an id is self-certifying: whoever shows a public key that hashes to the id
 * and a signature by that key speaks for the id.
 *
 *   id = "n" + the first 16 characters of base32(SHA-256(raw public key))
 *
 * 16 base32 characters are 80 bits: finding another key for a given id (a second
 * preimage) takes about 2^80 hashes, out of anyone's reach; two honest ids colliding by
 * chance needs about 2^40 nodes.
 */
import { base32, equalBytes, own } from './bytes';

export const ID_HASH_CHARS = 16;
export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
/** What a node id derived from a key looks like. */
export const KEY_ID_RE = /^n[a-z2-7]{16}$/;

const ED25519 = { name: 'Ed25519' } as const;

export interface Identity {
  id: string;
  /** Raw public key (32 bytes). */
  pub: Uint8Array;
  /** Non-extractable: it never leaves WebCrypto, and IndexedDB stores it as it is. */
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

export async function nodeIdOf(pub: Uint8Array): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest('SHA-256', own(pub)));
  return `n${base32(h).slice(0, ID_HASH_CHARS)}`;
}

/** A fresh key pair and its id; the private key is not extractable. */
export async function generateIdentity(): Promise<Identity> {
  const pair = (await crypto.subtle.generateKey(ED25519, false, ['sign', 'verify'])) as CryptoKeyPair;
  return identityOf(pair.privateKey, pair.publicKey);
}

/** The identity of a stored key pair (the public key is always exportable). */
export async function identityOf(privateKey: CryptoKey, publicKey: CryptoKey): Promise<Identity> {
  const pub = new Uint8Array(await crypto.subtle.exportKey('raw', publicKey));
  return { id: await nodeIdOf(pub), pub, privateKey, publicKey };
}

export async function sign(privateKey: CryptoKey, data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign(ED25519, privateKey, own(data)));
}

/** Why a signature was refused, or null when it verifies. */
export type VerifyResult = null | 'bad key' | 'wrong key for id' | 'bad signature';

interface Known {
  pub: Uint8Array;
  key: Promise<CryptoKey | null>;
}

/**
 * Public keys by node id, learned from hellos, signed messages and membership proofs:
 * a key whose hash was checked once against its id is not hashed again, nor imported
 * again. Bounded (least recently used dropped).
 */
export class PublicKeys {
  private readonly known = new Map<string, Known>();
  /** Signatures checked, and how many of them needed the id check and import. */
  readonly stats = { verified: 0, refused: 0, imports: 0 };

  constructor(private readonly max = 4096) {}

  /** Does `sig` by the key `pub`, which must hash to `id`, cover `data`? */
  async verify(id: string, pub: Uint8Array, sig: Uint8Array, data: Uint8Array): Promise<VerifyResult> {
    const r = await this.check(id, pub, sig, data);
    if (r === null) this.stats.verified++;
    else this.stats.refused++;
    return r;
  }

  private async check(id: string, pub: Uint8Array, sig: Uint8Array, data: Uint8Array): Promise<VerifyResult> {
    if (pub.byteLength !== PUBLIC_KEY_BYTES) return 'bad key';
    if (sig.byteLength !== SIGNATURE_BYTES) return 'bad signature';
    const key = await this.keyFor(id, pub);
    if (key === 'mismatch') return 'wrong key for id';
    if (key === null) return 'bad key';
    return (await crypto.subtle.verify(ED25519, key, own(sig), own(data))) ? null : 'bad signature';
  }

  /** The imported key of `id` when `pub` is its key; 'mismatch' when `pub` does not hash to `id`. */
  private async keyFor(id: string, pub: Uint8Array): Promise<CryptoKey | null | 'mismatch'> {
    const k = this.known.get(id);
    if (k && equalBytes(k.pub, pub)) {
      // most recently used last
      this.known.delete(id);
      this.known.set(id, k);
      return k.key;
    }
    if ((await nodeIdOf(pub)) !== id) return 'mismatch';
    const copy = new Uint8Array(pub);
    this.stats.imports++;
    const entry: Known = { pub: copy, key: importPublicKey(copy) };
    this.known.set(id, entry);
    if (this.known.size > this.max) this.known.delete(this.known.keys().next().value!);
    return entry.key;
  }
}

/** null when the bytes are not an Ed25519 public key WebCrypto accepts. */
async function importPublicKey(pub: Uint8Array): Promise<CryptoKey | null> {
  try {
    return await crypto.subtle.importKey('raw', own(pub), ED25519, true, ['verify']);
  } catch (e) {
    if (e instanceof DOMException || e instanceof TypeError) return null;
    throw e;
  }
}
