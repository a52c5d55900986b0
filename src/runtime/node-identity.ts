/**
 * The node's identity as the runtime uses it: its Ed25519 key pair (src/trust/keys.ts),
 * the id derived from the public key, and a `sign` that never exposes the private key.
 *
 * The key pair lives in the node's own metadata database (`p2p-node-<id>-meta`, key
 * `identity`) as CryptoKeys (IndexedDB stores them by structured clone; the private key
 * is not extractable, so its bytes never reach script). A reload finds the key under the
 * id it kept in sessionStorage; a stored id whose key is missing, or whose key does not
 * hash to it (a store of an older version), is not used: the node takes a fresh identity
 * and the old store, unlocked, is adopted like an orphan's (orphans.ts). Orphan adoption
 * deletes the orphan's databases, its key with them.
 */
import { createStore, set } from 'idb-keyval';
import { generateIdentity, identityOf, PublicKeys, sign, type Identity } from '../trust/keys';
import { kvDbName, readDatabase } from '../storage/store';

/** What the runtime (links, signaling, signed messages) needs of the node's identity. */
export interface NodeIdentity {
  readonly id: string;
  /** Raw Ed25519 public key (32 bytes). */
  readonly pub: Uint8Array;
  /** An Ed25519 signature over `data` by this node. */
  sign(data: Uint8Array): Promise<Uint8Array>;
  /** Public keys of other nodes, checked against their ids once (shared by every verifier of this node). */
  readonly keys: PublicKeys;
}

interface StoredKeys {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

const IDENTITY_KEY = 'identity';

export function nodeIdentity(i: Identity, keys = new PublicKeys()): NodeIdentity {
  return { id: i.id, pub: i.pub, sign: (data) => sign(i.privateKey, data), keys };
}

function metaStore(id: string) {
  return createStore(`${kvDbName(id)}-meta`, 'meta');
}

function isStoredKeys(v: unknown): v is StoredKeys {
  if (typeof v !== 'object' || v === null) return false;
  const k = v as Record<string, unknown>;
  return typeof CryptoKey !== 'undefined' && k.privateKey instanceof CryptoKey && k.publicKey instanceof CryptoKey;
}

/**
 * The identity stored for `id`, or null when there is none or its key does not hash to `id`.
 * Read without keeping a connection open (an open one would hold up deleting the store
 * when it is adopted as an orphan's, orphans.ts), and without creating a missing store.
 */
export async function storedIdentity(id: string): Promise<Identity | null> {
  const rows = await readDatabase(`${kvDbName(id)}-meta`, 'meta');
  const v = rows.find(([k]) => k === IDENTITY_KEY)?.[1];
  if (!isStoredKeys(v)) return null;
  const identity = await identityOf(v.privateKey, v.publicKey);
  return identity.id === id ? identity : null;
}

/** A fresh identity, written to its own store before it is used (a reload must find it). */
export async function freshIdentity(persist = true): Promise<Identity> {
  const identity = await generateIdentity();
  if (persist) await set(IDENTITY_KEY, { privateKey: identity.privateKey, publicKey: identity.publicKey } satisfies StoredKeys, metaStore(identity.id));
  return identity;
}
