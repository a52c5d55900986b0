import type { ClusterView, Effect } from '../protocol';
import type { NodeId, Seal } from '../types';
import type { RateConfig } from '../limits/rate';

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
  /**
   * Room messages: the broadcast the message came in (its Plumtree id and, in the runtime,
   * the author's seal). History answers carry it, so a neighbour serving history can only
   * pass on messages their authors sent (see Chat).
   */
  proof?: ChatProof;
}

/** The Plumtree id of the broadcast a room message came in, and its seal (core/types.ts `Seal`). */
export interface ChatProof {
  id: string;
  seal?: Seal;
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
  /**
   * Messages (room broadcasts and /tells) accepted per author: at most `burst` at once,
   * then `perSec` a second. Our own sends past it are refused with an error; others'
   * are dropped (counted as `rateLimited`), so no author can push a room's bounded history
   * out faster than that. 100 at once and 25 a second are far above human typing and
   * above the bench's 20 a second.
   */
  originRate: RateConfig;
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

export const DEFAULT_CHAT_CONFIG: Readonly<ChatConfig> = Object.freeze({
  maxTextLength: CHAT_LIMITS.maxTextLength,
  historyPerRoom: 200,
  maxRooms: 64,
  maxKnownRooms: 256,
  maxRoomNameLength: CHAT_LIMITS.maxRoomNameLength,
  maxNickLength: CHAT_LIMITS.maxNickLength,
  defaultRoom: 'lobby',
  originRate: Object.freeze({ burst: 100, perSec: 25 }),
});

/**
 * Pseudo-room holding /tell messages (sent and received). '@' is not allowed in room
 * names, so it can never collide with a real room; it is never listed in rooms(), never
 * broadcast and never served to neighbours.
 */
export const DIRECT_ROOM = '@direct';

/** Plumtree payload kind of chat broadcasts. */
export const CHAT_KIND = 'chat';

/** `<author id>:<author HLC ts in base 36>`: how a message is named (unique: one node's HLC never repeats). */
export function chatMessageId(from: NodeId, ts: number): string {
  return `${from}:${ts.toString(36)}`;
}

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

/** A chat wire message (by its `chat.` prefix): lets the composer route without casts. */
export function isChatWire(m: { type: string }): m is ChatWire {
  return m.type.startsWith('chat.');
}

export type ChatIn =
  | { type: 'start'; nick: string; rooms?: string[] }
  /** Messages from an earlier `persist` (restored history). */
  | { type: 'load'; records: ChatMessage[] }
  /** A Plumtree broadcast of kind 'chat': `from` is its origin, `proof` its id and seal. */
  | { type: 'deliver'; from: NodeId; data: unknown; proof?: ChatProof }
  | { type: 'message'; from: NodeId; msg: ChatWire }
  | { type: 'neighborUp'; peer: NodeId }
  | { type: 'neighborDown'; peer: NodeId }
  /** Who is live, with nick and rooms (`view.live`; this node's own entry is ignored). */
  | { type: 'members'; view: ClusterView }
  | { type: 'send'; req: number; room: string; text: string }
  | { type: 'tell'; req: number; nick: string; text: string }
  /** `req` is optional: when given, a `reply` reports success or the reason for refusal. */
  | { type: 'join'; room: string; req?: number }
  | { type: 'leave'; room: string; req?: number }
  | { type: 'setNick'; nick: string; req?: number };

export type ChatEvent =
  /** Broadcast `data` with Plumtree, kind 'chat'. */
  | { type: 'broadcast'; data: ChatBroadcast }
  /** A message new to this node, in a joined room or a /tell: show it. */
  | { type: 'delivered'; message: ChatMessage }
  /** Our joined rooms or nick changed: put them into the membership meta. */
  | { type: 'meta'; rooms: string[]; nick: string };

/**
 * Chat's effects: `send`, `reply` (`ok: false` always carries the reason), `event`
 * (ChatEvent) and `persist`: storage changes, incremental: `put` the messages new to this
 * node, `remove` (by `storageKey`) those pushed out of the bounded history or whose room's
 * history was dropped. A message never appears in both lists of one effect; at most one
 * persist per handle() call, after the call's other effects.
 */
export type ChatOut = Effect<ChatWire, never, ChatEvent, ChatMessage>;

export interface ChatStats {
  /** Malformed broadcasts, history entries or stored messages dropped. */
  invalid: number;
  /** Messages of authors past ChatConfig.originRate, dropped (ours: refused with an error). */
  rateLimited: number;
  /** Messages received again (broadcast, history answer, storage). */
  duplicate: number;
  /** Messages outside the bounds of their room's history (too old, or no room slot left). */
  refused: number;
  /** Messages dated more than MAX_AHEAD_MS (60 s) ahead of our clock, refused. */
  futureRefused: number;
  historyRequests: number;
  /** History requests not answered: the same session asked within HISTORY_REQUEST_INTERVAL_MS. */
  historyRateLimited: number;
  historyBatchesSent: number;
  /** /tell messages not addressed to us or not sent by their author. */
  tellsRejected: number;
  /** Broadcasts whose author is not their origin; history entries without their author's broadcast. */
  forged: number;
  /** Messages shown with their author's member nick instead of the one they carried. */
  nickCorrected: number;
}
