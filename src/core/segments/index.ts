export { Segments, compareBallots } from './segments';
export { segmentValueError } from './coordinator';
export {
  isSegMessage,
  storageKey,
  validateSegMessage,
  validateSegRecord,
  MAX_WIRE_KEY_LENGTH as MAX_SEG_KEY_LENGTH,
  MAX_WIRE_ITEMS as MAX_SEG_WIRE_ITEMS,
  MAX_WIRE_OPS as MAX_SEG_WIRE_OPS,
} from './messages';
export type { Ballot, DoneTuple, ItemTuple, RequestKind, SegMessage, SegOp, SegRecord, SnapshotMessage } from './messages';
export { DEFAULT_SEGMENTS_CONFIG } from './types';
export type { QueueView, SegEvent, SegIn, SegItem, SegmentsConfig, SegOut, SegReply, SegStats, SegTimer } from './types';
