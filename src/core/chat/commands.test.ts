import { describe, expect, it } from 'vitest';
import { HELP_TEXT, parseInput } from './commands';
import { CHAT_LIMITS } from './types';

describe('parseInput', () => {
  it.each<[string, ReturnType<typeof parseInput>]>([
    ['hello world', { type: 'say', text: 'hello world' }],
    ['  padded  ', { type: 'say', text: 'padded' }],
    ['//not a command', { type: 'say', text: '/not a command' }],
    ['/nick Alice', { type: 'nick', nick: 'Alice' }],
    ['/NICK bob_2', { type: 'nick', nick: 'bob_2' }],
    ['/join dev', { type: 'join', room: 'dev' }],
    ['/join #Dev', { type: 'join', room: 'dev' }],
    ['/leave', { type: 'leave' }],
    ['/leave dev', { type: 'leave', room: 'dev' }],
    ['/tell bob hi there,  friend', { type: 'tell', nick: 'bob', text: 'hi there,  friend' }],
  ])('%j', (line, expected) => {
    expect(parseInput(line)).toEqual(expected);
  });

  it('/help lists every command', () => {
    const r = parseInput('/help');
    expect(r).toEqual({ type: 'help', text: HELP_TEXT });
    for (const c of ['/nick', '/join', '/leave', '/tell', '/help']) expect(HELP_TEXT).toContain(c);
  });

  it.each<[string, string]>([
    ['', 'message is empty'],
    ['   ', 'message is empty'],
    ['/', 'unknown command "/": type /help for the list of commands'],
    ['/frobnicate x', 'unknown command "/frobnicate": type /help for the list of commands'],
    ['/nick', 'usage: /nick NAME'],
    ['/nick two words', 'no spaces'],
    ['/nick bad!', 'may only contain'],
    [`/nick ${'n'.repeat(CHAT_LIMITS.maxNickLength + 1)}`, 'longer than 24'],
    ['/join', 'usage: /join ROOM'],
    ['/join two words', 'cannot contain spaces'],
    ['/join a/b', 'may only contain'],
    [`/join ${'r'.repeat(CHAT_LIMITS.maxRoomNameLength + 1)}`, 'longer than 32'],
    ['/leave no/pe', 'may only contain'],
    ['/tell', 'usage: /tell NICK TEXT'],
    ['/tell bob', 'usage: /tell NICK TEXT (no message for bob)'],
    ['/tell bob    ', 'usage: /tell NICK TEXT (no message for bob)'],
    [`/tell bob ${'x'.repeat(CHAT_LIMITS.maxTextLength + 1)}`, 'message is too long: 2001 characters (max 2000)'],
    ['x'.repeat(CHAT_LIMITS.maxTextLength + 1), 'message is too long: 2001 characters (max 2000)'],
  ])('%j is an error', (line, error) => {
    const r = parseInput(line);
    expect(r.type).toBe('error');
    expect(r.type === 'error' && r.error).toContain(error);
  });

  it('honours tighter limits', () => {
    const limits = { maxTextLength: 5, maxNickLength: 3, maxRoomNameLength: 4 };
    expect(parseInput('123456', limits)).toMatchObject({ type: 'error', error: expect.stringContaining('max 5') });
    expect(parseInput('/nick abcd', limits)).toMatchObject({ type: 'error' });
    expect(parseInput('/join abcde', limits)).toMatchObject({ type: 'error' });
    expect(parseInput('/help', limits)).toMatchObject({ type: 'help', text: expect.stringContaining('at most 5 characters') });
  });
});
