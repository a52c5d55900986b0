/**
 * What each signature and MAC covers. Every transcript starts with a label naming its
 * purpose and version, so a signature made for one purpose never verifies for another,
 * and names the cluster, so nothing signed in one cluster is accepted in another.
 */
import { transcript } from './bytes';

export const LINK_LABEL = 'p2p-link/1';
export const SIGNAL_LABEL = 'p2p-signal/1';
export const ROUTE_LABEL = 'p2p-route/1';
export const BROADCAST_LABEL = 'p2p-bcast/1';
export const ENTRY_LABEL = 'p2p-kv-entry/1';
export const SEG_ITEM_LABEL = 'p2p-seg-item/1';

/**
 * A WebRTC link: both node ids and both DTLS certificate fingerprints, ordered by id so
 * that both ends build the same bytes (one's local fingerprint is the other's remote one).
 * DTLS guarantees the remote end holds the certificate whose fingerprint was in the SDP
 * we received, so a signature over this binds the DTLS session to the signer's id.
 */
export function linkTranscript(cluster: string, a: { id: string; fp: string }, b: { id: string; fp: string }): Uint8Array {
  const [lo, hi] = a.id < b.id ? [a, b] : [b, a];
  return transcript(LINK_LABEL, cluster, lo.id, hi.id, lo.fp, hi.fp);
}

/**
 * A message through the signaling server (announce, WebRTC signal, relayed frame):
 * `to` is '' for an announce; `t` the sender's clock (ms), `nonce` unique per message
 * (replays are refused); `body` the message's payload as sent.
 */
export function signalTranscript(cluster: string, type: string, from: string, to: string, t: number, nonce: string, body: string): Uint8Array {
  return transcript(SIGNAL_LABEL, cluster, type, from, to, t, nonce, body);
}

/** A routed envelope: the inner message's bytes `m` from `src` to `dst` (the hop count is not covered: hops lower it). */
export function routeTranscript(cluster: string, src: string, dst: string, t: number, m: Uint8Array): Uint8Array {
  return transcript(ROUTE_LABEL, cluster, src, dst, t, m);
}

/** A broadcast: its Plumtree id (which names the origin), kind and payload bytes. */
export function broadcastTranscript(cluster: string, id: string, origin: string, kind: string, data: Uint8Array): Uint8Array {
  return transcript(BROADCAST_LABEL, cluster, id, origin, kind, data);
}

/**
 * A KV entry as its writer made it: key, version (HLC timestamp and writer id), tombstone
 * flag and the value's encoded bytes (empty for a tombstone). Whoever stores, forwards or
 * serves the entry can then only pass it on as written.
 */
export function entryTranscript(cluster: string, key: string, ts: number, node: string, deleted: boolean, value: Uint8Array): Uint8Array {
  return transcript(ENTRY_LABEL, cluster, key, ts, node, deleted ? 1 : 0, value);
}

/**
 * A data-segment item as the node that put it made it: the queue's key, the writer's id
 * and the value's encoded bytes. The owner that sequences the item, the replicas that
 * copy it and the node that hands a copy on in a takeover can then only pass it on as
 * written (and not into another queue).
 */
export function segItemTranscript(cluster: string, key: string, writer: string, value: Uint8Array): Uint8Array {
  return transcript(SEG_ITEM_LABEL, cluster, key, writer, value);
}

/**
 * The DTLS certificate fingerprint of an SDP (its first `a=fingerprint:` line), as
 * `<algorithm> <HEX:HEX:…>` with the algorithm lowercased and the hex uppercased; null
 * when there is none.
 */
export function sdpFingerprint(sdp: string | undefined | null): string | null {
  if (!sdp) return null;
  const m = /^a=fingerprint:(\S+) ([0-9A-Fa-f:]+)\s*$/m.exec(sdp);
  return m ? `${m[1]!.toLowerCase()} ${m[2]!.toUpperCase()}` : null;
}
