/** The pure parts: frame validation, token bucket, log limiter, topic table, limits, path check,
 * client addresses, Origin list and security headers. */
import { describe, expect, it } from 'vitest';
import { clientAddress, limitKey } from './client-address';
import { deployConfigFromEnv } from './env';
import { contentSecurityPolicy, originAllowed, parseAllowedOrigins, parseConnectSrc, securityHeaders } from './web-policy';
import { DEFAULT_LIMITS, resolveLimits } from './limits';
import { nestedDeeperThan, parseClientFrame } from './protocol';
import { RateLimitedLog, TokenBucket } from './rate';
import { safeRequestPath } from './static';
import { TopicTable } from './topics';

const limits = { maxTopicLength: 8, maxTopicsPerConnection: 3, maxJsonDepth: 3, maxWillBytes: 64 };

describe('parseClientFrame', () => {
  it('accepts the four message types', () => {
    expect(parseClientFrame('{"type":"subscribe","topics":["a","b"]}', limits)).toEqual({ ok: true, message: { type: 'subscribe', topics: ['a', 'b'] } });
    expect(parseClientFrame('{"type":"unsubscribe","topics":[]}', limits)).toEqual({ ok: true, message: { type: 'unsubscribe', topics: [] } });
    expect(parseClientFrame('{"type":"ping"}', limits)).toEqual({ ok: true, message: { type: 'ping' } });
    const r = parseClientFrame('{"type":"publish","topic":"t","data":{"x":[1]}}', limits);
    expect(r).toEqual({ ok: true, message: { type: 'publish', topic: 't', body: { type: 'publish', topic: 't', data: { x: [1] } } } });
  });

  it.each([
    ['', 'not-json'],
    ['{', 'not-json'],
    ['null', 'not-object'],
    ['[1]', 'not-object'],
    ['"s"', 'not-object'],
    ['1e3', 'not-object'],
    ['{}', 'bad-field'],
    ['{"type":null}', 'bad-field'],
    ['{"type":"subscribe","topics":"a"}', 'bad-field'],
    ['{"type":"subscribe","topics":[1]}', 'bad-field'],
    ['{"type":"subscribe","topics":["a","b","c","d"]}', 'too-many-topics'],
    ['{"type":"subscribe","topics":[""]}', 'bad-topic'],
    ['{"type":"subscribe","topics":["123456789"]}', 'bad-topic'],
    ['{"type":"publish"}', 'bad-field'],
    ['{"type":"publish","topic":{}}', 'bad-field'],
    ['{"type":"publish","topic":""}', 'bad-topic'],
    ['{"type":"hello"}', 'unknown-type'],
    ['{"type":"publish","topic":"t","data":{"a":[[1]]}}', 'too-deep'],
    ['{"type":"publish","topic":"t","data":[[[]]]}', 'too-deep'],
    ['{"type":"will","topic":null}', 'bad-field'],
    ['{"type":"will","topic":7}', 'bad-field'],
    ['{"type":"will","topic":""}', 'bad-topic'],
    ['{"type":"will","topic":"123456789"}', 'bad-topic'],
    ['{"type":"will","topic":"t","data":[[[]]]}', 'too-deep'],
    [`{"type":"will","topic":"t","pad":"${'p'.repeat(29)}"}`, 'will-too-large'], // 65 bytes
  ])('%s → %s', (text, reason) => {
    const r = parseClientFrame(text, limits);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBe(reason);
  });

  it('reads a will as the publish it will become, and a will without topic as a clear', () => {
    expect(parseClientFrame('{"type":"will","topic":"t","data":{"x":1}}', limits)).toEqual({ ok: true, message: { type: 'will', will: { topic: 't', body: { type: 'publish', topic: 't', data: { x: 1 } } } } });
    expect(parseClientFrame('{"type":"will"}', limits)).toEqual({ ok: true, message: { type: 'will', will: null } });
    const exact = `{"type":"will","topic":"t","pad":"${'p'.repeat(28)}"}`; // maxWillBytes, counted in bytes
    expect(Buffer.byteLength(exact)).toBe(64);
    expect(parseClientFrame(exact, limits).ok).toBe(true);
    expect(parseClientFrame(`{"type":"will","topic":"t","pad":"${'é'.repeat(15)}"}`, limits)).toMatchObject({ ok: false, reason: 'will-too-large' }); // 51 chars, 66 bytes
  });

  it('allows nesting up to maxJsonDepth (the frame itself is level 1)', () => {
    expect(parseClientFrame('{"type":"publish","topic":"t","data":{"a":1,"b":[]}}', limits).ok).toBe(true);
  });

  it('does not let __proto__ in a frame alter objects', () => {
    const r = parseClientFrame('{"type":"publish","topic":"t","__proto__":{"polluted":true}}', limits);
    expect(r.ok).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    if (r.ok && r.message.type === 'publish') expect(JSON.parse(JSON.stringify(r.message.body)).__proto__).toEqual({ polluted: true });
  });
});

describe('nestedDeeperThan', () => {
  it('measures objects and arrays, not scalars', () => {
    expect(nestedDeeperThan('x', 0)).toBe(false);
    expect(nestedDeeperThan({}, 0)).toBe(true);
    expect(nestedDeeperThan({ a: [{}] }, 3)).toBe(false);
    expect(nestedDeeperThan({ a: [{ b: [] }] }, 3)).toBe(true);
  });

  it('copes with nesting far deeper than the stack allows', () => {
    const deep = JSON.parse('['.repeat(100_000) + ']'.repeat(100_000));
    expect(nestedDeeperThan(deep, 32)).toBe(true);
  });
});

describe('TokenBucket', () => {
  it('allows a burst, then refills at the given rate', () => {
    const b = new TokenBucket(3, 10, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.take(50)).toBe(false); // half a token
    expect(b.take(100)).toBe(true); // one token after 100 ms at 10/s
    expect(b.take(100_000)).toBe(true);
    expect(b.level).toBe(2); // capped at capacity, minus the one just taken
  });

  it('takes several tokens at once (bytes), or none when there are not that many', () => {
    const b = new TokenBucket(100, 10, 0);
    expect(b.take(0, 60)).toBe(true);
    expect(b.take(0, 60)).toBe(false);
    expect(b.level).toBe(40); // the refused take took nothing
    expect(b.take(2000, 60)).toBe(true); // 40 + 20 refilled
    expect(b.full(2000)).toBe(false);
    expect(b.full(20_000)).toBe(true);
  });

  it('ignores a clock that goes backwards', () => {
    const b = new TokenBucket(1, 1, 1000);
    expect(b.take(1000)).toBe(true);
    expect(b.take(0)).toBe(false);
  });
});

describe('RateLimitedLog', () => {
  it('passes a burst, suppresses the rest, and reports how many it suppressed', () => {
    const lines: string[] = [];
    let now = 0;
    const log = new RateLimitedLog((l) => lines.push(l), 2, 1, () => now);
    for (let i = 0; i < 10; i++) log.line(`l${i}`);
    expect(lines).toEqual(['l0', 'l1']);
    now = 1000;
    log.line('later');
    expect(lines[2]).toBe('later (8 similar lines suppressed)');
    expect(log.suppressedTotal).toBe(8);
  });
});

describe('TopicTable', () => {
  it('drops a topic when its last subscriber leaves and enforces the cap on new topics only', () => {
    const t = new TopicTable<string>(2);
    expect(t.add('a', 'c1')).toBe(true);
    expect(t.add('b', 'c1')).toBe(true);
    expect(t.add('c', 'c1')).toBe(false);
    expect(t.add('a', 'c2')).toBe(true);
    expect(t.subscribers('a')?.size).toBe(2);
    t.add('a', 'c2'); // already there: no double count
    expect(t.subscriptions).toBe(3);
    t.remove('b', 'c1');
    t.remove('b', 'c1');
    expect(t.subscriptions).toBe(2);
    expect(t.size).toBe(1);
    expect(t.subscribers('b')).toBeUndefined();
    expect(t.add('c', 'c1')).toBe(true);
    t.remove('zzz', 'c1'); // unknown topic: no-op
    expect(t.size).toBe(2);
  });
});

describe('resolveLimits', () => {
  it('merges overrides and rejects unknown or invalid values', () => {
    expect(resolveLimits({ rateBurst: 5 })).toEqual({ ...DEFAULT_LIMITS, rateBurst: 5 });
    expect(() => resolveLimits({ nope: 1 } as never)).toThrow('unknown signaling limit');
    expect(() => resolveLimits({ ratePerSec: Number.NaN })).toThrow('finite');
    expect(() => resolveLimits({ maxTopics: -1 })).toThrow('finite');
    expect(() => resolveLimits({ maxFrameBytes: 10 })).toThrow('maxFrameBytes');
    // a byte burst below the largest frame would refuse such frames forever
    expect(() => resolveLimits({ rateBytesBurst: 1000 })).toThrow('rateBytesBurst');
    expect(() => resolveLimits({ maxFrameBytes: 512 * 1024 })).toThrow('rateBytesBurst');
    expect(() => resolveLimits({ rateBytesBurstPerIp: 1000 })).toThrow('rateBytesBurstPerIp');
    expect(resolveLimits({ maxFrameBytes: 512 * 1024, rateBytesBurst: 512 * 1024 }).rateBytesBurst).toBe(512 * 1024);
    expect(resolveLimits({ maxWillBytes: 0 }).maxWillBytes).toBe(0);
    expect(() => resolveLimits({ maxWillBytes: -1 })).toThrow('maxWillBytes');
  });

  it('has the per-address limits on by default', () => {
    expect(DEFAULT_LIMITS.maxConnectionsPerIp).toBeGreaterThan(0);
    expect(DEFAULT_LIMITS.maxTopicsPerIp).toBeGreaterThanOrEqual(2 * DEFAULT_LIMITS.maxConnectionsPerIp); // a tab holds 2
    expect(DEFAULT_LIMITS.rateBytesBurst).toBeGreaterThanOrEqual(DEFAULT_LIMITS.maxFrameBytes);
  });
});

describe('safeRequestPath', () => {
  it.each([
    ['/', '/'],
    ['/a/b.js?x=1#h', '/a/b.js'],
    ['/caf%C3%A9', '/café'],
    ['/a..b/c', '/a..b/c'], // dots inside a name are fine
  ])('%s → %s', (url, expected) => {
    expect(safeRequestPath(url)).toBe(expected);
  });

  it.each(['/..', '/a/../b', '/%2e%2e/x', '/a%2f..%2fb', '/a\\b', '/%00', 'relative', '/%zz'])('refuses %s', (url) => {
    expect(safeRequestPath(url)).toBeNull();
  });
});

describe('client addresses', () => {
  it.each([
    ['1.2.3.4', '1.2.3.4'],
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:DB8:1:2::9', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['64:ff9b::1.2.3.4', '64:ff9b:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
  ])('limit key of %s is %s', (address, key) => {
    expect(limitKey(address)).toBe(key);
  });

  it('ignores X-Forwarded-For unless proxies are trusted, then takes the entry the n-th proxy wrote', () => {
    expect(clientAddress('127.0.0.1', '9.9.9.9', 0)).toEqual({ address: '127.0.0.1', key: '127.0.0.1' });
    expect(clientAddress('127.0.0.1', '9.9.9.9, 1.2.3.4', 1).address).toBe('1.2.3.4');
    expect(clientAddress('127.0.0.1', '9.9.9.9, 1.2.3.4', 2).address).toBe('9.9.9.9');
    expect(clientAddress('127.0.0.1', ['9.9.9.9', '1.2.3.4'], 1).address).toBe('1.2.3.4'); // repeated headers
    expect(clientAddress('127.0.0.1', '1.2.3.4', 3).address).toBe('1.2.3.4'); // fewer hops than configured
    expect(clientAddress('127.0.0.1', 'junk', 1).address).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', '', 1).address).toBe('127.0.0.1');
    expect(clientAddress('::ffff:127.0.0.1', undefined, 1).address).toBe('127.0.0.1');
    expect(clientAddress('10.0.0.1', '2001:db8::5', 1)).toEqual({ address: '2001:db8::5', key: '2001:db8:0:0::/64' });
  });
});

describe('Origin list and security headers', () => {
  it('parses ALLOWED_ORIGINS into origins as browsers send them', () => {
    expect(parseAllowedOrigins('https://Chat.Example.org, http://127.0.0.1:8787,https://x.example:443')).toEqual([
      'https://chat.example.org',
      'http://127.0.0.1:8787',
      'https://x.example',
    ]);
    expect(() => parseAllowedOrigins('chat.example.org')).toThrow(/not an origin/);
    expect(() => parseAllowedOrigins('https://chat.example.org/app')).toThrow(/not an origin/);
    expect(() => parseAllowedOrigins('wss://chat.example.org')).toThrow(/not an origin/);
    expect(() => parseAllowedOrigins(' , ')).toThrow(/lists no origin/);
  });

  it('checks the Origin header against the list; no list, or no header (not a browser), passes', () => {
    const allowed = ['https://chat.example.org'];
    expect(originAllowed('https://chat.example.org', allowed)).toBe(true);
    expect(originAllowed('HTTPS://CHAT.EXAMPLE.ORG', allowed)).toBe(true);
    expect(originAllowed('https://chat.example.org.evil.example', allowed)).toBe(false);
    expect(originAllowed('null', allowed)).toBe(false);
    expect(originAllowed(undefined, allowed)).toBe(true);
    expect(originAllowed('https://anything.example', null)).toBe(true);
  });

  it('the CSP allows the app its own origin and WebSockets, and nothing may frame it', () => {
    const csp = contentSecurityPolicy();
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(csp).toContain("connect-src 'self' ws: wss:");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(contentSecurityPolicy(['wss://signal.example.org'])).toContain("connect-src 'self' wss://signal.example.org;");
    expect(securityHeaders()).toMatchObject({ 'X-Frame-Options': 'DENY', 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' });
  });

  it('parses CSP_CONNECT_SRC and refuses what would break the header', () => {
    expect(parseConnectSrc('wss://a.example, wss://b.example:8443  ws://127.0.0.1:*')).toEqual(['wss://a.example', 'wss://b.example:8443', 'ws://127.0.0.1:*']);
    expect(() => parseConnectSrc("wss://a.example; script-src 'unsafe-inline'")).toThrow(/CSP_CONNECT_SRC/);
    expect(() => parseConnectSrc("'unsafe-eval'")).toThrow(/CSP_CONNECT_SRC/);
  });
});

describe('deployment variables of the hardening', () => {
  it('reads TRUST_PROXY, ALLOWED_ORIGINS and CSP_CONNECT_SRC, and refuses bad values naming the variable', () => {
    expect(deployConfigFromEnv({})).toMatchObject({ trustProxy: 0, allowedOrigins: null, connectSrc: null });
    expect(deployConfigFromEnv({ TRUST_PROXY: '1', ALLOWED_ORIGINS: 'https://chat.example.org', CSP_CONNECT_SRC: 'wss://chat.example.org' })).toMatchObject({
      trustProxy: 1,
      allowedOrigins: ['https://chat.example.org'],
      connectSrc: ['wss://chat.example.org'],
    });
    expect(() => deployConfigFromEnv({ TRUST_PROXY: 'true' })).toThrow(/TRUST_PROXY must be the number of reverse proxies/);
    expect(() => deployConfigFromEnv({ TRUST_PROXY: '-1' })).toThrow(/TRUST_PROXY/);
    expect(() => deployConfigFromEnv({ ALLOWED_ORIGINS: 'example.org' })).toThrow(/ALLOWED_ORIGINS/);
  });
});
