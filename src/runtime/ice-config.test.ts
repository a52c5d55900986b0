/**
 * The page's ICE configuration: URL parameters over the server's document over the
 * default (public STUN off loopback, none on it), TURN credentials renewed at half-life,
 * a failed fetch falls back without breaking the page.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { defaultIceServers, IceConfigSource, iceOverrideFromParams, isLoopbackHost, parseIceDocument, PUBLIC_STUN } from './ice-config';

const json = (body: unknown, status = 200): Response => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

describe('defaults', () => {
  it('no servers on loopback, a public STUN server anywhere else', () => {
    for (const h of ['localhost', '127.0.0.1', '127.3.2.1', '[::1]', 'app.localhost']) expect(defaultIceServers(h)).toEqual([]);
    for (const h of ['lan.test', 'chat.example.org', '192.168.1.20', '10.0.0.1']) expect(defaultIceServers(h)).toEqual([PUBLIC_STUN]);
    expect(isLoopbackHost('127.example.org')).toBe(false);
  });
});

describe('URL parameters', () => {
  it('?ice= replaces the servers, ?relay=1 forces relay-only', () => {
    const { override, problems } = iceOverrideFromParams(new URLSearchParams({ ice: '[{"urls":"turn:t:3478","username":"u","credential":"p"}]', relay: '1' }));
    expect(problems).toEqual([]);
    expect(override).toEqual({ iceServers: [{ urls: 'turn:t:3478', username: 'u', credential: 'p' }], relay: true });
  });

  it('a bad ?ice= is reported and ignored', () => {
    expect(iceOverrideFromParams(new URLSearchParams({ ice: '[{' })).problems[0]).toMatch(/\?ice= is not JSON/);
    expect(iceOverrideFromParams(new URLSearchParams({ ice: '[{"urls":"http://x"}]' })).problems[0]).toMatch(/urls must be stun:, stuns:, turn: or turns: URLs; ignored/);
    expect(iceOverrideFromParams(new URLSearchParams({ ice: '{}' })).override).toEqual({});
  });
});

describe('the server document', () => {
  it('is validated', () => {
    expect(parseIceDocument({ iceTransportPolicy: 'relay', iceServers: [], credentialTtlS: 60 })).toEqual({ iceTransportPolicy: 'relay', iceServers: [], credentialTtlS: 60 });
    expect(parseIceDocument({ iceTransportPolicy: 'none' })).toMatch(/iceTransportPolicy/);
    expect(parseIceDocument({ iceServers: [{ urls: 5 }] })).toMatch(/iceServers: entry 0/);
    expect(parseIceDocument('x')).toBe('not a JSON object');
  });
});

describe('IceConfigSource', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('uses the server’s servers and policy; URL parameters win', async () => {
    const fetchImpl = vi.fn(async () => json({ iceServers: [{ urls: 'stun:s:3478' }], iceTransportPolicy: 'relay' }));
    const src = new IceConfigSource({ url: '/config.json', hostname: 'chat.example.org', override: {}, fetchImpl });
    await src.ready;
    expect(src.current()).toEqual({ iceServers: [{ urls: 'stun:s:3478' }], iceTransportPolicy: 'relay' });
    expect(src.describe()).toMatchObject({ policy: 'relay', servers: ['stun:s:3478'], source: 'server', error: null });
    expect(fetchImpl).toHaveBeenCalledWith('/config.json', expect.objectContaining({ cache: 'no-store' }));

    const over = new IceConfigSource({ url: '/config.json', hostname: 'chat.example.org', override: { iceServers: [], relay: true }, fetchImpl: async () => json({ iceServers: [{ urls: 'stun:s:3478' }], iceTransportPolicy: 'all' }) });
    await over.ready;
    expect(over.current()).toEqual({ iceServers: [], iceTransportPolicy: 'relay' });
    expect(over.describe().source).toBe('url');
  });

  it('a server that configures nothing leaves the default', async () => {
    const off = new IceConfigSource({ url: '/config.json', hostname: 'chat.example.org', override: {}, fetchImpl: async () => json({ iceTransportPolicy: 'all' }) });
    await off.ready;
    expect(off.current()).toEqual({ iceServers: [PUBLIC_STUN], iceTransportPolicy: 'all' });
    expect(off.describe().source).toBe('default');
  });

  it('a failed or silent fetch falls back to the default and says why', async () => {
    const problems: string[] = [];
    const failing = new IceConfigSource({ url: '/config.json', hostname: '127.0.0.1', override: {}, fetchImpl: async () => json({}, 404), onProblem: (p) => problems.push(p) });
    await failing.ready;
    expect(failing.current()).toEqual({ iceServers: [], iceTransportPolicy: 'all' });
    expect(problems[0]).toMatch(/ICE configuration from \/config.json: HTTP 404; using the default/);

    const silent = new IceConfigSource({
      url: '/config.json',
      hostname: 'lan.test',
      override: {},
      timeoutMs: 3000,
      fetchImpl: (_url, init) => new Promise((_resolve, reject) => init!.signal!.addEventListener('abort', () => reject(new Error('aborted')))),
    });
    await vi.advanceTimersByTimeAsync(3000);
    await silent.ready;
    expect(silent.describe().error).toMatch(/no answer within 3000 ms/);
    expect(silent.current().iceServers).toEqual([PUBLIC_STUN]);
  });

  it('renews TURN credentials at half their lifetime, and retries a failed renewal keeping the old ones', async () => {
    let n = 0;
    let fail = false;
    const fetchImpl = vi.fn(async () => {
      if (fail) throw new Error('offline');
      n++;
      return json({ iceServers: [{ urls: 'turn:t:3478', username: `${n}:u`, credential: `c${n}` }], iceTransportPolicy: 'all', credentialTtlS: 60 });
    });
    const src = new IceConfigSource({ url: '/config.json', hostname: 'lan.test', override: {}, fetchImpl });
    await src.ready;
    expect(src.current().iceServers![0]!.username).toBe('1:u');
    await vi.advanceTimersByTimeAsync(29_000);
    expect(fetchImpl).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(src.current().iceServers![0]!.username).toBe('2:u');
    fail = true;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(src.current().iceServers![0]!.username).toBe('2:u');
    expect(src.describe().error).toMatch(/offline/);
    fail = false;
    await vi.advanceTimersByTimeAsync(5_000); // first retry after 5 s
    expect(src.current().iceServers![0]!.username).toBe('3:u');
    expect(src.counters()).toMatchObject({ 'ice.configFetches': 3, 'ice.configFailures': 1 });
    src.stop();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(src.counters()['ice.configFetches']).toBe(3);
  });
});
