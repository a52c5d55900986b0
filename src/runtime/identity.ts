/**
 * Node identity. The id lives in sessionStorage so a reload keeps it (and finds its
 * IndexedDB store again). A duplicated tab copies sessionStorage, so the id is also
 * guarded by a Web Lock held for the page's lifetime: a second live tab cannot take
 * the lock and picks a fresh id instead.
 */
const KEY = 'p2p.nodeId';
export const LOCK_PREFIX = 'p2p-node-';

export function newNodeId(): string {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  let s = '';
  for (const x of b) s += x.toString(36).padStart(2, '0');
  return `n${s.slice(0, 11)}`;
}

/** The id this tab had before a reload, if any (not yet checked against the lock). */
export function storedNodeId(): string | null {
  try {
    const s = sessionStorage.getItem(KEY);
    return s && /^n[0-9a-z]{6,32}$/.test(s) ? s : null;
  } catch {
    return null;
  }
}

/** Releases the node id's lock (held since acquireNodeId); see releaseNodeId(). */
let releaseHeld: (() => void) | null = null;

/**
 * The page is going away for good (pagehide, not into the back/forward cache): let go
 * of the id now, so the reloaded page gets it at once. Otherwise the lock goes only when
 * the browser tears the old document down, which took about 0.5 s of a reload.
 */
export function releaseNodeId(): void {
  releaseHeld?.();
  releaseHeld = null;
}

/** Holds a lock until the page goes away (or releaseNodeId); resolves true when acquired. */
function holdLock(name: string, waitMs: number): Promise<boolean> {
  if (!('locks' in navigator)) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), waitMs);
    navigator.locks
      .request(name, { signal: ctrl.signal }, () => {
        clearTimeout(timer);
        resolve(true);
        // held while the page lives, unless releaseNodeId() is called as it goes away
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
 * The node id for this tab. A reload gets its old id back once the previous document
 * released the lock (allow it a moment); a duplicate of a live tab gets a new id.
 */
export async function acquireNodeId(): Promise<{ id: string; restored: boolean }> {
  let stored: string | null = null;
  try {
    stored = sessionStorage.getItem(KEY);
  } catch (e) {
    console.warn('p2p: sessionStorage unavailable, using a fresh id', e);
  }
  if (stored && /^n[0-9a-z]{6,32}$/.test(stored) && (await holdLock(LOCK_PREFIX + stored, 1500))) {
    return { id: stored, restored: true };
  }
  for (;;) {
    const id = newNodeId();
    if (await holdLock(LOCK_PREFIX + id, 500)) {
      try {
        sessionStorage.setItem(KEY, id);
      } catch (e) {
        console.warn('p2p: cannot keep the node id across reloads', e);
      }
      return { id, restored: false };
    }
  }
}

/** Node ids whose lock is held by a live tab of this browser profile. */
export async function liveLocalIds(): Promise<Set<string>> {
  if (!('locks' in navigator)) return new Set();
  const q = await navigator.locks.query();
  const ids = new Set<string>();
  for (const l of q.held ?? []) if (l.name?.startsWith(LOCK_PREFIX)) ids.add(l.name.slice(LOCK_PREFIX.length));
  return ids;
}

/** Try to take an orphan's lock without waiting (so two tabs never adopt the same store). */
export function tryLock(id: string): Promise<boolean> {
  if (!('locks' in navigator)) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    navigator.locks
      .request(LOCK_PREFIX + id, { ifAvailable: true }, (lock) => {
        resolve(lock !== null);
        return lock ? new Promise<void>(() => undefined) : undefined;
      })
      .catch((e: unknown) => {
        console.warn('p2p: lock request failed', e);
        resolve(false);
      });
  });
}
