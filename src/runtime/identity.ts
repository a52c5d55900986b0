/**
 * Node identity. The id is derived from the node's Ed25519 public key (node-identity.ts
 * keeps the key pair in the node's own IndexedDB store); the id lives in sessionStorage
 * so a reload keeps it (and finds its store and key again). A duplicated tab copies sessionStorage, so the id is also
 * guarded by a Web Lock held for the page's lifetime: a second live tab cannot take
 * the lock and picks a fresh id instead.
 */
import { freshIdentity, storedIdentity } from './node-identity';
import type { Identity } from '../trust/keys';

const KEY = 'p2p.nodeId';
/** Written by a page of this tab as it goes away for good: the id it held is free. */
const LEFT_KEY = 'p2p.leftBy';
const ID_RE = /^n[0-9a-z]{6,32}$/;
export const LOCK_PREFIX = 'p2p-node-';

/** The id this tab had before a reload, if any (not yet checked against the lock). */
export function storedNodeId(): string | null {
  try {
    const s = sessionStorage.getItem(KEY);
    return s && ID_RE.test(s) ? s : null;
  } catch {
    return null;
  }
}

const NEIGHBOURS_KEY = 'p2p.neighbours';

/** A page going away notes its overlay neighbours for the next page of this tab. */
export function rememberNeighbours(ids: string[]): void {
  try {
    sessionStorage.setItem(NEIGHBOURS_KEY, JSON.stringify(ids.slice(0, 16)));
  } catch {
    // the next page rejoins through signaling alone
  }
}

/** The neighbours the previous page of this tab noted (read once), valid ids only. */
export function previousNeighbours(): string[] {
  try {
    const raw = sessionStorage.getItem(NEIGHBOURS_KEY);
    sessionStorage.removeItem(NEIGHBOURS_KEY);
    const v: unknown = raw ? JSON.parse(raw) : [];
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && ID_RE.test(x)).slice(0, 16) : [];
  } catch {
    return [];
  }
}

/** Releases the node id's lock (held since acquireIdentity or claimIdentity); the page lives until then. */
let releaseHeld: (() => void) | null = null;

/**
 * The page is going away for good (pagehide, not into the back/forward cache): note in
 * sessionStorage, which only this tab sees, that the id is free for the next page of the
 * tab. The lock itself stays held until the browser tears the document down: a free lock
 * means an orphaned store (orphans.ts), and a reloading tab is no orphan. The next page
 * takes the lock over with `steal` (reclaimNodeId) instead of waiting for the teardown.
 */
export function noteLeaving(): void {
  if (!releaseHeld) return;
  try {
    const id = sessionStorage.getItem(KEY);
    if (id) sessionStorage.setItem(LEFT_KEY, id);
  } catch {
    // without sessionStorage the next page of this tab waits for the lock instead
  }
}

/**
 * Did the previous page of this very tab say, as it went away, that it let go of `id`?
 * Read once: the note is removed, so a tab duplicated later does not copy it.
 */
function leftByPreviousPage(id: string): boolean {
  try {
    const left = sessionStorage.getItem(LEFT_KEY);
    sessionStorage.removeItem(LEFT_KEY);
    return left === id;
  } catch {
    return false;
  }
}

/**
 * Holds a lock until the page goes away; resolves true when acquired.
 * `steal`: take it even if held (only for a lock the holder has said it let go of).
 */
function holdLock(name: string, waitMs: number, steal = false): Promise<boolean> {
  if (!('locks' in navigator)) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const ctrl = new AbortController();
    const timer = steal ? undefined : setTimeout(() => ctrl.abort(), waitMs);
    navigator.locks
      .request(name, steal ? { steal: true } : { signal: ctrl.signal }, () => {
        clearTimeout(timer);
        resolve(true);
        // held while the page lives
        return new Promise<void>((release) => void (releaseHeld = release));
      })
      .catch((e: unknown) => {
        clearTimeout(timer);
        if (e instanceof DOMException && e.name === 'AbortError') resolve(false);
        else throw e;
      });
  });
}

/**
 * A reload's fast path. The browser frees the previous page's lock only once that
 * document is torn down, 240–520 ms into a reload in the bench. So a page going away for
 * good notes in sessionStorage (which only this tab sees) that it let go of the id
 * (noteLeaving); the next page of the tab, finding the note, takes the id at once and
 * the lock with `steal`, without waiting. The lock is held all along, so no other tab
 * takes the reloading tab's store for an orphan. A duplicated tab never sees the
 * note: it is read and removed here, and a live page has not written it.
 * Returns the id, or null when the slow path (acquireIdentity) must decide.
 */
export function reclaimNodeId(): string | null {
  const id = storedNodeId();
  if (id === null || !leftByPreviousPage(id)) return null;
  void holdLock(LOCK_PREFIX + id, 0, true);
  return id;
}

/** Lets go of the lock taken by reclaimNodeId or acquireIdentity (the id will not be used). */
function releaseLock(): void {
  const held = releaseHeld;
  releaseHeld = null;
  held?.();
}

/**
 * The identity of the id reclaimNodeId took back, or null when its store holds no key for
 * it (an older store): the lock is then let go, so that the old store becomes an orphan
 * this node adopts, and the caller takes acquireIdentity's fresh identity.
 */
export async function reclaimedIdentity(id: string): Promise<Identity | null> {
  const identity = await storedIdentity(id);
  if (!identity) releaseLock();
  return identity;
}

/**
 * The identity for this tab. A reload gets its old id and key back once the previous
 * document released the lock (allow it a moment); a duplicate of a live tab, a new tab,
 * or an id whose store has no key gets a fresh key pair and the id derived from it.
 */
export async function acquireIdentity(): Promise<{ identity: Identity; restored: boolean }> {
  let stored: string | null = null;
  try {
    stored = sessionStorage.getItem(KEY);
  } catch (e) {
    console.warn('p2p: sessionStorage unavailable, using a fresh id', e);
  }
  const kept = stored !== null && ID_RE.test(stored) ? await storedIdentity(stored) : null;
  if (kept && (await holdLock(LOCK_PREFIX + kept.id, 1500))) return { identity: kept, restored: true };
  for (;;) {
    // a fresh id is 80 bits of a hash: its lock is free unless another tab has the same key
    const identity = await freshIdentity();
    if (await holdLock(LOCK_PREFIX + identity.id, 500)) {
      try {
        sessionStorage.setItem(KEY, identity.id);
      } catch (e) {
        console.warn('p2p: cannot keep the node id across reloads', e);
      }
      return { identity, restored: false };
    }
  }
}

/**
 * The ids whose lock some page of this browser profile holds or waits for. Any entry
 * means a live page (a lock is held only by a live document, and only live documents
 * wait): `anyone` is false only when no page of this profile runs a node.
 */
export async function localLocks(): Promise<{ held: Set<string>; pending: Set<string>; anyone: boolean }> {
  const held = new Set<string>();
  const pending = new Set<string>();
  if (!('locks' in navigator)) return { held, pending, anyone: false };
  const q = await navigator.locks.query();
  for (const l of q.held ?? []) if (l.name?.startsWith(LOCK_PREFIX)) held.add(l.name.slice(LOCK_PREFIX.length));
  for (const l of q.pending ?? []) if (l.name?.startsWith(LOCK_PREFIX)) pending.add(l.name.slice(LOCK_PREFIX.length));
  return { held, pending, anyone: held.size + pending.size > 0 };
}

/**
 * Takes `id` as this tab's node identity if nobody holds its lock and its store holds the
 * key pair that `id` is the hash of (node-identity.ts): the lock is held for the page's
 * lifetime (like acquireIdentity's) and the id kept in sessionStorage for reloads. Null,
 * with the lock let go, when the lock is taken or the store has no such key (an id of an
 * older version, or a store whose key is gone): an id without its key cannot sign.
 */
export async function claimIdentity(id: string): Promise<Identity | null> {
  if (!ID_RE.test(id)) return null;
  if ('locks' in navigator) {
    const got = await new Promise<boolean>((resolve, reject) => {
      navigator.locks
        .request(LOCK_PREFIX + id, { ifAvailable: true }, (lock) => {
          resolve(lock !== null);
          return lock ? new Promise<void>((release) => void (releaseHeld = release)) : undefined;
        })
        .catch((e: unknown) => {
          // stolen later by a reload of this tab (AbortError): the new page holds it
          if (!(e instanceof DOMException && e.name === 'AbortError')) reject(e instanceof Error ? e : new Error(String(e)));
        });
    });
    if (!got) return null;
  }
  let identity: Identity | null;
  try {
    identity = await storedIdentity(id);
  } catch (e) {
    releaseLock();
    throw e;
  }
  if (!identity) {
    releaseLock();
    return null;
  }
  try {
    sessionStorage.setItem(KEY, id);
  } catch (e) {
    console.warn('p2p: cannot keep the node id across reloads', e);
  }
  return identity;
}

/**
 * A held lock on another node's id, while its store is adopted. `lost` turns true when
 * the lock is taken away (that node's tab took its id back with `steal`): the adopter
 * must then leave the store alone.
 */
export interface OrphanLock {
  readonly id: string;
  readonly lost: boolean;
  release(): void;
}

/**
 * Takes the lock of `id`'s store: at once or null (`wait` false), or queued until it is
 * free (`wait` true; null when `signal` aborts first). The lock is `lost` if stolen while
 * held.
 */
export function lockOrphan(id: string, wait: boolean, signal?: AbortSignal): Promise<OrphanLock | null> {
  if (!('locks' in navigator)) return Promise.resolve(null);
  return new Promise<OrphanLock | null>((resolve, reject) => {
    let held: { lost: boolean; release: () => void } | null = null;
    const opts: LockOptions = wait ? (signal ? { signal } : {}) : { ifAvailable: true };
    navigator.locks
      .request(LOCK_PREFIX + id, opts, (lock) => {
        if (!lock) {
          resolve(null);
          return undefined;
        }
        return new Promise<void>((release) => {
          const h = {
            id,
            lost: false,
            release: () => release(),
          };
          held = h;
          resolve(h);
        });
      })
      .catch((e: unknown) => {
        if (e instanceof DOMException && e.name === 'AbortError') {
          // aborted while queued (signal), or stolen while held
          if (held) held.lost = true;
          else resolve(null);
        } else reject(e instanceof Error ? e : new Error(String(e)));
      });
  });
}
