/**
 * Link hellos between two real Transports over scripted simple-peers: a link opens only
 * once each side proved its id over both DTLS fingerprints; an impostor (an id without
 * its key), a hello replayed from another DTLS session, a first frame that is not a hello
 * or a missing / wrong cluster-secret MAC closes the link, counted, without delivering a
 * frame and without holding off the id it claimed. Incoming dials from non-members are
 * rate-limited.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Transport, type SimplePeerCtor } from '../net/transport';
import { generateIdentity, type Identity } from '../trust/keys';
import { deriveClusterKeys } from '../trust/secret';
import { linkHello, PROTOCOL_VERSION } from './link-hello';
import { nodeIdentity, type NodeIdentity } from './node-identity';

type Handler = (...args: unknown[]) => void;

class FakePeer {
  static made: FakePeer[] = [];
  readonly handlers = new Map<string, Handler[]>();
  /** The other end of this data channel. */
  other: FakePeer | null = null;
  readonly sent: Uint8Array[] = [];
  readonly _pc = {
    localDescription: null as { sdp: string } | null,
    remoteDescription: null as { sdp: string } | null,
    addEventListener: () => undefined,
  };
  constructor(readonly opts: { initiator: boolean }) {
    FakePeer.made.push(this);
  }
  on(ev: string, h: Handler): this {
    this.handlers.set(ev, [...(this.handlers.get(ev) ?? []), h]);
    return this;
  }
  emit(ev: string, ...args: unknown[]): void {
    for (const h of this.handlers.get(ev) ?? []) h(...args);
  }
  removeAllListeners(): this {
    this.handlers.clear();
    return this;
  }
  signal(): void {}
  send(b: Uint8Array): void {
    this.sent.push(b);
    this.other?.emit('data', b);
  }
  destroy(): void {}
}

const sdp = (fp: string) => ({ sdp: `v=0\r\na=fingerprint:sha-256 ${fp}\r\n` });

/** Joins two fake peers as one DTLS session (each end's certificate fingerprint) and opens the channel. */
function connect(a: FakePeer, b: FakePeer, fpA = 'AA:AA', fpB = 'BB:BB'): void {
  a.other = b;
  b.other = a;
  a._pc.localDescription = sdp(fpA);
  a._pc.remoteDescription = sdp(fpB);
  b._pc.localDescription = sdp(fpB);
  b._pc.remoteDescription = sdp(fpA);
  a.emit('connect');
  b.emit('connect');
}

interface Side {
  t: Transport;
  frames: [string, number][];
  ups: string[];
  downs: [string, string][];
  errors: string[];
}

const CLUSTER = 'test';
let keys: Identity[];

function side(me: NodeIdentity, opts: { macKey?: CryptoKey; isMember?: (p: string) => boolean; claim?: string; version?: number } = {}): Side {
  const s: Side = { t: null as unknown as Transport, frames: [], ups: [], downs: [], errors: [] };
  s.t = new Transport({
    me: opts.claim ?? me.id,
    auth: linkHello({ identity: opts.claim ? { ...me, id: opts.claim } : me, cluster: CLUSTER, macKey: opts.macKey, version: opts.version }),
    isMember: opts.isMember,
    SimplePeer: FakePeer as unknown as SimplePeerCtor,
    sendSignal: () => undefined,
    onFrame: (from, bytes) => s.frames.push([from, bytes[0]!]),
    onLinkUp: (p) => s.ups.push(p),
    onLinkDown: (p, r) => s.downs.push([p, r]),
    onError: (what) => s.errors.push(what),
  });
  return s;
}

/** Captured before the tests fake timers: WebCrypto finishes in real time, not fake time. */
const realSetTimeout = globalThis.setTimeout;

/**
 * Runs the fake clock on while the real WebCrypto work completes: at least 20 steps, then
 * until `done` holds (at most ~5 s real time, for a loaded machine).
 */
async function settle(done?: () => boolean): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    await vi.advanceTimersByTimeAsync(1);
    await new Promise((r) => realSetTimeout(r, i < 20 ? 0 : 5));
    if (i >= 20 && (!done || done())) return;
  }
}

/** K_link of a cluster secret, as the node takes it (NodeOptions.secret.keys.link); a cheap KDF for speed. */
const linkKey = async (secret: string) => (await deriveClusterKeys(CLUSTER, secret, 1_000)).link;

describe('link hellos', () => {
  let A: NodeIdentity;
  let B: NodeIdentity;
  let C: NodeIdentity;
  const open: Transport[] = [];

  beforeAll(async () => {
    keys = await Promise.all([generateIdentity(), generateIdentity(), generateIdentity()]);
  });
  beforeEach(() => {
    vi.useFakeTimers();
    FakePeer.made = [];
    [A, B, C] = keys.map((k) => nodeIdentity(k));
  });
  afterEach(() => {
    for (const t of open.splice(0)) t.closeAll();
    vi.useRealTimers();
  });

  /** a dials b (a frame queued), b answers; returns both ends' fake peers. */
  function dial(a: Side, b: Side, aId: string, bId: string): [FakePeer, FakePeer] {
    open.push(a.t, b.t);
    a.t.send(bId, new Uint8Array([7]));
    b.t.handleSignal(aId, 'conn1', { type: 'offer', sdp: 'v=0' });
    const [pa, pb] = FakePeer.made.slice(-2) as [FakePeer, FakePeer];
    return [pa, pb];
  }

  it('opens once both hellos verify, then delivers frames as from the proven id', async () => {
    const a = side(A);
    const b = side(B);
    const [pa, pb] = dial(a, b, A.id, B.id);
    connect(pa, pb);
    await settle(() => a.ups.length > 0 && b.ups.length > 0);
    expect(a.ups).toEqual([B.id]);
    expect(b.ups).toEqual([A.id]);
    await settle(() => b.frames.length > 0); // the queued frame is written in the next task
    expect(b.frames).toEqual([[A.id, 7]]);
    expect(a.t.stats.helloFailures + b.t.stats.helloFailures).toBe(0);
  });

  it('tabs of different protocol versions do not link, and each says which one must be reloaded', async () => {
    const a = side(A);
    const old = side(B, { version: PROTOCOL_VERSION - 1 });
    const [pa, pb] = dial(a, old, A.id, B.id);
    connect(pa, pb);
    await settle(() => a.t.stats.helloFailures + old.t.stats.helloFailures > 0);
    expect(a.ups).toEqual([]);
    expect(old.ups).toEqual([]);
    expect(a.frames).toEqual([]);
    expect(old.frames).toEqual([]);
    // whichever end reads the other's hello first refuses it with the reason, and closes the link
    const v = PROTOCOL_VERSION;
    expect([...a.errors, ...old.errors]).toContainEqual(
      expect.stringMatching(new RegExp(`protocol version (${v - 1}, this tab ${v}: the peer|${v}, this tab ${v - 1}: this tab) runs an older version of the app, reload it`)),
    );
    expect(a.t.isOpen(B.id)).toBe(false);
  });

  it('an impostor claiming an id without its key never links, and the real id is not held off', async () => {
    const a = side(A);
    const impostor = side(C, { claim: B.id }); // C's key, B's id
    const [pa, pc] = dial(a, impostor, A.id, B.id);
    connect(pa, pc);
    await settle(() => a.t.stats.helloFailures > 0);
    expect(a.ups).toEqual([]);
    expect(a.frames).toEqual([]);
    expect(a.t.stats.helloFailures).toBe(1);
    expect(a.t.isOpen(B.id)).toBe(false);
    expect(a.downs).toEqual([[B.id, 'hello failed: wrong key for id']]);
    // the failure is not held against B: the next send dials B again at once
    expect(a.t.linkInfos().filter((l) => l.state === 'unreachable')).toEqual([]);
    a.t.send(B.id, new Uint8Array([1]));
    expect(FakePeer.made.filter((p) => p.opts.initiator)).toHaveLength(2);
  });

  it('a hello made for another DTLS session (relayed by a man in the middle) is refused', async () => {
    const a = side(A);
    const b = side(B);
    const [pa, pb] = dial(a, b, A.id, B.id);
    // the man in the middle has its own certificate towards each: the fingerprints b signs are not the ones a sees
    pa.other = pb;
    pb.other = pa;
    pa._pc.localDescription = sdp('AA:AA');
    pa._pc.remoteDescription = sdp('EE:EE');
    pb._pc.localDescription = sdp('BB:BB');
    pb._pc.remoteDescription = sdp('FF:FF');
    pa.emit('connect');
    pb.emit('connect');
    await settle(() => a.t.stats.helloFailures > 0 && b.t.stats.helloFailures > 0);
    expect(a.ups).toEqual([]);
    expect(b.ups).toEqual([]);
    expect(a.t.stats.helloFailures).toBe(1);
    expect(b.t.stats.helloFailures).toBe(1);
  });

  it('a first frame that is not a hello closes the link and reaches nobody', async () => {
    const a = side(A);
    open.push(a.t);
    a.t.handleSignal(B.id, 'conn1', { type: 'offer', sdp: 'v=0' });
    const p = FakePeer.made[0]!;
    p._pc.localDescription = sdp('AA:AA');
    p._pc.remoteDescription = sdp('BB:BB');
    p.emit('connect');
    p.emit('data', new Uint8Array([0x81, 0xa1, 0x74, 0xa3, 0x6a, 0x6f, 0x69])); // a msgpack map, not a hello
    await settle(() => a.t.stats.helloFailures > 0);
    expect(a.frames).toEqual([]);
    expect(a.ups).toEqual([]);
    expect(a.t.stats.helloFailures).toBe(1);
    // an incoming link that failed its hello is not reported down: nobody asked for it
    expect(a.downs).toEqual([]);
  });

  it('with a cluster secret: the same secret links, a missing or different one does not', async () => {
    const k1 = await linkKey('open sesame');
    const k2 = await linkKey('open sesame!');
    const ok = [side(A, { macKey: k1 }), side(B, { macKey: k1 })] as const;
    const [p1, p2] = dial(ok[0], ok[1], A.id, B.id);
    connect(p1, p2);
    await settle(() => ok[0].ups.length > 0);
    expect(ok[0].ups).toEqual([B.id]);

    const wrong = [side(A, { macKey: k1 }), side(B, { macKey: k2 })] as const;
    const [p3, p4] = dial(wrong[0], wrong[1], A.id, B.id);
    connect(p3, p4);
    await settle(() => wrong[0].t.stats.helloFailures > 0 && wrong[1].t.stats.helloFailures > 0);
    expect(wrong[0].ups).toEqual([]);
    expect(wrong[1].ups).toEqual([]);
    expect(wrong[0].frames).toEqual([]);
    expect(wrong[1].frames).toEqual([]);

    const none = [side(A, { macKey: k1 }), side(B)] as const;
    const [p5, p6] = dial(none[0], none[1], A.id, B.id);
    connect(p5, p6);
    await settle(() => none[0].t.stats.helloFailures > 0);
    expect(none[0].ups).toEqual([]);
    expect(none[0].t.stats.helloFailures).toBe(1);
  });

  it('incoming dials from non-members are rate-limited and capped; members always get through', async () => {
    const members = new Set(['nmember0000000000']);
    const a = side(A, { isMember: (p) => members.has(p) });
    open.push(a.t);
    for (let i = 0; i < 10; i++) a.t.handleSignal(`nstranger${String(i).padStart(8, '0')}`, `c${i}`, { type: 'offer', sdp: 'v=0' });
    expect(FakePeer.made).toHaveLength(5);
    expect(a.t.stats.dialsRefused).toBe(5);
    a.t.handleSignal('nmember0000000000', 'cm', { type: 'offer', sdp: 'v=0' });
    expect(FakePeer.made).toHaveLength(6);
    // tokens come back with time, but no more than MAX_PENDING_INCOMING (8) strangers pend at once
    await vi.advanceTimersByTimeAsync(9_000);
    for (let i = 10; i < 20; i++) a.t.handleSignal(`nstranger${String(i).padStart(8, '0')}`, `c${i}`, { type: 'offer', sdp: 'v=0' });
    const strangers = FakePeer.made.filter((p) => !p.opts.initiator).length - 1;
    expect(strangers).toBe(8);
  });
});
