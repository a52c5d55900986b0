import { describe, expect, it } from 'vitest';
import type { NodeEvent, P2PApi } from '../../runtime/api';
import { SegmentsState } from './segments.svelte';

/** The parts of P2PApi the segments panel uses: queues with items, and a placement that can change. */
function fakeNode(items: Record<string, { id: number; value: unknown }[]>, serve: (key: string, id: number) => Error | null = () => null) {
  const listeners = new Set<(e: NodeEvent) => void>();
  let placement = ['n-owner', 'n-me', 'n-other'];
  const node = {
    id: 'n-me',
    on: (l: (e: NodeEvent) => void) => (listeners.add(l), () => listeners.delete(l)),
    segments: {
      replicas: () => placement,
      peek: async (key: string, after = 0) => {
        const item = (items[key] ?? []).find((i) => i.id > after);
        if (!item) throw new Error(`timeout: peek on segment '${key}' found no item after id ${after} within 400 ms`);
        const refused = serve(key, item.id);
        if (refused) throw refused;
        return item;
      },
    },
  } as unknown as P2PApi;
  return {
    node,
    move: (p: string[]) => {
      placement = p;
      for (const l of listeners) l({ type: 'members' });
    },
  };
}

describe('SegmentsState', () => {
  it('shows the open queue\'s owner and replicas, and follows membership changes', async () => {
    const { node, move } = fakeNode({ jobs: [{ id: 1, value: 'a' }, { id: 2, value: 'b' }] });
    const seg = new SegmentsState(node);
    const off = seg.connect();
    expect(seg.open('jobs')).toBe(true);
    expect(seg.placement).toEqual(['n-owner', 'n-me', 'n-other']);
    await seg.list();
    expect(seg.items.map((i) => i.value)).toEqual(['a', 'b']);
    move(['n-me', 'n-other', 'n-third']);
    expect(seg.placement).toEqual(['n-me', 'n-other', 'n-third']);
    off();
  });

  it('an item its owner served altered is reported, not listed', async () => {
    const { node } = fakeNode({ jobs: [{ id: 1, value: 'a' }, { id: 2, value: 'HACKED' }] }, (_k, id) =>
      id === 2 ? new Error("segment 'jobs': item #2 is not as its writer n1 put it (the signature does not verify); refused") : null,
    );
    const seg = new SegmentsState(node);
    seg.open('jobs');
    await seg.list();
    expect(seg.items.map((i) => i.value)).not.toContain('HACKED');
    expect(seg.error).toMatch(/Could not list "jobs": segment 'jobs': item #2 is not as its writer/);
  });
});
