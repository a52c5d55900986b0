/** Selected candidate pair from getStats() reports as Chromium and Firefox give them, and the failure reasons. */
import { describe, expect, it } from 'vitest';
import { candidateLineType, failureReason, noCandidates, pathType, selectedPath } from './link-stats';

describe('selectedPath', () => {
  it('follows the transport’s selectedCandidatePairId (Chromium)', () => {
    const reports = [
      { id: 'T01', type: 'transport', selectedCandidatePairId: 'CP2' },
      { id: 'CP1', type: 'candidate-pair', localCandidateId: 'L1', remoteCandidateId: 'R1', currentRoundTripTime: 0.5, state: 'failed' },
      { id: 'CP2', type: 'candidate-pair', localCandidateId: 'L2', remoteCandidateId: 'R2', currentRoundTripTime: 0.0123, state: 'succeeded', nominated: true },
      { id: 'L1', type: 'local-candidate', candidateType: 'host', protocol: 'udp' },
      { id: 'L2', type: 'local-candidate', candidateType: 'relay', protocol: 'udp', relayProtocol: 'tcp' },
      { id: 'R2', type: 'remote-candidate', candidateType: 'relay', protocol: 'udp' },
    ];
    expect(selectedPath(reports)).toEqual({ type: 'relay', local: 'relay', remote: 'relay', rttMs: 12.3, protocol: 'udp', relayProtocol: 'tcp' });
  });

  it('falls back to the pair flagged selected, RTT from the totals (Firefox without currentRoundTripTime)', () => {
    const reports = [
      { id: 'p', type: 'candidate-pair', selected: true, localCandidateId: 'l', remoteCandidateId: 'r', totalRoundTripTime: 0.004, responsesReceived: 4 },
      { id: 'l', type: 'local-candidate', candidateType: 'srflx', protocol: 'udp' },
      { id: 'r', type: 'remote-candidate', candidateType: 'host', protocol: 'udp' },
    ];
    expect(selectedPath(reports)).toMatchObject({ type: 'srflx', local: 'srflx', remote: 'host', rttMs: 1 });
  });

  it('is null before a pair is selected', () => {
    expect(selectedPath([{ id: 'p', type: 'candidate-pair', state: 'in-progress' }])).toBeNull();
  });

  it('classifies a path by its less direct end', () => {
    expect(pathType('host', 'host')).toBe('host');
    expect(pathType('host', 'prflx')).toBe('srflx');
    expect(pathType('srflx', 'relay')).toBe('relay');
    expect(pathType(null, null)).toBe('host');
  });
});

describe('candidates and failures', () => {
  it('reads the type of an SDP candidate line', () => {
    expect(candidateLineType('candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.0.0.2 rport 46154 generation 0')).toBe('srflx');
    expect(candidateLineType('candidate:1 1 udp 41885439 127.0.0.1 50000 typ relay raddr 127.0.0.1 rport 40000')).toBe('relay');
    expect(candidateLineType('')).toBeNull();
  });

  it('says what to do about a failed dial', () => {
    const base = { cause: 'ICE failed', policy: 'all' as const, turnConfigured: false, local: noCandidates(), remote: noCandidates(), candidateErrors: [] };
    expect(failureReason({ ...base, policy: 'relay' })).toBe('ICE failed: relay-only mode but no TURN server is configured (TURN_URLS on the server, or ?ice=)');
    expect(failureReason({ ...base, policy: 'relay', turnConfigured: true, candidateErrors: ['turn:127.0.0.1:3478?transport=udp: 701 STUN host lookup failed'] })).toBe(
      'ICE failed: no relay candidate gathered: the TURN server is unreachable or refused the credentials (turn:127.0.0.1:3478?transport=udp: 701 STUN host lookup failed)',
    );
    expect(failureReason({ ...base, local: { ...noCandidates(), host: 2 } })).toMatch(/the peer sent no candidates/);
    expect(failureReason({ ...base, local: { ...noCandidates(), host: 2, srflx: 1 }, remote: { ...noCandidates(), host: 1 } })).toBe(
      'ICE failed: no candidate pair worked (here: 2 host, 1 srflx; peer: 1 host): a firewall or NAT blocks the path; a TURN server (TURN_URLS) would relay it',
    );
  });
});
