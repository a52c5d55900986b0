import { describe, expect, it } from 'vitest';
import { decodeAll, encode } from '../wire/codec';
import { fromWire, toWire } from './wire';
import { validateWire } from './node';
import { validateChatBroadcast } from './chat/validate';

const origin = 'nabcdefghijk';
const chatMsg = { id: `${origin}:${(1_763_792_143_000 * 1024 + 3).toString(36)}`, room: 'lobby', from: origin, nick: 'ann', text: 'hello', ts: 1_763_792_143_000 * 1024 + 3 };
const gossip = { type: 'pt.gossip', id: `${origin}:chat:1a`, origin, round: 3, kind: 'chat', data: { type: 'chat.message', message: chatMsg } };
const roundTrip = (m: { type: string }) => decodeAll(encode(toWire(m)), validateWire, fromWire);

describe('compact wire forms', () => {
  it('a chat gossip round-trips to the same message, in far fewer bytes', () => {
    expect(roundTrip(gossip)).toEqual({ msgs: [gossip], errors: [] });
    expect(encode(toWire(gossip)).byteLength).toBeLessThan(encode(gossip).byteLength / 2);
  });

  it('other gossip payloads round-trip unchanged', () => {
    const member = { type: 'pt.gossip', id: `${origin}:member:7`, origin, round: 1, kind: 'member', data: { type: 'alive', id: origin, inc: 5 } };
    expect(toWire(member)).toEqual(['g', member.id, 1, 'member', member.data]);
    expect(fromWire(toWire(member))).toEqual(member);
  });

  it('a sealed gossip keeps its seal across the wire (its payload travels inside it)', () => {
    const seal = { b: new Uint8Array([1, 2, 3]), s: new Uint8Array(64).fill(7), k: new Uint8Array(32).fill(9) };
    const sealed = { type: 'pt.gossip', id: `${origin}:member:8`, origin, round: 2, kind: 'member', data: null, seal };
    const back = roundTrip(sealed);
    expect(back.errors).toEqual([]);
    expect(back.msgs).toHaveLength(1);
    const m = back.msgs[0] as typeof sealed;
    expect(m).toMatchObject({ type: 'pt.gossip', id: sealed.id, origin, round: 2, kind: 'member', data: null });
    expect(new Uint8Array(m.seal.b)).toEqual(seal.b);
    expect(new Uint8Array(m.seal.s)).toEqual(seal.s);
    expect(new Uint8Array(m.seal.k)).toEqual(seal.k);
  });

  it('a chat payload that is not the origin\'s own message travels in full', () => {
    const relayed = { ...gossip, data: { type: 'chat.message', message: { ...chatMsg, from: 'nother000000', id: `nother000000:${chatMsg.ts.toString(36)}` } } };
    expect((toWire(relayed) as unknown[])[4]).toEqual(relayed.data);
    expect(fromWire(toWire(relayed))).toEqual(relayed);
  });

  it('IHAVE round-trips, entries grouped by origin and tag', () => {
    const ihave = {
      type: 'pt.ihave',
      entries: [[`${origin}:chat:1`, 2], [`${origin}:chat:z9`, 3], [`${origin}:member:9`, 4], ['nother000000:chat:1', 1], [`${origin}:chat:2`, 2]],
    };
    expect(roundTrip(ihave)).toEqual({ msgs: [ihave], errors: [] });
    expect(toWire(ihave)).toEqual(['i', `${origin}:chat:`, 1, 2, 36 * 35 + 9, 3, `${origin}:member:`, 9, 4, 'nother000000:chat:', 1, 1, `${origin}:chat:`, 2, 2]);
    const many = { type: 'pt.ihave', entries: Array.from({ length: 20 }, (_, i) => [`${origin}:chat:${(100 + i).toString(36)}`, 2]) };
    expect(encode(toWire(many)).byteLength).toBeLessThan(encode(many).byteLength / 4);
  });

  it('an IHAVE counter that is not canonical base 36 travels as a string', () => {
    const ihave = { type: 'pt.ihave', entries: [[`${origin}:chat:007`, 2], [`${origin}:chat:zzzzzzzzzzzzzzzz`, 1]] };
    expect(roundTrip(ihave)).toEqual({ msgs: [ihave], errors: [] });
  });

  it('messages without a compact form are left alone', () => {
    const m = { type: 'kv.get', op: 3, key: 'a' };
    expect(toWire(m)).toBe(m);
    expect(fromWire(m)).toBe(m);
  });

  it.each([
    ['gossip with a bad id', ['g', 42, 1, 'chat', []]],
    ['gossip with an id of no origin', ['g', 'nocolons', 1, 'member', {}]],
    ['gossip of the wrong length', ['g', `${origin}:chat:1`, 1]],
    ['IHAVE entry without its round', ['i', `${origin}:chat:`, 1]],
    ['IHAVE entry before any prefix', ['i', 1, 2]],
    ['IHAVE with a bad round', ['i', `${origin}:chat:`, 1, 'x']],
    ['IHAVE with a negative counter', ['i', `${origin}:chat:`, -1, 2]],
    ['IHAVE with a bogus prefix', ['i', 'nope:', 1, 2]],
    ['unknown tag', ['z', 1, 2]],
    ['an empty array', []],
  ])('rejects %s as invalid, without throwing', (_name, v) => {
    const r = decodeAll(encode(v), validateWire, fromWire);
    expect(r.msgs).toEqual([]);
    expect(r.errors.map((e) => e.code)).toEqual(['invalid']);
  });

  // a gossip's payload is checked by its protocol at delivery (validateChatBroadcast)
  it.each([
    ['a bad timestamp', ['lobby', 'a', 'b', -1]],
    ['a bad room', [{}, 'a', 'b', 5]],
    ['a text that is not a string', ['lobby', 'a', 7, 5]],
    ['too few fields', ['lobby', 'a']],
  ])('a compact chat payload with %s is refused by the chat layer', (_name, data) => {
    const r = decodeAll<{ data: unknown }>(encode(['g', `${origin}:chat:1`, 1, 'chat', data]), validateWire, fromWire);
    expect(r.msgs).toHaveLength(1);
    expect(validateChatBroadcast(r.msgs[0]!.data)).not.toBeNull();
  });
});
