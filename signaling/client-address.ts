/**
 * Who a connection is, for the per-address limits (maxConnectionsPerIp,
 * maxTopicsPerIp). Pure: the server passes in the socket's peer address and the
 * request's X-Forwarded-For header.
 *
 * Without a trusted proxy the address is the TCP peer's. Behind a reverse proxy
 * that peer is the proxy for every client, so the operator says how many proxies
 * stand in front (`trustProxy`, env TRUST_PROXY): each appends the address it
 * received the request from to X-Forwarded-For, so with `n` trusted proxies the
 * client is the n-th entry from the right. Entries further left were written by
 * the client itself and are never used (anyone can send the header). With
 * `trustProxy` 0 the header is ignored.
 *
 * The limit key of an IPv6 address is its /64: one subscriber line or host is
 * normally given a whole /64, so counting single IPv6 addresses would give one
 * host 2^64 budgets.
 */
import { isIP } from 'node:net';

export interface ClientAddress {
  /** The client's address as logged (IPv4-mapped IPv6 shown as IPv4). */
  address: string;
  /** What the per-address limits count by: the IPv4 address, or the IPv6 /64. */
  key: string;
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; a zone (`fe80::1%eth0`) is dropped. */
export function normalizeAddress(address: string): string {
  let a = address.trim();
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  if (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(a)) a = a.slice(7);
  return a.toLowerCase();
}

/** The eight 16-bit groups of an IPv6 address (already checked by isIP). */
function ipv6Groups(address: string): number[] {
  // an embedded IPv4 tail (64:ff9b::1.2.3.4) is two groups
  const text = address.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a: string, b: string, c: string, d: string) =>
    `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`);
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const gap = text.indexOf('::');
  if (gap < 0) return parse(text);
  const left = parse(text.slice(0, gap));
  const right = parse(text.slice(gap + 2));
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/** The key the per-address limits count by. */
export function limitKey(address: string): string {
  const a = normalizeAddress(address);
  if (isIP(a) !== 6) return a;
  const groups = ipv6Groups(a);
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/**
 * The client of a request: the TCP peer, or with `trustProxy` n > 0 the n-th
 * X-Forwarded-For entry from the right (the leftmost one if the header has
 * fewer: the request passed fewer proxies than configured). An entry that is not
 * an IP address is ignored in favour of the TCP peer.
 */
export function clientAddress(socketAddress: string | undefined, forwardedFor: string | string[] | undefined, trustProxy: number): ClientAddress {
  const peer = normalizeAddress(socketAddress ?? 'unknown');
  let address = peer;
  if (trustProxy > 0 && forwardedFor !== undefined) {
    const entries = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
      .split(',')
      .map((e) => e.trim())
      .filter((e) => e !== '');
    if (entries.length > 0) {
      const chosen = normalizeAddress(entries[Math.max(0, entries.length - trustProxy)]!);
      if (isIP(chosen) !== 0) address = chosen;
    }
  }
  return { address, key: limitKey(address) };
}
