import { arrayOf, int, isObject, nodeId, optional, str, union, type Check } from '../validate';
import { proofCheck } from '../plumtree/messages';
import { CHAT_LIMITS, DIRECT_ROOM, type ChatMessage } from './types';

/**
 * Names and wire validation for chat. Validators return null or a short reason and never
 * throw (core/validate.ts). Room names are lowercase letters, digits, '-' and '_'
 * (unicode letters allowed), so '/join Dev' and '/join dev' meet in the same room; nicks
 * may also use upper case and '.', but no spaces (the /tell command splits on them).
 */
const ROOM_RE = /^[\p{L}\p{N}][\p{L}\p{N}_-]*$/u;
const NICK_RE = /^[\p{L}\p{N}_][\p{L}\p{N}_.-]*$/u;

/** What a user typed for a room ('#Dev ' -> 'dev'); validate the result with roomError. */
export function normalizeRoom(room: string): string {
  return room.trim().replace(/^#/, '').toLowerCase();
}

export function roomError(room: unknown, maxLength: number = CHAT_LIMITS.maxRoomNameLength): string | null {
  if (typeof room !== 'string') return 'room name is not a string';
  if (room.length === 0) return 'room name is empty';
  if (room.length > maxLength) return `room name is longer than ${maxLength} characters`;
  if (room !== room.toLowerCase() || !ROOM_RE.test(room)) {
    return `room name "${room.slice(0, 40)}" may only contain lowercase letters, digits, '-' and '_'`;
  }
  return null;
}

export function nickError(nick: unknown, maxLength: number = CHAT_LIMITS.maxNickLength): string | null {
  if (typeof nick !== 'string') return 'nickname is not a string';
  if (nick.length === 0) return 'nickname is empty';
  if (nick.length > maxLength) return `nickname is longer than ${maxLength} characters`;
  if (!NICK_RE.test(nick)) {
    return `nickname "${nick.slice(0, 40)}" may only contain letters, digits, '_', '.' and '-' (no spaces)`;
  }
  return null;
}

/** Text of a message: a non-blank string of at most maxLength characters. */
export function textError(text: unknown, maxLength: number = CHAT_LIMITS.maxTextLength): string | null {
  if (typeof text !== 'string') return 'message text is not a string';
  if (text.trim().length === 0) return 'message is empty';
  if (text.length > maxLength) return `message is too long: ${text.length} characters (max ${maxLength})`;
  return null;
}

const check = (c: Check, label: string): Check => (v) => {
  const e = c(v);
  return e ? `${label}: ${e}` : null;
};

const messageFields: Record<string, Check> = {
  id: (v) => (typeof v !== 'string' || v.length === 0 ? 'not a message id' : str(CHAT_LIMITS.maxMessageIdLength)(v)),
  from: nodeId,
  nick: (v) => nickError(v),
  text: (v) => textError(v),
  ts: int(0, Number.MAX_SAFE_INTEGER),
  proof: optional(proofCheck),
};

/**
 * A chat message as it travels. `direct` = a /tell (room DIRECT_ROOM, `to` required);
 * otherwise a room message (valid room name, no `to`).
 */
export function messageError(v: unknown, direct: boolean): string | null {
  if (!isObject(v)) return 'message is not an object';
  for (const k in messageFields) {
    const e = messageFields[k]!(v[k]);
    if (e) return `${k}: ${e}`;
  }
  if (direct) {
    if (v.room !== DIRECT_ROOM) return `room: a /tell must use ${DIRECT_ROOM}`;
    return check(nodeId, 'to')(v.to);
  }
  if (v.to !== undefined && v.to !== null) return 'to: only a /tell has a recipient';
  return check((r) => roomError(r), 'room')(v.room);
}

const roomMessage: Check = (v) => messageError(v, false);
const directMessage: Check = (v) => messageError(v, true);

const wire = union({
  'chat.historyReq': { rooms: optional(arrayOf((r) => roomError(r), CHAT_LIMITS.maxRoomList)), session: optional(int(0)) },
  'chat.history': { messages: arrayOf(roomMessage, CHAT_LIMITS.maxHistoryBatch) },
  'chat.tell': { message: directMessage },
});

/** Direct chat messages (ChatWire). */
export function validateChatMessage(v: unknown): string | null {
  return wire(v);
}

const broadcast = union({ 'chat.message': { message: roomMessage } });

/** Payload of a Plumtree broadcast of kind 'chat' (ChatBroadcast). */
export function validateChatBroadcast(v: unknown): string | null {
  return broadcast(v);
}

/**
 * Copy of a validated message with only the known fields (drops extras a peer added, and
 * the proof: whoever keeps a message attaches the proof it has for it).
 */
export function cleanMessage(m: ChatMessage): ChatMessage {
  const c: ChatMessage = { id: m.id, room: m.room, from: m.from, nick: m.nick, text: m.text, ts: m.ts };
  if (m.to !== undefined && m.to !== null) c.to = m.to;
  return c;
}
