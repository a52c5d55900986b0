/** `p2p.links()` and the link counters of `p2p.stats()`, from the transport's view. */
import type { LinkInfo } from '../net/transport';

/** Unreachable peers stay listed while they are live members, or this long after the failure. */
export const RECENT_FAILURE_MS = 60_000;

/** Open and connecting links, and the unreachable peers that still matter. */
export function visibleLinks(infos: LinkInfo[], liveMembers: readonly string[], now: number): LinkInfo[] {
  const live = new Set(liveMembers);
  return infos.filter((l) => l.state !== 'unreachable' || live.has(l.peer) || now - l.since < RECENT_FAILURE_MS);
}

/** links.host / links.srflx / links.relay (open links by path), links.unreachable, RTT of the open links. */
export function linkCounters(infos: LinkInfo[]): Record<string, number> {
  const out: Record<string, number> = { 'links.host': 0, 'links.srflx': 0, 'links.relay': 0, 'links.connecting': 0, 'links.unreachable': 0 };
  let rttSum = 0;
  let rttN = 0;
  let rttMax = 0;
  for (const l of infos) {
    if (l.state === 'connecting') out['links.connecting']!++;
    else if (l.state === 'unreachable') out['links.unreachable']!++;
    else if (l.path) {
      out[`links.${l.path.type}`]!++;
      if (l.path.rttMs !== null) {
        rttSum += l.path.rttMs;
        rttN++;
        rttMax = Math.max(rttMax, l.path.rttMs);
      }
    }
  }
  if (rttN > 0) {
    out['links.rttMsMean'] = Math.round((rttSum / rttN) * 10) / 10;
    out['links.rttMsMax'] = rttMax;
  }
  return out;
}
