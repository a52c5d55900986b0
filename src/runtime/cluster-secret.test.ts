import { describe, expect, it } from 'vitest';
import { anotherNodeUrl, shareUrl } from '../ui/lib/links';
import { openClusterSecret, pageSecret, secretFromFragment, type KeyCache } from './cluster-secret';
import type { ClusterKeys } from '../trust/secret';

class MemoryStorage {
  readonly items = new Map<string, string>();
  getItem(k: string): string | null {
    return this.items.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.items.set(k, v);
  }
  removeItem(k: string): void {
    this.items.delete(k);
  }
}

function page(href: string, storage = new MemoryStorage()) {
  const url = new URL(href);
  const replaced: string[] = [];
  return {
    env: { location: { hash: url.hash, href }, history: { replaceState: (_s: unknown, _t: string, u?: string | URL | null) => void replaced.push(String(u)) }, storage },
    replaced,
    storage,
  };
}

describe('the page secret', () => {
  it('takes #secret= from the fragment, remembers it for reloads and clears it from the address bar', () => {
    const p = page('http://h:1/?cluster=c1#secret=open%20sesame');
    expect(pageSecret('c1', p.env)).toBe('open sesame');
    expect(p.replaced).toEqual(['http://h:1/?cluster=c1']);
    // the reload: no fragment, the same tab's sessionStorage
    expect(pageSecret('c1', page('http://h:1/?cluster=c1', p.storage).env)).toBe('open sesame');
    // another cluster in the same tab is open
    expect(pageSecret('c2', page('http://h:1/?cluster=c2', p.storage).env)).toBeNull();
  });

  it('refuses an empty or overlong secret: the cluster stays open', () => {
    expect(secretFromFragment('#secret=')).toBeNull();
    expect(secretFromFragment('#secret=%20%20')).toBeNull();
    expect(secretFromFragment(`#secret=${'x'.repeat(257)}`)).toBeNull();
    expect(secretFromFragment('#other=1')).toBeNull();
    expect(pageSecret('c1', page('http://h:1/?cluster=c1').env)).toBeNull();
  });

  it('share and new-node links carry the secret in the fragment only', () => {
    const here = new URL('http://h:1/?cluster=c1&signaling=ws://s:2');
    for (const link of [shareUrl(here, 'c1', 'a b&c=d#'), anotherNodeUrl(here, 'c1', 'a b&c=d#')]) {
      const u = new URL(link);
      expect(secretFromFragment(u.hash)).toBe('a b&c=d#');
      expect(u.search).not.toContain('secret');
    }
    expect(new URL(shareUrl(here, 'c1')).hash).toBe('');
  });

  it('derives the keys once: a second open reads them from the cache, with the same topics', async () => {
    const stored = new Map<string, ClusterKeys>();
    const cache: KeyCache = { get: async (k) => stored.get(k) ?? null, put: async (k, v) => void stored.set(k, v) };
    const first = await openClusterSecret('c1', 'open sesame', cache);
    const again = await openClusterSecret('c1', 'open sesame', cache);
    const other = await openClusterSecret('c1', 'other', cache);
    expect(first.derivation.cached).toBe(false);
    expect(again.derivation.cached).toBe(true);
    expect(again.keys).toBe(first.keys);
    expect(again.clusterTopic).toBe(first.clusterTopic);
    expect(await again.nodeTopic('nabc')).toBe(await first.nodeTopic('nabc'));
    expect(other.clusterTopic).not.toBe(first.clusterTopic);
    // the lobby depends on the cluster only: tabs with different secrets meet there
    expect(other.lobbyTopic).toBe(first.lobbyTopic);
    expect(stored.size).toBe(2);
  });
});
