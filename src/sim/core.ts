import type { NodeId } from '../core/types';
import { CoreNode, validateWire, type ApiCall, type CoreConfig, type NodeIn, type NodeOut, type NodeTimer, type WireMessage } from '../core/node';
import { decode, encode } from '../wire/codec';
import { Network, type Adapter, type NetworkConfig } from './network';
import { nodeRng } from './hyparview';

/**
 * The whole CoreNode on the network ('dial' links: HyParView makes them): what the
 * browser runtime runs, minus WebRTC and IndexedDB. Every message crosses the real codec
 * and validator, as between tabs (a node sending something the wire refuses fails the
 * run); client requests are the runtime's `api` input; flush follows any input that
 * leaves KV writes held (`kv.deferFlush`), as at the end of the runtime's turn.
 */
export function coreAdapter(hooks: { onEffect?(node: NodeId, effect: NodeOut, now: number): void } = {}): Adapter<NodeIn, NodeOut, CoreNode, ApiCall> {
  return {
    encode: (_from, msg) => encode(msg),
    message: (from, bytes) => {
      const r = decode<WireMessage>(bytes as Uint8Array, validateWire);
      if (!r.ok) throw new Error(`${from} sent a message the wire refuses: ${r.error.message}`);
      return { type: 'frame', from, msg: r.msg };
    },
    timer: (timer) => ({ type: 'timer', timer: timer as NodeTimer }),
    linkDown: (peer) => ({ type: 'linkDown', peer }),
    // CoreNode works out `known` from its own membership
    announce: (from, clients, _known, isolated) => ({ type: 'announce', from, clients, isolated }),
    request: (req, call) => ({ type: 'api', req, call }),
    flush: { pending: (node) => node.needsFlush(), input: { type: 'flush' } },
    onEffect: hooks.onEffect,
  };
}

export type CoreNetwork = Network<NodeIn, NodeOut, CoreNode, ApiCall>;

export interface CoreNetworkOptions {
  seed: number;
  network?: Partial<NetworkConfig>;
  /** Every node's protocol configuration. */
  config?: CoreConfig;
  /** Effects the network does not run (events, the persist effects, dropped): see CoreNode's NodeOut. */
  onEffect?(node: NodeId, effect: NodeOut, now: number): void;
}

/**
 * A network of CoreNodes. A node's Rng comes from the run's seed and its id (and its
 * incarnation after a restart), so adding a node does not shift anyone else's randomness.
 */
export function createCoreNetwork(opts: CoreNetworkOptions): CoreNetwork {
  return new Network<NodeIn, NodeOut, CoreNode, ApiCall>(
    coreAdapter({ onEffect: opts.onEffect }),
    { seed: opts.seed, ...opts.network },
    (id, incarnation) => new CoreNode(id, opts.config ?? {}, nodeRng(opts.seed, incarnation === 0 ? id : `${id}/${incarnation}`)),
  );
}
