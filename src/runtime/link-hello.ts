/**
 * Link hellos (docs/security.md, "Links and identities"): the first frame each side of a
 * WebRTC link sends, proving that the node at the other end of this DTLS session holds
 * the key of the id it was dialled as (or dialled us as).
 *
 *   hello = msgpack { t: 'hello', pub, sig, mac? }
 *   sig   = Ed25519(priv, linkTranscript(cluster, {me, fp(me)}, {peer, fp(peer)}))
 *   mac   = HMAC(K_link, same transcript), only in a cluster with a secret
 *
 * The transcript orders both (id, fingerprint) pairs by id, so both ends build the same
 * bytes: our local fingerprint is the peer's remote one. The receiver checks that `pub`
 * hashes to the peer's id, the signature over the transcript as it sees it, and with a
 * link key the MAC. DTLS guarantees that the remote end holds the certificate whose
 * fingerprint was in the SDP we received, so a valid hello binds this session to the id
 * (and to the secret); a relayed or replayed hello names other fingerprints and fails.
 */
import type { LinkAuth, LinkFingerprints } from '../net/transport';
import { decode, encode } from '../wire/codec';
import { linkTranscript } from '../trust/transcripts';
import { own } from '../trust/bytes';
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES } from '../trust/keys';
import type { NodeIdentity } from './node-identity';

/** HMAC-SHA-256 output. */
const MAC_BYTES = 32;

/**
 * The protocols' version, sent in the hello: tabs of different versions do not link (the
 * hello is refused with the reason), rather than misread each other. A tab left open
 * across a deploy runs the previous bundle until it is reloaded. Raised on every change
 * that tabs of the previous version would misread; 2: membership heartbeats whose period
 * grows with the cluster (a version-1 tab would expire the others after 20 s of silence);
 * 3: a sealed chat broadcast signs the message's compact form (core/wire.ts compactSigned),
 * which a version-2 tab would refuse as malformed; 4: digest reads (`kv.heads`, `kv.headReplies`);
 * 5: link heartbeats every 10 s of silence (net/transport.ts), where a version-4 tab drops
 * a link silent for 3 s; 6: routed envelopes signed in bundles (runtime/route-bundles.ts),
 * which a version-5 tab would refuse as more than one message.
 */
export const PROTOCOL_VERSION = 6;

interface Hello {
  t: 'hello';
  /** PROTOCOL_VERSION of the sender; absent from version-1 tabs. */
  v: number;
  pub: Uint8Array;
  sig: Uint8Array;
  mac?: Uint8Array;
}

function bytesOf(v: unknown, n: number): v is Uint8Array {
  return v instanceof Uint8Array && v.byteLength === n;
}

function validateHello(v: unknown): string | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'hello: not a map';
  const h = v as Record<string, unknown>;
  if (h.t !== 'hello') return 'not a hello';
  if (h.v === undefined) return 'the peer runs an older version of the app (protocol 1): reload that tab';
  if (typeof h.v !== 'number' || !Number.isSafeInteger(h.v) || h.v < 1) return 'hello: bad protocol version';
  if (!bytesOf(h.pub, PUBLIC_KEY_BYTES)) return 'hello: bad pub';
  if (!bytesOf(h.sig, SIGNATURE_BYTES)) return 'hello: bad sig';
  if (h.mac !== undefined && !bytesOf(h.mac, MAC_BYTES)) return 'hello: bad mac';
  for (const k of Object.keys(h)) if (k !== 't' && k !== 'v' && k !== 'pub' && k !== 'sig' && k !== 'mac') return `hello: unknown field ${k.slice(0, 20)}`;
  return null;
}

export interface LinkHelloOptions {
  identity: NodeIdentity;
  cluster: string;
  /** K_link (HMAC-SHA-256, sign and verify) of the cluster secret; absent in an open cluster. */
  macKey?: CryptoKey;
  /** The version this tab speaks (PROTOCOL_VERSION; tests set another). */
  version?: number;
}

export function linkHello(opts: LinkHelloOptions): LinkAuth {
  const { identity, cluster, macKey } = opts;
  const version = opts.version ?? PROTOCOL_VERSION;
  const transcriptFor = (peer: string, fp: LinkFingerprints) =>
    linkTranscript(cluster, { id: identity.id, fp: fp.local }, { id: peer, fp: fp.remote });
  return {
    async hello(peer, fp) {
      const t = transcriptFor(peer, fp);
      const hello: Hello = { t: 'hello', v: version, pub: identity.pub, sig: await identity.sign(t) };
      if (macKey) hello.mac = new Uint8Array(await crypto.subtle.sign('HMAC', macKey, own(t)));
      return encode(hello);
    },
    async verify(peer, fp, frame) {
      const d = decode<Hello>(frame, validateHello);
      if (!d.ok) return d.error.message;
      const h = d.msg;
      if (h.v !== version) {
        const older = h.v < version ? 'the peer' : 'this tab';
        return `the peer speaks protocol version ${h.v}, this tab ${version}: ${older} runs an older version of the app, reload it`;
      }
      const t = transcriptFor(peer, fp);
      if (macKey) {
        if (!h.mac) return 'no mac (the peer has no cluster secret)';
        if (!(await crypto.subtle.verify('HMAC', macKey, own(h.mac), own(t)))) return 'bad mac (a different cluster secret)';
      }
      return identity.keys.verify(peer, h.pub, h.sig, t);
    },
  };
}
