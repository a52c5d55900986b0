export { KvStore } from './store';
export { Ring, hash32 } from './ring';
export { validateKvMessage, validateEntry, MAX_WIRE_KEY_LENGTH, MAX_WIRE_ITEMS } from './messages';
export type { KvMessage, VersionTuple, ListItem } from './messages';
export { approxEncodedSize } from './size';
export { DEFAULT_KV_CONFIG, compareVersions } from './types';
export type { Entry, KvConfig, KvIn, KvOptions, KvOut, KvReply, KvTimer, Version } from './types';
