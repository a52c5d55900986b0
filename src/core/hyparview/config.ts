/**
 * HyParView parameters. The first eight are the paper's (§5, p. 9) and iroh-gossip's
 * defaults; the rest are our additions for a browser overlay bootstrapped through a
 * signaling server (see README.md).
 */
import type { RateConfig } from '../limits/rate';

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
  /**
   * Evictions for high priority NEIGHBORs: at most `burst` at once, then `perSec` a
   * second. The paper accepts a high priority request unconditionally, so without a bound
   * a peer (or a crowd of fresh ids) could replace every honest neighbour within seconds
   * (eclipse). A request past the bound is treated as low priority: accepted into a free
   * slot, refused when the view is full. Honest high priority requests are rare (a node
   * whose view emptied, the end of a join walk): 4 at once and one per 5 s cover them.
   */
  evictionRate: RateConfig;
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
  evictionRate: Object.freeze({ burst: 4, perSec: 0.2 }),
});
