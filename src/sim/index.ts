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
  percentile,
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
} from './hyparview';
