/**
 * The node-level rate limits of CoreNode (LimitsConfig): per link and per routed source,
 * driven the way a hostile peer would, through `frame` inputs.
 */
import { describe, expect, it } from 'vitest';
import { CoreNode, DEFAULT_LIMITS, type NodeOut } from '../node';
import { SeededRng } from '../rng';
import type { RoutedMessage } from '../messages';

function node(): CoreNode {
  const n = new CoreNode('me', {}, new SeededRng(1));
  n.handle({ type: 'start', nick: 'me' }, 0, []);
  return n;
}

const sendsTo = (out: NodeOut[], to: string) => out.filter((e) => e.type === 'send' && e.to === to);

describe('CoreNode rate limits', () => {
  it('a flooding link gets through at most burst + perSec messages a second; other links are not affected', () => {
    const n = node();
    const { burst, perSec } = DEFAULT_LIMITS.link;
    const flood = 3 * burst;
    // a kv.get from a non-replica costs us an answer each: the flood is work we refuse to do
    let answered = 0;
    for (let i = 0; i < flood; i++) {
      const out: NodeOut[] = [];
      n.handle({ type: 'frame', from: 'evil', msg: { type: 'kv.get', op: i, key: `k${i}` } }, Math.floor(i / 100), out);
      answered += sendsTo(out, 'evil').length;
    }
    const elapsed = Math.floor(flood / 100) / 1000;
    const limited = n.query.stats.limits().linkRateLimited;
    expect(flood - limited).toBeLessThanOrEqual(burst + Math.ceil(perSec * elapsed));
    expect(limited).toBeGreaterThan(0);
    expect(answered).toBe(flood - limited);
    // an honest neighbour is served at once
    const out: NodeOut[] = [];
    n.handle({ type: 'frame', from: 'honest', msg: { type: 'kv.get', op: 1, key: 'a' } }, 1_000, out);
    expect(sendsTo(out, 'honest')).toHaveLength(1);
  });

  it('routed messages for us are limited per source, whichever neighbour forwards them', () => {
    const n = node();
    const { burst } = DEFAULT_LIMITS.routeSrc;
    let answered = 0;
    for (let i = 0; i < 2 * burst; i++) {
      const out: NodeOut[] = [];
      const msg: RoutedMessage = { type: 'kv.get', op: i, key: `k${i}` };
      // spread over many links so no link limit is reached
      n.handle({ type: 'frame', from: `hop${i % 10}`, msg: { type: 'rt.route', src: 'evil', dst: 'me', ttl: 5, msg } }, 0, out);
      answered += out.filter((e) => e.type === 'send').length;
    }
    expect(n.query.stats.limits()).toEqual({ linkRateLimited: 0, routeRateLimited: burst });
    expect(answered).toBe(burst);
  });
});
