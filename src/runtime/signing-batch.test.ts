import { describe, expect, it } from 'vitest';
import { SigningBatch } from './signing-batch';

const later = <T>(v: T, ms: number) => new Promise<T>((r) => setTimeout(() => r(v), ms));

describe('SigningBatch', () => {
  it('releases results in the order added, together, whatever order they finish in; a failure is released in its turn', async () => {
    const b = new SigningBatch(50);
    const out: string[] = [];
    b.add(() => later('a', 20), (r) => out.push(r.ok ? r.value : 'error'));
    b.add(() => Promise.reject(new Error('no key')), (r) => out.push(r.ok ? 'ok' : (r.error as Error).message));
    b.add(() => later('c', 1), (r) => out.push(r.ok ? r.value : 'error'));
    b.add(() => {
      throw new Error('not encodable');
    }, (r) => out.push(r.ok ? 'ok' : (r.error as Error).message));
    await later(null, 10);
    expect(out).toEqual([]); // the first is still being signed
    await later(null, 20);
    expect(out).toEqual(['a', 'no key', 'c', 'not encodable']);
  });

  it('a lone job is released as soon as it is done', async () => {
    const b = new SigningBatch(1_000);
    const out: number[] = [];
    b.add(() => Promise.resolve(1), (r) => r.ok && out.push(r.value));
    await Promise.resolve();
    await Promise.resolve();
    expect(out).toEqual([1]);
  });
});
