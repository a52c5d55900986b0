/** Typed access to the node (and the shared cluster view) through Svelte context. */
import { getContext, setContext } from 'svelte';
import type { P2PApi } from '../runtime/api';
import type { ClusterState } from './state/cluster.svelte';

const NODE = Symbol('p2p-node');
const CLUSTER = Symbol('p2p-cluster-state');

export function setNodeContext(node: P2PApi): void {
  setContext(NODE, node);
}

export function getNode(): P2PApi {
  const node = getContext<P2PApi | undefined>(NODE);
  if (!node) throw new Error('getNode() called outside <App>: no node in context');
  return node;
}

export function setClusterContext(state: ClusterState): void {
  setContext(CLUSTER, state);
}

/** The cluster view shared by every panel (nicknames, members), owned by <App>. */
export function getCluster(): ClusterState {
  const state = getContext<ClusterState | undefined>(CLUSTER);
  if (!state) throw new Error('getCluster() called outside <App>: no cluster state in context');
  return state;
}
