import { describe, expect, it } from 'vitest';
import { approvedSignaling, confirmSignaling, foreignSignaling, rememberApproved } from './signaling-consent';

const page = { origin: 'http://127.0.0.1:8787', href: 'http://127.0.0.1:8787/?cluster=c' };
const securePage = { origin: 'https://chat.example.org', href: 'https://chat.example.org/app?x=1' };

class MemoryStorage {
  readonly items = new Map<string, string>();
  getItem(k: string): string | null {
    return this.items.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.items.set(k, v);
  }
}

describe('foreignSignaling', () => {
  it('treats the page own server (any path) as not foreign, and every other origin as foreign', () => {
    // relative URLs resolve against the page, as the WebSocket constructor resolves them
    expect(foreignSignaling(['ws://127.0.0.1:8787/signal', 'ws://127.0.0.1:8787', '/signal', 'not a url at all'], page)).toEqual([]);
    expect(foreignSignaling(['wss://chat.example.org/signal'], securePage)).toEqual([]);
    expect(
      foreignSignaling(
        ['ws://127.0.0.1:9999/signal', 'ws://localhost:8787/signal', 'wss://127.0.0.1:8787/signal', 'ws://evil.example/', '//evil.example/signal', 'ftp://127.0.0.1:8787/', 'ws://[::1'],
        page,
      ),
    ).toEqual(['ws://127.0.0.1:9999/signal', 'ws://localhost:8787/signal', 'wss://127.0.0.1:8787/signal', 'ws://evil.example/', '//evil.example/signal', 'ftp://127.0.0.1:8787/', 'ws://[::1']);
    // ws on an https page is another server (and another scheme)
    expect(foreignSignaling(['ws://chat.example.org/signal'], securePage)).toEqual(['ws://chat.example.org/signal']);
  });
});

describe('confirmSignaling', () => {
  const own = 'ws://127.0.0.1:8787/signal';
  const other = 'ws://127.0.0.1:9999/signal';

  it('does not ask when every server is the page own', async () => {
    const asked: string[][] = [];
    const urls = await confirmSignaling([own], own, { location: page, storage: new MemoryStorage(), ask: async (s) => (asked.push([...s]), true) });
    expect(urls).toEqual([own]);
    expect(asked).toEqual([]);
  });

  it('asks about the foreign servers only; accepted, they are used and not asked about again in this session', async () => {
    const storage = new MemoryStorage();
    const asked: string[][] = [];
    const ask = async (s: readonly string[]): Promise<boolean> => (asked.push([...s]), true);
    expect(await confirmSignaling([own, other], own, { location: page, storage, ask })).toEqual([own, other]);
    expect(asked).toEqual([[other]]);
    expect(await confirmSignaling([own, other], own, { location: page, storage, ask })).toEqual([own, other]);
    expect(asked).toHaveLength(1);
    expect(approvedSignaling(storage)).toEqual(new Set([other]));
  });

  it('declined, the foreign servers are dropped; with none left, the page own server is used', async () => {
    const storage = new MemoryStorage();
    const no = async (): Promise<boolean> => false;
    expect(await confirmSignaling([own, other], own, { location: page, storage, ask: no })).toEqual([own]);
    expect(await confirmSignaling([other], own, { location: page, storage, ask: no })).toEqual([own]);
    expect(approvedSignaling(storage)).toEqual(new Set()); // a decline is not remembered as consent
  });

  it('a server accepted earlier is kept when a new one is declined', async () => {
    const storage = new MemoryStorage();
    rememberApproved(storage, [other]);
    const third = 'wss://third.example/signal';
    expect(await confirmSignaling([other, third], own, { location: page, storage, ask: async () => false })).toEqual([other]);
  });

  it('ignores a stored list that is not a list of strings, or far too long', () => {
    const storage = new MemoryStorage();
    storage.setItem('p2p.signaling-approved', '{"not":"a list"}');
    expect(approvedSignaling(storage)).toEqual(new Set());
    storage.setItem('p2p.signaling-approved', 'not json');
    expect(approvedSignaling(storage)).toEqual(new Set());
    storage.setItem('p2p.signaling-approved', JSON.stringify(Array.from({ length: 100 }, (_, i) => `ws://h${i}/`)));
    expect(approvedSignaling(storage)).toEqual(new Set());
    storage.setItem('p2p.signaling-approved', JSON.stringify(['ws://a/', 7, null]));
    expect(approvedSignaling(storage)).toEqual(new Set(['ws://a/']));
  });
});
