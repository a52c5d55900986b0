import { describe, expect, it } from 'vitest';
import type { WireMessage } from '../core/node';
import { decodeAll } from '../wire/codec';
import { ROUTE_BUNDLE_MAX, RouteBundles, type RouteOut } from './route-bundles';

/** A fake signer: each signature is a promise the test settles; pushes are recorded in order. */
function setup() {
  const signatures: { src: string; dst: string; texts: string[]; finish: () => void }[] = [];
  const sent: { to: string; texts: string[] }[] = [];
  const order: Promise<void>[] = [];
  const bundles = new RouteBundles(
    (src, dst, _ttl, parts) =>
      new Promise<WireMessage>((resolve) => {
        const texts = parts.flatMap((p) => decodeAll<{ text: string }>(p, () => null).msgs.map((m) => m.text));
        signatures.push({ src, dst, texts, finish: () => resolve({ type: 'rt.route', texts } as unknown as WireMessage) });
      }),
    (to, sealed) => order.push(sealed.then((m) => void sent.push({ to, texts: (m as unknown as { texts: string[] }).texts }))),
  );
  const env = (dst: string, text: string): RouteOut => ({ src: 'me', dst, ttl: 12, msg: { text } });
  const turn = () => new Promise((r) => setTimeout(r, 0));
  return { bundles, signatures, sent, env, turn };
}

describe('RouteBundles', () => {
  it('the messages of one turn to one destination are signed as one envelope, other destinations apart', async () => {
    const { bundles, signatures, env, turn } = setup();
    bundles.add('hop', env('d1', 'a'), false);
    bundles.add('hop', env('d1', 'b'), false);
    bundles.add('hop', env('d2', 'c'), false);
    bundles.add('hop', env('d1', 'd'), false);
    await turn();
    expect(signatures.map((s) => [s.dst, s.texts])).toEqual([['d1', ['a', 'b', 'd']], ['d2', ['c']]]);
  });

  it('a lone message is signed at once; while its signature runs, the next ones gather into one envelope after it', async () => {
    const { bundles, signatures, sent, env, turn } = setup();
    bundles.add('hop', env('d1', 'a'), false);
    await turn();
    expect(signatures).toHaveLength(1);
    for (const t of ['b', 'c']) {
      bundles.add('hop', env('d1', t), false);
      await turn();
    }
    // nothing more is signed while the first signature is under way
    expect(signatures).toHaveLength(1);
    signatures[0]!.finish();
    await turn();
    expect(signatures.map((s) => s.texts)).toEqual([['a'], ['b', 'c']]);
    signatures[1]!.finish();
    await turn();
    expect(sent).toEqual([{ to: 'hop', texts: ['a'] }, { to: 'hop', texts: ['b', 'c'] }]);
    // idle again: the next lone message waits for nothing
    bundles.add('hop', env('d1', 'e'), false);
    await turn();
    expect(signatures.map((s) => s.texts)).toEqual([['a'], ['b', 'c'], ['e']]);
  });

  it('an envelope holds at most ROUTE_BUNDLE_MAX messages and 64 KiB of them', async () => {
    const { bundles, signatures, env, turn } = setup();
    for (let i = 0; i < ROUTE_BUNDLE_MAX + 2; i++) bundles.add('hop', env('d1', `m${i}`), false);
    const big = 'x'.repeat(40 * 1024);
    bundles.add('hop', env('d2', big), false);
    bundles.add('hop', env('d2', big), false);
    await turn();
    // the second envelope of each destination waits for the first one's signature
    expect(signatures.map((s) => [s.dst, s.texts.length])).toEqual([['d1', ROUTE_BUNDLE_MAX], ['d2', 1]]);
    for (const s of [...signatures]) s.finish();
    await turn();
    expect(signatures.map((s) => [s.dst, s.texts.length])).toEqual([['d1', ROUTE_BUNDLE_MAX], ['d2', 1], ['d1', 2], ['d2', 1]]);
  });
});
