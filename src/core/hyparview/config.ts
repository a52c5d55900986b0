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
  /** Mean shuffle period; each period is drawn uniformly in [0.5, 1.5] × this. */
  shuffleIntervalMs: number;
  /** A NEIGHBOR or JOIN without a reply this long has failed. Covers a WebRTC dial. */
  requestTimeoutMs: number;
  /** After a peer refused us (or dropped us), do not ask it again for this long. */
  rejectCooldownMs: number;
  /** First re-announce delay while the active view is empty; doubles up to announceMaxMs. */
  announceMinMs: number;
  announceMaxMs: number;
  /** Expected welcomes per announce: a node answers with probability min(1, welcomeAnswers / clients). */
  welcomeAnswers: number;
  /** An isolated announcer waits this long for a welcome from a connected node before joining an isolated one. */
  welcomeGraceMs: number;
  /**
   * Clusters of at most this many signaling subscribers count as small: isolated nodes
   * always answer announces, strangers always answer a connected announcer, and connected
   * nodes re-announce often, so that islands find each other within seconds.
   */
  smallCluster: number;
  /**
   * Re-announce period of a connected node in a small cluster, or of one that has nobody
   * left to ask: starts at min, doubles up to max.
   */
  islandAnnounceMinMs: number;
  islandAnnounceMaxMs: number;
  /**
   * Island probes in larger clusters: each connected node re-announces about every
   * max(islandAnnounceMaxMs, clients × this) ms, so a whole cluster sends about one probe
   * per this many ms whatever its size.
   */
  islandProbeSpacingMs: number;
  /** Bridge NEIGHBORs a connected node sends per announce (one per welcome from another island). */
  bridgeMax: number;
}

export const DEFAULT_HYPARVIEW_CONFIG: Readonly<HyParViewConfig> = Object.freeze({
  activeSize: 5,
  passiveSize: 30,
  arwl: 6,
  prwl: 3,
  shuffleActive: 3,
  shufflePassive: 4,
  shuffleTtl: 6,
  shuffleIntervalMs: 10_000,
  requestTimeoutMs: 5_000,
  rejectCooldownMs: 10_000,
  announceMinMs: 1_000,
  announceMaxMs: 5_000,
  welcomeAnswers: 3,
  welcomeGraceMs: 300,
  smallCluster: 16,
  islandAnnounceMinMs: 2_000,
  islandAnnounceMaxMs: 30_000,
  islandProbeSpacingMs: 2_000,
  bridgeMax: 2,
});
