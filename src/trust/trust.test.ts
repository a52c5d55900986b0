import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, pbkdf2Sync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { base32, fromBase64, fromBase64Url, toBase64, toBase64Url, transcript, utf8 } from './bytes';
import { generateIdentity, identityOf, KEY_ID_RE, nodeIdOf, PublicKeys, sign } from './keys';
import { checkLinkMac, clusterTopic, decryptPayload, deriveClusterKeys, encryptPayload, linkMac, nodeTopic } from './secret';
import { linkTranscript, routeTranscript, sdpFingerprint, signalTranscript } from './transcripts';

const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s/g, ''), 'hex'));

/** RFC 8032 §7.1, TEST 1 (empty message) and TEST 2 (one byte). */
const RFC8032 = {
  secret: hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'),
  pub: hex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'),
  sig: hex(
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  ),
  pub2: hex('3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c'),
  msg2: hex('72'),
  sig2: hex(
    '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  ),
};

async function rfcKeyPair(): Promise<{ privateKey: CryptoKey; publicKey: CryptoKey }> {
  const jwk = { kty: 'OKP', crv: 'Ed25519', d: toBase64Url(RFC8032.secret), x: toBase64Url(RFC8032.pub) };
  const privateKey = await crypto.subtle.importKey('jwk', jwk, { name: 'Ed25519' }, false, ['sign']);
  const publicKey = await crypto.subtle.importKey('raw', RFC8032.pub, { name: 'Ed25519' }, true, ['verify']);
  return { privateKey, publicKey };
}

describe('bytes', () => {
  it('base32 is RFC 4648 (lowercase, unpadded)', () => {
    // RFC 4648 §10 test vectors
    const cases: [string, string][] = [['', ''], ['f', 'my'], ['fo', 'mzxq'], ['foo', 'mzxw6'], ['foob', 'mzxw6yq'], ['fooba', 'mzxw6ytb'], ['foobar', 'mzxw6ytboi']];
    for (const [plain, enc] of cases) expect(base32(utf8(plain))).toBe(enc);
  });

  it('base64 and base64url round-trip and refuse garbage', () => {
    const b = new Uint8Array([0, 250, 251, 252, 253, 254, 255, 1, 2]);
    expect(fromBase64(toBase64(b))).toEqual(b);
    expect(fromBase64Url(toBase64Url(b))).toEqual(b);
    expect(toBase64Url(b)).not.toMatch(/[+/=]/);
    expect(fromBase64('not base64!')).toBeNull();
    expect(fromBase64Url('a+b')).toBeNull();
  });

  it('a transcript is injective: moving bytes between parts or changing the label changes it', () => {
    const a = transcript('l', 'ab', 'c');
    expect(transcript('l', 'a', 'bc')).not.toEqual(a);
    expect(transcript('m', 'ab', 'c')).not.toEqual(a);
    expect(transcript('l', 'ab', 'c')).toEqual(a);
    expect(transcript('l', 12)).toEqual(transcript('l', '12'));
  });
});

describe('identities', () => {
  it('Ed25519 through WebCrypto matches RFC 8032 (known answers)', async () => {
    const { privateKey, publicKey } = await rfcKeyPair();
    expect(await sign(privateKey, new Uint8Array(0))).toEqual(RFC8032.sig);
    const keys = new PublicKeys();
    const id = await nodeIdOf(RFC8032.pub);
    expect(await keys.verify(id, RFC8032.pub, RFC8032.sig, new Uint8Array(0))).toBeNull();
    const id2 = await nodeIdOf(RFC8032.pub2);
    expect(await keys.verify(id2, RFC8032.pub2, RFC8032.sig2, RFC8032.msg2)).toBeNull();
    expect((await identityOf(privateKey, publicKey)).id).toBe(id);
  });

  it('the id is n + 16 base32 characters of SHA-256(public key)', async () => {
    const expected = `n${base32(new Uint8Array(createHash('sha256').update(RFC8032.pub).digest())).slice(0, 16)}`;
    expect(await nodeIdOf(RFC8032.pub)).toBe(expected);
    expect(expected).toMatch(KEY_ID_RE);
    expect(expected.length).toBeLessThanOrEqual(128);
  });

  it('a generated identity signs; its private key cannot be exported', async () => {
    const me = await generateIdentity();
    expect(me.id).toMatch(KEY_ID_RE);
    expect(me.id).toBe(await nodeIdOf(me.pub));
    expect(me.privateKey.extractable).toBe(false);
    await expect(crypto.subtle.exportKey('pkcs8', me.privateKey)).rejects.toThrow();
    const data = utf8('hello');
    const sig = await sign(me.privateKey, data);
    const keys = new PublicKeys();
    expect(await keys.verify(me.id, me.pub, sig, data)).toBeNull();
  });

  it('tampering fails: other data, other signature, a key that is not the id\'s, malformed keys', async () => {
    const me = await generateIdentity();
    const other = await generateIdentity();
    const data = utf8('payload');
    const sig = await sign(me.privateKey, data);
    const keys = new PublicKeys();
    expect(await keys.verify(me.id, me.pub, sig, utf8('payloaD'))).toBe('bad signature');
    const flipped = new Uint8Array(sig);
    flipped[10]! ^= 1;
    expect(await keys.verify(me.id, me.pub, flipped, data)).toBe('bad signature');
    // the other node signs and claims our id: its key does not hash to it
    expect(await keys.verify(me.id, other.pub, await sign(other.privateKey, data), data)).toBe('wrong key for id');
    expect(await keys.verify(me.id, me.pub.subarray(1), sig, data)).toBe('bad key');
    expect(await keys.verify(me.id, me.pub, sig.subarray(1), data)).toBe('bad signature');
    // the key is remembered for the id, and a wrong key is still refused afterwards
    expect(await keys.verify(me.id, me.pub, sig, data)).toBeNull();
    expect(await keys.verify(me.id, other.pub, await sign(other.privateKey, data), data)).toBe('wrong key for id');
    expect(keys.stats).toMatchObject({ verified: 1, imports: 1 });
  });
});

describe('transcripts', () => {
  it('both ends of a link build the same transcript; any other id or fingerprint changes it', () => {
    const a = { id: 'naaaa', fp: 'sha-256 AA:BB' };
    const b = { id: 'nbbbb', fp: 'sha-256 CC:DD' };
    const t = linkTranscript('c', a, b);
    expect(linkTranscript('c', b, a)).toEqual(t);
    expect(linkTranscript('c', { ...a, fp: 'sha-256 AA:BC' }, b)).not.toEqual(t);
    expect(linkTranscript('c', a, { ...b, id: 'nbbbc' })).not.toEqual(t);
    expect(linkTranscript('d', a, b)).not.toEqual(t);
    // purposes never share bytes
    expect(signalTranscript('c', 'relay', 'naaaa', 'nbbbb', 1, 'x', '')).not.toEqual(routeTranscript('c', 'naaaa', 'nbbbb', 1, new Uint8Array()));
  });

  it('reads the DTLS fingerprint of an SDP', () => {
    const sdp = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=group:BUNDLE 0\r\na=fingerprint:SHA-256 ab:CD:ef:01\r\na=setup:actpass\r\n';
    expect(sdpFingerprint(sdp)).toBe('sha-256 AB:CD:EF:01');
    expect(sdpFingerprint('v=0\r\n')).toBeNull();
    expect(sdpFingerprint(undefined)).toBeNull();
  });
});

describe('the cluster secret', () => {
  const ITER = 1000;

  /** The same derivation with node:crypto: an independent implementation of the spec in secret.ts. */
  function reference(cluster: string, secret: string) {
    const master = pbkdf2Sync(secret, `p2p-cluster/1|${cluster}`, ITER, 32, 'sha256');
    const k = (info: string) => Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), info, 32));
    return { topic: k('p2p/topic'), enc: k('p2p/enc'), link: k('p2p/link') };
  }

  it('topics, link MACs and payload encryption follow PBKDF2 → HKDF (checked against node:crypto)', async () => {
    const keys = await deriveClusterKeys('c1', 'correct horse', ITER);
    const ref = reference('c1', 'correct horse');
    const mac = (k: Buffer, s: string) => createHmac('sha256', k).update(s).digest();
    expect(await clusterTopic(keys)).toBe(toBase64Url(new Uint8Array(mac(ref.topic, 'cluster'))).slice(0, 22));
    expect(await nodeTopic(keys, 'nabc')).toBe(toBase64Url(new Uint8Array(mac(ref.topic, 'node|nabc'))).slice(0, 22));
    const t = utf8('transcript');
    expect(await linkMac(keys, t)).toEqual(new Uint8Array(createHmac('sha256', ref.link).update(t).digest()));
    // our ciphertext opens with the reference key ...
    const payload = fromBase64(await encryptPayload(keys, utf8('{"x":1}'), 'topic-a'))!;
    const d = createDecipheriv('aes-256-gcm', ref.enc, payload.subarray(0, 12));
    d.setAAD(utf8('topic-a'));
    d.setAuthTag(payload.subarray(payload.length - 16));
    expect(Buffer.concat([d.update(payload.subarray(12, payload.length - 16)), d.final()]).toString()).toBe('{"x":1}');
    // ... and the reference's opens with ours
    const iv = new Uint8Array(12).fill(7);
    const c = createCipheriv('aes-256-gcm', ref.enc, iv);
    c.setAAD(utf8('topic-b'));
    const ct = Buffer.concat([c.update('hello'), c.final(), c.getAuthTag()]);
    const pt = await decryptPayload(keys, toBase64(new Uint8Array(Buffer.concat([iv, ct]))), 'topic-b');
    expect(Buffer.from(pt!).toString()).toBe('hello');
  });

  it('another secret or cluster gives other topics; tampered, moved or foreign payloads do not decrypt', async () => {
    const keys = await deriveClusterKeys('c1', 's1', ITER);
    const wrong = await deriveClusterKeys('c1', 's2', ITER);
    const otherCluster = await deriveClusterKeys('c2', 's1', ITER);
    expect(await clusterTopic(wrong)).not.toBe(await clusterTopic(keys));
    expect(await clusterTopic(otherCluster)).not.toBe(await clusterTopic(keys));
    const payload = await encryptPayload(keys, utf8('secret stuff'), 'topic');
    expect(Buffer.from((await decryptPayload(keys, payload, 'topic'))!).toString()).toBe('secret stuff');
    expect(await decryptPayload(wrong, payload, 'topic')).toBeNull();
    expect(await decryptPayload(keys, payload, 'other-topic')).toBeNull();
    const bytes = fromBase64(payload)!;
    bytes[20]! ^= 1;
    expect(await decryptPayload(keys, toBase64(bytes), 'topic')).toBeNull();
    expect(await decryptPayload(keys, 'AAAA', 'topic')).toBeNull();
    expect(await decryptPayload(keys, '%%%', 'topic')).toBeNull();
    const t = utf8('link');
    expect(await checkLinkMac(keys, await linkMac(keys, t), t)).toBe(true);
    expect(await checkLinkMac(keys, await linkMac(wrong, t), t)).toBe(false);
  });
});
