import type { NodeId } from '../core/types';
import type { NetworkConfig } from './adapter';

/** `Omit` applied to each member of a union (a call type without its `req`). */
export type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/** What a formed cluster on a 'mesh' network is made of (KvNet, SegNet). */
export interface MeshOptions {
  seed: number;
  /** Node count (ids n0, n1, ...) or explicit ids. */
  nodes: number | NodeId[];
  /** One-way latency range of each message in ms [1, 20]: messages are reordered. */
  latency?: [number, number];
  /** Probability that a message is lost [0]. */
  loss?: number;
  /** Probability that a delivered message is delivered twice [0]. */
  duplicate?: number;
  /** Range of the delay before a node learns of a membership change [200, 800]. */
  detection?: [number, number];
  /** Each node's clock runs ahead by up to this many ms [0]. */
  clockSkew?: number;
  /** Start time of the virtual clock (ms) [1,000,000]. */
  start?: number;
}

/** The network configuration of a mesh cluster, defaults filled in. */
export function meshConfig(opts: MeshOptions): Partial<NetworkConfig> & { seed: number } {
  const [lo, hi] = opts.latency ?? [1, 20];
  const [dlo, dhi] = opts.detection ?? [200, 800];
  return {
    seed: opts.seed,
    links: 'mesh',
    start: opts.start ?? 1_000_000,
    linkLatency: { min: lo, max: hi },
    lossRate: opts.loss ?? 0,
    duplicateRate: opts.duplicate ?? 0,
    detectDelay: { min: dlo, max: dhi },
    clockSkew: opts.clockSkew ?? 0,
  };
}

/** The node ids of a mesh cluster: n0, n1, ... for a count, else the ids given. */
export function meshIds(nodes: number | NodeId[]): NodeId[] {
  return typeof nodes === 'number' ? Array.from({ length: nodes }, (_, i) => `n${i}`) : nodes;
}
