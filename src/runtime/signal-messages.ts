import { any, bool, int, nodeId, optional, shape, str, type Check } from '../core/validate';
import { fromBase64, toBase64 } from '../trust/bytes';
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES } from '../trust/keys';
import { signalTranscript } from '../trust/transcripts';
import type { NodeIdentity } from './node-identity';

/**
 * What we publish through the signaling server (inside the y-webrtc `publish.data`), every
 * message signed by its sender (docs/security.md, "Links and identities"):
 *
 *   { t, from, to?, ts, n, pub, sig, b }
 *
 *   t     'announce' or 'will' (on `<cluster>`), 'signal' or 'relay' (on `<cluster>/<to>`)
 *   ts    the sender's clock (ms); receivers refuse |now − ts| > MAX_SKEW_MS
 *   n     a nonce, unique per message: a message seen before is refused (replay)
 *   pub   the sender's raw public key (base64), which must hash to `from`
 *   sig   Ed25519 over signalTranscript(cluster, t, from, to ?? '', ts, n, b) (base64)
 *   b     the body, JSON text:
 *           announce  { isolated }
 *           will      {}                 (the sender's last will, which the server publishes
 *                                         when the sender's connection closes: "my signaling
 *                                         connection closed"; signed up to WILL_REFRESH_MS
 *                                         before, so always within the clock bound)
 *           signal    { conn, signal }   (SDP / ICE for simple-peer)
 *           relay     { frame }          (a base64 wire frame, for transient messages to a
 *                                         node we have no link to)
 *
 * The signature covers the body as the bytes sent, so a layer that encrypts payloads
 * (the cluster secret) wraps the whole message, signature included. Anybody can publish
 * on a topic, so everything is validated and verified before use.
 */

export const MAX_SKEW_MS = 120_000;
const MAX_BODY = 400_100;

const envelope: Check = shape({
  from: nodeId,
  to: optional(nodeId),
  ts: int(0),
  n: str(32),
  pub: str(64),
  sig: str(128),
  b: str(MAX_BODY),
});

const bodies: Record<string, Check> = {
  announce: shape({ isolated: optional(bool) }),
  will: shape({}),
  signal: shape({ conn: str(128), signal: any }),
  relay: shape({ frame: str(400_000) }),
};

export type SignalType = 'announce' | 'will' | 'signal' | 'relay';

/** Messages published to everyone on `<cluster>` (no recipient); the rest go to one node's inbox. */
export function isClusterWide(t: SignalType): boolean {
  return t === 'announce' || t === 'will';
}

/** A message whose structure is valid (not yet verified). */
export interface SignedMessage {
  t: SignalType;
  from: string;
  to: string;
  ts: number;
  n: string;
  pub: Uint8Array;
  sig: Uint8Array;
  b: string;
}

/** The envelope of `data`, or why it is not one. */
export function parseSignal(data: Record<string, unknown>): SignedMessage | string {
  const t = data.t;
  if (typeof t !== 'string' || !(t in bodies)) return `unknown signaling message ${String(t).slice(0, 30)}`;
  const err = envelope(data);
  if (err) return `${t}: ${err}`;
  const wide = isClusterWide(t as SignalType);
  if (!wide && typeof data.to !== 'string') return `${t}: no recipient`;
  const pub = fromBase64(data.pub as string);
  const sig = fromBase64(data.sig as string);
  if (!pub || pub.byteLength !== PUBLIC_KEY_BYTES) return `${t}: bad pub`;
  if (!sig || sig.byteLength !== SIGNATURE_BYTES) return `${t}: bad sig`;
  return { t: t as SignalType, from: data.from as string, to: wide ? '' : (data.to as string), ts: data.ts as number, n: data.n as string, pub, sig, b: data.b as string };
}

/** The body of a verified message, validated for its type; or why not. */
export function parseBody(m: SignedMessage): Record<string, unknown> | string {
  let body: unknown;
  try {
    body = JSON.parse(m.b);
  } catch (e) {
    if (e instanceof SyntaxError) return `${m.t}: body is not JSON`;
    throw e;
  }
  const err = bodies[m.t]!(body);
  if (err) return `${m.t}: ${err}`;
  if (m.t === 'signal' && (typeof (body as { signal: unknown }).signal !== 'object' || (body as { signal: unknown }).signal === null)) return 'signal: not an object';
  return body as Record<string, unknown>;
}

function nonce(): string {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return toBase64(b);
}

/** A message of type `t` from `identity` to `to` ('' for an announce), signed, at time `now`. */
export async function signSignal(
  identity: NodeIdentity,
  cluster: string,
  t: SignalType,
  to: string,
  body: Record<string, unknown>,
  now: number,
): Promise<Record<string, unknown>> {
  const b = JSON.stringify(body);
  const n = nonce();
  const ts = Math.floor(now);
  const sig = await identity.sign(signalTranscript(cluster, t, identity.id, to, ts, n, b));
  const msg: Record<string, unknown> = { t, from: identity.id, ts, n, pub: toBase64(identity.pub), sig: toBase64(sig), b };
  if (!isClusterWide(t)) msg.to = to;
  return msg;
}

/**
 * Checks signed signaling messages: the key hashes to `from`, the signature, the clock
 * (|now − ts| ≤ MAX_SKEW_MS) and the nonce (each accepted once while its ts is in range).
 */
export class SignalVerifier {
  /** Nonces accepted, with the ts they came with (insertion order ≈ time order). */
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly identity: NodeIdentity,
    private readonly cluster: string,
    private readonly maxSeen = 16_384,
  ) {}

  /** null when `m` is authentic, fresh and new; else why not. */
  async verify(m: SignedMessage, now: number): Promise<string | null> {
    if (Math.abs(now - m.ts) > MAX_SKEW_MS) return `${m.t} from ${m.from}: clock off by ${Math.round((m.ts - now) / 1000)} s`;
    const key = `${m.from} ${m.n}`;
    if (this.seen.has(key)) return `${m.t} from ${m.from}: replayed`;
    const err = await this.identity.keys.verify(m.from, m.pub, m.sig, signalTranscript(this.cluster, m.t, m.from, m.to, m.ts, m.n, m.b));
    if (err) return `${m.t} from ${m.from}: ${err}`;
    if (this.seen.has(key)) return `${m.t} from ${m.from}: replayed`;
    this.seen.set(key, m.ts);
    this.prune(now);
    return null;
  }

  /** Nonces whose ts is out of range can no longer be replayed (the clock check refuses them). */
  private prune(now: number): void {
    for (const [k, ts] of this.seen) {
      if (this.seen.size <= this.maxSeen && Math.abs(now - ts) <= MAX_SKEW_MS) break;
      this.seen.delete(k);
    }
  }
}
