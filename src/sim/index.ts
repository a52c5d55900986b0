export { Network, DEFAULT_NETWORK_CONFIG, type SimNode, type SimStack, type NetworkConfig, type NetworkStats } from './network';
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
  hyparviewStack,
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
export { StackNode, hpvPtStack, createStackNetwork, type StackIn, type StackOut, type StackNetwork, type BroadcastSink } from './stack';
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
