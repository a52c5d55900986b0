export { Chat, storageKey, MAX_CLOCK_DRIFT_MS, HISTORY_REQUEST_INTERVAL_MS, HISTORY_BATCH_BYTES } from './chat';
export { RoomHistory, compareMessages } from './history';
export { parseInput, helpText, HELP_TEXT, type ParsedInput, type InputLimits } from './commands';
export {
  validateChatMessage,
  validateChatBroadcast,
  messageError,
  roomError,
  nickError,
  textError,
  normalizeRoom,
  cleanMessage,
} from './validate';
export {
  CHAT_KIND,
  CHAT_LIMITS,
  DEFAULT_CHAT_CONFIG,
  chatMessageId,
  DIRECT_ROOM,
  isChatWire,
  type ChatBroadcast,
  type ChatConfig,
  type ChatEvent,
  type ChatIn,
  type ChatMessage,
  type ChatOut,
  type ChatStats,
  type ChatWire,
} from './types';
