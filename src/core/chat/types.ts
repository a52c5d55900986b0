import type { NodeId, SendEffect } from '../types';

/**
 * One chat message. Structurally identical to `ChatMessage` in runtime/api.ts (core/ may
 * not import runtime/, so the shape is declared again here; TypeScript treats them as one).
 */
export interface ChatMessage {
  /** `<author id>:<author HLC ts in base 36>`: unique because the HLC never repeats. */
  id: string;
  room: string;
  from: NodeId;
  nick: string;
  text: string;
  /** HLC timestamp (wall ms * 1024 + counter, see core/clock/hlc). */
  ts: number;
  /** Set for /tell messages only: the one recipient (room is then DIRECT_ROOM). */
  to?: NodeId;
}

export interface ChatConfig {
  /** Longest message text, in UTF-16 code units (String.length). Capped at CHAT_LIMITS. */
  maxTextLength: number;
  /** Messages kept per room (the newest by timestamp). */
  historyPerRoom: number;
  /** Most rooms one node may have joined at once. */
  maxRooms: number;
  /** Most rooms whose history a node keeps (joined rooms are never evicted). */
  maxKnownRooms: number;
  maxRoomNameLength: number;
  maxNickLength: number;
  defaultRoom: string;
}

/**
 * Protocol-wide hard limits: the wire validators check these, so every node accepts what
 * every other node sends. A ChatConfig can only tighten them.
 */
export const CHAT_LIMITS = {
  maxTextLength: 2000,
  maxRoomNameLength: 32,
  maxNickLength: 24,
  maxMessageIdLength: 200,
  /** Messages in one history response frame (also bounded by HISTORY_BATCH_BYTES). */
  maxHistoryBatch: 100,
  /** Rooms named in one history request, and rooms per member in the members view. */
  maxRoomList: 256,
} as const;

export const DEFAULT_CHAT_CONFIG: ChatConfig = {
  maxTextLength: CHAT_LIMITS.maxTextLength,
  historyPerRoom: 200,
  maxRooms: 64,
  maxKnownRooms: 256,
  maxRoomNameLength: CHAT_LIMITS.maxRoomNameLength,
  maxNickLength: CHAT_LIMITS.maxNickLength,
  defaultRoom: 'lobby',
};

/**
 * Pseudo-room holding /tell messages (sent and received). '@' is not allowed in room
 * names, so it can never collide with a real room; it is never listed in rooms(), never
 * broadcast and never served to neighbours.
 */
export const DIRECT_ROOM = '@direct';

/** Payload of a Plumtree broadcast of kind 'chat'. */
export type ChatBroadcast = { type: 'chat.message'; message: ChatMessage };

/** Direct (point-to-point) chat messages. */
export type ChatWire =
  /** Ask a neighbour for its recent history; `rooms` absent = every room it keeps. */
  | { type: 'chat.historyReq'; rooms?: string[]; session?: number }
  /** One batch of a history answer (several batches may follow one request). */
  | { type: 'chat.history'; messages: ChatMessage[] }
  /** A /tell: `message.to` is the receiver, `message.from` the sender. */
  | { type: 'chat.tell'; message: ChatMessage };

export interface ChatMemberInfo {
  id: NodeId;
  nick: string;
  rooms: string[];
}

export type ChatIn =
  | { type: 'start'; nick: string; rooms?: string[] }
  | { type: 'load'; messages: ChatMessage[] }
  | { type: 'deliver'; from: NodeId; data: unknown }
  | { type: 'message'; from: NodeId; msg: ChatWire }
  | { type: 'neighborUp'; peer: NodeId }
  | { type: 'members'; members: ChatMemberInfo[] }
  | { type: 'send'; req: number; room: string; text: string }
  | { type: 'tell'; req: number; nick: string; text: string }
  /** `req` is optional: when given, a `reply` reports success or the reason for refusal. */
  | { type: 'join'; room: string; req?: number }
  | { type: 'leave'; room: string; req?: number }
  | { type: 'setNick'; nick: string; req?: number };

export type ChatOut =
  | SendEffect<ChatWire>
  /** Broadcast `data` with Plumtree, kind 'chat'. */
  | { type: 'broadcast'; data: ChatBroadcast }
  /** A message new to this node, in a joined room or a /tell: show it. */
  | { type: 'delivered'; message: ChatMessage }
  /**
   * Storage changes, incremental: store `messages` (new to this node), delete `evicted`
   * (pushed out of the bounded history, or their room's history was dropped). A message
   * never appears in both lists of one effect. At most one persist per handle() call.
   */
  | { type: 'persist'; messages: ChatMessage[]; evicted: ChatMessage[] }
  | { type: 'reply'; req: number; ok: boolean; error?: string }
  /** Our joined rooms or nick changed: put them into the membership meta. */
  | { type: 'meta'; rooms: string[]; nick: string };
