/**
 * The cluster secret of this tab: where it comes from, the keys derived from it, and the
 * signaling topics those keys name (see src/trust/secret.ts for the derivation and
 * docs/security.md, "Cluster secret").
 *
 * Sources, first found wins:
 *   - the URL fragment `#secret=...` (a fragment is never sent to a server; a share link
 *     carries it). It is taken out of the address bar once read, so it does not stay on
 *     screen or in the history, and remembered like a typed one;
 *   - sessionStorage (`p2p-secret:<cluster>`): what the secret dialog stored, or an earlier
 *     fragment, so a reload of this tab keeps its cluster.
 * Without a secret the cluster is open.
 *
 * PBKDF2 with 310,000 iterations takes a few hundred ms, so the derived keys (non-extractable
 * CryptoKeys, stored by structured clone) are cached in IndexedDB under
 * SHA-256(transcript(cluster, secret)); a reload finds them there.
 */
import { deriveClusterKeys, clusterTopic, nodeTopic, type ClusterKeys, TOPIC_CHARS } from '../trust/secret';
import { own, toBase64Url, toHex, transcript } from '../trust/bytes';

const STORAGE_PREFIX = 'p2p-secret:';
const FRAGMENT_KEY = 'secret';
/** Longest secret accepted (a passphrase; longer input is a paste mistake). */
export const MAX_SECRET_CHARS = 256;

/** What a node with a secret holds: the keys and the names of its fixed topics. */
export interface ClusterSecret {
  keys: ClusterKeys;
  /** HMAC(K_topic, "cluster"): the announce topic. */
  clusterTopic: string;
  /**
   * SHA-256 of the cluster name, no secret: the topic on which tabs holding different
   * secrets for one cluster notice each other (and tell their users "wrong secret?").
   */
  lobbyTopic: string;
  /** A node's inbox topic, HMAC(K_topic, "node|" + id). */
  nodeTopic(id: string): Promise<string>;
  /** How the keys were obtained and how long it took (ms). */
  derivation: { cached: boolean; ms: number };
}

/** A trimmed secret, or null when empty or too long. */
export function normalizeSecret(s: string | null | undefined): string | null {
  if (typeof s !== 'string') return null;
  const t = s.trim();
  return t.length === 0 || t.length > MAX_SECRET_CHARS ? null : t;
}

/** The `secret` of a URL fragment (`#secret=...`, form-encoded like a query), or null. */
export function secretFromFragment(hash: string): string | null {
  if (!hash.startsWith('#')) return null;
  return normalizeSecret(new URLSearchParams(hash.slice(1)).get(FRAGMENT_KEY));
}

/** The fragment that carries `secret` (for share links). */
export function secretFragment(secret: string): string {
  return `#${new URLSearchParams({ [FRAGMENT_KEY]: secret }).toString()}`;
}

export function storedSecret(storage: Pick<Storage, 'getItem'>, cluster: string): string | null {
  return normalizeSecret(storage.getItem(STORAGE_PREFIX + cluster));
}

/** Remembers (or, with null, forgets) this tab's secret of `cluster`. */
export function rememberSecret(storage: Pick<Storage, 'setItem' | 'removeItem'>, cluster: string, secret: string | null): void {
  if (secret === null) storage.removeItem(STORAGE_PREFIX + cluster);
  else storage.setItem(STORAGE_PREFIX + cluster, secret);
}

/**
 * This page's secret for `cluster`: the fragment's (remembered, and removed from the
 * address bar), else the remembered one, else null (an open cluster).
 */
export function pageSecret(
  cluster: string,
  env: { location: Pick<Location, 'hash' | 'href'>; history: Pick<History, 'replaceState'>; storage: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> },
): string | null {
  const fromFragment = secretFromFragment(env.location.hash);
  if (fromFragment !== null) {
    rememberSecret(env.storage, cluster, fromFragment);
    const url = new URL(env.location.href);
    url.hash = '';
    env.history.replaceState(null, '', url.toString());
    return fromFragment;
  }
  return storedSecret(env.storage, cluster);
}

/** The lobby topic of `cluster` (no secret involved; see ClusterSecret.lobbyTopic). */
export async function lobbyTopic(cluster: string): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest('SHA-256', own(transcript('p2p-lobby/1', cluster))));
  return toBase64Url(h).slice(0, TOPIC_CHARS);
}

/** The cluster secret's keys and topics, from the IndexedDB cache when they are there. */
export async function openClusterSecret(cluster: string, secret: string, cache: KeyCache | null = idbKeyCache()): Promise<ClusterSecret> {
  const t0 = performance.now();
  const cacheKey = toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', own(transcript('p2p-keycache/1', cluster, secret)))));
  let keys = cache ? await cache.get(cacheKey) : null;
  const cached = keys !== null;
  if (!keys) {
    keys = await deriveClusterKeys(cluster, secret);
    if (cache) await cache.put(cacheKey, keys);
  }
  const k = keys;
  const topics = new Map<string, Promise<string>>();
  return {
    keys: k,
    clusterTopic: await clusterTopic(k),
    lobbyTopic: await lobbyTopic(cluster),
    nodeTopic(id) {
      let t = topics.get(id);
      if (!t) {
        t = nodeTopic(k, id);
        if (topics.size >= 4096) topics.delete(topics.keys().next().value!);
        topics.set(id, t);
      }
      return t;
    },
    derivation: { cached, ms: Math.round(performance.now() - t0) },
  };
}

/** Where derived keys are kept between page loads. */
export interface KeyCache {
  get(key: string): Promise<ClusterKeys | null>;
  put(key: string, keys: ClusterKeys): Promise<void>;
}

const DB_NAME = 'p2p-cluster-keys';
const STORE = 'keys';
/** Entries kept; a new secret beyond this clears the cache (each entry is a few small keys). */
const MAX_ENTRIES = 16;

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });
}

function isKeys(v: unknown): v is ClusterKeys {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return o.topic instanceof CryptoKey && o.enc instanceof CryptoKey && o.link instanceof CryptoKey;
}

/** The IndexedDB cache, or null where there is no IndexedDB (the keys are then derived every time). */
export function idbKeyCache(): KeyCache | null {
  if (typeof indexedDB === 'undefined') return null;
  let db: Promise<IDBDatabase> | null = null;
  const open = (): Promise<IDBDatabase> => {
    db ??= new Promise((resolve, reject) => {
      const r = indexedDB.open(DB_NAME, 1);
      r.onupgradeneeded = () => r.result.createObjectStore(STORE);
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error ?? new Error('IndexedDB open failed'));
    });
    return db;
  };
  return {
    async get(key) {
      const d = await open();
      const v: unknown = await request(d.transaction(STORE, 'readonly').objectStore(STORE).get(key));
      return isKeys(v) ? v : null;
    },
    async put(key, keys) {
      const d = await open();
      const store = d.transaction(STORE, 'readwrite').objectStore(STORE);
      if ((await request(store.count())) >= MAX_ENTRIES) await request(store.clear());
      await request(store.put(keys, key));
    },
  };
}
