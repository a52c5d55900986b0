export { HyParView, type HpvIn, type HpvOut, type HpvEvent, type HpvStats, type HpvTimer } from './hyparview';
export { DEFAULT_HYPARVIEW_CONFIG, type HyParViewConfig } from './config';
export {
  validateHpvMessage,
  isHpvMessage,
  MAX_SHUFFLE_NODES,
  MAX_TTL,
  MAX_CLIENTS,
  type HpvMessage,
  type HpvJoin,
  type HpvForwardJoin,
  type HpvNeighbor,
  type HpvNeighborReply,
  type HpvDisconnect,
  type HpvShuffle,
  type HpvShuffleReply,
  type HpvWelcome,
} from './messages';
