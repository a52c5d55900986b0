import { any, bool, nodeId, optional, shape, str, type Check } from '../core/validate';

/**
 * What we publish through the signaling server (inside the y-webrtc `publish.data`):
 *   on `<cluster>`:        { t: 'announce', from, isolated }
 *   on `<cluster>/<id>`:   { t: 'signal', from, to, conn, signal }  (SDP / ICE for simple-peer)
 *                          { t: 'relay',  from, to, frame }          (a base64 wire frame, for
 *                                                                   transient messages to a node
 *                                                                   we have no link to)
 * Anybody can publish on a topic, so everything is validated before use.
 */
const variants: Record<string, Check> = {
  announce: shape({ from: nodeId, isolated: optional(bool) }),
  signal: shape({ from: nodeId, to: nodeId, conn: str(128), signal: any }),
  relay: shape({ from: nodeId, to: nodeId, frame: str(400_000) }),
};

export function validateSignal(data: Record<string, unknown>): string | null {
  const t = data.t;
  if (typeof t !== 'string' || !(t in variants)) return `unknown signaling message ${String(t).slice(0, 30)}`;
  const err = variants[t]!(data);
  if (err) return `${t}: ${err}`;
  if (t === 'signal' && (typeof data.signal !== 'object' || data.signal === null)) return 'signal: not an object';
  return null;
}
