/**
 * What the server tells browsers about the app it serves, and which pages may
 * open its WebSocket. Pure: parsing of the settings and the checks.
 *
 *  - Security headers on every HTTP response: a Content-Security-Policy that
 *    allows the built app exactly what it uses (its own scripts, styles, images
 *    and /config.json; WebSockets to signaling servers), no framing
 *    (`frame-ancestors 'none'` and `X-Frame-Options: DENY`, against
 *    clickjacking), `nosniff`, and no Referer (a share link carries the cluster
 *    name).
 *  - An optional list of allowed Origins for the WebSocket upgrade (env
 *    ALLOWED_ORIGINS): a browser always sends the Origin of the page that opens a
 *    WebSocket, so the list stops other web sites from using visitors' browsers
 *    as signaling clients of this server. A request without Origin is not from a
 *    browser page; non-browser clients can send any Origin, so for them the check
 *    means nothing and they are let through (the per-address limits bound them).
 */

/**
 * `connect-src` beyond 'self' by default: WebSockets to any host. A tab connects
 * to its own server, and to the servers a share link names (`?signaling=`) only
 * after the user confirmed each one (src/runtime/signaling-consent.ts). An
 * operator who knows every signaling server a page may use narrows it with
 * CSP_CONNECT_SRC.
 */
export const DEFAULT_CONNECT_SRC: readonly string[] = ['ws:', 'wss:'];

/** The Content-Security-Policy of every response, with `connectSrc` after 'self'. */
export function contentSecurityPolicy(connectSrc: readonly string[] = DEFAULT_CONNECT_SRC): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    `connect-src ${["'self'", ...connectSrc].join(' ')}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export function securityHeaders(connectSrc?: readonly string[]): Record<string, string> {
  return {
    'Content-Security-Policy': contentSecurityPolicy(connectSrc),
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
  };
}

/** One CSP source expression: a scheme (`wss:`), or a host source
 * (`wss://signal.example.org`, `https://*.example.org:443`). */
const SOURCE = /^(?:[a-z][a-z0-9+.-]*:|(?:[a-z][a-z0-9+.-]*:\/\/)?(?:\*\.)?[a-z0-9.-]+(?::(?:\d{1,5}|\*))?(?:\/[^\s;,']*)?)$/i;

/** CSP_CONNECT_SRC: space- or comma-separated sources allowed besides 'self'. */
export function parseConnectSrc(value: string): string[] {
  const sources = value.split(/[\s,]+/).filter((s) => s !== '');
  for (const s of sources) {
    if (!SOURCE.test(s)) throw new Error(`CSP_CONNECT_SRC: "${s.slice(0, 80)}" is not a CSP source (a scheme such as wss: or a host such as wss://signal.example.org)`);
  }
  return sources;
}

/** ALLOWED_ORIGINS: comma-separated origins (`https://chat.example.org`), each
 * normalised as browsers send it (lower case, no default port, no path). */
export function parseAllowedOrigins(value: string): string[] {
  const origins: string[] = [];
  for (const entry of value.split(',').map((e) => e.trim()).filter((e) => e !== '')) {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw new Error(`ALLOWED_ORIGINS: "${entry.slice(0, 80)}" is not an origin (scheme://host[:port])`);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin === 'null' || `${url.origin}/` !== url.href.replace(/\/?$/, '/')) {
      throw new Error(`ALLOWED_ORIGINS: "${entry.slice(0, 80)}" is not an origin (http(s)://host[:port], nothing after it)`);
    }
    origins.push(url.origin);
  }
  if (origins.length === 0) throw new Error('ALLOWED_ORIGINS is set but lists no origin');
  return origins;
}

/** Whether an upgrade with this Origin header may proceed; `allowed` null = any. */
export function originAllowed(origin: string | undefined, allowed: readonly string[] | null): boolean {
  if (allowed === null || origin === undefined) return true;
  return allowed.includes(origin.trim().toLowerCase());
}
