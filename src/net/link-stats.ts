/**
 * What a link runs over, read from `RTCPeerConnection.getStats()`, and why a dial that
 * never opened failed. Pure: the transport feeds it stats reports and the candidates it
 * saw; tests feed it recorded reports from Chromium and Firefox.
 */

export type CandidateType = 'host' | 'srflx' | 'prflx' | 'relay';
/** A link's path: `relay` when either end is a TURN relay, `srflx` when either end is a
 * NAT's public address (server or peer reflexive), else `host` (same machine or LAN). */
export type PathType = 'host' | 'srflx' | 'relay';

export interface LinkPath {
  type: PathType;
  local: CandidateType | null;
  remote: CandidateType | null;
  /** Round-trip time of the selected pair's last STUN check, ms. */
  rttMs: number | null;
  /** udp or tcp between this browser and the first hop (the peer or its TURN server). */
  protocol: string | null;
  /** Local relay candidate: how this browser reaches its TURN server (udp, tcp, tls). */
  relayProtocol: string | null;
}

type Report = Record<string, unknown>;

const CANDIDATE_TYPES = new Set<string>(['host', 'srflx', 'prflx', 'relay']);

function candidateType(v: unknown): CandidateType | null {
  return typeof v === 'string' && CANDIDATE_TYPES.has(v) ? (v as CandidateType) : null;
}

export function pathType(local: CandidateType | null, remote: CandidateType | null): PathType {
  if (local === 'relay' || remote === 'relay') return 'relay';
  if (local === 'srflx' || local === 'prflx' || remote === 'srflx' || remote === 'prflx') return 'srflx';
  return 'host';
}

/**
 * The selected candidate pair: the transport's `selectedCandidatePairId` (Chromium,
 * Firefox), else a pair flagged `selected` (older Firefox) or nominated and succeeded.
 * Null while no pair is selected.
 */
export function selectedPath(reports: Iterable<Report>): LinkPath | null {
  const byId = new Map<string, Report>();
  for (const r of reports) if (typeof r.id === 'string') byId.set(r.id, r);
  let pair: Report | undefined;
  for (const r of byId.values()) {
    if (r.type === 'transport' && typeof r.selectedCandidatePairId === 'string') pair = byId.get(r.selectedCandidatePairId) ?? pair;
  }
  if (!pair) {
    for (const r of byId.values()) {
      if (r.type === 'candidate-pair' && (r.selected === true || (r.nominated === true && r.state === 'succeeded'))) pair = r;
    }
  }
  if (!pair) return null;
  const local = typeof pair.localCandidateId === 'string' ? byId.get(pair.localCandidateId) : undefined;
  const remote = typeof pair.remoteCandidateId === 'string' ? byId.get(pair.remoteCandidateId) : undefined;
  const lt = candidateType(local?.candidateType);
  const rt = candidateType(remote?.candidateType);
  let rtt: number | null = null;
  if (typeof pair.currentRoundTripTime === 'number') rtt = pair.currentRoundTripTime * 1000;
  else if (typeof pair.totalRoundTripTime === 'number' && typeof pair.responsesReceived === 'number' && pair.responsesReceived > 0) {
    rtt = (pair.totalRoundTripTime / pair.responsesReceived) * 1000;
  }
  return {
    type: pathType(lt, rt),
    local: lt,
    remote: rt,
    rttMs: rtt === null ? null : Math.round(rtt * 10) / 10,
    protocol: typeof local?.protocol === 'string' ? local.protocol : null,
    relayProtocol: typeof local?.relayProtocol === 'string' ? local.relayProtocol : null,
  };
}

/** `typ relay` of an SDP candidate line (`candidate:… typ relay raddr …`); null for end-of-candidates. */
export function candidateLineType(line: string): CandidateType | null {
  const m = / typ (\w+)/.exec(line);
  return m ? candidateType(m[1]) : null;
}

export type CandidateCounts = Record<CandidateType, number>;

export const noCandidates = (): CandidateCounts => ({ host: 0, srflx: 0, prflx: 0, relay: 0 });

const total = (c: CandidateCounts): number => c.host + c.srflx + c.prflx + c.relay;

function summary(c: CandidateCounts): string {
  const parts = (Object.keys(c) as CandidateType[]).filter((k) => c[k] > 0).map((k) => `${c[k]} ${k}`);
  return parts.length ? parts.join(', ') : 'none';
}

export interface DialEvidence {
  /** What ended the dial: 'ICE failed', 'dial timeout after 10 s', a WebRTC error. */
  cause: string;
  policy: 'all' | 'relay';
  /** Configured ICE servers' URLs (no credentials), to tell "none configured" apart. */
  turnConfigured: boolean;
  local: CandidateCounts;
  remote: CandidateCounts;
  /** `icecandidateerror` events: "<url>: <code> <text>". */
  candidateErrors: string[];
}

/** One sentence a user can act on. */
export function failureReason(e: DialEvidence): string {
  const errors = e.candidateErrors.length ? ` (${e.candidateErrors.slice(-3).join('; ')})` : '';
  let why: string;
  if (e.policy === 'relay' && !e.turnConfigured) {
    why = 'relay-only mode but no TURN server is configured (TURN_URLS on the server, or ?ice=)';
  } else if (e.policy === 'relay' && e.local.relay === 0) {
    why = `no relay candidate gathered: the TURN server is unreachable or refused the credentials${errors}`;
  } else if (total(e.local) === 0) {
    why = `no local candidate gathered${errors}`;
  } else if (total(e.remote) === 0) {
    why = `the peer sent no candidates (it may be in relay-only mode with no working TURN server); here: ${summary(e.local)}${errors}`;
  } else {
    why = `no candidate pair worked (here: ${summary(e.local)}; peer: ${summary(e.remote)}): a firewall or NAT blocks the path${e.turnConfigured ? '' : '; a TURN server (TURN_URLS) would relay it'}${errors}`;
  }
  return `${e.cause}: ${why}`;
}
