import { describe, expect, it } from 'vitest';
import { CHAT_LIMITS, DIRECT_ROOM, type ChatMessage } from './types';
import { nickError, normalizeRoom, roomError, validateChatBroadcast, validateChatMessage } from './validate';

const good: ChatMessage = { id: 'a:1', room: 'lobby', from: 'a', nick: 'alice', text: 'hi', ts: 65536 };
const tell: ChatMessage = { ...good, room: DIRECT_ROOM, to: 'b' };

describe('validateChatBroadcast', () => {
  it('accepts a well-formed room message', () => {
    expect(validateChatBroadcast({ type: 'chat.message', message: good })).toBeNull();
  });

  it.each<[string, unknown]>([
    ['null', null],
    ['a string', 'chat'],
    ['an array', [good]],
    ['an unknown type', { type: 'chat.other', message: good }],
    ['no message', { type: 'chat.message' }],
    ['a text that is not a string', { type: 'chat.message', message: { ...good, text: 1 } }],
    ['an empty text', { type: 'chat.message', message: { ...good, text: '' } }],
    ['a blank text', { type: 'chat.message', message: { ...good, text: ' \n ' } }],
    ['an overlong text', { type: 'chat.message', message: { ...good, text: 'x'.repeat(CHAT_LIMITS.maxTextLength + 1) } }],
    ['an uppercase room', { type: 'chat.message', message: { ...good, room: 'Lobby' } }],
    ['a room with spaces', { type: 'chat.message', message: { ...good, room: 'a b' } }],
    ['an overlong room', { type: 'chat.message', message: { ...good, room: 'r'.repeat(CHAT_LIMITS.maxRoomNameLength + 1) } }],
    ['the direct pseudo-room', { type: 'chat.message', message: { ...good, room: DIRECT_ROOM } }],
    ['a recipient', { type: 'chat.message', message: { ...good, to: 'b' } }],
    ['a fractional ts', { type: 'chat.message', message: { ...good, ts: 1.5 } }],
    ['a negative ts', { type: 'chat.message', message: { ...good, ts: -1 } }],
    ['an empty id', { type: 'chat.message', message: { ...good, id: '' } }],
    ['an overlong id', { type: 'chat.message', message: { ...good, id: 'i'.repeat(CHAT_LIMITS.maxMessageIdLength + 1) } }],
    ['an empty author', { type: 'chat.message', message: { ...good, from: '' } }],
    ['a nick with a space', { type: 'chat.message', message: { ...good, nick: 'a b' } }],
  ])('rejects %s', (_, v) => {
    expect(validateChatBroadcast(v)).toEqual(expect.any(String));
  });
});

describe('validateChatMessage', () => {
  it('accepts well-formed direct messages', () => {
    expect(validateChatMessage({ type: 'chat.historyReq' })).toBeNull();
    expect(validateChatMessage({ type: 'chat.historyReq', rooms: ['lobby', 'dev'] })).toBeNull();
    expect(validateChatMessage({ type: 'chat.history', messages: [good] })).toBeNull();
    expect(validateChatMessage({ type: 'chat.tell', message: tell })).toBeNull();
  });

  it.each<[string, unknown]>([
    ['undefined', undefined],
    ['a missing type', { rooms: [] }],
    ['a history request with bad rooms', { type: 'chat.historyReq', rooms: ['ok', 'NOT OK'] }],
    ['a history request naming too many rooms', { type: 'chat.historyReq', rooms: Array(CHAT_LIMITS.maxRoomList + 1).fill('r') }],
    ['a history without messages', { type: 'chat.history' }],
    ['a history batch that is too large', { type: 'chat.history', messages: Array(CHAT_LIMITS.maxHistoryBatch + 1).fill(good) }],
    ['a history with one bad message', { type: 'chat.history', messages: [good, { ...good, text: null }] }],
    ['a history carrying a /tell', { type: 'chat.history', messages: [tell] }],
    ['a tell without recipient', { type: 'chat.tell', message: { ...tell, to: undefined } }],
    ['a tell in a normal room', { type: 'chat.tell', message: { ...tell, room: 'lobby' } }],
    ['a tell with a binary text', { type: 'chat.tell', message: { ...tell, text: new Uint8Array(3) } }],
  ])('rejects %s', (_, v) => {
    expect(validateChatMessage(v)).toEqual(expect.any(String));
  });

  it('never throws, whatever it is given', () => {
    const weird: unknown[] = [0, NaN, Symbol('s'), () => 1, new Map(), Object.create(null), { type: 'chat.tell', message: Object.create(null) }];
    for (const v of weird) {
      expect(() => validateChatMessage(v)).not.toThrow();
      expect(() => validateChatBroadcast(v)).not.toThrow();
    }
  });
});

describe('names', () => {
  it('normalizes and checks room names', () => {
    expect(normalizeRoom(' #Dev-Ops ')).toBe('dev-ops');
    expect(roomError('dev-ops')).toBeNull();
    expect(roomError('café')).toBeNull();
    expect(roomError('')).toBe('room name is empty');
    expect(roomError('-dev')).toEqual(expect.any(String));
    expect(roomError('a/b')).toEqual(expect.any(String));
    expect(roomError('abcd', 3)).toBe('room name is longer than 3 characters');
  });

  it('checks nicknames', () => {
    expect(nickError('Alice_1.x')).toBeNull();
    expect(nickError('')).toBe('nickname is empty');
    expect(nickError('a b')).toEqual(expect.stringContaining('no spaces'));
    expect(nickError('n'.repeat(CHAT_LIMITS.maxNickLength + 1))).toEqual(expect.stringContaining('longer'));
  });
});
