import { CHAT_LIMITS } from './types';
import { nickError, normalizeRoom, roomError, textError } from './validate';

/** What one line typed into the chat input means. Errors are ready to show to the user. */
export type ParsedInput =
  | { type: 'say'; text: string }
  | { type: 'nick'; nick: string }
  | { type: 'join'; room: string }
  /** No room: leave the room currently shown. */
  | { type: 'leave'; room?: string }
  | { type: 'tell'; nick: string; text: string }
  | { type: 'help'; text: string }
  | { type: 'error'; error: string };

export interface InputLimits {
  maxTextLength: number;
  maxNickLength: number;
  maxRoomNameLength: number;
}

export function helpText(limits: InputLimits = CHAT_LIMITS): string {
  return [
    'Commands:',
    `  /nick NAME        change your nickname (letters, digits, '_', '.', '-'; at most ${limits.maxNickLength} characters)`,
    `  /join ROOM        join ROOM (letters, digits, '-', '_'; at most ${limits.maxRoomNameLength} characters)`,
    '  /leave [ROOM]     leave ROOM, or the current room',
    '  /tell NICK TEXT   send TEXT to the member NICK only',
    '  /help             show this help',
    `Anything else is sent to the current room (at most ${limits.maxTextLength} characters).`,
    'Start a line with // to send a message that begins with /.',
  ].join('\n');
}

export const HELP_TEXT = helpText();

const COMMAND_RE = /^\/(\S*)\s*([\s\S]*)$/;

/**
 * Parses one input line. Pure; `limits` default to the protocol limits (CHAT_LIMITS).
 * Command names are case-insensitive; room names are normalized ('#Dev' -> 'dev').
 */
export function parseInput(line: string, limits: InputLimits = CHAT_LIMITS): ParsedInput {
  if (typeof line !== 'string') return { type: 'error', error: 'input is not text' };
  const trimmed = line.trim();
  if (trimmed.startsWith('//')) return say(trimmed.slice(1), limits);
  if (!trimmed.startsWith('/')) return say(trimmed, limits);

  const [, rawName = '', rawArgs = ''] = COMMAND_RE.exec(trimmed) ?? [];
  const name = rawName.toLowerCase();
  const args = rawArgs.trim();
  switch (name) {
    case 'nick': {
      if (args === '') return error('usage: /nick NAME');
      const e = nickError(args, limits.maxNickLength);
      return e ? error(e) : { type: 'nick', nick: args };
    }
    case 'join': {
      if (args === '') return error('usage: /join ROOM');
      return roomCommand('join', args, limits) ?? { type: 'join', room: normalizeRoom(args) };
    }
    case 'leave': {
      if (args === '') return { type: 'leave' };
      return roomCommand('leave', args, limits) ?? { type: 'leave', room: normalizeRoom(args) };
    }
    case 'tell': {
      const [, nick = '', text = ''] = /^(\S*)\s*([\s\S]*)$/.exec(args) ?? [];
      if (nick === '') return error('usage: /tell NICK TEXT');
      if (text.trim() === '') return error(`usage: /tell NICK TEXT (no message for ${nick.slice(0, 40)})`);
      const e = nickError(nick, CHAT_LIMITS.maxNickLength) ?? textError(text, limits.maxTextLength);
      return e ? error(e) : { type: 'tell', nick, text };
    }
    case 'help':
      return { type: 'help', text: limits === CHAT_LIMITS ? HELP_TEXT : helpText(limits) };
    default:
      return error(`unknown command "/${rawName.slice(0, 40)}": type /help for the list of commands`);
  }
}

function say(text: string, limits: InputLimits): ParsedInput {
  const e = textError(text, limits.maxTextLength);
  return e ? error(e) : { type: 'say', text };
}

function roomCommand(cmd: 'join' | 'leave', args: string, limits: InputLimits): ParsedInput | null {
  if (/\s/.test(args)) return error(`usage: /${cmd} ROOM (room names cannot contain spaces)`);
  const e = roomError(normalizeRoom(args), limits.maxRoomNameLength);
  return e ? error(e) : null;
}

function error(message: string): ParsedInput {
  return { type: 'error', error: message };
}
