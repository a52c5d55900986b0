/**
 * Transport diagnostics with a scripted simple-peer: a peer whose dials never open is
 * recorded with the reason, held off after two failures in a row (sends fail at once,
 * reported down once per hold-off), dialled again after the hold-off, and still
 * answered when it dials us; an open link is listed with its path.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEAD_AFTER_MS, HEARTBEAT_MS, ICE_CHECK_MS, IDLE_LINK_MS, Transport, type LinkAuth, type SimplePeerCtor, type TransportOptions } from './transport';
import { HEARTBEAT_FRAME, PROBE_FRAME } from '../wire/codec';

type Handler = (...args: unknown[]) => void;

class FakePeer {
  static made: FakePeer[] = [];
  readonly handlers = new Map<string, Handler[]>();
  readonly signals: unknown[] = [];
  destroyed = false;
  /** What simple-peer's RTCPeerConnection shows the transport: the SDPs' fingerprints. */
  readonly _pc = {
    localDescription: { sdp: 'v=0\r\na=fingerprint:sha-256 AA:01\r\n' },
    remoteDescription: { sdp: 'v=0\r\na=fingerprint:sha-256 BB:02\r\n' },
    addEventListener: () => undefined,
  };
  constructor(readonly opts: { initiator: boolean; config: RTCConfiguration }) {
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
  signal(s: unknown): void {
    this.signals.push(s);
  }
  readonly sent: number[][] = [];
  send(data: Uint8Array): void {
    this.sent.push([...data]);
  }
  destroy(): void {
    this.destroyed = true;
  }
}

const offer = { type: 'offer', sdp: 'v=0' };
/** Hellos are runtime/link-hello.ts's (tested there): here every peer's hello is one byte and accepted. */
const HELLO = new Uint8Array([0x90]);
const acceptHellos: LinkAuth = { hello: async () => HELLO, verify: async () => null };

/**
 * The link 'b' dials to `on`, opened: its offer, connect and hello (the first scripted
 * peer); `settle` lets the hello's check finish (fake or real timers).
 */
async function openLinkOn(on: Transport, settle: () => Promise<unknown>): Promise<FakePeer> {
  on.handleSignal('b', 'b.1.x', offer);
  const p = FakePeer.made[0]!;
  p.emit('connect');
  p.emit('data', HELLO);
  await settle();
  expect(on.isOpen('b')).toBe(true);
  return p;
}

/** A transport on scripted peers that accepts every hello, as 'a' unless `opts` says otherwise. */
function transport(opts: Partial<TransportOptions> = {}): Transport {
  return new Transport({
    me: 'a',
    auth: acceptHellos,
    SimplePeer: FakePeer as unknown as SimplePeerCtor,
    sendSignal: () => undefined,
    onFrame: () => undefined,
    onLinkUp: () => undefined,
    onLinkDown: () => undefined,
    rtcConfig: () => ({ iceServers: [] }),
    ...opts,
  });
}

describe('Transport: unreachable peers', () => {
  let downs: [string, string][];
  let t: Transport;

  const make = (dialTimeoutMs: number): Transport =>
    transport({
      onLinkDown: (peer, reason) => downs.push([peer, reason]),
      rtcConfig: () => ({ iceServers: [{ urls: 'turn:127.0.0.1:3478', username: 'u', credential: 'c' }], iceTransportPolicy: 'relay' }),
      dialTimeoutMs,
    });

  beforeEach(() => {
    vi.useFakeTimers();
    FakePeer.made = [];
    downs = [];
    t = make(1000);
  });
  afterEach(() => {
    t.closeAll();
    vi.useRealTimers();
  });

  it('records why, holds the peer off after two failures, and dials again after the hold-off', async () => {
    t.send('b', new Uint8Array([1]));
    expect(FakePeer.made).toHaveLength(1);
    expect(FakePeer.made[0]!.opts.config.iceTransportPolicy).toBe('relay');
    // our side gathered a host candidate only (no relay: the TURN server did not answer)
    FakePeer.made[0]!.emit('signal', { type: 'candidate', candidate: { candidate: 'candidate:1 1 udp 2122260223 10.0.0.2 5000 typ host' } });
    await vi.advanceTimersByTimeAsync(1000);
    expect(downs).toEqual([['b', 'dial timeout after 1 s: no relay candidate gathered: the TURN server is unreachable or refused the credentials']]);
    expect(t.linkInfos()).toMatchObject([{ peer: 'b', state: 'unreachable', failures: 1, retryInMs: 0 }]);

    t.send('b', new Uint8Array([2])); // one failure is free: dialled again
    expect(FakePeer.made).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(t.linkInfos()).toMatchObject([{ peer: 'b', state: 'unreachable', failures: 2, retryInMs: 5000 }]);

    // held off: no dial, the send reported down once (after the current task)
    downs = [];
    t.send('b', new Uint8Array([3]));
    t.send('b', new Uint8Array([4]));
    t.connect('b');
    expect(FakePeer.made).toHaveLength(2);
    expect(downs).toEqual([]);
    await vi.advanceTimersByTimeAsync(0);
    expect(downs).toHaveLength(1);
    expect(downs[0]![1]).toMatch(/^unreachable: dial timeout after 1 s: no relay candidate gathered/);
    expect(t.stats.unreachableDrops).toBe(2);

    // the peer dialling us is answered all the same
    t.handleSignal('b', 'b.1.x', offer);
    expect(FakePeer.made).toHaveLength(3);
    expect(FakePeer.made[2]!.opts.initiator).toBe(false);
    expect(t.linkInfos()).toMatchObject([{ peer: 'b', state: 'connecting', failures: 2 }]);
    FakePeer.made[2]!.emit('connect');
    FakePeer.made[2]!.emit('data', HELLO);
    await vi.advanceTimersByTimeAsync(0);
    expect(t.linkInfos()).toMatchObject([{ peer: 'b', state: 'open' }]);
    expect(t.linkInfos()[0]!.reason).toBeUndefined();
  });

  it('a pending dial the overlay gives up on counts as failed once it had time to connect', async () => {
    t.closeAll();
    t = make(10_000);
    t.send('c', new Uint8Array([1]));
    await vi.advanceTimersByTimeAsync(500);
    t.close('c'); // e.g. glare or a refusal: too early to call it a failure
    expect(t.linkInfos()).toEqual([]);
    t.send('c', new Uint8Array([1]));
    await vi.advanceTimersByTimeAsync(2500);
    expect(downs).toEqual([]);
    t.close('c');
    expect(t.linkInfos()).toMatchObject([{ peer: 'c', state: 'unreachable', failures: 1 }]);
    expect(t.linkInfos()[0]!.reason).toMatch(/^no connection after 2\.5 s: no relay candidate gathered/);
  });
});

describe('Transport: signals that overtake their offer', () => {
  let t: Transport;
  beforeEach(() => {
    vi.useFakeTimers();
    FakePeer.made = [];
    t = transport();
  });
  afterEach(() => {
    t.closeAll();
    vi.useRealTimers();
  });

  const cand = (n: number) => ({ candidate: { candidate: `candidate:${n} 1 udp 1 10.0.0.2 5000 typ host`, sdpMid: '0' } });

  it('feeds them to the link their offer creates, after the offer', () => {
    t.handleSignal('b', 'b.1', cand(1));
    t.handleSignal('b', 'b.1', cand(2));
    t.handleSignal('b', 'b.1', offer);
    expect(FakePeer.made).toHaveLength(1);
    expect(FakePeer.made[0]!.signals).toEqual([offer, cand(1), cand(2)]);
  });

  it('a flood under a claimed id is bounded and counted, and does not push out another peer\'s signals', () => {
    t.handleSignal('c', 'c.1', cand(7));
    for (let i = 0; i < 5_000; i++) t.handleSignal('b', `b.${i}`, cand(i));
    expect(t.stats.earlyDropped).toBe(5_000 - 64);
    t.handleSignal('c', 'c.1', offer);
    expect(FakePeer.made[0]!.signals).toEqual([offer, cand(7)]);
  });
});

describe('Transport: frames before simple-peer reports the link connected', () => {
  let frames: number[][];
  let ups: string[];
  let t: Transport;
  beforeEach(() => {
    vi.useFakeTimers();
    FakePeer.made = [];
    frames = [];
    ups = [];
    t = transport({
      onFrame: (_peer, data) => frames.push([...data]),
      onLinkUp: (peer) => ups.push(peer),
    });
  });
  afterEach(() => {
    t.closeAll();
    vi.useRealTimers();
  });

  it('keeps the peer’s hello and frames that arrive before connect, and delivers them once it fires', async () => {
    // simple-peer emits 'connect' after an async getStats(); the peer's channel may already
    // be open and its hello (and first frames) delivered to us before that.
    t.handleSignal('b', 'b.1.x', offer);
    const p = FakePeer.made[0]!;
    p.emit('data', HELLO);
    p.emit('data', new Uint8Array([7, 7]));
    await vi.advanceTimersByTimeAsync(0);
    expect(t.stats.helloFailures).toBe(0);
    p.emit('connect');
    await vi.advanceTimersByTimeAsync(0);
    expect(t.stats.helloFailures).toBe(0);
    expect(ups).toEqual(['b']);
    expect(frames).toEqual([[7, 7]]);
  });

  it('a flood before connect still fails the link, counted against the link', () => {
    t.handleSignal('b', 'b.1.x', offer);
    const p = FakePeer.made[0]!;
    for (let i = 0; i < 1000; i++) p.emit('data', new Uint8Array([1]));
    expect(t.stats.helloFailures).toBe(1);
    expect(p.destroyed).toBe(true);
  });
});

describe('Transport: heartbeats and link checks (a peer whose signaling connection closed, or whose ICE went disconnected)', () => {
  let frames: number[][];
  let downs: [string, string][];
  let t: Transport;
  beforeEach(() => {
    vi.useFakeTimers();
    FakePeer.made = [];
    frames = [];
    downs = [];
    t = transport({
      onFrame: (_peer, data) => frames.push([...data]),
      onLinkDown: (peer, reason) => downs.push([peer, reason]),
    });
  });
  afterEach(() => {
    t.closeAll();
    vi.useRealTimers();
  });

  const openLink = () => openLinkOn(t, () => vi.advanceTimersByTimeAsync(0));

  it('a silent peer is dropped within the check time, long before the heartbeat deadline', async () => {
    const p = await openLink();
    expect(t.check('b', 1000)).toBe(true);
    expect(p.sent.at(-1)).toEqual([...PROBE_FRAME]);
    await vi.advanceTimersByTimeAsync(999);
    expect(downs).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(downs).toEqual([['b', 'no answer to a link check within 1000 ms (its signaling connection closed)']]);
    expect(t.stats).toMatchObject({ checks: 1, checkTimeouts: 1, heartbeatTimeouts: 0 });
    expect(p.destroyed).toBe(true);
  });

  it('a live peer answers and keeps its link', async () => {
    const p = await openLink();
    t.check('b', 1000);
    await vi.advanceTimersByTimeAsync(3);
    p.emit('data', HEARTBEAT_FRAME); // the answer
    await vi.advanceTimersByTimeAsync(5000);
    expect(downs.filter(([, r]) => r.includes('link check'))).toEqual([]);
    expect(t.stats.checkTimeouts).toBe(0);
    expect(frames).toEqual([]);
  });

  it('answers a probe with a heartbeat at once, and hands neither to the node', async () => {
    const p = await openLink();
    const before = p.sent.length;
    p.emit('data', PROBE_FRAME);
    expect(p.sent.slice(before)).toEqual([[...HEARTBEAT_FRAME]]);
    p.emit('data', new Uint8Array([9]));
    expect(frames).toEqual([[9]]);
  });

  it("the ICE connection going disconnected (a crashed peer, a cut network) starts a check", async () => {
    const p = await openLink();
    p.emit('iceStateChange', 'disconnected', 'complete');
    expect(p.sent.at(-1)).toEqual([...PROBE_FRAME]);
    await vi.advanceTimersByTimeAsync(ICE_CHECK_MS);
    expect(downs).toEqual([['b', `no answer to a link check within ${ICE_CHECK_MS} ms (its ICE connection went disconnected)`]]);
    expect(t.stats).toMatchObject({ checks: 1, iceChecks: 1, checkTimeouts: 1, heartbeatTimeouts: 0 });
  });

  it('a connection that recovers answers the check and keeps its link', async () => {
    const p = await openLink();
    p.emit('iceStateChange', 'disconnected', 'complete');
    await vi.advanceTimersByTimeAsync(500);
    p.emit('iceStateChange', 'connected', 'complete');
    p.emit('data', HEARTBEAT_FRAME);
    await vi.advanceTimersByTimeAsync(ICE_CHECK_MS);
    expect(downs).toEqual([]);
    expect(t.isOpen('b')).toBe(true);
  });

  const isProbe = (f: number[]) => f.length === 2 && f[0] === PROBE_FRAME[0] && f[1] === PROBE_FRAME[1];
  const isBeat = (f: number[]) => f.length === 1 && f[0] === HEARTBEAT_FRAME[0];

  it('on an idle link the smaller id asks with a probe once per period and the other answers; a silent peer is dropped at the deadline', async () => {
    const p = await openLink(); // we are 'a', the peer 'b': we ask
    const before = p.sent.length;
    let answered = before;
    for (let s = 0; s < 60; s++) {
      await vi.advanceTimersByTimeAsync(1000);
      // the peer answers each probe at once, and sends nothing else
      for (; answered < p.sent.length; answered++) if (isProbe(p.sent[answered]!)) p.emit('data', HEARTBEAT_FRAME);
    }
    const sent = p.sent.slice(before);
    const probes = sent.filter(isProbe).length;
    // one per silence of three quarters of a period, and nothing else
    expect(probes).toBeGreaterThanOrEqual(60_000 / HEARTBEAT_MS);
    expect(probes).toBeLessThanOrEqual(Math.ceil(60_000 / ((HEARTBEAT_MS * 3) / 4)));
    expect(sent.filter(isBeat)).toEqual([]);
    expect(downs).toEqual([]);
    // now the peer goes silent (frozen) after one last frame: dropped after DEAD_AFTER_MS,
    // not before, and asked once per three quarters of a period meanwhile, not every second
    p.emit('data', HEARTBEAT_FRAME);
    const silent = p.sent.length;
    await vi.advanceTimersByTimeAsync(DEAD_AFTER_MS - 1000);
    expect(downs).toEqual([]);
    expect(p.sent.slice(silent).filter(isProbe).length).toBeLessThanOrEqual(Math.ceil(DEAD_AFTER_MS / ((HEARTBEAT_MS * 3) / 4)));
    await vi.advanceTimersByTimeAsync(2000);
    expect(downs).toHaveLength(1);
    expect(downs[0]![1]).toMatch(/^no heartbeat for/);
    expect(t.stats.heartbeatTimeouts).toBe(1);
  });

  it('the larger id only answers while the peer asks, and sends on its own once the peer has been silent a period and a half', async () => {
    const c = transport({
      me: 'c',
      onLinkDown: (peer, reason) => downs.push([peer, reason]),
    });
    try {
      const p = await openLinkOn(c, () => vi.advanceTimersByTimeAsync(0));
      const before = p.sent.length;
      // 'b' asks every 8 s for a minute: every heartbeat of ours is an answer
      for (let s = 1; s <= 60; s++) {
        if (s % 8 === 0) p.emit('data', PROBE_FRAME);
        await vi.advanceTimersByTimeAsync(1000);
      }
      expect(p.sent.slice(before).filter(isBeat)).toHaveLength(7);
      expect(p.sent.slice(before).filter(isProbe)).toEqual([]);
      // 'b' asks once more, then stops (its timers stalled): after a period and a half of
      // silence both ways we send a heartbeat of our own
      p.emit('data', PROBE_FRAME);
      const quiet = p.sent.length;
      await vi.advanceTimersByTimeAsync((HEARTBEAT_MS * 3) / 2 - 1500);
      expect(p.sent.length).toBe(quiet);
      await vi.advanceTimersByTimeAsync(2000);
      expect(p.sent.slice(quiet).filter(isBeat)).toHaveLength(1);
    } finally {
      c.closeAll();
    }
  });

  it('no open link: nothing to check', () => {
    expect(t.check('z', 1000)).toBe(false);
    expect(t.stats.checks).toBe(0);
  });
});

describe('Transport: when queued frames leave', () => {
  let t: Transport;
  beforeEach(() => {
    FakePeer.made = [];
    t = transport();
  });
  afterEach(() => t.closeAll());

  const macrotask = () => new Promise((r) => setTimeout(r, 0));
  const openLink = () => openLinkOn(t, macrotask);

  it('an idle link sends at the end of the microtasks, without waiting for a task, the frames of that turn in one message', async () => {
    const p = await openLink();
    await new Promise((r) => setTimeout(r, IDLE_LINK_MS + 5));
    const before = p.sent.length;
    t.send('b', new Uint8Array([0x01]));
    t.send('b', new Uint8Array([0x02]));
    expect(p.sent.length).toBe(before);
    await null;
    expect(p.sent.slice(before)).toEqual([[0x01, 0x02]]);
    // the link is busy now: the next frames wait for a task, and go together
    t.send('b', new Uint8Array([0x03]));
    await null;
    await null;
    expect(p.sent.length).toBe(before + 1);
    t.send('b', new Uint8Array([0x04]));
    await macrotask();
    expect(p.sent.slice(before)).toEqual([[0x01, 0x02], [0x03, 0x04]]);
  });
});
