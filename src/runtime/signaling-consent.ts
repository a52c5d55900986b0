/**
 * A share link may name signaling servers (`?signaling=`). A server other than the
 * one that served the page would learn this tab's network addresses (SDP, ICE
 * candidates), its cluster and node id, and could see and alter what sets up its
 * links; so such a server is shown to the user, who confirms it before anything is
 * sent to it. Until then the page opens no connection to it (main.ts asks before it
 * opens any signaling socket). An answer holds for the tab's session
 * (sessionStorage): a reload does not ask again. The dialog itself is
 * signaling-consent-dialog.ts, loaded only when there is something to ask.
 *
 * "Other" means another origin than the page's: `ws:`/`wss:` compared as
 * `http:`/`https:`, with host and port (the server accepts WebSockets on any path).
 */

const APPROVED_KEY = 'p2p.signaling-approved';
/** More than a link can sensibly hold: an over-long stored list is not trusted. */
const MAX_APPROVED = 32;

/** The origin a WebSocket URL talks to, as the http(s) origin it would be served from; null if not a URL. */
function serverOrigin(url: string, base: string): string | null {
  let u: URL;
  try {
    u = new URL(url, base);
  } catch {
    return null; // not a URL: shown to the user as written
  }
  const protocol = u.protocol === 'ws:' ? 'http:' : u.protocol === 'wss:' ? 'https:' : u.protocol;
  if (protocol !== 'http:' && protocol !== 'https:') return null;
  return `${protocol}//${u.host}`;
}

/** The URLs of `urls` that are not the page's own server, in order. */
export function foreignSignaling(urls: readonly string[], page: { origin: string; href: string }): string[] {
  return urls.filter((url) => serverOrigin(url, page.href) !== page.origin);
}

/** The servers this tab's user already accepted (sessionStorage), valid entries only. */
export function approvedSignaling(storage: Pick<Storage, 'getItem'>): Set<string> {
  let raw: string | null;
  try {
    raw = storage.getItem(APPROVED_KEY);
  } catch (e) {
    console.warn('p2p: sessionStorage unavailable; signaling servers will be asked for again', e);
    return new Set();
  }
  if (raw === null) return new Set();
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (e) {
    console.warn('p2p: ignoring a malformed list of accepted signaling servers', e);
    return new Set();
  }
  if (!Array.isArray(value) || value.length > MAX_APPROVED) return new Set();
  return new Set(value.filter((v): v is string => typeof v === 'string'));
}

export function rememberApproved(storage: Pick<Storage, 'getItem' | 'setItem'>, urls: readonly string[]): void {
  const all = [...new Set([...approvedSignaling(storage), ...urls])].slice(-MAX_APPROVED);
  try {
    storage.setItem(APPROVED_KEY, JSON.stringify(all));
  } catch (e) {
    console.warn('p2p: could not remember the accepted signaling servers; a reload will ask again', e);
  }
}

/**
 * The signaling URLs to connect to: `urls` as given when every foreign one was
 * accepted (now or earlier in this tab's session), otherwise without the foreign
 * ones (`fallback`, the page's own server, if nothing is left).
 */
export async function confirmSignaling(
  urls: readonly string[],
  fallback: string,
  env: { location: { origin: string; href: string }; storage: Pick<Storage, 'getItem' | 'setItem'>; ask: (servers: readonly string[]) => Promise<boolean> },
): Promise<string[]> {
  const approved = approvedSignaling(env.storage);
  const unconfirmed = foreignSignaling(urls, env.location).filter((u) => !approved.has(u));
  if (unconfirmed.length === 0) return [...urls];
  if (await env.ask(unconfirmed)) {
    rememberApproved(env.storage, unconfirmed);
    return [...urls];
  }
  const kept = urls.filter((u) => !unconfirmed.includes(u));
  return kept.length > 0 ? kept : [fallback];
}
