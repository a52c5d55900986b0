export { KvStore } from './store';
export { isKvMessage, validateKvMessage, validateEntry, MAX_WIRE_KEY_LENGTH, MAX_WIRE_ITEMS } from './messages';
export type { KvMessage, VersionTuple, ListItem, PutItem } from './messages';
export { DEFAULT_KV_CONFIG, compareVersions, storageKey } from './types';
export type { Entry, KvConfig, KvCounters, KvEvent, KvIn, KvInspected, KvOut, KvReply, KvStats, KvTimer, Version } from './types';
