export { Network, DEFAULT_NETWORK_CONFIG, type Adapter, type LinkMode, type Reply, type SimNode, type NetworkConfig, type NetworkStats } from './network';
export { EventQueue, type Timed } from './queue';
export { draw, logNormal, type Dist } from './dist';
export {
  snapshot,
  symmetry,
  componentLabels,
  componentSizes,
  largestComponentFraction,
  degrees,
  spread,
  leakedLinks,
  type OverlaySnapshot,
  type ViewSource,
  type Spread,
} from './metrics';
export {
  hyparviewAdapter,
  createHpvNetwork,
  addHpvNode,
  nodeRng,
  overlayMetrics,
  runOverlayScenario,
  DEFAULT_SCENARIO,
  type HpvNetwork,
  type OverlayMetrics,
  type OverlayScenario,
  type OverlayReport,
  type OverlaySource,
  type ScenarioPhases,
  runOverlayPhases,
} from './hyparview';
export {
  PlumtreeNode,
  plumtreeAdapter,
  createPlumtreeNetwork,
  hpvPtNode,
  ptNode,
  memberNode,
  PtTally,
  FIXED_OVERLAY,
  type PtHostIn,
  type PtHostOut,
  type PlumtreeNetwork,
  type PlumtreeNodeOptions,
  type BroadcastSink,
} from './plumtree';
export {
  runBroadcastScenario,
  DEFAULT_BROADCAST_SCENARIO,
  BroadcastTally,
  batchStats,
  eccentricities,
  type BroadcastScenario,
  type BroadcastReport,
  type Batch,
  type BatchStats,
  type MessageRecord,
} from './broadcast';
export { randomOverlay, linkComponents, type LinkSource } from './overlay';
export { KvNet, kvAdapter, type KvCall, type KvNetOptions } from './kv';
export { SegNet, segmentsAdapter, type SegCall, type SegNetOptions } from './segments';
export { coreAdapter, createCoreNetwork, type CoreNetwork, type CoreNetworkOptions } from './core';
export { RealTimeDriver, type Clocked, type RealTimeOptions } from './realtime';
export { EventLoop } from './loop';
