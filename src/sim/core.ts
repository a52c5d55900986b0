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
export function coreAdapter(hooks: CoreHooks = {}): Adapter<NodeIn, NodeOut, CoreNode, ApiCall> {
  const { onWire, onAnnounce } = hooks;
  return {
    encode: (from, msg) => {
      const bytes = encode(msg);
      onWire?.(from, 'out', (msg as WireMessage).type, bytes.byteLength);
      return bytes;
    },
    message: (from, bytes, at) => {
      const b = bytes as Uint8Array;
      const r = decode<WireMessage>(b, validateWire);
      if (!r.ok) throw new Error(`${from} sent a message the wire refuses: ${r.error.message}`);
      onWire?.(at, 'in', r.msg.type, b.byteLength);
      return { type: 'frame', from, msg: r.msg };
    },
    timer: (timer) => ({ type: 'timer', timer: timer as NodeTimer }),
    linkDown: (peer) => ({ type: 'linkDown', peer }),
    // CoreNode works out `known` from its own membership
    announce: (from, clients, _known, isolated, at) => {
      onAnnounce?.(at, from, clients);
      return { type: 'announce', from, clients, isolated };
    },
    request: (req, call) => ({ type: 'api', req, call }),
    flush: { pending: (node) => node.needsFlush(), input: { type: 'flush' } },
    onEffect: hooks.onEffect,
  };
}

/** What a caller of coreAdapter may watch (the UI's mock keeps its tab's counters with them). */
export interface CoreHooks {
  /** Effects the network does not run (events, the persist effects, dropped): see CoreNode's NodeOut. */
  onEffect?(node: NodeId, effect: NodeOut, now: number): void;
  /** A message of `type`, `bytes` long on the wire, left (`out`) or reached (`in`) `node`. */
  onWire?(node: NodeId, dir: 'in' | 'out', type: string, bytes: number): void;
  /** `node` heard `from`'s announce from the signaling server, which has `clients` subscribers. */
  onAnnounce?(node: NodeId, from: NodeId, clients: number): void;
}

export type CoreNetwork = Network<NodeIn, NodeOut, CoreNode, ApiCall>;

export interface CoreNetworkOptions extends CoreHooks {
  seed: number;
  network?: Partial<NetworkConfig>;
  /** Every node's protocol configuration. */
  config?: CoreConfig;
  /** One node's configuration, when it differs from `config`. */
  configOf?: (id: string) => CoreConfig | undefined;
}

/**
 * A network of CoreNodes. A node's Rng comes from the run's seed and its id (and its
 * incarnation after a restart), so adding a node does not shift anyone else's randomness.
 */
export function createCoreNetwork(opts: CoreNetworkOptions): CoreNetwork {
  return new Network<NodeIn, NodeOut, CoreNode, ApiCall>(
    coreAdapter(opts),
    { seed: opts.seed, ...opts.network },
    (id, incarnation) => new CoreNode(id, opts.configOf?.(id) ?? opts.config ?? {}, nodeRng(opts.seed, incarnation === 0 ? id : `${id}/${incarnation}`)),
  );
}
