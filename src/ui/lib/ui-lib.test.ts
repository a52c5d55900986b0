import { describe, expect, it } from 'vitest';
import type { MemberView } from '../../runtime/api';
import { parseInput as parseChatInput } from '../../core/chat/commands';
import { describeValue, EDITABLE_MAX_DEPTH, EDITABLE_MAX_NODES, isJsonEditable, jsonEditProblem } from './format';
import { buildGraph } from './graph';
import { anotherNodeUrl, shareUrl } from './links';
import { classify } from './stat-names';
import { baselineAfterSave, isDirty } from './editor-form';

describe('chat input as the UI parses it (core/chat/commands)', () => {
  it('reads commands and plain text', () => {
    expect(parseChatInput('hello')).toEqual({ type: 'say', text: 'hello' });
    expect(parseChatInput('//slash')).toEqual({ type: 'say', text: '/slash' });
    expect(parseChatInput('/nick Zoe')).toEqual({ type: 'nick', nick: 'Zoe' });
    expect(parseChatInput('/JOIN #dev')).toEqual({ type: 'join', room: 'dev' });
    expect(parseChatInput('/leave')).toEqual({ type: 'leave' });
    expect(parseChatInput('/leave ops')).toEqual({ type: 'leave', room: 'ops' });
    expect(parseChatInput('/tell ada hi there')).toEqual({ type: 'tell', nick: 'ada', text: 'hi there' });
    expect(parseChatInput('/help').type).toBe('help');
  });
  it('turns bad input into errors, never throws', () => {
    for (const bad of ['', '   ', '/nick', '/nick a b', '/join', '/tell ada', '/bogus']) {
      expect(parseChatInput(bad).type).toBe('error');
    }
  });
});

describe('buildGraph', () => {
  const m = (id: string, active: string[], status: MemberView['status'] = 'alive'): MemberView => ({ id, nick: id, status, incarnation: 1, active, rooms: [] });
  it('dedupes undirected links and marks eager links of this node', () => {
    const g = buildGraph([m('a', ['b', 'c']), m('b', ['a']), m('c', ['a', 'x'])], 'a', ['b', 'c'], ['b']);
    expect(g.links.map((l) => [l.key, l.eager])).toEqual([
      ['a|b', true],
      ['a|c', false],
    ]);
  });
  it("drops a member's stale claim of a link to this node", () => {
    const g = buildGraph([m('a', []), m('b', ['a', 'c']), m('c', ['b'])], 'a', [], []);
    expect(g.links.map((l) => l.key)).toEqual(['b|c']);
  });
});

describe('classify', () => {
  it("reads the real node's counter names", () => {
    expect(classify('in.pt.gossip')).toEqual({ kind: 'msg', dir: 'in', type: 'pt.gossip' });
    expect(classify('out.hpv.join')).toEqual({ kind: 'msg', dir: 'out', type: 'hpv.join' });
    expect(classify('bytes.out')).toMatchObject({ kind: 'bytes', dir: 'out' });
    expect(classify('drop.malformed')).toMatchObject({ kind: 'drop', type: 'malformed' });
    expect(classify('frames.in').kind).toBe('other');
    expect(classify('kv.localKeys').kind).toBe('other');
  });
});

describe('links', () => {
  it('carries cluster and signaling but not the nickname', () => {
    const here = new URL('http://h:1/app/?cluster=c1&signaling=ws://s:2&nick=zoe&mock=1');
    const next = new URL(anotherNodeUrl(here, 'c1'));
    expect(next.searchParams.get('signaling')).toBe('ws://s:2');
    expect(next.searchParams.get('mock')).toBe('1');
    expect(next.searchParams.has('nick')).toBe(false);
    expect(new URL(shareUrl(here, 'c1')).search).toBe('?cluster=c1&signaling=ws%3A%2F%2Fs%3A2');
  });

  it('another tab keeps relay-only mode and an ICE override; a share link does not impose them on others', () => {
    const here = new URL('http://h:1/?cluster=c1&relay=1&ice=%5B%5D');
    const next = new URL(anotherNodeUrl(here, 'c1'));
    expect(next.searchParams.get('relay')).toBe('1');
    expect(next.searchParams.get('ice')).toBe('[]');
    expect(new URL(shareUrl(here, 'c1')).search).toBe('?cluster=c1');
  });
});

describe('format', () => {
  it('describes values JSON cannot hold', () => {
    expect(describeValue(new Uint8Array(3))).toBe('"<binary 3 bytes>"');
    expect(isJsonEditable({ a: [1, 'x', null] })).toBe(true);
    expect(isJsonEditable(new Uint8Array(1))).toBe(false);
    expect(isJsonEditable(Number.NaN)).toBe(false);
  });

  const nested = (depth: number): unknown => {
    let v: unknown = 'leaf';
    for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { k: v };
    return v;
  };

  it('the JSON editor takes values as deep as the store allows and refuses deeper ones, even 10,000 or 1,000,000 levels, without recursion', () => {
    expect(jsonEditProblem(nested(EDITABLE_MAX_DEPTH))).toBeNull();
    expect(jsonEditProblem(nested(EDITABLE_MAX_DEPTH + 1))).toBe(`nested deeper than ${EDITABLE_MAX_DEPTH} levels`);
    expect(isJsonEditable(nested(10_000))).toBe(false);
    // deep enough that any recursive walk overflows the stack
    expect(jsonEditProblem(nested(1_000_000))).toBe(`nested deeper than ${EDITABLE_MAX_DEPTH} levels`);
    // shown read-only instead: describing it does not throw either
    expect(typeof describeValue(nested(1_000_000))).toBe('string');
  });

  it('the JSON editor stops walking a huge value after EDITABLE_MAX_NODES elements', () => {
    expect(isJsonEditable(Array.from({ length: EDITABLE_MAX_NODES - 1 }, (_, i) => i))).toBe(true);
    expect(jsonEditProblem(Array.from({ length: EDITABLE_MAX_NODES }, (_, i) => i))).toMatch(/^larger than/);
    // a DAG that shares one array 30 levels down is 2^30 elements to walk: refused early
    let shared: unknown = [1, 2];
    for (let i = 0; i < 30; i++) shared = [shared, shared];
    expect(jsonEditProblem(shared)).toMatch(/^larger than/);
    // a cycle (never from the codec, possible from a buggy caller) ends at the depth bound
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    expect(jsonEditProblem(cyclic)).toBe(`nested deeper than ${EDITABLE_MAX_DEPTH} levels`);
  });
});

describe('KV editor form after a save', () => {
  const raw = '{"text": "hi", "n": 1}';
  const stored = JSON.stringify({ text: 'hi', n: 1 }, null, 2);
  it('the save replies first: the typed text is the baseline, the stored copy replaces it, and the form stays clean', () => {
    const base = baselineAfterSave({ loadedKey: null, loadedText: null }, raw, 'k', raw);
    expect(isDirty(base, raw)).toBe(false); // so the store's copy is loaded when it arrives
  });
  it('the own change event comes first: the form already shows the stored copy and stays clean, so it follows edits made elsewhere', () => {
    // the form loaded the store's copy before the save's reply (what CI saw: the form then looked edited forever)
    const loaded = { loadedKey: 'k', loadedText: stored };
    const base = baselineAfterSave(loaded, stored, 'k', raw);
    expect(isDirty(base, stored)).toBe(false);
  });
  it('text typed after pressing Save stays an edit', () => {
    expect(isDirty(baselineAfterSave({ loadedKey: null, loadedText: null }, `${raw} `, 'k', raw), `${raw} `)).toBe(true);
  });
  it('text typed after pressing Save on a new key, another key loaded before, stays an edit of the new key', () => {
    const base = baselineAfterSave({ loadedKey: 'other', loadedText: '1' }, `${raw} `, 'k', raw);
    expect(base.loadedKey).toBe('k'); // the editor loads the store's copy only for another key or a clean form
    expect(isDirty(base, `${raw} `)).toBe(true);
  });
});
