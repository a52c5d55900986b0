/**
 * HyParView parameters. The first eight are the paper's (§5, p. 9) and iroh-gossip's
 * defaults; the rest are our additions for a browser overlay bootstrapped through a
 * signaling server (see README.md).
 */
export interface HyParViewConfig {
  /** Active view capacity (open links). */
  activeSize: number;
  /** Passive view capacity (ids only). */
  passiveSize: number;
  /** Active random walk length: FORWARD_JOIN ttl. */
  arwl: number;
  /** Passive random walk length: the hop (ttl value) that adds the joiner to a passive view. */
  prwl: number;
  /** ka: active-view ids carried by a SHUFFLE. */
  shuffleActive: number;
  /** kp: passive-view ids carried by a SHUFFLE. */
  shufflePassive: number;
  /** SHUFFLE random walk length. */
  shuffleTtl: number;
  /** Mean shuffle period, ms; each period is drawn uniformly in [0.5, 1.5] × this. */
  shuffleInterval: number;
  /** A NEIGHBOR or JOIN without a reply this long (ms) has failed. Covers a WebRTC dial. */
  requestTimeout: number;
  /** After a peer refused us (or dropped us), do not ask it again for this long (ms). */
  rejectCooldown: number;
  /** First re-announce delay while the active view is empty (ms); doubles up to announceMax. */
  announceMin: number;
  announceMax: number;
  /** Expected welcomes per announce: a node answers with probability min(1, welcomeAnswers / clients). */
  welcomeAnswers: number;
  /** An isolated announcer waits this long (ms) for a welcome from a connected node before joining an isolated one. */
  welcomeGrace: number;
  /**
   * Clusters of at most this many signaling subscribers count as small: isolated nodes
   * always answer announces, strangers always answer a connected announcer, and connected
   * nodes re-announce often, so that islands find each other within seconds.
   */
  smallCluster: number;
  /**
   * Re-announce period of a connected node in a small cluster, or of one that has nobody
   * left to ask (ms): starts at min, doubles up to max.
   */
  islandAnnounceMin: number;
  islandAnnounceMax: number;
  /**
   * Island probes in larger clusters: each connected node re-announces about every
   * max(islandAnnounceMax, clients × this) ms, so a whole cluster sends about one probe
   * per this many ms whatever its size.
   */
  islandProbeSpacing: number;
  /** Bridge NEIGHBORs a connected node sends per announce (one per welcome from another island). */
  bridgeMax: number;
}

export const DEFAULT_HYPARVIEW_CONFIG: HyParViewConfig = Object.freeze({
  activeSize: 5,
  passiveSize: 30,
  arwl: 6,
  prwl: 3,
  shuffleActive: 3,
  shufflePassive: 4,
  shuffleTtl: 6,
  shuffleInterval: 10_000,
  requestTimeout: 5_000,
  rejectCooldown: 10_000,
  announceMin: 1_000,
  announceMax: 5_000,
  welcomeAnswers: 3,
  welcomeGrace: 300,
  smallCluster: 16,
  islandAnnounceMin: 2_000,
  islandAnnounceMax: 30_000,
  islandProbeSpacing: 2_000,
  bridgeMax: 2,
});
